"""Occlusion maps (Zeiler & Fergus): what the explained prediction does when a patch is filled, or kept alone.

A square patch slides over the image. In ``fill`` mode it is filled with the image's mean colour and a pixel's
value is the mean fall of the answer over the patches that cover it: a small mark or a context object shows as a
hot spot. In ``keep`` mode everything *but* the patch is filled and the value is the answer the patch alone
keeps: a colour, a texture or a scene that no single filled patch removes lights up wherever it is. Nothing is
differentiated, so any model works. For a classifier the answer is the explained class's probability;
``scale="probability"`` keeps that absolute scale, the default scales each map to max 1 as the other methods do.
A regressor's maps are always scaled.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import MapMethod, target_scores, to_unit_maps
from .registry import MAP_METHODS


@MAP_METHODS.register("occlusion")
class Occlusion(MapMethod):
    """Occlusion maps of the predicted (or given) class.

    Args:
        model: any classifier or regressor.
        patch: the patch's side as a fraction of the image's shorter side.
        stride: the step between patch positions as a fraction of the patch's side.
        mode: ``"fill"`` (the fall when the patch is filled) or ``"keep"`` (what the patch alone keeps).
        scale: ``"max"`` (each map to max 1) or ``"probability"`` (the class's probability, absolute).
        batch_size: occluded copies per forward pass.
    """

    uses_gradients = False

    def __init__(self, model: nn.Module, patch: float = 0.125, stride: float = 0.5, mode: str = "fill",
                 scale: str = "max", batch_size: int = 256) -> None:
        super().__init__(model)
        if not 0 < patch <= 1:
            raise ValueError(f"occlusion patch must be a fraction of the image side in (0, 1], got {patch}")
        if not 0 < stride <= 1:
            raise ValueError(f"occlusion stride must be a fraction of the patch in (0, 1], got {stride}")
        if mode not in ("fill", "keep"):
            raise ValueError(f"occlusion mode must be 'fill' or 'keep', got {mode!r}")
        if scale not in ("max", "probability"):
            raise ValueError(f"occlusion scale must be 'max' or 'probability', got {scale!r}")
        if batch_size < 1:
            raise ValueError(f"occlusion batch_size must be at least 1, got {batch_size}")
        self.patch, self.stride, self.mode, self.batch_size = patch, stride, mode, batch_size
        self.rescale = scale == "max"  # the base class scales each map to max 1 when set

    def _positions(self, size: int, side: int) -> list[int]:
        """Patch starts along one axis, from 0 to the last position that fits, ``stride`` of a patch apart."""
        step = max(1, round(self.stride * side))
        count = math.ceil((size - side) / step) + 1
        return sorted({min(i * step, size - side) for i in range(count)})

    def _scores(self, images: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """The explained score per image (a class's probability, or a regressor's output), its class, and whether
        the score is a probability."""
        outputs = self.model(images)
        scores, classes = target_scores(outputs, targets)
        if outputs.ndim == 2 and outputs.shape[1] > 1:
            return outputs.softmax(1).gather(1, classes[:, None])[:, 0], classes, True
        return scores, classes, False

    @torch.no_grad()
    def compute(self, images: torch.Tensor, targets: torch.Tensor | None, **kwargs: object) -> torch.Tensor:
        count, _, height, width = images.shape
        side = max(1, round(self.patch * min(height, width)))
        reference, classes, probability = self._scores(images, targets)
        fill = images.mean((2, 3), keepdim=True)
        boxes = [(top, left) for top in self._positions(height, side) for left in self._positions(width, side)]
        values = torch.zeros(count, 1, height, width, device=images.device)
        cover = torch.zeros(1, 1, height, width, device=images.device)
        per_pass = max(1, self.batch_size // count)
        for start in range(0, len(boxes), per_pass):
            chunk = boxes[start : start + per_pass]
            if self.mode == "fill":
                occluded = images.repeat(len(chunk), 1, 1, 1)
            else:
                occluded = fill.expand_as(images).repeat(len(chunk), 1, 1, 1)
            for i, (top, left) in enumerate(chunk):
                rows, box = slice(i * count, (i + 1) * count), (slice(top, top + side), slice(left, left + side))
                occluded[rows, :, box[0], box[1]] = fill if self.mode == "fill" else images[:, :, box[0], box[1]]
            scores = self._scores(occluded, classes.repeat(len(chunk)))[0].view(len(chunk), count)
            if self.mode == "fill":
                scores = (reference - scores).clamp_min(0)
            for i, (top, left) in enumerate(chunk):
                values[:, 0, top : top + side, left : left + side] += scores[i][:, None, None]
                cover[..., top : top + side, left : left + side] += 1
        maps = values / cover.clamp_min(1)
        if not probability:  # a regressor's output has no scale of its own
            maps = (maps - maps.flatten(1).amin(1)[:, None, None, None]).clamp_min(0)
            if not self.rescale:
                maps = to_unit_maps(maps, maps.shape[-2:])
        return maps.clamp(0, 1)
