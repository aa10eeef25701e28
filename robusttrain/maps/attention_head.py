"""Maps from a jointly trained attention head: one forward of the head, no optimisation at inference."""

from __future__ import annotations

import torch
from torch import nn

from ..models.attention_head import find_attention_head
from .base import MapMethod
from .registry import MAP_METHODS


@MAP_METHODS.register("attention_head")
class AttentionHeadMaps(MapMethod):
    """The head's W in [0, 1] as is (not rescaled: W already means "kept" vs "replaceable").

    Raises:
        ValueError: the model has no :class:`~robusttrain.models.attention_head.AttentionHead`.
    """

    uses_gradients = False
    rescale = False

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.head = find_attention_head(model)

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            return self.head(images)
