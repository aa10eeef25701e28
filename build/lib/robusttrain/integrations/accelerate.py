"""accelerate needs no adapter: the plain loop works as is. This helper fills a TrainState from an Accelerator."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..types import TrainState


def state_from_accelerator(accelerator: Any, model: nn.Module, **fields: Any) -> TrainState:
    """A :class:`TrainState` for ``accelerator`` with the *unwrapped* model (maps must not run through DDP)."""
    return TrainState(model=accelerator.unwrap_model(model), is_main_process=accelerator.is_main_process,
                      world_size=accelerator.num_processes, accelerator=accelerator, **fields)
