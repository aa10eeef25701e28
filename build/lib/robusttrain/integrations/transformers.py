"""Hugging Face Trainer adapter: robusttrain callbacks inside ``transformers.Trainer``.

:class:`RobustTrainTrainerCallback` maps the Trainer's events to the callback hooks and exports callback state
as JSON with the Trainer's checkpoints; :class:`RobustTrainerMixin` overrides ``compute_loss`` so callbacks
can replace the batch and reweight the per-sample losses. Inputs are dicts with ``pixel_values``, ``labels``
and, for map caching and audits, ``index`` (stable sample ids). ``trainer.train(resume_from_checkpoint=...)``
restores the callbacks' state from the checkpoint's ``trainer_state.json`` (leave the Trainer's own
``restore_callback_states_from_checkpoint`` off: it would rebuild the callback without its callbacks).

Example:
    class Trainer(RobustTrainerMixin, transformers.Trainer): ...
    robust = RobustTrainTrainerCallback(build_callbacks(cfg))
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[robust], robust=robust)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..callbacks import CallbackList
from ..types import Batch, TrainState

try:
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Hugging Face adapter needs transformers: pip install 'transformers>=4.44'") from error


def _logits(outputs: Any) -> torch.Tensor:
    return outputs.logits if hasattr(outputs, "logits") else outputs


class LogitsOnly(nn.Module):
    """``model(images) -> logits`` for Hugging Face models that return ``ModelOutput`` (what map methods need)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return _logits(self.model(pixel_values=images))


class RobustTrainTrainerCallback(TrainerCallback, ExportableState):
    """Forward Trainer events to a :class:`CallbackList`; its state travels in the Trainer's checkpoints."""

    def __init__(self, callbacks: CallbackList) -> None:
        self.callbacks = callbacks
        self.train_state = TrainState()

    def _sync(self, state: Any, model: Any) -> None:
        self.train_state.global_step, self.train_state.epoch = state.global_step, int(state.epoch or 0)
        self.train_state.total_steps = state.max_steps or None
        self.train_state.is_main_process = state.is_world_process_zero
        current = self.train_state.model
        if model is not None and not (isinstance(current, LogitsOnly) and current.model is model):
            self.train_state.model = LogitsOnly(model)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._sync(state, model)
        self.train_state.output_dir = args.output_dir
        self.callbacks.setup(self.train_state)
        saved = state.stateful_callbacks.get(type(self).__name__) if state.global_step > 0 else None
        if saved is not None:  # resumed from a checkpoint: the callbacks go on where they stopped
            self.callbacks.load_state_dict(saved["attributes"]["robust_state"])

    def on_epoch_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._sync(state, model)
        self.callbacks.on_epoch_start(self.train_state)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._sync(state, model)
        self.callbacks.on_step_end(self.train_state)
        control.should_training_stop = control.should_training_stop or self.train_state.should_stop

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._sync(state, model)
        self.callbacks.on_epoch_end(self.train_state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.callbacks.teardown(self.train_state)

    def state(self) -> dict[str, Any]:  # transformers.ExportableState
        return {"args": {}, "attributes": {"robust_state": self.callbacks.state_dict()}}


class RobustTrainerMixin:
    """``compute_loss`` that lets robusttrain callbacks change the batch and the per-sample losses."""

    def __init__(self, *args: Any, robust: RobustTrainTrainerCallback, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.args.restore_callback_states_from_checkpoint:
            raise ValueError("leave TrainingArguments.restore_callback_states_from_checkpoint off: "
                             "RobustTrainTrainerCallback restores its callbacks' state itself on resume")
        self.robust = robust

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        batch = Batch(images=inputs["pixel_values"], targets=inputs["labels"], indices=inputs.get("index"))
        batch = self.robust.callbacks.on_batch_start(self.robust.train_state, batch)
        outputs = model(pixel_values=batch.images)
        per_sample = F.cross_entropy(_logits(outputs), batch.targets, reduction="none")
        loss = self.robust.callbacks.on_loss(self.robust.train_state, batch, _logits(outputs), per_sample).mean()
        return (loss, outputs) if return_outputs else loss
