"""Structured values passed between a training loop and callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class SourceMaps:
    """One map source's maps for a batch.

    Shape:
        maps ``(B, 1, H, W)`` in [0, 1] on the images' device (zeros where ``available`` is False);
        available ``(B,)`` bool: the row has a map (fresh or cached); fresh ``(B,)`` bool: computed this step.
    """

    maps: torch.Tensor
    available: torch.Tensor
    fresh: torch.Tensor


@dataclass
class Batch:
    """One training batch. ``indices`` are stable sample ids (needed for map caches and audits).

    ``maps`` holds each map source's maps of this step (filled by :class:`~robusttrain.maps.MapProvider`, computed
    on the images as the dataset gave them); ``randomized`` marks the rows whose images a callback replaced this
    step (their pixels are no longer the dataset's).

    Shape:
        images ``(B, C, H, W)`` in [0, 1]; targets ``(B,)`` (classes) or ``(B, ...)`` (regression);
        indices, groups ``(B,)``; masks ``(B, 1, H, W)`` in [0, 1]; randomized ``(B,)`` bool.

    Raises:
        ValueError: a field whose first dimension (or a mask whose size) disagrees with the images.
    """

    images: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor | None = None
    groups: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    maps: dict[str, SourceMaps] = field(default_factory=dict)
    randomized: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.ndim != 4:
            shape = tuple(self.images.shape) if isinstance(self.images, torch.Tensor) else type(self.images).__name__
            raise ValueError(f"Batch.images must be a (B, C, H, W) tensor, got {shape}")
        size = len(self.images)
        for name in ("targets", "indices", "groups", "masks", "randomized"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, torch.Tensor) or value.ndim == 0 or len(value) != size):
                got = f"length {len(value)}" if isinstance(value, torch.Tensor) and value.ndim else repr(value)
                raise ValueError(f"Batch.{name} must have one entry per image ({size}), got {got}")
        if self.masks is not None and (self.masks.ndim != 4 or self.masks.shape[1] != 1
                                       or self.masks.shape[-2:] != self.images.shape[-2:]):
            raise ValueError(f"Batch.masks must be (B, 1, H, W) matching images {tuple(self.images.shape)}, "
                             f"got {tuple(self.masks.shape)}")

    @classmethod
    def from_dict(cls, batch: Mapping[str, Any]) -> Batch:
        """From a collated sample dict of this library's datasets (``image``, ``target``, ``index``, ...)."""
        return cls(images=batch["image"], targets=batch["target"], indices=batch.get("index"),
                   groups=batch.get("group"), masks=batch.get("mask"))

    def replace(self, **changes: Any) -> Batch:
        return replace(self, **changes)

    def with_randomized(self, images: torch.Tensor, rows: torch.Tensor) -> Batch:
        """A copy with new ``images`` whose changed ``rows`` ``(B,)`` bool join the earlier marks."""
        marked = rows if self.randomized is None else rows | self.randomized
        return replace(self, images=images, randomized=marked)

    def unchanged_rows(self) -> torch.Tensor:
        """``(B,)`` bool: rows whose images are still the dataset's."""
        if self.randomized is None:
            return torch.ones(len(self), dtype=torch.bool, device=self.images.device)
        return ~self.randomized

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class TrainState:
    """Mutable loop state handed to every callback hook (owned by the loop).

    ``total_steps`` is the run's optimizer-step budget: options given as a fraction of training (``start: 0.5``)
    need it; ``recipes/train.py`` and the adapters set it.
    """

    epoch: int = 0
    global_step: int = 0
    batch_idx: int = 0
    total_steps: int | None = None
    is_training: bool = True
    is_main_process: bool = True
    world_size: int = 1
    model: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    output_dir: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    should_stop: bool = False
    accelerator: Any = None
