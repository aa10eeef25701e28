from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from robusttrain.callbacks import CallbackList, ReweightCallback
from robusttrain.data import WaterbirdsDataset
from robusttrain.models import create_model

from .recording import Recorder

transformers = pytest.importorskip("transformers")
from robusttrain.integrations.transformers import RobustTrainerMixin, RobustTrainTrainerCallback  # noqa: E402


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


def test_hf_trainer_runs_the_hooks_and_stops_on_request(tiny_benchmark: Path, tmp_path: Path) -> None:
    recorder = Recorder(stop_at_step=2)
    # Hugging Face models have no forward_features: Grad-CAM is told which layer to explain.
    reweight = ReweightCallback(alpha=2.0, method_options={"target_layers": ["model.net.backbone.layer2"]})
    robust = RobustTrainTrainerCallback(CallbackList([recorder, reweight]))
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=5, per_device_train_batch_size=16,
                                          report_to=[], use_cpu=True, save_strategy="no",
                                          remove_unused_columns=False, disable_tqdm=True)
    trainer = Trainer(model=HFStyle(), args=args, train_dataset=PixelValues(tiny_benchmark), callbacks=[robust],
                      robust=robust)
    trainer.train()
    assert trainer.state.global_step == 2
    assert recorder.calls[:2] == ["setup", "epoch_start"] and recorder.calls.count("step") == 2
    assert recorder.calls.count("batch") == recorder.calls.count("loss") == 2
    exported = robust.state()
    assert exported["attributes"]["robust_state"]["Recorder"] == {"calls": len(recorder.calls)}
