"""Lightning: the default (or any callbacks) in ``L.Trainer(callbacks=[RobustCallback()])``.

The callback takes over the training loader the way Lightning re-creates samplers: when the Trainer asks for the
training data, it gets the user's loader re-made by :meth:`robusttrain.Robust.loader` (robusttrain's sampler,
sample ids, the pass over the data before the first step, the callbacks' batch hook). The LightningModule stays as
it is; callbacks that change the per-sample loss (reweighting, GroupDRO, the attention head's terms) need its loss
from ``robust.criterion(...)`` (one line), and say so at the first step otherwise. The callbacks' state travels in
Lightning's checkpoints, so a resumed fit makes no second data pass.

Example:
    robust = RobustCallback()                      # the default; RobustCallback(Robust(callbacks=[...])) for others
    L.Trainer(max_epochs=10, callbacks=[robust]).fit(module, train_loader)
"""

from __future__ import annotations

from typing import Any

from ..plugin import Robust

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Lightning integration needs lightning: pip install 'lightning>=2.0'") from error


class RobustCallback(pl.Callback):
    """Runs a :class:`~robusttrain.Robust` inside ``lightning.pytorch.Trainer`` (see the module docstring).

    Args:
        robust: the object to run (None: ``Robust()``, the default callbacks).
    """

    def __init__(self, robust: Robust | None = None) -> None:
        self.robust = robust if robust is not None else Robust()

    @property
    def state_key(self) -> str:
        return "RobustCallback[" + ",".join(cb.state_key for cb in self.robust.callbacks.callbacks) + "]"

    def criterion(self, loss: Any = None) -> Any:
        """``robust.criterion(loss)``, for a module whose callbacks change the per-sample loss."""
        return self.robust.criterion(loss)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        source = getattr(getattr(trainer, "fit_loop", None), "_data_source", None)
        if source is None or not hasattr(source, "dataloader"):
            raise RuntimeError(f"RobustCallback cannot reach this Lightning version's training data source "
                               f"(lightning {pl.__version__}); use robust.prepare in a plain loop")
        request = source.dataloader
        source.dataloader = lambda: self.robust.loader(request())  # what Lightning asks for is the re-made loader
        self.robust.attach(pl_module)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        steps = trainer.estimated_stepping_batches  # the run's budget: callbacks' `start` is a share of it
        self.robust.state.total_steps = int(steps) if steps != float("inf") else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.robust.step_end(trainer.global_step)
        trainer.should_stop = trainer.should_stop or self.robust.state.should_stop

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.robust.end_epoch()  # Lightning stops at the loader's length, before the loader's own epoch end

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.robust.end()

    def state_dict(self) -> dict[str, Any]:
        return self.robust.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.robust.load_state_dict(state_dict)

