"""Controlled degradation maps (Dorenskyi, Drieiev, Drieieva): the least image that keeps the logits.

A transparency map ``p`` in [0, 1] blends each image with a uniform background of its own mean colour,
``x' = p * x + (1 - p) * mean(x)``. ``p`` is optimised so that the degraded image's logits (pre-softmax) stay
those of the original while ``sum(p)`` and sharp transitions between neighbours are penalised; what survives
(``p`` near 1) is what the prediction depends on. Only forward passes of the model are needed, so the method
works for any architecture (CNN, ViT, MLP-Mixer) and for regression outputs.

The whole batch is optimised at once (one backward per iteration), at a low resolution that is upsampled
smoothly, and can be warm-started from earlier maps (e.g. a per-sample cache during training).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import MapMethod
from .registry import MAP_METHODS


@MAP_METHODS.register("degradation")
class ControlledDegradation(MapMethod):
    """Optimised transparency maps.

    Args:
        model: any image -> outputs model.
        resolution: side of the optimised map grid (upsampled bilinearly to the image size).
        steps: optimisation iterations (Adam) per call.
        lr: Adam learning rate on the map's logits.
        area_weight: weight of the mean of ``p`` (the paper's sum of p, normalised by pixel count).
        smooth_weight: weight of the mean absolute difference between neighbouring ``p``.
        logit_weight: weight of the mean squared difference between degraded and original outputs, measured
            relative to the spread of the original outputs so the weight means the same across models.
        init: starting transparency when no warm start is given.
    """

    uses_gradients = False
    rescale = False
    warm_start = True

    def __init__(
        self,
        model: nn.Module,
        resolution: int = 16,
        steps: int = 60,
        lr: float = 0.2,
        area_weight: float = 1.0,
        smooth_weight: float = 0.5,
        logit_weight: float = 4.0,
        init: float = 0.9,
    ) -> None:
        super().__init__(model)
        if resolution < 1 or steps < 1 or lr <= 0:
            raise ValueError(f"resolution, steps and lr must be positive, got {resolution}, {steps}, {lr}")
        if not 0.0 < init < 1.0:
            raise ValueError(f"init must be in (0, 1), got {init}")
        self.resolution, self.steps, self.lr = resolution, steps, lr
        self.area_weight, self.smooth_weight, self.logit_weight = area_weight, smooth_weight, logit_weight
        self.init = init
        self.last_info: dict[str, Any] = {}

    def compute(
        self, images: torch.Tensor, targets: torch.Tensor | None, init_maps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw maps at ``resolution``; ``init_maps`` ``(B, 1, h, w)`` in [0, 1] warm-starts the optimisation (a row
        of NaN has no previous map and starts from ``init``)."""
        batch = len(images)
        size = (self.resolution, self.resolution)
        if init_maps is not None:
            if init_maps.ndim != 4 or init_maps.shape[:2] != (batch, 1):
                raise ValueError(f"init_maps must be (B, 1, h, w) with B={batch}, got {tuple(init_maps.shape)}")
            start = F.interpolate(init_maps.to(images).float(), size=size, mode="area").clamp(0.02, 0.98)
            start = torch.where(start.isnan(), torch.full_like(start, self.init), start)
        else:
            start = torch.full((batch, 1, *size), self.init, device=images.device)
        logits = torch.logit(start).detach().requires_grad_(True)
        background = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
        with torch.no_grad():
            reference = self.model(images)
        scale = reference.detach().var(dim=1, keepdim=True, unbiased=False).clamp_min(1e-3) if reference.shape[1] > 1 \
            else reference.detach().var().clamp_min(1e-3).expand(batch, 1)
        optimizer = torch.optim.Adam([logits], lr=self.lr)
        for _ in range(self.steps):
            p_low = torch.sigmoid(logits)
            p = F.interpolate(p_low, size=images.shape[-2:], mode="bilinear", align_corners=False)
            degraded = p * images + (1 - p) * background
            fidelity = ((self.model(degraded) - reference) ** 2 / scale).mean(dim=1)
            area = p_low.mean(dim=(1, 2, 3))
            smooth = (p_low[..., 1:, :] - p_low[..., :-1, :]).abs().mean(dim=(1, 2, 3)) + \
                (p_low[..., :, 1:] - p_low[..., :, :-1]).abs().mean(dim=(1, 2, 3))
            # NOTE: summing per-sample losses keeps every sample's gradient independent of the batch size.
            loss = (self.logit_weight * fidelity + self.area_weight * area + self.smooth_weight * smooth).sum()
            optimizer.zero_grad(set_to_none=True)
            (grad,) = torch.autograd.grad(loss, logits)
            logits.grad = grad
            optimizer.step()
        maps = torch.sigmoid(logits.detach())
        with torch.no_grad():
            p = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)
            degraded_out = self.model(p * images + (1 - p) * background)
        self.last_info = {"degraded_outputs": degraded_out, "reference_outputs": reference, "maps_lowres": maps}
        return maps

    def preserved_fraction(self) -> float:
        """Share of the last batch whose degraded image keeps the predicted class (classification only)."""
        ref, deg = self.last_info["reference_outputs"], self.last_info["degraded_outputs"]
        return float((ref.argmax(1) == deg.argmax(1)).float().mean())
