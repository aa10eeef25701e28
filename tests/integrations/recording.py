"""A callback that records which hooks fired, and can ask the loop to stop."""

from __future__ import annotations

from robusttrain.callbacks import Callback


class Recorder(Callback):
    def __init__(self, stop_at_step: int | None = None) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.stop_at_step = stop_at_step

    def setup(self, state):
        self.calls.append("setup")

    def on_epoch_start(self, state):
        self.calls.append("epoch_start")

    def on_batch_start(self, state, batch):
        self.calls.append("batch")
        return batch

    def on_loss(self, state, batch, outputs, losses):
        self.calls.append("loss")
        return losses

    def on_step_end(self, state):
        self.calls.append("step")
        if self.stop_at_step is not None and state.global_step >= self.stop_at_step:
            state.should_stop = True

    def state_dict(self):
        return {"calls": len(self.calls)}
