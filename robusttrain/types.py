"""Structured values passed between a training loop and callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn


@dataclass
class Batch:
    """One training batch. ``indices`` are stable sample ids (needed for map caches and audits).

    Shape:
        images ``(B, C, H, W)`` in [0, 1]; targets ``(B,)`` (classes) or ``(B, ...)`` (regression);
        indices, groups ``(B,)``; masks ``(B, 1, H, W)`` in [0, 1].
    """

    images: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor | None = None
    groups: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, batch: Mapping[str, Any]) -> Batch:
        """From a collated sample dict of this library's datasets (``image``, ``target``, ``index``, ...)."""
        return cls(images=batch["image"], targets=batch["target"], indices=batch.get("index"),
                   groups=batch.get("group"), masks=batch.get("mask"))

    def replace(self, **changes: Any) -> Batch:
        return replace(self, **changes)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class TrainState:
    """Mutable loop state handed to every callback hook (owned by the loop)."""

    epoch: int = 0
    global_step: int = 0
    batch_idx: int = 0
    is_training: bool = True
    is_main_process: bool = True
    world_size: int = 1
    model: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    output_dir: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    should_stop: bool = False
    accelerator: Any = None
