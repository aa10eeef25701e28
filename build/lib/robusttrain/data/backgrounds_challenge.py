"""Loader for the Backgrounds Challenge (ImageNet-9) layout: ``root/<variant>/<split>/<NN_class>/<image>``.

Foreground masks, when present, are read from ``root/fg_mask/<split>/<NN_class>/<stem>.npy`` and are only
attached to the ``original`` variant (the only one they describe).
"""

from __future__ import annotations

from pathlib import Path

from .base import MaskedImageDataset
from .imagefolder import class_folder_records, class_folders
from .io import confined
from .transforms import PairTransform

IN9_VARIANTS = ("original", "only_fg", "no_fg", "only_bg_b", "only_bg_t", "mixed_same", "mixed_rand", "mixed_next")


class BackgroundsChallengeDataset(MaskedImageDataset):
    """One variant of an IN-9-style dataset. Group = class.

    Args:
        root: the ``bg_challenge`` folder.
        variant: one of ``IN9_VARIANTS``.
        split: sub-folder name, ``"val"`` for the released test sets.
        transform: joint image/mask transform.
        use_masks: attach ``fg_mask`` masks to the original variant when the folder exists.

    Raises:
        ValueError: unknown variant; FileNotFoundError: the variant folder is missing or a mask is absent.
    """

    def __init__(
        self,
        root: str | Path,
        variant: str = "original",
        split: str = "val",
        transform: PairTransform | None = None,
        use_masks: bool = True,
    ) -> None:
        if variant not in IN9_VARIANTS:
            raise ValueError(f"unknown IN-9 variant {variant!r}; choose from {IN9_VARIANTS}")
        folder = Path(root) / variant / split
        if not folder.is_dir():
            raise FileNotFoundError(f"IN-9 variant folder not found: {folder}")
        classes = class_folders(folder)
        if not classes:
            raise ValueError(f"{folder} has no class sub-folders")
        mask_root = Path(root) / "fg_mask" / split
        attach = use_masks and variant == "original" and mask_root.is_dir()

        def mask_for(path: Path, name: str) -> Path | None:
            if not attach:
                return None
            mask = mask_root / name / (path.stem + ".npy")
            if not mask.is_file():
                raise FileNotFoundError(f"no foreground mask {mask} for image {path}")
            return confined(mask_root, Path(name) / mask.name, f"foreground mask of {path}")

        records = class_folder_records(folder, classes, mask_for)
        super().__init__(records, classes, len(classes), transform, group_names=classes)
        self.variant = variant
