"""Loader for the CelebA layout: 40 binary face attributes, the standard multi-attribute benchmark.

It is also the standard second spurious-correlation benchmark: the target ``Blond_Hair`` is correlated with the
spurious ``Male`` (few blond men), so group = ``target * 2 + spurious`` and the spurious attribute plays the part
of Waterbirds' place (``places``, ``place_names``)::

    root/list_attr_celeba.txt       line 1: count; line 2: the 40 attribute names; then "000001.jpg  -1  1 ..."
    root/list_eval_partition.txt    "000001.jpg 0"  (0 train, 1 val, 2 test)
    root/img_align_celeba/000001.jpg
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import MaskedImageDataset, Record
from .io import confined, split_code
from .transforms import PairTransform

ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDER = "img_align_celeba"


class CelebADataset(MaskedImageDataset):
    """One split of a CelebA-layout dataset; items carry ``attributes`` (0/1) besides the target.

    Args:
        root: folder holding the two list files and ``img_align_celeba/``.
        split: ``"train"``, ``"val"``, ``"test"`` or the codes 0, 1, 2.
        target: the attribute to classify (``target`` of every item).
        spurious: the attribute correlated with it; group = ``target * 2 + spurious``.
        attributes: the attributes items carry (default: all of the file's, in its order).
        transform: joint image/mask transform (default: tensors only).

    Raises:
        FileNotFoundError: a list file or the image folder is missing.
        ValueError: an unknown attribute name, a malformed line (with its number), a value other than -1/1,
            or an image listed in one file and not the other.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | int = "train",
        target: str = "Blond_Hair",
        spurious: str = "Male",
        attributes: Sequence[str] | None = None,
        transform: PairTransform | None = None,
    ) -> None:
        root = Path(root)
        wanted = split_code(split)
        names, values = read_attribute_file(root / ATTRIBUTE_FILE)
        partition = read_partition_file(root / PARTITION_FILE)
        if not (root / IMAGE_FOLDER).is_dir():
            raise FileNotFoundError(f"no {IMAGE_FOLDER}/ in {root}: not a CelebA-layout dataset")
        unlisted = sorted(set(values) ^ set(partition))
        if unlisted:
            raise ValueError(f"{len(unlisted)} images are in only one of {ATTRIBUTE_FILE} and {PARTITION_FILE} "
                             f"(first: {unlisted[0]})")
        chosen = list(names if attributes is None else attributes)
        unknown = [a for a in (target, spurious, *chosen) if a not in names]
        if unknown:
            raise ValueError(f"unknown CelebA attributes {unknown}; the file names {names}")
        if target == spurious:
            raise ValueError(f"target and spurious attribute are both {target!r}")
        column = {name: i for i, name in enumerate(names)}
        records = []
        for sample_id, (filename, row) in enumerate(values.items()):
            if partition[filename] != wanted:
                continue
            label, place = row[column[target]], row[column[spurious]]
            image = confined(root / IMAGE_FOLDER, filename, f"{ATTRIBUTE_FILE} image")
            records.append(Record(image, label, label * 2 + place, sample_id,
                                  attributes=tuple(row[column[a]] for a in chosen)))
        class_names = [f"not {target}", target]
        self.place_names = [f"not {spurious}", spurious]
        group_names = [f"{c}/{p}" for c in class_names for p in self.place_names]
        super().__init__(records, class_names, 4, transform, group_names, chosen)
        self.num_places = 2
        self.places = [r.group % 2 for r in self.records]
        self.target_name, self.spurious_name = target, spurious


def read_attribute_file(path: Path) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """Attribute names and, per image file, its 0/1 values (the file's -1/1 mapped to 0/1), in file order."""
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: not a CelebA-layout dataset")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path} must start with a count line and a line of attribute names")
    names = lines[1].split()
    values: dict[str, tuple[int, ...]] = {}
    for number, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != len(names) + 1:
            raise ValueError(f"{path} line {number}: expected a file name and {len(names)} values, "
                             f"got {len(fields)} fields")
        if any(v not in ("-1", "1") for v in fields[1:]):
            raise ValueError(f"{path} line {number}: attribute values must be -1 or 1, got {fields[1:]}")
        values[fields[0]] = tuple(int(v == "1") for v in fields[1:])
    declared = lines[0].strip()
    if declared.isdigit() and int(declared) != len(values):
        raise ValueError(f"{path} declares {declared} images on line 1 but lists {len(values)}")
    return names, values


def read_partition_file(path: Path) -> dict[str, int]:
    """Split code per image file."""
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: not a CelebA-layout dataset")
    partition = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"{path} line {number}: expected '<file> <0|1|2>', got {line!r}")
        partition[fields[0]] = int(fields[1])
    return partition
