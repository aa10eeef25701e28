"""Attention maps during training: which samples get fresh maps when, and a per-sample low-resolution cache.

Computing maps every step for every sample can cost more than the training step (degradation maps need
tens of forward/backward passes). :class:`MapSchedule` computes them every ``every`` steps on a ``fraction`` of
each batch and serves the other samples from :class:`MapCache`, which stores each sample's latest map at
``resolution`` x ``resolution`` as uint8 (256 bytes at 16 x 16), evicts least-recently-used entries beyond
``capacity`` and can live in a memory-mapped file. Cached maps warm-start degradation maps.
"""

from __future__ import annotations

import base64
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..attention import ControlledDegradation, MapMethod, create_map_method
from ..types import Batch, TrainState
from .base import Callback


class MapCache:
    """Latest map per sample id, quantised to uint8 at ``resolution``; LRU-bounded; optionally on disk.

    Args:
        resolution: side of the stored maps.
        capacity: most samples kept (least recently used are evicted).
        directory: keep the maps in ``directory/map_cache.u8`` (memory-mapped) instead of in RAM.
    """

    def __init__(self, resolution: int = 16, capacity: int = 200_000, directory: str | Path | None = None) -> None:
        if resolution < 1 or capacity < 1:
            raise ValueError(f"resolution and capacity must be positive, got {resolution}, {capacity}")
        self.resolution = resolution
        self.capacity = capacity
        shape = (capacity, resolution, resolution)
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self.data = np.memmap(Path(directory) / "map_cache.u8", dtype=np.uint8, mode="w+", shape=shape)
        else:
            self.data = np.zeros(shape, dtype=np.uint8)
        self.slots: OrderedDict[int, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self.slots)

    def nbytes(self) -> int:
        return len(self.slots) * self.resolution**2

    def put(self, ids: torch.Tensor, maps: torch.Tensor) -> None:
        """Store maps ``(n, 1, H, W)`` in [0, 1] for sample ``ids`` ``(n,)``."""
        small = F.interpolate(maps.detach().float().cpu(), size=(self.resolution,) * 2, mode="area")
        quantised = (small[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        for sample, value in zip(ids.tolist(), quantised, strict=True):
            if sample in self.slots:
                self.slots.move_to_end(sample)
            elif len(self.slots) < self.capacity:
                self.slots[sample] = len(self.slots)
            else:
                _, slot = self.slots.popitem(last=False)
                self.slots[sample] = slot
            self.data[self.slots[sample]] = value

    def get(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached maps ``(n, 1, r, r)`` in [0, 1] (zeros where absent) and a found mask ``(n,)``."""
        found = torch.tensor([i in self.slots for i in ids.tolist()], dtype=torch.bool)
        maps = torch.zeros(len(ids), 1, self.resolution, self.resolution)
        for row, sample in enumerate(ids.tolist()):
            if sample in self.slots:
                self.slots.move_to_end(sample)
                maps[row, 0] = torch.from_numpy(np.array(self.data[self.slots[sample]])).float() / 255
        return maps, found

    def state_dict(self) -> dict[str, Any]:
        order = list(self.slots.items())
        stored = np.stack([self.data[slot] for _, slot in order]) if order else np.zeros((0,), np.uint8)
        return {"resolution": self.resolution, "ids": [sample for sample, _ in order],
                "maps": base64.b64encode(np.ascontiguousarray(stored).tobytes()).decode("ascii")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["resolution"] != self.resolution:
            raise ValueError(f"cached maps are {state['resolution']}px but this cache stores {self.resolution}px")
        if len(state["ids"]) > self.capacity:
            raise ValueError(f"checkpoint holds {len(state['ids'])} maps, more than capacity {self.capacity}")
        raw = np.frombuffer(base64.b64decode(state["maps"]), dtype=np.uint8)
        stored = raw.reshape(len(state["ids"]), self.resolution, self.resolution)
        self.slots = OrderedDict((sample, slot) for slot, sample in enumerate(state["ids"]))
        self.data[: len(stored)] = stored


class MapSchedule:
    """Fresh maps every ``every`` steps on a ``fraction`` of each batch; cached maps for the rest.

    Args:
        method: registered map method name (``gradcam``, ``degradation``, ``licnn``, ...).
        method_options: keyword arguments of that method.
        every: compute fresh maps on steps divisible by ``every``.
        fraction: share of each batch that gets fresh maps on those steps (the rest use the cache).
        cache_resolution, cache_capacity, cache_dir: see :class:`MapCache`.
        seed: which samples are refreshed is drawn from ``(seed, step)``.
        from_training_pass: for ``pool_attention`` only: never run the method; instead cache the attention
            of each training forward pass (:meth:`record`), so maps cost nothing. A sample gets maps from the
            second time it is seen (the previous epoch's pass).
    """

    def __init__(
        self,
        method: str = "gradcam",
        method_options: dict[str, Any] | None = None,
        every: int = 1,
        fraction: float = 1.0,
        cache_resolution: int = 16,
        cache_capacity: int = 200_000,
        cache_dir: str | None = None,
        seed: int = 0,
        from_training_pass: bool = False,
    ) -> None:
        if from_training_pass and method != "pool_attention":
            raise ValueError(f"from_training_pass needs method 'pool_attention' (attention of the training pass), "
                             f"got {method!r}")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.method_name = method
        self.method_options = dict(method_options or {})
        self.every, self.fraction, self.seed = every, fraction, seed
        self.from_training_pass = from_training_pass
        self.cache = MapCache(cache_resolution, cache_capacity, cache_dir)
        self.method: MapMethod | None = None
        self._model: nn.Module | None = None
        self.computed = 0

    def bind(self, model: nn.Module) -> None:
        """(Re)create the map method for ``model`` (the unwrapped training model)."""
        if model is not self._model:
            self.method = create_map_method(self.method_name, model, **self.method_options)
            self._model = model

    def _fresh_rows(self, step: int, size: int) -> torch.Tensor:
        rows = torch.zeros(size, dtype=torch.bool)
        if step % self.every == 0:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            count = max(1, math.ceil(self.fraction * size))
            rows[torch.randperm(size, generator=generator)[:count]] = True
        return rows

    def maps(self, state: TrainState, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps ``(B, 1, H, W)`` for the batch and which rows have one ``(B,)`` (fresh or cached)."""
        if state.model is None:
            raise ValueError("state.model is not set: the loop must put the (unwrapped) model in TrainState")
        if batch.indices is None:
            raise ValueError("map scheduling needs batch.indices (stable sample ids) to cache maps")
        self.bind(state.model)
        ids = batch.indices.cpu()
        size = batch.images.shape[-2:]
        cached, found = self.cache.get(ids)
        fresh = self._fresh_rows(state.global_step, len(batch))
        if self.from_training_pass:
            fresh[:] = False
        maps = F.interpolate(cached, size=size, mode="bilinear", align_corners=False).to(batch.images.device)
        if fresh.any():
            rows = fresh.nonzero().flatten().to(batch.images.device)
            targets = batch.targets[rows] if batch.targets.ndim == 1 and not batch.targets.is_floating_point() else None
            options = {}
            if isinstance(self.method, ControlledDegradation):
                start = torch.full_like(cached[fresh], self.method.init)
                options["init_maps"] = torch.where(found[fresh][:, None, None, None], cached[fresh], start)
            new = self.method(batch.images[rows], targets, **options)
            maps[rows] = new
            self.cache.put(ids[fresh], new)
            self.computed += len(rows)
        return maps, (fresh | found).to(batch.images.device)

    def record(self, state: TrainState, batch: Batch) -> None:
        """With ``from_training_pass``: cache the maps of the training forward pass just run on ``batch``."""
        if not self.from_training_pass or batch.indices is None or state.model is None:
            return
        self.bind(state.model)
        maps = self.method.from_training_pass(batch.images.shape[-2:])
        if len(maps) != len(batch):
            raise ValueError(f"the last training pass saw {len(maps)} images, the batch has {len(batch)}")
        self.cache.put(batch.indices.cpu(), maps)
        self.computed += len(maps)

    def state_dict(self) -> dict[str, Any]:
        return {"cache": self.cache.state_dict(), "computed": self.computed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cache.load_state_dict(state["cache"])
        self.computed = state["computed"]


class MapCallback(Callback):
    """Base of the callbacks that use maps: owns a :class:`MapSchedule` and a configurable state key.

    Args:
        name: state key, so several instances of one callback can run together.
        enabled: ``False`` skips every hook.
        **schedule_options: ``method``, ``method_options``, ``every``, ``fraction``, ``cache_resolution``,
            ``cache_capacity``, ``cache_dir`` and ``seed`` of :class:`MapSchedule`.
    """

    def __init__(self, name: str | None = None, enabled: bool = True, **schedule_options: Any) -> None:
        super().__init__(enabled)
        self.name = name
        self.schedule = MapSchedule(**schedule_options)
        self.seed = self.schedule.seed
        self._last_batch: Batch | None = None

    @property
    def state_key(self) -> str:
        return self.name or type(self).__qualname__

    def on_step_end(self, state: TrainState) -> None:
        if self.schedule.from_training_pass and self._last_batch is not None:
            self.schedule.record(state, self._last_batch)
        self._last_batch = None

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        self._last_batch = batch  # the batch the training pass saw (recorded at step end when free maps are on)
        return losses

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state_dict["schedule"])
