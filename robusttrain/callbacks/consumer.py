"""Base of the callbacks that read a map source: which source, from when, and their own random generator."""

from __future__ import annotations

from typing import Any

import torch

from ..maps import TRUE_MASKS
from ..types import Batch, SourceMaps, TrainState
from .base import Callback
from .start import StartPoint


def check_unit(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1]; ``ValueError`` naming the option otherwise (strings and bools included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def step_generator(seed: int, step: int, salt: int) -> torch.Generator:
    """A generator for one training step (replayable: a function of ``seed``, ``step`` and ``salt``)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7_919 + salt)


class MapConsumer(Callback):
    """A callback that reads ``batch.maps[source]`` once it has started.

    Args:
        source: the map source it reads (a name in the ``maps`` section, or a map method's name for that method
            with its defaults).
        start: act from this fraction of training on (``TrainState.total_steps``), the same on any dataset.
        start_step: act from this optimizer step instead (for users who think in steps).
        seed: seed of the callback's own random choices, drawn from ``(seed, step)``.
        key: state key, so several instances of one callback can run together.
        enabled: ``False`` skips every hook.
    """

    def __init__(self, source: str = "gradcam", start: float = 0.0, start_step: int | None = None, seed: int = 0,
                 key: str | None = None, enabled: bool = True) -> None:
        super().__init__(enabled, key)
        if not isinstance(source, str) or not source:
            raise ValueError(f"source must be the name of a map source, got {source!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.source, self.start, self.seed = source, StartPoint(start, start_step), seed

    @property
    def map_sources(self) -> tuple[str, ...]:
        return () if self.source == TRUE_MASKS else (self.source,)

    def started(self, state: TrainState) -> bool:
        return self.start.reached(state)

    def reads_maps(self, state: TrainState) -> bool:
        return bool(self.map_sources) and self.started(state)

    def source_maps(self, batch: Batch) -> SourceMaps:
        """This step's maps of ``source``.

        Raises:
            ValueError: the batch carries none (the callback was called outside a :class:`CallbackList`).
        """
        if self.source not in batch.maps:
            raise ValueError(f"batch has no maps of source {self.source!r}: run callbacks through a CallbackList "
                             "(build_callbacks), which computes each map source once per step")
        return batch.maps[self.source]

    def generator(self, state: TrainState, salt: int) -> torch.Generator:
        """This callback's generator for this step (replayable: a function of seed, step and ``salt``)."""
        return step_generator(self.seed, state.global_step, salt)
