"""The Hugging Face Trainer adapter trains for real: callbacks change the batch and the loss, and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers  # installed by `make test` (extra `hf`): a missing package fails, never skips
from torch import nn
from torch.utils.data import Dataset

from robusttrain.callbacks import BackgroundRandomizationCallback, CallbackList, ReweightCallback
from robusttrain.data import WaterbirdsDataset
from robusttrain.integrations.transformers import RobustTrainerMixin, RobustTrainTrainerCallback
from robusttrain.models import create_model

from .recording import Recorder

pytestmark = pytest.mark.slow

# Hugging Face models have no forward_features: Grad-CAM is told which layer to explain.
MAPS = {"gradcam": {"method_options": {"target_layers": ["model.net.backbone.layer2"]}}}


class PixelValues(Dataset):
    def __init__(self, root: Path) -> None:
        self.inner = WaterbirdsDataset(root, "train")

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> dict:
        item = self.inner[i]
        return {"pixel_values": item["image"], "labels": item["target"], "index": item["index"]}


class HFStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = create_model("test_resnet", num_classes=2)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, index=None):
        return transformers.modeling_outputs.ImageClassifierOutput(logits=self.net(pixel_values))


class Trainer(RobustTrainerMixin, transformers.Trainer):
    pass


def _robust_callbacks(*extra) -> tuple[CallbackList, ReweightCallback, BackgroundRandomizationCallback]:
    """Reweighting (changes the loss) and a background swap of every sample (changes the batch)."""
    reweight, swap = ReweightCallback(alpha=2.0), BackgroundRandomizationCallback(p=1.0)
    return CallbackList([*extra, reweight, swap], maps=MAPS), reweight, swap


def _train(root: Path, out: Path, callbacks: CallbackList, max_steps: int, resume: bool = False,
           **arguments) -> tuple:
    robust = RobustTrainTrainerCallback(callbacks)
    args = transformers.TrainingArguments(output_dir=str(out), max_steps=max_steps, per_device_train_batch_size=16,
                                          report_to=[], use_cpu=True, remove_unused_columns=False, disable_tqdm=True,
                                          seed=0, data_seed=0, **{"save_strategy": "no", **arguments})
    torch.manual_seed(0)
    trainer = Trainer(model=HFStyle(), args=args, train_dataset=PixelValues(root), callbacks=[robust], robust=robust)
    trainer.train(resume_from_checkpoint=resume or None)
    return trainer, robust


def test_hf_callbacks_change_what_the_model_learns(tiny_benchmark: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    callbacks, reweight, swap = _robust_callbacks(recorder)
    trainer, robust = _train(tiny_benchmark, tmp_path / "robust", callbacks, max_steps=3)
    plain, _ = _train(tiny_benchmark, tmp_path / "plain", CallbackList([]), max_steps=3)
    again, _ = _train(tiny_benchmark, tmp_path / "again", CallbackList([]), max_steps=3)
    assert recorder.calls[:2] == ["setup", "epoch_start"]
    assert recorder.calls.count("batch") == recorder.calls.count("loss") == recorder.calls.count("step") == 3
    assert reweight.weighted_batches == 3 and swap.changed == 3 * 16
    pairs = list(zip(trainer.model.parameters(), plain.model.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in pairs), "every parameter should differ from the plain run"
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), plain.model.parameters(), strict=True))
    assert robust.state()["attributes"]["robust_state"]["Recorder"] == {"calls": len(recorder.calls)}


def test_hf_resume_restores_the_callbacks_state(tiny_benchmark: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _train(tiny_benchmark, out, _robust_callbacks()[0], max_steps=2, save_strategy="steps", save_steps=2)
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    resumed, reweight, swap = _robust_callbacks()
    trainer, _ = _train(tiny_benchmark, out, resumed, max_steps=4, resume=True)
    assert trainer.state.global_step == 4
    assert reweight.weighted_batches == 4  # 2 before the checkpoint + 2 after; a fresh start would count 2
    assert swap.changed == 4 * 16
    assert resumed.maps.state_dict()["gradcam"]["computed"] == 4 * 16


def test_hf_trainer_refuses_its_own_callback_restore(tiny_benchmark: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="restore_callback_states_from_checkpoint"):
        _train(tiny_benchmark, tmp_path, CallbackList([]), max_steps=1, restore_callback_states_from_checkpoint=True)


def test_hf_trainer_stops_on_request(tiny_benchmark: Path, tmp_path: Path) -> None:
    recorder = Recorder(stop_at_step=2)
    trainer, _ = _train(tiny_benchmark, tmp_path, CallbackList([recorder]), max_steps=5)
    assert trainer.state.global_step == 2 and recorder.calls.count("step") == 2
