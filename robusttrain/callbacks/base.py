"""The callback protocol: hooks a plain PyTorch (or accelerate) loop calls, and a list that chains them.

Loop contract::

    batch = callbacks.on_batch_start(state, batch)            # may return a new batch
    outputs = model(batch.images)
    losses = criterion(outputs, batch.targets)                # per-sample, reduction="none"
    losses = callbacks.on_loss(state, batch, outputs, losses)  # may reweight or add terms, per sample
    losses.mean().backward(); optimizer.step(); state.global_step += 1
    callbacks.on_step_end(state)

A callback that changes nothing must return its inputs unchanged; disabled callbacks (``enabled=False``) are
skipped entirely. Attention maps are not computed by the callbacks that use them: a callback names the map
sources it reads (``map_sources``) and :class:`CallbackList` has its :class:`~robusttrain.maps.MapProvider`
compute each source once per step, before any callback changes the batch, on ``batch.maps[name]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from ..maps import MapProvider, build_sources
from ..types import Batch, TrainState

MAPS_STATE_KEY = "map_sources"  # CallbackList.state_dict() key of the map sources' caches


def check_class_labels(targets: torch.Tensor, needed_by: str, hint: str = "") -> torch.Tensor:
    """``targets`` when they are class labels ``(B,)`` of integers; else ``ValueError`` saying what ``needed_by``
    needs and got (``hint`` appended)."""
    if targets.ndim != 1 or targets.is_floating_point():
        raise ValueError(f"{needed_by} needs class labels (B,) of integers, got {targets.dtype} targets of shape "
                         f"{tuple(targets.shape)}{hint}")
    return targets


class Callback:
    """Base class; override the hooks you need. ``state_dict`` must be plain JSON-able Python.

    Args:
        enabled: ``False`` skips every hook.
        key: the state key (default: the class name); give two instances of one callback distinct keys.
    """

    order: ClassVar[int] = 0
    changes_loss: ClassVar[bool] = True  # False: ``on_loss`` only reads the outputs (a loop need not route its loss)

    def __init__(self, enabled: bool = True, key: str | None = None) -> None:
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be true or false, got {enabled!r}")
        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        self.enabled, self.key = enabled, key

    @property
    def state_key(self) -> str:
        return self.key or type(self).__qualname__

    @property
    def map_sources(self) -> tuple[str, ...]:
        """Names of the map sources this callback reads from ``batch.maps``."""
        return ()

    def reads_maps(self, state: TrainState) -> bool:
        """Whether the callback reads its map sources in this step (a source nobody reads is not computed)."""
        return bool(self.map_sources)

    def map_rows(self, state: TrainState, batch: Batch) -> torch.Tensor | None:
        """``(B,)`` bool: the rows whose maps the callback reads this step (None: every row). Maps are computed only
        for the rows some reader needs."""
        return None

    def sampling_weights(self, state: TrainState) -> dict[int, float] | None:
        """Per-sample draw weights for the coming epoch, by sample id (None: no opinion; ids it omits weigh 1).
        The loop asks :meth:`CallbackList.sampling_weights` at each epoch start and hands them to its sampler."""
        return None

    def check(self, state: TrainState, batch: Batch) -> None:
        """Raise ``ValueError`` when this data or model cannot serve the callback (called once, on a first batch,
        before anything is written: a loop refuses at the start, not after it saved a run)."""

    def wants_data_pass(self, state: TrainState) -> bool:
        """Whether the callback would use one pass over the training data before the first step (see
        :meth:`CallbackList.observe_data`); a resumed run whose callback already has what it needs says no."""
        return False

    def observe(self, state: TrainState, batch: Batch) -> None:
        """One batch of the pass before training (un-augmented training images, every sample once)."""

    def observed(self, state: TrainState) -> None:
        """The pass before training is over."""

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

    def decision(self) -> dict[str, Any]:
        """What the callback decided about this run, as plain data (``metrics.json``'s ``decisions``); {} if none."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class CallbackError(RuntimeError):
    """A callback hook raised; the message names the callback and the hook."""


class CallbackInputError(CallbackError, ValueError):
    """A callback hook refused its input (a ``ValueError``: options that do not fit the data, bad batches); the
    command line reports it in one line as it does other input errors."""


class CallbackList(Callback):
    """Several callbacks as one: sorted by ``order``, batch and loss chained, errors named, maps computed once.

    Args:
        callbacks: the callbacks.
        maps: the ``maps`` config section (source name -> :class:`~robusttrain.maps.MapSource` options) or a
            ready :class:`~robusttrain.maps.MapProvider`. Sources the callbacks name without a declaration are
            created from the map method of that name with its defaults.
    """

    def __init__(self, callbacks: Sequence[Callback] = (),
                 maps: Mapping[str, Mapping[str, Any]] | MapProvider | None = None) -> None:
        super().__init__()
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        keys = [cb.state_key for cb in self.callbacks]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"callbacks share state keys {duplicates}; give each instance a distinct key "
                             "(`key: ...` in its config entry)")
        if MAPS_STATE_KEY in keys:
            raise ValueError(f"state key {MAPS_STATE_KEY!r} is reserved for the map sources")
        referenced = {name for cb in self.callbacks for name in cb.map_sources}
        self.maps = maps if isinstance(maps, MapProvider) else MapProvider(build_sources(maps, referenced))

    @property
    def map_sources(self) -> tuple[str, ...]:
        return tuple(self.maps.sources)

    def _each(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            if cb.enabled:
                self._call(cb, hook, *args)

    @staticmethod
    def _call(cb: Callback, hook: str, *args: Any) -> Any:
        try:
            return getattr(cb, hook)(*args)
        except Exception as error:
            kind = CallbackInputError if isinstance(error, ValueError) else CallbackError
            raise kind(f"{cb.state_key}.{hook} failed: {error}") from error

    def setup(self, state: TrainState) -> None:
        self._each("setup", state)

    def check(self, state: TrainState, batch: Batch) -> None:
        self._each("check", state, batch)

    def wants_data_pass(self, state: TrainState) -> bool:
        return bool(self._wanting_data_pass(state))

    def _wanting_data_pass(self, state: TrainState) -> list[Callback]:
        return [cb for cb in self.callbacks if cb.enabled and cb.wants_data_pass(state)]

    def observe_data(self, state: TrainState, batches: Iterable[Batch]) -> bool:
        """Give the callbacks that want it one pass over the training data before training (``batches`` is only
        iterated when one does; returns whether it was). Pass every process the whole training set, un-augmented,
        with its sample ids: e.g. ``minority_resampling`` fits its estimate from it, so its weights apply from the first
        step instead of after a first epoch of plain training."""
        wanting = self._wanting_data_pass(state)
        if not wanting:
            return False
        for batch in batches:
            for cb in wanting:
                self._call(cb, "observe", state, batch)
        for cb in wanting:
            self._call(cb, "observed", state)
        return True

    def decisions(self) -> dict[str, dict[str, Any]]:
        """What each callback decided about this run (:meth:`Callback.decision`, e.g. ``minority_resampling``), by
        key."""
        return {cb.state_key: decided for cb in self.callbacks if (decided := self._call(cb, "decision"))}

    def sampling_weights(self, state: TrainState, sample_ids: Sequence[int]) -> torch.Tensor | None:  # type: ignore[override]
        """The product of the callbacks' draw weights for the coming epoch, ``(N,)`` float64 in the order of
        ``sample_ids`` (the training set's ids, for :class:`~robusttrain.data.AdaptiveEpochSampler`); None when
        no callback resamples."""
        opinions = [w for cb in self.callbacks if cb.enabled
                    if (w := self._call(cb, "sampling_weights", state)) is not None]
        if not opinions:
            return None
        combined = torch.ones(len(sample_ids), dtype=torch.float64)
        for weights in opinions:
            combined *= torch.tensor([weights.get(i, 1.0) for i in sample_ids], dtype=torch.float64)
        return combined

    def on_epoch_start(self, state: TrainState) -> None:
        self._each("on_epoch_start", state)

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        active = [cb for cb in self.callbacks if cb.enabled]
        wanted: dict[str, torch.Tensor | None] = {}
        for cb in active:
            if not self._call(cb, "reads_maps", state):
                continue
            rows = self._call(cb, "map_rows", state, batch)
            for name in cb.map_sources:
                if name not in wanted:
                    wanted[name] = rows
                elif wanted[name] is not None:
                    wanted[name] = None if rows is None else wanted[name] | rows
        batch = self.maps.begin_step(state, batch, wanted)
        for cb in active:
            batch = self._call(cb, "on_batch_start", state, batch)
        self.maps.arm(state, batch, {name for cb in active for name in cb.map_sources})  # hook the training forward
        return batch

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        batch = self.maps.after_forward(batch, outputs)
        for cb in self.callbacks:
            if cb.enabled:
                losses = self._call(cb, "on_loss", state, batch, outputs, losses)
                if losses.ndim != 1 or len(losses) != len(batch):
                    raise CallbackError(f"{cb.state_key}.on_loss must return per-sample losses of shape "
                                        f"({len(batch)},), got {tuple(losses.shape)}")
        return losses

    def on_step_end(self, state: TrainState) -> None:
        self.maps.release()  # a capture armed for a forward that never came to on_loss
        self._each("on_step_end", state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._each("on_epoch_end", state)

    def teardown(self, state: TrainState) -> None:
        self.maps.release()
        self._each("teardown", state)

    def state_dict(self) -> dict[str, Any]:
        return {MAPS_STATE_KEY: self.maps.state_dict(), **{cb.state_key: cb.state_dict() for cb in self.callbacks}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        unknown = sorted(set(state_dict) - {cb.state_key for cb in self.callbacks} - {MAPS_STATE_KEY})
        if unknown:
            raise ValueError(f"checkpoint holds state for callbacks that are not configured: {unknown}")
        self.maps.load_state_dict(state_dict.get(MAPS_STATE_KEY, {}))
        for cb in self.callbacks:
            if cb.state_key in state_dict:
                cb.load_state_dict(state_dict[cb.state_key])
