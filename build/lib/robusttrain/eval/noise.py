"""Gaussian input noise as in the DropKey noise-robustness protocol (variances of images in [0, 1])."""

from __future__ import annotations

import torch


@torch.no_grad()
def add_noise(images: torch.Tensor, variance: float, seed: int) -> torch.Tensor:
    """``clip(images + N(0, variance))`` with a fixed generator (the same noise for every model)."""
    if variance < 0:
        raise ValueError(f"noise variance must be >= 0, got {variance}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator) * variance**0.5
    return (images + noise.to(images.device)).clamp(0, 1)
