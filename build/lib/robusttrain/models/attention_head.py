"""An attention head W(x) in [0, 1] trained jointly with any task model (joint-attention-head paper).

:class:`JointAttentionModel` behaves like the task model (``model(images)`` returns its outputs), so every
tool of the library accepts it, and carries the head (``model.attention(images)``). The training objective
lives in :mod:`robusttrain.callbacks.joint_attention`; the head's maps are the ``attention_head`` map source.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionHead(nn.Module):
    """Fully convolutional head: dilated 3x3 convolutions (receptive field ~``2 * sum(dilations) + 1``), sigmoid.

    ``max_size`` bounds the cost on large images: the head then runs on the image resized so that its longer
    side is ``max_size`` and W is upsampled back (bilinear).

    Shape:
        images ``(B, C, H, W)`` in [0, 1] -> maps ``(B, 1, H, W)`` in [0, 1].
    """

    def __init__(self, in_chans: int = 3, width: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8, 1),
                 max_size: int | None = None) -> None:
        super().__init__()
        self.max_size = max_size
        layers: list[nn.Module] = []
        channels = in_chans
        for dilation in dilations:
            layers += [nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, 1, 1))
        self.body = nn.Sequential(*layers)
        self.in_chans = in_chans

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.in_chans:
            raise ValueError(f"attention head expects images (B, {self.in_chans}, H, W), got {tuple(images.shape)}")
        size = images.shape[-2:]
        if self.max_size is not None and max(size) > self.max_size:
            scale = self.max_size / max(size)
            small = F.interpolate(images, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
            return F.interpolate(torch.sigmoid(self.body(small * 2 - 1)), size=size, mode="bilinear",
                                 align_corners=False)
        return torch.sigmoid(self.body(images * 2 - 1))


class JointAttentionModel(nn.Module):
    """A task model plus an :class:`AttentionHead`; ``forward`` is the task model's, ``attention`` the head's."""

    def __init__(self, task_model: nn.Module, head: AttentionHead) -> None:
        super().__init__()
        self.task_model = task_model
        self.attention_head = head

    @property
    def in_chans(self) -> int:
        return self.attention_head.in_chans

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.task_model(images)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.task_model.forward_features(images)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.task_model.forward_head(features)

    def attention(self, images: torch.Tensor) -> torch.Tensor:
        """W ``(B, 1, H, W)`` in [0, 1]: 1 = what the output depends on, 0 = background."""
        return self.attention_head(images)


def find_attention_head(model: nn.Module) -> AttentionHead:
    """The model's :class:`AttentionHead` (also through wrappers such as DDP), or a ``ValueError`` saying how."""
    heads = [m for m in model.modules() if isinstance(m, AttentionHead)]
    if not heads:
        raise ValueError("model has no attention head; create it with create_model(name, num_classes, "
                         "attention_head=True) or wrap it in JointAttentionModel")
    if len(heads) > 1:
        raise ValueError(f"model has {len(heads)} attention heads; expected exactly one")
    return heads[0]
