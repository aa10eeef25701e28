"""One named map source: which map method, when its maps are computed, and the per-sample cache behind it.

A source computes maps either before the step (default: on the batch as the dataset gave it, before any callback
changes it, for a ``fraction`` of the batch every ``every`` steps, the other rows from the cache) or from the
training pass (``from_training_pass: true``, for methods that declare ``training_pass``: Grad-CAM's hooked
activations and gradients, DropKey pooling's attention), so no extra forward is run; those maps exist once the loop
has its outputs (``on_loss``). Only rows whose images are still the dataset's are cached.

A cached map outlines the sample as it looked when it was made; with random crops and flips the next view is
another image. So callbacks get fresh maps only, unless the source says its samples look the same every time
(``serve_cached: true``); cached maps always warm-start the methods that can use them (``MapMethod.warm_start``).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..types import Batch, SourceMaps, TrainState
from .base import MapMethod, TrainingPassCapture
from .cache import MapCache
from .registry import MAP_METHODS, create_map_method


def check_method_options(method: str, options: dict[str, Any], where: str) -> None:
    """Raise ``ValueError`` naming ``where`` for an unknown method or an option the method does not take."""
    try:
        factory = MAP_METHODS.get(method)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    parameters = inspect.signature(factory).parameters
    valid = [name for name in parameters if name != "model"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"{where}: map method {method!r} has no option(s) {unknown}; valid: {valid}")


class MapSource:
    """Maps of one method for every batch, computed once per step and cached by sample id.

    Args:
        name: the name callbacks use to read the maps (``batch.maps[name]``).
        method: registered map method (``gradcam``, ``degradation``, ``licnn``, ``pool_attention``,
            ``attention_head``); default: the source's name.
        method_options: keyword arguments of that method.
        from_training_pass: read maps off the training forward pass instead of computing them (methods with
            ``training_pass``: ``gradcam``, ``pool_attention``).
        every: before-step maps are refreshed on steps divisible by ``every``.
        fraction: share of each batch refreshed on those steps (the rest come from the cache).
        serve_cached: give callbacks the cached maps of the rows not refreshed this step (only right when a
            sample's image is the same every time it is seen: no random crops or flips).
        cache_resolution: side of the cached maps (see :class:`MapCache`).
        cache_capacity: most samples kept, least recently used evicted (see :class:`MapCache`).
        cache_dir: keep the cache in a memory-mapped file in this folder instead of in RAM.
        seed: which rows are refreshed is drawn from ``(seed, step)``.

    Raises:
        ValueError: unknown method or method option, or options that do not fit together.
    """

    def __init__(
        self,
        name: str,
        method: str | None = None,
        method_options: dict[str, Any] | None = None,
        from_training_pass: bool = False,
        every: int = 1,
        fraction: float = 1.0,
        serve_cached: bool = False,
        cache_resolution: int = 16,
        cache_capacity: int = 200_000,
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        where = f"map source {name!r}"
        method = name if method is None else method
        self.method_options = dict(method_options or {})
        check_method_options(method, self.method_options, where)
        if from_training_pass and not MAP_METHODS.get(method).training_pass:
            capable = [m for m in MAP_METHODS.list() if MAP_METHODS.get(m).training_pass]
            raise ValueError(f"{where}: method {method!r} cannot take maps from the training pass; "
                             f"methods that can: {capable}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"{where}: every must be an integer >= 1, got {every!r}")
        if not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
            raise ValueError(f"{where}: fraction must be in (0, 1], got {fraction!r}")
        if from_training_pass and (every != 1 or fraction != 1.0):
            raise ValueError(f"{where}: every and fraction schedule before-step maps; a training-pass source gets "
                             "maps for every row of every step at no extra pass")
        self.name, self.method_name, self.from_training_pass = name, method, from_training_pass
        if not isinstance(serve_cached, bool):
            raise ValueError(f"{where}: serve_cached must be true or false, got {serve_cached!r}")
        self.every, self.fraction, self.seed, self.serve_cached = every, fraction, seed, serve_cached
        for option, value in (("cache_resolution", cache_resolution), ("cache_capacity", cache_capacity)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}: {option} must be a positive integer, got {value!r}")
        self.cache = MapCache(cache_resolution, cache_capacity, cache_dir)
        self.method: MapMethod | None = None
        self._model: nn.Module | None = None
        self._capture: TrainingPassCapture | None = None
        self.calls = 0  # map computations (method calls or training-pass captures)
        self.computed = 0  # sample maps computed

    def bind(self, model: nn.Module | None) -> MapMethod:
        """The map method for ``model`` (the unwrapped training model), created on first use."""
        if model is None:
            raise ValueError("state.model is not set: the loop must put the (unwrapped) model in TrainState")
        if model is not self._model:
            self.method = create_map_method(self.method_name, model, **self.method_options)
            self._model = model
        return self.method

    def _fresh_rows(self, step: int, size: int) -> torch.Tensor:
        rows = torch.zeros(size, dtype=torch.bool)
        if not self.from_training_pass and step % self.every == 0:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            count = max(1, math.ceil(self.fraction * size))
            rows[torch.randperm(size, generator=generator)[:count]] = True
        return rows

    @staticmethod
    def _class_targets(batch: Batch, rows: torch.Tensor | slice) -> torch.Tensor | None:
        targets = batch.targets
        return targets[rows] if targets.ndim == 1 and not targets.is_floating_point() else None

    def before_step(self, state: TrainState, batch: Batch, rows: torch.Tensor | None = None) -> SourceMaps:
        """Fresh maps (before-step sources) for the rows refreshed this step among ``rows`` (``(B,)`` bool, the
        rows some callback reads; None: all); with ``serve_cached`` the cached maps of the other rows too."""
        if batch.indices is None:
            raise ValueError(f"map source {self.name!r} needs batch.indices (stable sample ids) to cache maps")
        method = self.bind(state.model)
        ids = batch.indices.cpu()
        fresh = self._fresh_rows(state.global_step, len(batch))
        if rows is not None:
            fresh &= rows.cpu()
        device = batch.images.device
        # The cache is read only where it is used: served to callbacks, or warm-starting the fresh rows.
        if self.serve_cached or (method.warm_start and fresh.any()):
            cached, found = self.cache.get(ids)
        else:
            cached, found = None, torch.zeros(len(batch), dtype=torch.bool)
        served = fresh | found if self.serve_cached else fresh
        maps = torch.zeros(len(batch), 1, *batch.images.shape[-2:], device=device)
        if self.serve_cached and found.any():
            maps[found.to(device)] = F.interpolate(cached[found], size=maps.shape[-2:], mode="bilinear",
                                                   align_corners=False).to(device)
        if fresh.any():
            picked = fresh.nonzero().flatten().to(device)
            options = {}
            if method.warm_start and found[fresh].any():  # NaN rows: no previous map, the method's own start
                options["init_maps"] = torch.where(found[fresh][:, None, None, None], cached[fresh], float("nan"))
            new = method(batch.images[picked], self._class_targets(batch, picked), **options)
            maps[picked] = new
            self.cache.put(ids[fresh], new)
            self.calls += 1
            self.computed += len(picked)
        return SourceMaps(maps, served.to(device), fresh.to(device))

    def arm(self, state: TrainState, batch: Batch) -> None:
        """Training-pass sources: hook the next forward pass (the loop's training forward on ``batch``)."""
        self.release()
        self._capture = self.bind(state.model).capture_training_pass(tuple(batch.images.shape[-2:]))

    def after_forward(self, batch: Batch, outputs: torch.Tensor) -> SourceMaps | None:
        """Training-pass sources: maps of the forward pass just run on ``batch``; caches the unchanged rows."""
        if self._capture is None:
            return None
        capture, self._capture = self._capture, None
        maps = capture.maps(outputs, self._class_targets(batch, slice(None)))
        if maps.shape[0] != len(batch):
            raise ValueError(f"map source {self.name!r}: the training pass saw {maps.shape[0]} images, the batch has "
                             f"{len(batch)}")
        unchanged = batch.unchanged_rows().cpu()
        if batch.indices is not None and unchanged.any():
            self.cache.put(batch.indices.cpu()[unchanged], maps[unchanged.to(maps.device)])
        self.calls += 1
        self.computed += len(batch)
        every_row = torch.ones(len(batch), dtype=torch.bool, device=batch.images.device)
        return SourceMaps(maps.to(batch.images.device), every_row, every_row)

    def release(self) -> None:
        """Remove a capture that was armed but never read (a step that ended early)."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def state_dict(self) -> dict[str, Any]:
        return {"cache": self.cache.state_dict(), "calls": self.calls, "computed": self.computed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cache.load_state_dict(state["cache"])
        self.calls, self.computed = state["calls"], state["computed"]
