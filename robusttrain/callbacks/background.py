"""Background randomisation: keep the attended region, give it a new background (or hide it, MaskTune-style).

With probability ``p`` per sample, the region the model attends to (a map source's maps, thresholded and grown)
or the true object (``source: masks``, the dataset's masks: an oracle) is pasted onto a new background
(:mod:`robusttrain.transforms.background`). With ``inverse=True`` the attended region itself is hidden instead
(filled from the chosen background), so the model has to find other evidence. Attended pixels are kept exactly
(non-inverse); the changed rows are marked in ``Batch.randomized``; every random choice comes from this
callback's own generator, a function of ``(seed, step)``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..maps import TRUE_MASKS
from ..transforms import MODES, composite, new_backgrounds, region_from_maps
from ..types import Batch, TrainState
from .base import check_class_labels
from .consumer import MapConsumer, check_unit
from .registry import CALLBACKS

DONORS = ("any", "other_label")


@CALLBACKS.register("background_randomization")
class BackgroundRandomizationCallback(MapConsumer):
    """Composite attended regions onto new backgrounds.

    Args:
        p: probability that a sample is changed.
        mode: ``swap`` | ``noise`` | ``mean`` | ``blur`` | ``texture`` (see the transforms module).
        source: the map source whose maps give the region, or ``masks`` for the batch's true masks (an oracle).
        inverse: hide the attended region instead of keeping it.
        threshold: map value from which a pixel is attended.
        grow: the attended region is grown by this fraction of the image side (0.03 = 2 px at 64 px).
        blur_sigma: for ``mode="blur"``, the blur's sigma as a fraction of the image side.
        donors: for ``mode="swap"``, whose backgrounds: ``any`` other sample of the batch, or ``other_label`` (a
            sample of another class wherever the batch has one: each changed image becomes a counterfactual).
        **options: ``start``, ``start_step``, ``seed``, ``key``, ``enabled`` (see :class:`MapConsumer`).
    """

    order = 10

    def __init__(
        self,
        p: float = 0.5,
        mode: str = "swap",
        source: str = "gradcam",
        inverse: bool = False,
        threshold: float = 0.5,
        grow: float = 0.0,
        blur_sigma: float = 0.08,
        donors: str = "any",
        **options: Any,
    ) -> None:
        super().__init__(source=source, **options)
        if mode not in MODES:
            raise ValueError(f"unknown background mode {mode!r}; choose from {MODES}")
        if donors not in DONORS:
            raise ValueError(f"unknown donors {donors!r}; choose from {DONORS}")
        if donors != "any" and mode != "swap":
            raise ValueError(f"donors={donors!r} needs mode 'swap', got mode {mode!r}")
        self.p, self.mode, self.inverse, self.donors = check_unit("p", p), mode, bool(inverse), donors
        self.threshold, self.grow, self.blur_sigma = (check_unit("threshold", threshold), check_unit("grow", grow),
                                                      check_unit("blur_sigma", blur_sigma))
        self.changed = 0

    def map_rows(self, state: TrainState, batch: Batch) -> torch.Tensor:
        """Only the rows this step changes need maps (the same draw as :meth:`on_batch_start`)."""
        return self._chosen(state, len(batch))[0]

    def _chosen(self, state: TrainState, size: int) -> tuple[torch.Tensor, torch.Generator]:
        generator = self.generator(state, salt=1)
        return torch.rand(size, generator=generator) < self.p, generator

    def check(self, state: TrainState, batch: Batch) -> None:
        if self.source == TRUE_MASKS and batch.masks is None:
            raise ValueError("source 'masks' needs batches with masks (the dataset has none)")
        if self.donors == "other_label":
            check_class_labels(batch.targets, "donors 'other_label'")

    def on_batch_start(self, state: TrainState, batch: Batch) -> Batch:
        if not self.started(state):
            return batch
        chosen, generator = self._chosen(state, len(batch))
        chosen = chosen.to(batch.images.device)
        if self.source == TRUE_MASKS:
            if batch.masks is None:
                raise ValueError("source 'masks' needs batches with masks")
            regions = (batch.masks > 0.5).to(batch.images.dtype)
        else:
            found = self.source_maps(batch)
            regions = region_from_maps(found.maps, self.threshold, self.grow)
            chosen &= found.available
        if not chosen.any():
            return batch
        side = min(batch.images.shape[-2:])
        labels = check_class_labels(batch.targets, "donors 'other_label'") if self.donors == "other_label" else None
        backgrounds = new_backgrounds(batch.images, regions, self.mode, generator, self.blur_sigma * side, labels)
        keep = 1 - regions if self.inverse else regions
        mixed = composite(batch.images, keep, backgrounds)
        images = torch.where(chosen[:, None, None, None], mixed, batch.images)
        self.changed += int(chosen.sum())
        return batch.with_randomized(images, chosen)

    def state_dict(self) -> dict[str, Any]:
        return {"changed": self.changed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.changed = state_dict["changed"]
