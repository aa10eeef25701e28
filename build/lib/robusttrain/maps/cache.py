"""Per-sample map cache: each sample's latest map at low resolution, as uint8, LRU-bounded, optionally on disk.

A map at 16 x 16 costs 256 bytes, so a cache of every sample of a large dataset fits in memory (or in a
memory-mapped file). Cached maps serve the samples that are not refreshed in a step and warm-start methods that
can use them (``MapMethod.warm_start``).
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


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
