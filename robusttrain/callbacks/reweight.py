"""Reweighting: up-weight samples whose label the background alone does not support.

For each sample the attended region (from a map method) is removed (Only-BG-T fill) and the model predicts
on what is left, mostly background. ``reliance = p(label | background-only view)`` is high for samples whose
background agrees with the label (the majority groups of a spurious correlation) and low for samples whose
background points elsewhere (the minority groups). Per-sample loss weights are
``1 + alpha * (1 - reliance)``, normalised to mean 1 over the batch (no group labels, no masks needed).
"""

from __future__ import annotations

from typing import Any

import torch

from ..transforms import region_from_maps
from ..types import Batch, TrainState
from .background import RANDOMIZED
from .maps import MapCallback
from .registry import CALLBACKS
from .views import background_only, probabilities


@CALLBACKS.register("reweight")
class ReweightCallback(MapCallback):
    """Map-derived per-sample loss weights (classification).

    Args:
        alpha: strength of the up-weighting (0 = no change).
        normalize: rescale weights to mean 1 per batch, keeping the loss scale.
        threshold, dilate: how maps become the removed region.
        start_step: plain losses before this optimizer step.
        skip_randomized: samples whose background a ``background_randomization`` callback replaced this step
            keep weight 1 (before normalisation): their background was drawn at random, so how well it predicts
            the label says nothing about the sample.
        **map_options: map scheduling and state key (see :class:`MapCallback`).
    """

    order = 20

    def __init__(
        self,
        alpha: float = 4.0,
        normalize: bool = True,
        threshold: float = 0.5,
        dilate: int = 1,
        start_step: int = 0,
        skip_randomized: bool = False,
        **map_options: Any,
    ) -> None:
        super().__init__(**map_options)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha, self.normalize, self.threshold, self.dilate = alpha, normalize, threshold, dilate
        self.start_step, self.skip_randomized = start_step, skip_randomized
        self.weighted_batches = 0

    def reliance(self, state: TrainState, batch: Batch) -> torch.Tensor:
        """``p(label | background-only view)`` per sample, 1 (no reweighting) where not scored.

        Scored: the samples with a map, less those just randomized when ``skip_randomized``; only they are run
        through the model.
        """
        maps, scored = self.schedule.maps(state, batch)
        if self.skip_randomized and RANDOMIZED in batch.meta:
            scored = scored & ~batch.meta[RANDOMIZED]
        rows = scored.nonzero().flatten()
        reliance = torch.ones(len(batch), device=batch.images.device)
        if len(rows):
            regions = region_from_maps(maps[rows], self.threshold, self.dilate)
            probs = probabilities(state.model, background_only(batch.images[rows], regions))
            reliance[rows] = probs.gather(1, batch.targets[rows].long()[:, None])[:, 0]
        return reliance

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        losses = super().on_loss(state, batch, outputs, losses)
        if state.global_step < self.start_step or self.alpha == 0:
            return losses
        weights = 1 + self.alpha * (1 - self.reliance(state, batch))  # weight 1 where not scored
        if self.normalize:
            weights = weights / weights.mean()
        self.weighted_batches += 1
        return losses * weights.to(losses.dtype).detach()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "weighted_batches": self.weighted_batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.weighted_batches = state_dict["weighted_batches"]
