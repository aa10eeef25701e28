"""Turn token sequences (ViT, MLP-Mixer) into spatial maps, inferring the grid from the model."""

from __future__ import annotations

import math

import torch
from torch import nn


def token_layout(model: nn.Module) -> tuple[tuple[int, int] | None, int]:
    """``(grid_size, num_prefix_tokens)`` declared by a timm ViT/Mixer (``(None, 0)`` when it declares none).

    The grid comes from the first patch-embedding module that declares one (``patch_embed`` in ViTs, ``stem``
    in MLP-Mixers).
    """
    grid = next((m.grid_size for m in model.modules() if getattr(m, "grid_size", None) is not None), None)
    prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)
    return (tuple(grid) if grid is not None else None), prefix


def tokens_to_map(tokens: torch.Tensor, grid_size: tuple[int, int] | None = None, num_prefix_tokens: int = 0
                  ) -> torch.Tensor:
    """``(B, N, C)`` tokens -> ``(B, C, h, w)``, dropping ``num_prefix_tokens`` (class/register tokens) first.

    Without ``grid_size`` the grid is taken to be square.

    Raises:
        ValueError: the remaining token count does not fit the grid.
    """
    if tokens.ndim != 3:
        raise ValueError(f"tokens must be (B, N, C), got shape {tuple(tokens.shape)}")
    patches = tokens[:, num_prefix_tokens:]
    count = patches.shape[1]
    if grid_size is None:
        side = math.isqrt(count)
        grid_size = (side, side)
    if grid_size[0] * grid_size[1] != count:
        raise ValueError(f"{count} patch tokens do not form a {grid_size[0]}x{grid_size[1]} grid "
                         f"(after dropping {num_prefix_tokens} prefix tokens)")
    return patches.transpose(1, 2).reshape(len(tokens), -1, *grid_size)
