"""Lightning trains for real through RobustCallback: callbacks change the batch and the loss, the default resumes
from Lightning's own checkpoint without a second data pass, and a module that skips a loss callback is told."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as L  # installed by `make test` (extra `lightning`): a missing package fails, never skips
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from robusttrain import Robust
from robusttrain.callbacks import BackgroundRandomizationCallback, ReweightCallback
from robusttrain.data import WaterbirdsDataset
from robusttrain.integrations.lightning import RobustCallback
from robusttrain.models import create_model

from .recording import Recorder

pytestmark = pytest.mark.slow


class Module(L.LightningModule):
    """A user's module; ``criterion`` is the one line a loss-changing callback needs."""

    def __init__(self, criterion=None) -> None:
        super().__init__()
        self.model = create_model("test_resnet", num_classes=2)
        self.criterion = criterion or F.cross_entropy

    def forward(self, images):
        return self.model(images)

    def training_step(self, batch, batch_idx):
        return self.criterion(self(batch["image"]), batch["target"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _fit(root: Path, robust: Robust | None, max_steps: int = 3, ckpt_path: Path | None = None,
         save_to: Path | None = None, uses_criterion: bool = True, max_epochs: int = -1,
         checkpoints: Path | None = None) -> tuple:
    L.seed_everything(0, verbose=False)
    adapter = RobustCallback(robust) if robust is not None else None
    saving = [L.callbacks.ModelCheckpoint(checkpoints, every_n_train_steps=4, save_top_k=-1)] if checkpoints else []
    trainer = L.Trainer(max_steps=max_steps, max_epochs=max_epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=bool(checkpoints), enable_progress_bar=False,
                        enable_model_summary=False, callbacks=([adapter] if adapter else []) + saving,
                        deterministic=True)
    module = Module(adapter.criterion() if adapter and uses_criterion else None)
    trainer.fit(module, DataLoader(WaterbirdsDataset(root, "train"), batch_size=16, shuffle=True), ckpt_path=ckpt_path)
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    return trainer, module


def _changing(*extra) -> tuple[Robust, ReweightCallback, BackgroundRandomizationCallback]:
    """Reweighting (changes the loss) and a background swap of every sample from Grad-CAM (changes the batch)."""
    reweight, swap = ReweightCallback(alpha=2.0), BackgroundRandomizationCallback(p=1.0)
    return Robust([*extra, reweight, swap]), reweight, swap


def test_lightning_callbacks_change_what_the_model_learns(tiny_benchmark: Path) -> None:
    recorder = Recorder()
    robust, reweight, swap = _changing(recorder)
    trainer, changed = _fit(tiny_benchmark, robust)
    _, plain = _fit(tiny_benchmark, None)
    assert recorder.calls[:2] == ["setup", "epoch_start"]
    assert recorder.calls.count("batch") == recorder.calls.count("loss") == recorder.calls.count("step") == 3
    assert reweight.weighted_batches == 3 and swap.changed == 3 * 16
    moved = [not torch.equal(a, b) for a, b in zip(changed.parameters(), plain.parameters(), strict=True)]
    assert all(moved), "every parameter should differ from the run without callbacks"
    _, again = _fit(tiny_benchmark, None)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), plain.parameters(), strict=True))
    state = json.loads(json.dumps(trainer.callbacks[0].state_dict()))
    assert state["callbacks"]["Recorder"] == {"calls": len(recorder.calls)}
    assert len(state["callbacks"]["map_sources"]["gradcam"]["cache"]["ids"]) == 48


def test_lightning_resume_restores_the_callbacks_state(tiny_benchmark: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "two.ckpt"
    _fit(tiny_benchmark, _changing()[0], max_steps=2, save_to=checkpoint)
    resumed, reweight, swap = _changing()
    _fit(tiny_benchmark, resumed, max_steps=4, ckpt_path=checkpoint)
    assert reweight.weighted_batches == 4  # 2 before the checkpoint + 2 after; a fresh start would count 2
    assert swap.changed == 4 * 16
    assert resumed.callbacks.maps.state_dict()["gradcam"]["computed"] == 4 * 16  # the map source's counters too


def test_lightning_resumes_the_default_without_a_second_data_pass(tiny_benchmark: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    checkpoint = tmp_path / "epoch.ckpt"
    first = Robust()
    _fit(tiny_benchmark, first, max_steps=-1, max_epochs=1, save_to=checkpoint)
    assert "minority_resampling:" in capsys.readouterr().out
    resumed = Robust()
    trainer, _ = _fit(tiny_benchmark, resumed, max_steps=-1, max_epochs=2, ckpt_path=checkpoint)
    assert trainer.global_step == 2 * len(trainer.train_dataloader)  # the second epoch trained in full
    assert "minority_resampling:" not in capsys.readouterr().out  # no second pass, no second decision
    before, after = first.callbacks.callbacks[0], resumed.callbacks.callbacks[0]
    assert after.summary == before.summary and after.flagged == before.flagged and after.weights == before.weights
    assert resumed.sampler.weights is not None or before.weights is None  # the restored weights draw epoch 2


def test_a_module_that_skips_a_loss_callback_is_told_at_the_first_step(tiny_benchmark: Path) -> None:
    with pytest.raises(ValueError, match=r"ReweightCallback change the per-sample loss.*robust.criterion"):
        _fit(tiny_benchmark, Robust([ReweightCallback(alpha=2.0)]), max_steps=2, uses_criterion=False)


def test_lightning_honours_should_stop(tiny_benchmark: Path) -> None:
    trainer, _ = _fit(tiny_benchmark, Robust([Recorder(stop_at_step=1)]), max_steps=5)
    assert trainer.global_step == 1


class Drawn(Recorder):
    """Records the sample ids of every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[list[int]] = []

    def on_batch_start(self, state, batch):
        self.ids.append(batch.indices.tolist())
        return batch


def test_a_resume_mid_epoch_trains_the_rest_of_it_exactly(tiny_benchmark: Path, tmp_path: Path) -> None:
    whole = Drawn()
    _fit(tiny_benchmark, Robust([whole]), max_steps=-1, max_epochs=1, checkpoints=tmp_path)
    rest = Drawn()  # from the checkpoint the run took after its fourth step, inside the epoch
    trainer, _ = _fit(tiny_benchmark, Robust([rest]), max_steps=-1, max_epochs=1,
                      ckpt_path=tmp_path / "epoch=0-step=4.ckpt")
    assert rest.ids == whole.ids[4:] and len(whole.ids) == len(trainer.train_dataloader) == 10
