"""The Hugging Face Trainer trains for real through RobustTrainer: callbacks change the batch and the loss, the
sampler is robusttrain's, the default resumes from the Trainer's own checkpoint without a second data pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers  # installed by `make test` (extra `hf`): a missing package fails, never skips
from torch import nn
from torch.utils.data import Dataset

from robusttrain import Robust
from robusttrain.callbacks import BackgroundRandomizationCallback, ReweightCallback
from robusttrain.data import WaterbirdsDataset
from robusttrain.integrations.transformers import RobustTrainer
from robusttrain.models import create_model

from .recording import Recorder

pytestmark = pytest.mark.slow

# Layer names are the user's model's own (Grad-CAM is told which layer to explain).
MAPS = {"gradcam": {"method_options": {"target_layers": ["net.backbone.layer2"]}}}


class PixelValues(Dataset):
    """A dataset of the Hugging Face kind: dicts with ``pixel_values`` and ``labels``, no sample ids."""

    def __init__(self, root: Path, split: str = "train") -> None:
        self.inner = WaterbirdsDataset(root, split)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> dict:
        item = self.inner[i]
        return {"pixel_values": item["image"], "labels": item["target"]}


class HFStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = create_model("test_resnet", num_classes=2)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.net(pixel_values)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return transformers.modeling_outputs.ImageClassifierOutput(loss=loss, logits=logits)


def _changing(*extra) -> tuple[Robust, ReweightCallback, BackgroundRandomizationCallback]:
    """Reweighting (changes the loss) and a background swap of every sample (changes the batch)."""
    reweight, swap = ReweightCallback(alpha=2.0), BackgroundRandomizationCallback(p=1.0)
    return Robust([*extra, reweight, swap], MAPS), reweight, swap


def _train(root: Path, out: Path, robust: Robust | None, resume: bool = False, **arguments) -> RobustTrainer:
    settings = {"max_steps": 3, "save_strategy": "no", **arguments}
    args = transformers.TrainingArguments(output_dir=str(out), per_device_train_batch_size=16, report_to=[],
                                          use_cpu=True, remove_unused_columns=False, disable_tqdm=True, seed=0,
                                          data_seed=0, **settings)
    torch.manual_seed(0)
    trainer = RobustTrainer(model=HFStyle(), args=args, train_dataset=PixelValues(root),
                            eval_dataset=PixelValues(root, "val"), robust=robust or Robust([]))
    trainer.train(resume_from_checkpoint=resume or None)
    return trainer


def test_hf_callbacks_change_what_the_model_learns(tiny_benchmark: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    robust, reweight, swap = _changing(recorder)
    trainer = _train(tiny_benchmark, tmp_path / "robust", robust)
    plain = _train(tiny_benchmark, tmp_path / "plain", None)
    again = _train(tiny_benchmark, tmp_path / "again", None)
    assert recorder.calls[:2] == ["setup", "epoch_start"]
    assert recorder.calls.count("batch") == recorder.calls.count("loss") == recorder.calls.count("step") == 3
    assert reweight.weighted_batches == 3 and swap.changed == 3 * 16
    pairs = list(zip(trainer.model.parameters(), plain.model.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in pairs), "every parameter should differ from the plain run"
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), plain.model.parameters(), strict=True))
    state = trainer.callback_handler.callbacks[-1].state()["attributes"]["robust_state"]
    assert state["callbacks"]["Recorder"] == {"calls": len(recorder.calls)}
    assert "eval_loss" in trainer.evaluate()  # evaluation batches: the model's own loss, no callbacks
    assert recorder.calls.count("batch") == 3


def test_hf_resume_restores_the_callbacks_state(tiny_benchmark: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _train(tiny_benchmark, out, _changing()[0], max_steps=2, save_strategy="steps", save_steps=2)
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    resumed, reweight, swap = _changing()
    trainer = _train(tiny_benchmark, out, resumed, max_steps=4, resume=True)
    assert trainer.state.global_step == 4
    assert reweight.weighted_batches == 4  # 2 before the checkpoint + 2 after; a fresh start would count 2
    assert swap.changed == 4 * 16
    assert resumed.callbacks.maps.state_dict()["gradcam"]["computed"] == 4 * 16


def test_hf_resumes_the_default_without_a_second_data_pass(tiny_benchmark: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    first = _train(tiny_benchmark, out, Robust(), max_steps=-1, num_train_epochs=1, save_strategy="epoch")
    assert "minority_resampling:" in capsys.readouterr().out
    steps = first.state.global_step
    resumed = Robust()
    trainer = _train(tiny_benchmark, out, resumed, max_steps=-1, num_train_epochs=2, resume=True)
    assert "minority_resampling:" not in capsys.readouterr().out  # no second pass, no second decision
    assert trainer.state.global_step == 2 * steps
    before, after = first.robust.callbacks.callbacks[0], resumed.callbacks.callbacks[0]
    assert after.summary == before.summary and after.flagged == before.flagged and after.weights == before.weights


def test_hf_trainer_refuses_its_own_callback_restore(tiny_benchmark: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="restore_callback_states_from_checkpoint"):
        _train(tiny_benchmark, tmp_path, None, max_steps=1, restore_callback_states_from_checkpoint=True)


def test_hf_trainer_stops_on_request(tiny_benchmark: Path, tmp_path: Path) -> None:
    recorder = Recorder(stop_at_step=2)
    trainer = _train(tiny_benchmark, tmp_path, Robust([recorder]), max_steps=5)
    assert trainer.state.global_step == 2 and recorder.calls.count("step") == 2
