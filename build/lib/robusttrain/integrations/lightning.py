"""Lightning adapter: run robusttrain callbacks inside ``lightning.pytorch.Trainer``.

A Lightning callback cannot replace a batch or a loss, so the module calls the two batch/loss hooks itself
in ``training_step`` (``RobustTrainModuleMixin.robust_step``); :class:`RobustTrainLightningCallback` drives
the other hooks, keeps ``TrainState`` in sync and saves callback state in Lightning checkpoints.

Example:
    class Module(RobustTrainModuleMixin, L.LightningModule):
        def training_step(self, raw, batch_idx):
            batch, losses_fn = self.robust_step(Batch.from_dict(raw))
            return losses_fn(self.model(batch.images)).mean()

    trainer = L.Trainer(callbacks=[RobustTrainLightningCallback(build_callbacks(cfg))])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..callbacks import CallbackList
from ..types import Batch, TrainState

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Lightning adapter needs lightning: pip install 'lightning>=2.0'") from error


class RobustTrainLightningCallback(pl.Callback):
    """Forward Lightning's hooks to a :class:`CallbackList` and share its :class:`TrainState` with the module."""

    def __init__(self, callbacks: CallbackList) -> None:
        self.callbacks = callbacks
        self.state = TrainState()

    @property
    def state_key(self) -> str:
        return "RobustTrain[" + ",".join(cb.state_key for cb in self.callbacks.callbacks) + "]"

    def _sync(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.state.model = getattr(pl_module, "model", pl_module)
        self.state.epoch, self.state.global_step = trainer.current_epoch, trainer.global_step
        self.state.is_main_process, self.state.world_size = trainer.is_global_zero, trainer.world_size
        pl_module.robust_state, pl_module.robust_callbacks = self.state, self.callbacks

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._sync(trainer, pl_module)
        self.callbacks.setup(self.state)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(trainer, pl_module)
        steps = trainer.estimated_stepping_batches  # the run's budget: callbacks' `start` is a share of it
        self.state.total_steps = int(steps) if steps != float("inf") else None
        self.callbacks.on_epoch_start(self.state)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._sync(trainer, pl_module)
        self.callbacks.on_step_end(self.state)
        trainer.should_stop = trainer.should_stop or self.state.should_stop

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(trainer, pl_module)
        self.callbacks.on_epoch_end(self.state)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.callbacks.teardown(self.state)

    def state_dict(self) -> dict[str, Any]:
        return self.callbacks.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.callbacks.load_state_dict(state_dict)


class RobustTrainModuleMixin:
    """Adds ``robust_step(batch) -> (batch, per_sample_loss_fn)`` to a LightningModule."""

    robust_state: TrainState
    robust_callbacks: CallbackList

    def robust_step(self, batch: Batch) -> tuple[Batch, Callable[[torch.Tensor], torch.Tensor]]:
        if not hasattr(self, "robust_callbacks"):
            raise RuntimeError("robust_step needs RobustTrainLightningCallback in the Trainer's callbacks "
                               "(L.Trainer(callbacks=[RobustTrainLightningCallback(callback_list)]))")
        batch = self.robust_callbacks.on_batch_start(self.robust_state, batch)

        def losses(outputs: torch.Tensor) -> torch.Tensor:
            per_sample = F.cross_entropy(outputs, batch.targets, reduction="none")
            return self.robust_callbacks.on_loss(self.robust_state, batch, outputs, per_sample)

        return batch, losses
