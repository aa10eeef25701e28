"""Loader for the Waterbirds layout (``metadata.csv`` + images), used by the built-in benchmark and real Waterbirds."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from .base import MaskedImageDataset, Record
from .io import SPLIT_CODES, confined, split_code
from .transforms import PairTransform

REQUIRED_COLUMNS = ("img_id", "img_filename", "y", "split", "place")


class WaterbirdsDataset(MaskedImageDataset):
    """One split of a dataset in the Waterbirds layout. Group = ``y * num_places + place``.

    Masks come from the ``mask_filename`` column (relative to ``root``) when present, or from ``masks_dir``
    (a CUB-style segmentation tree: ``masks_dir/<img_filename with .png suffix>``).

    Args:
        root: folder holding ``metadata.csv``.
        split: ``"train"``, ``"val"``, ``"test"`` or the codes 0, 1, 2.
        transform: joint image/mask transform (default: tensors only).
        masks_dir: segmentation tree for datasets whose metadata has no ``mask_filename`` column.
        use_masks: set ``False`` to ignore masks even when available.
        attributes: metadata columns of 0/1 values to read as binary attributes (items get ``attributes``), e.g.
            the built-in benchmark's ``has_hole``, ``patterned``, ``warm_colour``, ``large_object``, and ``y`` or
            ``place`` where they are binary.

    Raises:
        FileNotFoundError: no ``metadata.csv`` (or a listed file is missing when read).
        ValueError: missing columns, unknown split, or malformed rows (with the row number).
    """

    def __init__(
        self,
        root: str | Path,
        split: str | int = "train",
        transform: PairTransform | None = None,
        masks_dir: str | Path | None = None,
        use_masks: bool = True,
        attributes: Sequence[str] = (),
    ) -> None:
        root = Path(root)
        metadata = root / "metadata.csv"
        if not metadata.is_file():
            raise FileNotFoundError(f"no metadata.csv in {root}: not a Waterbirds-layout dataset")
        wanted = split_code(split)
        with open(metadata, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{metadata} lacks columns {missing} (has {reader.fieldnames})")
            rows = list(reader)
        absent = [a for a in attributes if a not in (reader.fieldnames or [])]
        if absent:
            raise ValueError(f"{metadata} has no attribute columns {absent}; columns: {reader.fieldnames}")
        parsed = _parse_rows(metadata, rows)
        num_classes = _count(metadata, parsed, 2, "y")
        num_places = _count(metadata, parsed, 4, "place")
        if masks_dir is not None and not Path(masks_dir).is_dir():
            raise FileNotFoundError(f"masks folder not found: {masks_dir}")
        values = [_binary_values(metadata, rows, name) for name in attributes]
        records = []
        for row, (img_id, filename, y, row_split, place, mask_name) in enumerate(parsed):
            if row_split != wanted:
                continue
            where = f"{metadata} row {row + 2}"
            mask = None
            if use_masks and mask_name:
                mask = confined(root, mask_name, f"{where} mask_filename")
            elif use_masks and masks_dir is not None:
                mask = confined(Path(masks_dir), Path(filename).with_suffix(".png"), f"{where} mask in --masks-dir")
            record_attributes = tuple(column[row] for column in values) if attributes else None
            image = confined(root, filename, f"{where} img_filename")
            records.append(Record(image, y, y * num_places + place, img_id, mask, record_attributes))
        if not records:
            raise ValueError(f"{metadata} has no rows of the {split} split (split code {wanted})")
        class_names, place_names = _names(root, num_classes, num_places)
        group_names = [f"{c}/{p}" for c in class_names for p in place_names]
        super().__init__(records, class_names, num_classes * num_places, transform, group_names, attributes)
        self.num_places = num_places
        self.place_names = place_names
        self.places = [r.group % num_places for r in self.records]


Row = tuple[int, str, int, int, int, str | None]


def _parse_rows(metadata: Path, rows: list[dict[str, str]]) -> list[Row]:
    """``(img_id, img_filename, y, split, place, mask_filename)`` per row; malformed rows, split codes other than
    0/1/2, negative labels and repeated ids are refused by row number."""
    if not rows:
        raise ValueError(f"{metadata} has a header but no rows")
    parsed: list[Row] = []
    first_row_of: dict[int, int] = {}
    for number, r in enumerate(rows, start=2):  # row 1 is the header
        try:
            row = (int(r["img_id"]), r["img_filename"], int(r["y"]), int(float(r["split"])), int(r["place"]),
                   r.get("mask_filename") or None)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{metadata} row {number} is malformed ({error}): {dict(r)}") from None
        if row[3] not in SPLIT_CODES.values():
            raise ValueError(f"{metadata} row {number}: split must be 0 (train), 1 (val) or 2 (test), got "
                             f"{r['split']!r}")
        if row[2] < 0 or row[4] < 0:
            raise ValueError(f"{metadata} row {number}: y and place must be 0 or more, got y={row[2]} "
                             f"place={row[4]}")
        if row[0] in first_row_of:
            raise ValueError(f"{metadata} rows {first_row_of[row[0]]} and {number} have the same img_id {row[0]}")
        first_row_of[row[0]] = number
        parsed.append(row)
    return parsed


def _count(metadata: Path, parsed: list[Row], column: int, name: str) -> int:
    """How many values column ``name`` takes; they must be 0..K-1, each used by some row."""
    used = {row[column] for row in parsed}
    count = max(used) + 1
    absent = sorted(set(range(count)) - used)
    if absent:
        number = 2 + next(i for i, row in enumerate(parsed) if row[column] == count - 1)
        raise ValueError(f"{metadata}: {name} values must be 0..K-1 with every value used, but {absent[:5]} never "
                         f"occur while row {number} has {name}={count - 1}")
    return count


def _binary_values(metadata: Path, rows: list[dict[str, str]], name: str) -> list[int]:
    values = []
    for number, row in enumerate(rows, start=2):
        text = (row.get(name) or "").strip()
        if text not in ("0", "1"):
            raise ValueError(f"{metadata} row {number}: attribute {name!r} must be 0 or 1, got {text!r}")
        values.append(int(text))
    return values


def _names(root: Path, num_classes: int, num_places: int) -> tuple[list[str], list[str]]:
    manifest = root / "benchmark.json"
    if manifest.is_file():
        info = json.loads(manifest.read_text())
        return list(info["class_names"]), list(info["domain_names"])
    if num_classes == 2 and num_places == 2:
        return ["landbird", "waterbird"], ["land", "water"]
    return [f"class_{y}" for y in range(num_classes)], [f"place_{p}" for p in range(num_places)]


def write_view(root: str | Path, into: str | Path, *, drop_columns: Sequence[str] = ("mask_filename",),
               set_columns: Mapping[str, str] | None = None, keep_manifest: bool = True) -> Path:
    """A copy of a Waterbirds-layout dataset that changes only its metadata, in ``into``: image folders hard-linked
    (copied across file systems; the loader refuses symlinks out of its tree), no ``masks`` folder,
    ``metadata.csv`` without ``drop_columns`` and with ``set_columns`` written into every row, ``benchmark.json``
    (class and place names) kept or left out. E.g. the same data without masks, or without its groups."""
    root, into = Path(root), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    for folder in root.iterdir():
        if folder.is_dir() and folder.name != "masks":
            (into / folder.name).mkdir(exist_ok=True)
            for image in folder.iterdir():
                target = into / folder.name / image.name
                if not target.exists():
                    try:
                        os.link(image, target)
                    except OSError:
                        shutil.copy2(image, target)
    if keep_manifest and (root / "benchmark.json").is_file():
        shutil.copy2(root / "benchmark.json", into / "benchmark.json")
    with open(root / "metadata.csv", newline="") as handle:
        rows = [{**row, **(set_columns or {})} for row in csv.DictReader(handle)]
    columns = [c for c in rows[0] if c not in drop_columns]
    with open(into / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return into
