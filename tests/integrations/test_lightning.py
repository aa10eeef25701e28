"""The Lightning adapter trains for real: callbacks change the batch and the loss, and resume where they stopped."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as L  # installed by `make test` (extra `lightning`): a missing package fails, never skips
import pytest
import torch
from torch.utils.data import DataLoader

from robusttrain.callbacks import BackgroundRandomizationCallback, CallbackList, ReweightCallback
from robusttrain.data import WaterbirdsDataset
from robusttrain.integrations.lightning import RobustTrainLightningCallback, RobustTrainModuleMixin
from robusttrain.models import create_model
from robusttrain.types import Batch

from .recording import Recorder

pytestmark = pytest.mark.slow


class Module(RobustTrainModuleMixin, L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = create_model("test_resnet", num_classes=2)

    def training_step(self, raw, batch_idx):
        batch, losses = self.robust_step(Batch.from_dict(raw))
        return losses(self.model(batch.images)).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _robust_callbacks(*extra) -> tuple[CallbackList, ReweightCallback, BackgroundRandomizationCallback]:
    """Reweighting (changes the loss) and a background swap of every sample (changes the batch)."""
    reweight, swap = ReweightCallback(alpha=2.0), BackgroundRandomizationCallback(p=1.0)
    return CallbackList([*extra, reweight, swap]), reweight, swap


def _fit(root: Path, callbacks: CallbackList | None, max_steps: int = 3, ckpt_path: Path | None = None,
         save_to: Path | None = None) -> tuple:
    L.seed_everything(0, verbose=False)
    adapters = [RobustTrainLightningCallback(callbacks)] if callbacks is not None else []
    trainer = L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=adapters,
                        deterministic=True)
    module = Module()
    loader = DataLoader(WaterbirdsDataset(root, "train"), batch_size=16)
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    return trainer, module


def test_lightning_callbacks_change_what_the_model_learns(tiny_benchmark: Path) -> None:
    recorder = Recorder()
    callbacks, reweight, swap = _robust_callbacks(recorder)
    trainer, robust = _fit(tiny_benchmark, callbacks)
    _, plain = _fit(tiny_benchmark, CallbackList([]))
    assert recorder.calls[:2] == ["setup", "epoch_start"]
    assert recorder.calls.count("batch") == recorder.calls.count("loss") == recorder.calls.count("step") == 3
    assert reweight.weighted_batches == 3 and swap.changed == 3 * 16
    moved = [not torch.equal(a, b) for a, b in zip(robust.parameters(), plain.parameters(), strict=True)]
    assert all(moved), "every parameter should differ from the run without callbacks"
    _, again = _fit(tiny_benchmark, CallbackList([]))
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), plain.parameters(), strict=True))
    state = json.loads(json.dumps(trainer.callbacks[0].state_dict()))
    assert state["Recorder"] == {"calls": len(recorder.calls)}
    assert len(state["map_sources"]["gradcam"]["cache"]["ids"]) == 48


def test_lightning_resume_restores_the_callbacks_state(tiny_benchmark: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "two.ckpt"
    _fit(tiny_benchmark, _robust_callbacks()[0], max_steps=2, save_to=checkpoint)
    resumed, reweight, swap = _robust_callbacks()
    _fit(tiny_benchmark, resumed, max_steps=4, ckpt_path=checkpoint)
    assert reweight.weighted_batches == 4  # 2 before the checkpoint + 2 after; a fresh start would count 2
    assert swap.changed == 4 * 16
    assert resumed.maps.state_dict()["gradcam"]["computed"] == 4 * 16  # the map source's counters too


def test_lightning_module_without_the_adapter_is_told_what_is_missing(tiny_benchmark: Path) -> None:
    with pytest.raises(RuntimeError, match="RobustTrainLightningCallback"):
        _fit(tiny_benchmark, None, max_steps=1)


def test_lightning_honours_should_stop(tiny_benchmark: Path) -> None:
    trainer, _ = _fit(tiny_benchmark, CallbackList([Recorder(stop_at_step=1)]), max_steps=5)
    assert trainer.global_step == 1
