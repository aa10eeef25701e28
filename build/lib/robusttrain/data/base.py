"""The sample contract shared by every loader: image, target, stable index, group, and mask when present."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .io import read_image, read_mask
from .transforms import PairTransform, build_eval_transform


@dataclass(frozen=True)
class Record:
    """Where one sample lives on disk and what is known about it."""

    image: Path
    target: int
    group: int
    sample_id: int
    mask: Path | None = None
    attributes: tuple[int, ...] | None = None  # 0/1 values of the dataset's attribute_names


class MaskedImageDataset(Dataset):
    """A list of :class:`Record` read lazily through a :class:`PairTransform`.

    Each item is a dict: ``image`` float32 ``(3, H, W)`` in [0, 1], ``target`` int, ``index`` (the record's
    stable ``sample_id``), ``group`` int, ``mask`` float32 ``(1, H, W)`` when the dataset has masks, and
    ``attributes`` float32 ``(A,)`` of 0/1 when it has ``attribute_names`` (multi-attribute data).
    A dataset either has a mask (attributes) for every record or for none, so batches always collate.
    """

    def __init__(
        self,
        records: Sequence[Record],
        class_names: Sequence[str],
        num_groups: int,
        transform: PairTransform | None = None,
        group_names: Sequence[str] | None = None,
        attribute_names: Sequence[str] = (),
    ) -> None:
        if not records:
            raise ValueError("dataset is empty: no images were found")
        with_mask = [r.mask is not None for r in records]
        if any(with_mask) and not all(with_mask):
            missing = next(r.image for r in records if r.mask is None)
            raise ValueError(f"some images have masks and some do not (first without one: {missing})")
        self.attribute_names = list(attribute_names)
        wrong = next((r for r in records if len(r.attributes or ()) != len(self.attribute_names)), None)
        if wrong is not None:
            raise ValueError(f"{wrong.image} has {len(wrong.attributes or ())} attribute values, the dataset names "
                             f"{len(self.attribute_names)} attributes {self.attribute_names}")
        self.records = list(records)
        self.class_names = list(class_names)
        self.num_groups = num_groups
        self.group_names = list(group_names) if group_names is not None else [str(g) for g in range(num_groups)]
        self.transform = transform or build_eval_transform()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_masks(self) -> bool:
        return self.records[0].mask is not None

    @property
    def targets(self) -> np.ndarray:
        return np.array([r.target for r in self.records], dtype=np.int64)

    @property
    def attributes(self) -> np.ndarray:
        """``(N, A)`` int64 0/1 values of ``attribute_names`` (``(N, 0)`` without attributes)."""
        return np.array([r.attributes or () for r in self.records], dtype=np.int64).reshape(len(self), -1)

    @property
    def groups(self) -> np.ndarray:
        return np.array([r.group for r in self.records], dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (call before creating the epoch's iterator)."""
        self.transform.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = self.records[i]
        image = read_image(record.image)
        mask = None if record.mask is None else read_mask(record.mask, expected_size=image.shape[:2])
        image_t, mask_t = self.transform(image, mask, record.sample_id)
        item: dict[str, Any] = {"image": image_t, "target": record.target, "index": record.sample_id,
                                "group": record.group}
        if mask_t is not None:
            item["mask"] = mask_t
        if self.attribute_names:
            item["attributes"] = torch.tensor(record.attributes, dtype=torch.float32)
        return item
