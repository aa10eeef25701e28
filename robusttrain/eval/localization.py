"""How well maps localise the object: energy in the mask, pointing game, IoU, deletion / insertion AUC.

Definitions follow ``benchmarks_and_metrics.md`` section 4: energy = relevance mass inside the mask
(EBPG with the segmentation mask), pointing game = the map's maximum (first one on ties) falls inside the
mask, optionally dilated by a pixel tolerance; IoU after min-max normalisation and a fixed 0.5 threshold;
deletion / insertion (RISE) track the softmax probability of the class predicted on the original image
while the most salient pixels are removed (black substrate) or inserted into a blurred copy.
Maps ``(B, 1, H, W)`` and masks ``(B, 1, H, W)`` must have the same size; masks are binarised at 0.5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from ..maps.state import untouched
from ..transforms.compositing import check_pair


def _binary(masks: torch.Tensor) -> torch.Tensor:
    return (masks > 0.5).float()


def energy_in_mask(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's (non-negative) mass inside the mask, ``(B,)``; an all-zero map scores 0."""
    check_pair(maps, masks)
    mass = maps.clamp_min(0).flatten(1)
    inside = (mass * _binary(masks).flatten(1)).sum(1)
    total = mass.sum(1)
    return torch.where(total > 1e-7, inside / total.clamp_min(1e-7), torch.zeros_like(total))


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """Whether each map's maximum lies in the mask dilated by ``tolerance`` pixels, bool ``(B,)``."""
    check_pair(maps, masks)
    region = _binary(masks)
    if tolerance > 0:
        region = F.max_pool2d(region, 2 * tolerance + 1, stride=1, padding=tolerance)
    peak = maps.flatten(1).argmax(dim=1)
    return region.flatten(1).gather(1, peak[:, None])[:, 0] > 0


def mask_iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5, normalize: bool = True) -> torch.Tensor:
    """IoU of the map thresholded at ``threshold`` with the mask, ``(B,)``.

    ``normalize`` min-max normalises each map first (for relevance maps); turn it off for maps whose values
    already mean something in [0, 1], such as an attention head's W.
    """
    check_pair(maps, masks)
    flat = maps.flatten(1)
    if normalize:
        low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        flat = (flat - low) / (high - low).clamp_min(1e-12)
    predicted = flat >= threshold
    truth = _binary(masks).flatten(1) > 0
    union = (predicted | truth).sum(1).float()
    return torch.where(union > 0, (predicted & truth).sum(1).float() / union.clamp_min(1), torch.ones_like(union))


def centre_maps(like: torch.Tensor, sigma: float = 0.25) -> torch.Tensor:
    """A centred Gaussian map of ``like``'s shape (the centre-bias baseline every map method must beat)."""
    height, width = like.shape[-2:]
    ys = (torch.arange(height, device=like.device) + 0.5) / height - 0.5
    xs = (torch.arange(width, device=like.device) + 0.5) / width - 0.5
    gaussian = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2))
    return gaussian.expand(like.shape[0], 1, height, width).clone()


@torch.no_grad()
def deletion_insertion(
    model: nn.Module, images: torch.Tensor, maps: torch.Tensor, steps: int = 16
) -> dict[str, torch.Tensor]:
    """RISE deletion (lower is better) and insertion (higher is better) AUC per image, ``(B,)`` each.

    The score is the softmax probability of the class predicted on the original image; ``steps`` equal
    pixel chunks are changed in order of decreasing saliency; AUC by the trapezoid rule on [0, 1].
    """
    check_pair(images, maps)
    batch, _, height, width = images.shape
    pixels = height * width
    order = maps.flatten(1).argsort(dim=1, descending=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(pixels, device=images.device).expand(batch, -1))
    blurred = gaussian_blur(images, kernel_size=11, sigma=5.0)
    chunk = math.ceil(pixels / steps)
    curves: dict[str, list[torch.Tensor]] = {"deletion": [], "insertion": []}
    with untouched(model):
        classes = model(images).argmax(dim=1, keepdim=True)
        for step in range(steps + 1):
            changed = (rank < min(step * chunk, pixels)).view(batch, 1, height, width)
            for name, start, end in (("deletion", images, torch.zeros_like(images)), ("insertion", blurred, images)):
                probs = model(torch.where(changed, end, start)).softmax(dim=1)
                curves[name].append(probs.gather(1, classes)[:, 0])
    result = {}
    for name, values in curves.items():
        curve = torch.stack(values, dim=1)
        result[name] = (curve.sum(1) - curve[:, 0] / 2 - curve[:, -1] / 2) / steps
    return result
