"""The callback protocol: hooks a plain PyTorch (or accelerate) loop calls, and a list that chains them.

Loop contract::

    batch = callbacks.on_batch_start(state, batch)            # may return a new batch
    outputs = model(batch.images)
    losses = criterion(outputs, batch.targets)                # per-sample, reduction="none"
    losses = callbacks.on_loss(state, batch, outputs, losses)  # may reweight or add terms, per sample
    losses.mean().backward(); optimizer.step(); state.global_step += 1
    callbacks.on_step_end(state)

A callback that changes nothing must return its inputs unchanged; disabled callbacks (``enabled=False``) are
skipped entirely.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ..types import Batch, TrainState


class Callback:
    """Base class; override the hooks you need. ``state_dict`` must be plain JSON-able Python."""

    order: ClassVar[int] = 0

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    @property
    def state_key(self) -> str:
        return type(self).__qualname__

    def setup(self, state: TrainState) -> None: ...

    def on_epoch_start(self, state: TrainState) -> None: ...

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        return batch

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """Per-sample losses ``(B,)`` in, per-sample losses out (the loop backpropagates their mean)."""
        return losses

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def teardown(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class CallbackError(RuntimeError):
    """A callback hook raised; the message names the callback and the hook."""


class CallbackList(Callback):
    """Several callbacks as one: sorted by ``order``, batch and loss chained, errors named."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        super().__init__()
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        keys = [cb.state_key for cb in self.callbacks]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"callbacks share state keys {duplicates}; give each instance a distinct name")

    def _each(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            if cb.enabled:
                self._call(cb, hook, *args)

    @staticmethod
    def _call(cb: Callback, hook: str, *args: Any) -> Any:
        try:
            return getattr(cb, hook)(*args)
        except Exception as error:
            raise CallbackError(f"{cb.state_key}.{hook} failed: {error}") from error

    def setup(self, state: TrainState) -> None:
        self._each("setup", state)

    def on_epoch_start(self, state: TrainState) -> None:
        self._each("on_epoch_start", state)

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        for cb in self.callbacks:
            if cb.enabled:
                batch = self._call(cb, "on_batch_start", state, batch)
        return batch

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        for cb in self.callbacks:
            if cb.enabled:
                losses = self._call(cb, "on_loss", state, batch, outputs, losses)
                if losses.ndim != 1 or len(losses) != len(batch):
                    raise CallbackError(f"{cb.state_key}.on_loss must return per-sample losses of shape "
                                        f"({len(batch)},), got {tuple(losses.shape)}")
        return losses

    def on_step_end(self, state: TrainState) -> None:
        self._each("on_step_end", state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._each("on_epoch_end", state)

    def teardown(self, state: TrainState) -> None:
        self._each("teardown", state)

    def state_dict(self) -> dict[str, Any]:
        return {cb.state_key: cb.state_dict() for cb in self.callbacks}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        unknown = sorted(set(state_dict) - {cb.state_key for cb in self.callbacks})
        if unknown:
            raise ValueError(f"checkpoint holds state for callbacks that are not configured: {unknown}")
        for cb in self.callbacks:
            if cb.state_key in state_dict:
                cb.load_state_dict(state_dict[cb.state_key])
