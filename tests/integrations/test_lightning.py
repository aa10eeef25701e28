from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from robusttrain.callbacks import CallbackList, ReweightCallback
from robusttrain.data import WaterbirdsDataset
from robusttrain.models import create_model
from robusttrain.types import Batch

from .recording import Recorder

L = pytest.importorskip("lightning.pytorch")
from robusttrain.integrations.lightning import RobustTrainLightningCallback, RobustTrainModuleMixin  # noqa: E402


class Module(RobustTrainModuleMixin, L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = create_model("test_resnet", num_classes=2)

    def training_step(self, raw, batch_idx):
        batch, losses = self.robust_step(Batch.from_dict(raw))
        return losses(self.model(batch.images)).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(tiny_benchmark: Path, callbacks: CallbackList, max_steps: int = 3) -> tuple:
    adapter = RobustTrainLightningCallback(callbacks)
    trainer = L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[adapter])
    loader = DataLoader(WaterbirdsDataset(tiny_benchmark, "train"), batch_size=16)
    trainer.fit(Module(), loader)
    return trainer, adapter


def test_lightning_runs_the_hooks_and_the_map_callbacks(tiny_benchmark: Path) -> None:
    recorder = Recorder()
    _, adapter = _fit(tiny_benchmark, CallbackList([recorder, ReweightCallback(alpha=2.0)]))
    assert recorder.calls[:2] == ["setup", "epoch_start"]
    assert recorder.calls.count("batch") == recorder.calls.count("loss") == recorder.calls.count("step") == 3
    state = json.loads(json.dumps(adapter.state_dict()))
    assert state["Recorder"] == {"calls": len(recorder.calls)}
    assert len(state["map_sources"]["gradcam"]["cache"]["ids"]) == 48


def test_lightning_honours_should_stop(tiny_benchmark: Path) -> None:
    trainer, _ = _fit(tiny_benchmark, CallbackList([Recorder(stop_at_step=1)]), max_steps=5)
    assert trainer.global_step == 1
