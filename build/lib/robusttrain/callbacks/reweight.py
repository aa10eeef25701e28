"""Reweighting: up-weight samples whose label the background alone does not support.

For each sample the attended region (from a map source) is removed (Only-BG-T fill) and the model predicts on
what is left, mostly background. ``reliance = p(label | background-only view)`` is high for samples whose
background agrees with the label (the majority groups of a spurious correlation) and low for samples whose
background points elsewhere (the minority groups). Per-sample loss weights are ``1 + alpha * (1 - reliance)``,
normalised to mean 1 over the batch (no group labels, no masks needed).
"""

from __future__ import annotations

from typing import Any

import torch

from ..eval.views import background_only, probabilities
from ..transforms import region_from_maps
from ..types import Batch, TrainState
from .consumer import MapConsumer, check_unit
from .registry import CALLBACKS


@CALLBACKS.register("reweight")
class ReweightCallback(MapConsumer):
    """Map-derived per-sample loss weights (classification).

    Args:
        alpha: strength of the up-weighting (0 = no change).
        normalize: rescale weights to mean 1 per batch, keeping the loss scale.
        threshold: map value from which a pixel is attended (and removed for the background-only view).
        grow: the removed region is grown by this fraction of the image side (0.03 = 2 px at 64 px).
        skip_randomized: samples a background randomization replaced this step (``Batch.randomized``) keep
            weight 1 (before normalisation): their background was drawn at random, so how well it predicts the
            label says nothing about the sample.
        **options: ``source``, ``start``, ``start_step``, ``seed``, ``key``, ``enabled`` (see
            :class:`MapConsumer`).
    """

    order = 20

    def __init__(
        self,
        alpha: float = 4.0,
        normalize: bool = True,
        threshold: float = 0.5,
        grow: float = 0.015,
        skip_randomized: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
        self.alpha, self.normalize = float(alpha), bool(normalize)
        self.threshold, self.grow = check_unit("threshold", threshold), check_unit("grow", grow)
        self.skip_randomized = bool(skip_randomized)
        self.weighted_batches = 0

    def reads_maps(self, state: TrainState) -> bool:
        return self.alpha > 0 and super().reads_maps(state)

    def reliance(self, state: TrainState, batch: Batch) -> torch.Tensor:
        """``p(label | background-only view)`` per sample, 1 (no reweighting) where not scored.

        Scored: the samples with a map, less those just randomized when ``skip_randomized``; only they are run
        through the model.
        """
        found = self.source_maps(batch)
        scored = found.available
        if self.skip_randomized and batch.randomized is not None:
            scored = scored & ~batch.randomized
        rows = scored.nonzero().flatten()
        reliance = torch.ones(len(batch), device=batch.images.device)
        if len(rows):
            regions = region_from_maps(found.maps[rows], self.threshold, self.grow)
            probs = probabilities(state.model, background_only(batch.images[rows], regions))
            reliance[rows] = probs.gather(1, batch.targets[rows].long()[:, None])[:, 0]
        return reliance

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if not self.started(state) or self.alpha == 0:
            return losses
        weights = 1 + self.alpha * (1 - self.reliance(state, batch))  # weight 1 where not scored
        if self.normalize:
            weights = weights / weights.mean()
        self.weighted_batches += 1
        return losses * weights.to(losses.dtype).detach()

    def state_dict(self) -> dict[str, Any]:
        return {"weighted_batches": self.weighted_batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.weighted_batches = state_dict["weighted_batches"]
