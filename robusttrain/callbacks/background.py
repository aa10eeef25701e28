"""Background randomisation: keep the attended region, give it a new background (or hide it, MaskTune-style).

With probability ``p`` per sample, the region the model attends to (``source="maps"``: a map method's maps,
thresholded) or the true object (``source="masks"``: the dataset's masks, the oracle) is pasted onto a new
background (:mod:`robusttrain.transforms.background`). With ``inverse=True`` the attended region itself is
hidden instead (filled from the chosen background), so the model has to find other evidence. Attended pixels
are kept exactly (non-inverse) and everything is driven by a generator seeded from ``(seed, step)``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..transforms import MODES, composite, new_backgrounds, region_from_maps
from ..types import Batch, TrainState
from .maps import MapCallback
from .registry import CALLBACKS

RANDOMIZED = "randomized"  # Batch.meta key: (B,) bool, which samples got a new background this step


@CALLBACKS.register("background_randomization")
class BackgroundRandomizationCallback(MapCallback):
    """Composite attended regions onto new backgrounds.

    Args:
        p: probability that a sample is changed.
        mode: ``swap`` | ``noise`` | ``mean`` | ``blur`` | ``texture`` (see the transforms module).
        source: ``maps`` (no annotations needed) or ``masks`` (the batch's true masks; an oracle).
        inverse: hide the attended region instead of keeping it.
        threshold, dilate: how maps become a binary region.
        blur_radius: for ``mode="blur"``.
        start_step: leave batches unchanged before this optimizer step (maps of an untrained model are noise).
        **map_options: map scheduling, state key and seed of sample choice and backgrounds (see
            :class:`MapCallback`); the maps are not used with ``source="masks"``.
    """

    order = 10

    def __init__(
        self,
        p: float = 0.5,
        mode: str = "swap",
        source: str = "maps",
        inverse: bool = False,
        threshold: float = 0.5,
        dilate: int = 0,
        blur_radius: float = 5.0,
        start_step: int = 0,
        **map_options: Any,
    ) -> None:
        super().__init__(**map_options)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if source not in ("maps", "masks"):
            raise ValueError(f"source must be 'maps' or 'masks', got {source!r}")
        if mode not in MODES:
            raise ValueError(f"unknown background mode {mode!r}; choose from {MODES}")
        self.p, self.mode, self.source, self.inverse = p, mode, source, inverse
        self.threshold, self.dilate, self.blur_radius, self.start_step = threshold, dilate, blur_radius, start_step
        self.changed = 0

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        if state.global_step < self.start_step:
            return batch
        generator = torch.Generator().manual_seed(self.seed * 7_919 + state.global_step)
        chosen = (torch.rand(len(batch), generator=generator) < self.p).to(batch.images.device)
        if self.source == "masks":
            if batch.masks is None:
                raise ValueError("source='masks' needs batches with masks")
            regions = (batch.masks > 0.5).to(batch.images.dtype)
        else:
            maps, available = self.schedule.maps(state, batch)
            regions = region_from_maps(maps, self.threshold, self.dilate)
            chosen &= available
        if not chosen.any():
            return batch
        backgrounds = new_backgrounds(batch.images, regions, self.mode, generator, self.blur_radius)
        keep = 1 - regions if self.inverse else regions
        mixed = composite(batch.images, keep, backgrounds)
        images = torch.where(chosen[:, None, None, None], mixed, batch.images)
        self.changed += int(chosen.sum())
        marked = chosen | batch.meta[RANDOMIZED] if RANDOMIZED in batch.meta else chosen  # earlier callbacks' too
        return batch.replace(images=images, meta={**batch.meta, RANDOMIZED: marked})

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "changed": self.changed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.changed = state_dict["changed"]
