"""Maps for free from attention pooling: the attention each spatial token receives (no backward pass)."""

from __future__ import annotations

import torch
from torch import nn

from ..models.attention_pool import AttentionPool
from .base import MapMethod, to_unit_maps
from .registry import MAP_METHODS


@MAP_METHODS.register("pool_attention")
class PoolAttention(MapMethod):
    """Token attention of the model's :class:`AttentionPool` (eval mode: nothing dropped), one forward pass.

    Raises:
        ValueError: the model has no attention pooling (``create_model(..., attention_pool="dropkey")``).
    """

    uses_gradients = False
    training_pass = True

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        pools = [m for m in model.modules() if isinstance(m, AttentionPool)]
        if not pools:
            raise ValueError("pool_attention needs a model with AttentionPool; create it with "
                             "create_model(name, num_classes, attention_pool='dropkey')")
        self.pool = pools[-1]

    def capture_training_pass(self, input_size: tuple[int, int]) -> _PoolCapture:
        """The attention of the training forward pass (its DropKey masks included): free maps, no hook needed."""
        return _PoolCapture(self.pool, input_size)

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            self.model(images)
        return self.pool.token_map()


class _PoolCapture:
    def __init__(self, pool: AttentionPool, input_size: tuple[int, int]) -> None:
        self.pool, self.input_size = pool, input_size
        pool.last_training_map = None

    def maps(self, outputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        if self.pool.last_training_map is None:
            raise RuntimeError("no training forward pass ran through the attention pool since the capture was armed")
        return to_unit_maps(self.pool.last_training_map.detach(), self.input_size)

    def release(self) -> None: ...
