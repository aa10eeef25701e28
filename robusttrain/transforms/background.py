"""New backgrounds for a batch, for background randomisation during training.

Modes:
    ``swap``: the background of another sample of the batch, its own attended region filled by tiling the
        largest margin strip (IN-9's Only-BG-T), as in Mixed-Rand; given the batch's labels, the other sample is
        one of another label wherever the batch has one (the composite is then a counterfactual: this object on a
        background that came with another label, as DaC composes them).
    ``noise``: uniform noise.  ``mean``: the image's mean colour.  ``blur``: the image itself, Gaussian-blurred
        with the LICNN paper's radii (2, 5, 10 px, radius = sigma).  ``texture``: a random crop of one of the
        photos and textures scikit-image ships.

Every function takes an explicit ``torch.Generator`` so a batch's randomness is replayable (and training is
exactly resumable).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from .compositing import check_pair, only_bg_tiled

MODES = ("swap", "noise", "mean", "blur", "texture")


def region_from_maps(maps: torch.Tensor, threshold: float = 0.5, grow: float = 0.0) -> torch.Tensor:
    """Binary attended region ``(B, 1, H, W)``: map >= threshold, grown by ``grow`` x the image side (in pixels,
    rounded: 0.03 grows a 64 px image's region by 2 px and a 448 px image's by 13 px)."""
    region = (maps >= threshold).to(maps.dtype)
    dilate = round(grow * min(maps.shape[-2:]))
    if dilate > 0:
        region = F.max_pool2d(region, 2 * dilate + 1, stride=1, padding=dilate)
    return region


def radius_blur(images: torch.Tensor, radius: float) -> torch.Tensor:
    """Gaussian blur with sigma = ``radius`` pixels (the LICNN paper's radii), kernel 3 sigma each side."""
    # NOTE: reflect padding needs the kernel's half-width below the image size; small images get a cut kernel.
    kernel = min(2 * int(round(3 * radius)) + 1, 2 * min(images.shape[-2:]) - 1)
    return gaussian_blur(images, kernel_size=kernel, sigma=radius)


def _derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation with no fixed point (each sample gets another sample's background)."""
    if n < 2:
        return torch.zeros(n, dtype=torch.long)
    shift = torch.randint(1, n, (1,), generator=generator)
    order = torch.randperm(n, generator=generator)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(n)
    return order[(inverse + shift) % n]


def _other_label_partners(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each sample, a random sample of another label (a random other sample where the batch has none)."""
    labels = labels.cpu()
    fallback = _derangement(len(labels), generator)
    other = labels[:, None] != labels[None, :]
    scores = torch.rand(other.shape, generator=generator).masked_fill(~other, -1.0)
    return torch.where(other.any(1), scores.argmax(1), fallback)


def _texture_bank() -> list[np.ndarray]:
    from ..data.benchmark.backgrounds import DOMAINS, load_source

    return [load_source(source) for sources in DOMAINS.values() for source in sources]


def texture_backgrounds(count: int, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """``count`` random crops of scikit-image's shipped photos/textures, ``(count, 3, H, W)`` in [0, 1]."""
    bank = _texture_bank()
    crops = []
    for _ in range(count):
        picture = bank[int(torch.randint(len(bank), (1,), generator=generator))]
        height, width = picture.shape[:2]
        side = min(height, width) // 2
        top = int(torch.randint(height - side + 1, (1,), generator=generator))
        left = int(torch.randint(width - side + 1, (1,), generator=generator))
        crop = torch.from_numpy(np.ascontiguousarray(picture[top : top + side, left : left + side]))
        crop = crop.permute(2, 0, 1)[None].float().div(255)
        crops.append(F.interpolate(crop, size=size, mode="bilinear", align_corners=False))
    return torch.cat(crops)


def new_backgrounds(
    images: torch.Tensor, regions: torch.Tensor, mode: str, generator: torch.Generator, blur_radius: float = 5.0,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """A background for every image of the batch, ``(B, C, H, W)`` on the images' device. ``labels`` ``(B,)``
    (``swap`` only): take each background from a sample of another label where there is one.

    Raises:
        ValueError: unknown mode, or regions that do not fit the images.
    """
    check_pair(images, regions)
    if mode not in MODES:
        raise ValueError(f"unknown background mode {mode!r}; choose from {MODES}")
    if mode == "swap":
        partners = _derangement(len(images), generator) if labels is None else _other_label_partners(labels, generator)
        partners = partners.to(images.device)
        return only_bg_tiled(images[partners], regions[partners])
    if mode == "noise":
        return torch.rand(images.shape, generator=generator).to(images)
    if mode == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if mode == "blur":
        return radius_blur(images, blur_radius)
    return texture_backgrounds(len(images), images.shape[-2:], generator).to(images)
