"""Loader for a plain ImageFolder (``root/<class>/<image>``) with an optional parallel masks folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .base import MaskedImageDataset, Record
from .io import confined
from .transforms import PairTransform

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MASK_SUFFIXES = (".png", ".npy", ".bmp", ".tif", ".tiff", ".jpg")


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` in sorted (stable) order, hidden files skipped.

    Raises:
        UnsafePathError: a symlink below ``folder`` that leads outside it.
    """
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return [confined(folder, p.relative_to(folder), f"image {p}") for p in found]


def class_folders(root: Path) -> list[str]:
    """Sorted names of the non-hidden sub-folders of ``root`` (one per class)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_folder_records(
    root: Path, classes: Sequence[str], mask_for: Callable[[Path, str], Path | None]
) -> list[Record]:
    """One :class:`Record` per image of ``root/<class>/**``; target = group = class position; ids in file order."""
    records: list[Record] = []
    for y, name in enumerate(classes):
        for path in list_images(root / name):
            records.append(Record(path, y, y, len(records), mask_for(path, name)))
    return records


def find_mask(masks_root: Path, relative: Path) -> Path:
    """The mask for image ``relative`` under ``masks_root`` (same path, any mask suffix)."""
    for suffix in MASK_SUFFIXES:
        candidate = masks_root / relative.with_suffix(suffix)
        if candidate.is_file():
            return confined(masks_root, relative.with_suffix(suffix), f"mask {candidate}")
    raise FileNotFoundError(f"no mask for image {relative} under {masks_root} (tried suffixes {MASK_SUFFIXES})")


class ImageFolderDataset(MaskedImageDataset):
    """``root/<class>/**/<image>``; classes are the sorted sub-folder names; group = class.

    Args:
        root: dataset folder.
        masks_root: optional parallel tree with one mask per image (same relative path, any mask suffix).
        transform: joint image/mask transform.
        class_names: fix the class order (e.g. to match a trained model); default: sorted folder names.

    Raises:
        FileNotFoundError: ``root`` missing, or an image has no mask in ``masks_root``.
        ValueError: no class folders / no images, or a requested class folder is absent.
    """

    def __init__(
        self,
        root: str | Path,
        masks_root: str | Path | None = None,
        transform: PairTransform | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {root}")
        found = class_folders(root)
        classes = class_names or found
        if not classes:
            raise ValueError(f"{root} has no class sub-folders")
        absent = [c for c in classes if c not in found]
        if absent:
            raise ValueError(f"class folders {absent} not found in {root} (found {found})")
        masks = Path(masks_root) if masks_root is not None else None
        records = class_folder_records(
            root, classes, lambda path, _: find_mask(masks, path.relative_to(root)) if masks is not None else None)
        if not records:
            raise ValueError(f"{root} holds no images (class folders of .png / .jpg files)")
        super().__init__(records, classes, len(classes), transform, group_names=classes)
