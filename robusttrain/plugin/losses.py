"""Any loss as per-sample losses ``(B,)``: what callbacks reweight before the loop takes the mean."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def class_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per sample for class labels (the default); float targets need a loss of their own."""
    if targets.is_floating_point():
        raise ValueError(f"{targets.dtype} targets (regression, multi-label) need a loss: pass one, e.g. "
                         "nn.MSELoss() or nn.BCEWithLogitsLoss() (the default is cross-entropy over class labels)")
    return F.cross_entropy(outputs, targets, reduction="none")


class PerSampleLoss:
    """``loss(outputs, targets)`` reduced to one value per sample (the mean over any further dimensions).

    A ``torch.nn`` loss is used with ``reduction="none"`` (a copy; the user's object is unchanged); any other
    callable must return one value per sample (or per element) itself.
    """

    def __init__(self, loss: nn.Module | LossFn | None = None) -> None:
        if loss is None:
            self.fn: LossFn = class_cross_entropy
        elif isinstance(loss, nn.modules.loss._Loss):
            self.fn = copy.copy(loss)
            self.fn.reduction = "none"
        elif callable(loss):
            self.fn = loss
        else:
            raise ValueError(f"loss must be a torch.nn loss or a function (outputs, targets) -> losses, got "
                             f"{type(loss).__name__}")
        self.name = getattr(loss, "__name__", type(loss).__name__) if loss is not None else "cross_entropy"

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        values = self.fn(outputs, targets)
        size = len(outputs)
        if not isinstance(values, torch.Tensor) or values.ndim == 0 or values.shape[0] != size:
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"the loss {self.name} must give one value per sample ({size},), got {shape}: use "
                             "reduction='none'")
        return values.reshape(size, -1).mean(1)
