"""Intentional attention mask transformation as a callback: measure which features matter for each attribute,
then emphasise their masks (damping the others) and fine-tune with the transformed masks for the rest of the run.

Needs a model with per-feature masks (``create_model(..., feature_masks=True)``). The transformation stays in the
model (its ``selected`` buffer and extra state), so a saved model predicts with it; switch it off at inference with
``FeatureMaskNet.set_transform(None)``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..callbacks.base import Callback
from ..callbacks.registry import CALLBACKS
from ..callbacks.start import StartPoint
from ..types import Batch, TrainState
from .maps import IMPORTANCE_METHODS, feature_importance
from .net import FeatureMaskNet, MaskTransform, find_feature_masks


@CALLBACKS.register("intentional_masks")
class IntentionalMaskCallback(Callback):
    """Switch the mask transformation on at ``start``; importances are averaged over the ``window`` before it.

    Args:
        start: fraction of training at which the transformation starts (the rest is the fine-tuning phase);
            ``start_step`` gives an optimizer step instead.
        window: fraction of training before ``start`` over which importances are averaged (0: the batch at
            ``start`` alone).
        importance: ``weights`` (classifier weight x mean masked activation, read off the training pass: free) or
            ``gradient`` (an extra forward and backward per step of the window).
        top_fraction, mode, emphasis, sharpness, damp: the :class:`~robusttrain.models.MaskTransform`.

    Raises:
        ValueError: a bad option (named), or a model without feature masks (at setup).
    """

    order = 5

    def __init__(self, start: float = 0.8, start_step: int | None = None, window: float = 0.1,
                 importance: str = "weights", top_fraction: float = 0.1, mode: str = "scale",
                 emphasis: float = 2.0, sharpness: float = 4.0, damp: float = 0.5, **options: Any) -> None:
        super().__init__(**options)
        self.start = StartPoint(start if start_step is None else 0.0, start_step)
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0.0 <= window < 1.0:
            raise ValueError(f"window is a fraction of training in [0, 1), got {window!r}")
        if importance not in IMPORTANCE_METHODS:
            raise ValueError(f"importance must be one of {list(IMPORTANCE_METHODS)}, got {importance!r}")
        self.window, self.importance_method = window, importance
        self.transform = MaskTransform(top_fraction, mode, emphasis, sharpness, damp)
        self.applied = False
        self.importance_sum: torch.Tensor | None = None
        self.importance_count = 0

    def _net(self, state: TrainState) -> FeatureMaskNet:
        if state.model is None:
            raise ValueError("intentional_masks needs TrainState.model")
        return find_feature_masks(state.model)

    def setup(self, state: TrainState) -> None:
        self._net(state)

    def _in_window(self, state: TrainState) -> bool:
        begin = self.start.step_of(state)
        if self.start.step is None and state.total_steps:
            first = begin - round(self.window * state.total_steps)
        else:
            first = begin
        return first <= state.global_step < begin

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        if not self.applied and self.start.reached(state):
            net = self._net(state)
            if self.importance_count == 0:
                self._accumulate(feature_importance(_unwrapped(state), [batch.images], self.importance_method), 1)
            net.set_transform(self.transform, self.importance_sum / self.importance_count)
            self.applied = True
        return batch

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if self.applied or not self._in_window(state):
            return losses
        net = self._net(state)
        if self.importance_method == "weights":
            if net.last_pooled is None:
                raise ValueError("no pooled features from the training pass: is the model in train mode?")
            per_feature = net.contributions(net.last_pooled).mean(dim=0)
        else:
            per_feature = feature_importance(_unwrapped(state), [batch.images], "gradient")
        self._accumulate(per_feature, 1)
        return losses

    def _accumulate(self, importance: torch.Tensor, count: int) -> None:
        importance = importance.detach()
        if self.importance_sum is not None:
            importance = self.importance_sum.to(importance.device) + importance
        self.importance_sum = importance
        self.importance_count += count

    def state_dict(self) -> dict[str, Any]:
        total = None if self.importance_sum is None else self.importance_sum.cpu().tolist()
        return {"applied": self.applied, "importance_sum": total, "importance_count": self.importance_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = bool(state_dict["applied"])
        total = state_dict["importance_sum"]
        self.importance_sum = None if total is None else torch.tensor(total)
        self.importance_count = int(state_dict["importance_count"])


def _unwrapped(state: TrainState) -> torch.nn.Module:
    """The model inside a DDP / accelerate wrapper (``forward_features`` lives there)."""
    return getattr(state.model, "module", state.model)
