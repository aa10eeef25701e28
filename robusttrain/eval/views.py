"""Background-only and foreground-only views of a batch, and what the model predicts on them."""

from __future__ import annotations

import torch
from torch import nn

from ..maps import untouched
from ..transforms import composite, only_bg_tiled


def background_only(images: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """The attended region's bounding box filled by tiling the background around it (IN-9 Only-BG-T)."""
    return only_bg_tiled(images, regions)


def foreground_only(images: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """The attended region on the image's mean colour."""
    return composite(images, regions, images.mean(dim=(2, 3), keepdim=True).expand_as(images))


@torch.no_grad()
def probabilities(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax outputs of ``model`` on ``images`` without touching training state, ``(B, K)``."""
    with untouched(model):
        return model(images).float().softmax(dim=1)


def view_probabilities(
    model: nn.Module, images: torch.Tensor, regions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities ``(B, K)`` on the background-only and on the foreground-only views of ``images``."""
    return (probabilities(model, background_only(images, regions)),
            probabilities(model, foreground_only(images, regions)))
