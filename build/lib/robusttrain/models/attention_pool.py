"""Attention pooling over CNN feature maps with DropKey (or Dropout) on the attention, replacing global pooling.

The final feature map becomes spatial tokens plus a learned position embedding; one multi-head self-attention
layer mixes them and the result is averaged into the pooled vector fed to the classifier. In training,
``dropkey`` adds a large negative value to a Bernoulli(``mask_ratio``) subset of the attention logits
*before* the softmax (Li et al., CVPR 2023: each row stays a distribution over the surviving keys, no
rescaling); ``dropout`` applies ordinary dropout to the attention weights *after* the softmax (the
comparison); ``none`` is plain attention pooling. Nothing is dropped in eval mode.

The attention weights of the last forward pass are kept (``last_attention``), so the attention each spatial
token receives is a map at no extra cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MASK_VALUE = -1e9  # large enough to zero a key after softmax, finite so a fully masked row cannot give NaN
MODES = ("dropkey", "dropout", "none")


class AttentionPool(nn.Module):
    """``(B, C, h, w)`` features -> ``(B, C)`` pooled vector through one self-attention layer.

    Args:
        channels: feature channels C.
        num_heads: attention heads (must divide C).
        mode: ``dropkey`` | ``dropout`` | ``none``.
        mask_ratio: drop probability of a key (DropKey) or an attention weight (Dropout).
        grid: size of the learned position-embedding grid (resized bicubically to other feature sizes).
    """

    def __init__(
        self, channels: int, num_heads: int = 4, mode: str = "dropkey", mask_ratio: float = 0.1,
        grid: tuple[int, int] = (7, 7),
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown attention-pool mode {mode!r}; choose from {MODES}")
        if channels % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the {channels} feature channels")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.mode, self.mask_ratio, self.num_heads = mode, mask_ratio, num_heads
        self.position = nn.Parameter(torch.zeros(1, channels, *grid))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.last_attention: torch.Tensor | None = None
        self.last_grid: tuple[int, int] | None = None
        # The last *training* pass's attention survives the eval-mode passes of map methods and views.
        self.last_training_map: torch.Tensor | None = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4:
            raise ValueError(f"attention pooling expects (B, C, h, w) features, got {tuple(features.shape)}")
        batch, channels, height, width = features.shape
        position = self.position
        if position.shape[-2:] != (height, width):
            position = F.interpolate(position, size=(height, width), mode="bicubic", align_corners=False)
        tokens = self.norm((features + position).flatten(2).transpose(1, 2))  # (B, N, C)
        q, k, v = self.qkv(tokens).view(batch, -1, 3, self.num_heads, channels // self.num_heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, N, d)
        logits = (q.float() @ k.float().transpose(-2, -1)) * q.shape[-1] ** -0.5
        if self.training and self.mode == "dropkey" and self.mask_ratio > 0:
            dropped = torch.rand_like(logits) < self.mask_ratio
            logits = logits.masked_fill(dropped, MASK_VALUE)
        attention = logits.softmax(dim=-1)
        self.last_attention, self.last_grid = attention.detach(), (height, width)
        if self.training:
            self.last_training_map = self.token_map()
        if self.training and self.mode == "dropout" and self.mask_ratio > 0:
            attention = F.dropout(attention, p=self.mask_ratio)
        mixed = (attention.to(v.dtype) @ v).transpose(1, 2).reshape(batch, -1, channels)
        return (tokens + self.proj(mixed)).mean(dim=1)

    def token_map(self) -> torch.Tensor:
        """Attention received per spatial token in the last pass, ``(B, 1, h, w)``; sums to 1 over tokens."""
        if self.last_attention is None or self.last_grid is None:
            raise RuntimeError("no forward pass yet: token maps come from the last forward")
        received = self.last_attention.mean(dim=(1, 2))  # average over heads and queries -> (B, N)
        return received.view(-1, 1, *self.last_grid)


class AttentionPoolNet(nn.Module):
    """A timm CNN body, :class:`AttentionPool` and a linear classifier (timm-style features/head split)."""

    def __init__(self, body: nn.Module, num_classes: int, pool: AttentionPool) -> None:
        super().__init__()
        self.body = body
        self.pool = pool
        self.head = nn.Linear(body.num_features, num_classes)
        self.pretrained_cfg = getattr(body, "pretrained_cfg", {})

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body.forward_features(images)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))
