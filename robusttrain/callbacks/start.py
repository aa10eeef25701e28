"""When a callback starts acting: a fraction of training (the same on any dataset) or an explicit step."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..types import TrainState


@dataclass(frozen=True)
class StartPoint:
    """``fraction`` of the run's ``TrainState.total_steps``, or ``step`` (optimizer steps) when given.

    Raises:
        ValueError: a fraction outside [0, 1), a negative step, or both given.
    """

    fraction: float = 0.0
    step: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.fraction, bool) or not isinstance(self.fraction, (int, float)) \
                or not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"start is a fraction of training in [0, 1), got {self.fraction!r}")
        if self.step is not None:
            if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 0:
                raise ValueError(f"start_step must be an integer >= 0, got {self.step!r}")
            if self.fraction:
                raise ValueError(f"give start (a fraction of training) or start_step (a step), not both: "
                                 f"start={self.fraction}, start_step={self.step}")

    def step_of(self, state: TrainState) -> int:
        """The first optimizer step at which the callback acts."""
        if self.step is not None:
            return self.step
        if self.fraction == 0:
            return 0
        if not state.total_steps:
            raise ValueError(f"start={self.fraction} is a fraction of training, but TrainState.total_steps is not "
                             "set: give the run's length (robust.prepare(..., epochs=N); TrainState.total_steps in "
                             "a loop of your own), or give start_step instead")
        return math.ceil(self.fraction * state.total_steps)

    def reached(self, state: TrainState) -> bool:
        return state.global_step >= self.step_of(state)
