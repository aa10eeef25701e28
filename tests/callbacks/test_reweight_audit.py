from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from robusttrain.callbacks import (
    AuditCallback,
    BackgroundRandomizationCallback,
    CallbackError,
    CallbackList,
    ReweightCallback,
)
from robusttrain.types import Batch, TrainState


class ColourVote(nn.Module):
    """Class 0 = "mostly blue", class 1 = "mostly red": a background-colour classifier with a CNN layout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 2], self.conv.weight[1, 0] = 10.0, 10.0

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return features.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))


def _scenes() -> Batch:
    """Four red-labelled scenes: two on red backgrounds (aligned), two on blue (conflicting)."""
    images = torch.zeros(4, 3, 16, 16)
    images[:2, 0] = 0.3  # dim red backgrounds (less red than the object, so attention stays on the object)
    images[2:, 2] = 0.8  # blue backgrounds
    masks = torch.zeros(4, 1, 16, 16)
    masks[:, :, 5:9, 5:9] = 1
    images[:, :, 5:9, 5:9] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]  # a red object in every scene
    return Batch(images=images, targets=torch.ones(4, dtype=torch.long), indices=torch.arange(4),
                 groups=torch.tensor([3, 3, 2, 2]), masks=masks)


def _weights(callback: ReweightCallback, batch: Batch, state: TrainState) -> torch.Tensor:
    """The callback's loss weights for unit losses, run as a loop runs it (maps from the callback list)."""
    callbacks = CallbackList([callback])
    batch = callbacks.on_batch_start(state, batch)
    return callbacks.on_loss(state, batch, state.model(batch.images), torch.ones(len(batch)))


def test_reweighting_upweights_samples_whose_background_contradicts_the_label() -> None:
    batch, model = _scenes(), ColourVote()
    weighted = _weights(ReweightCallback(alpha=4.0), batch, TrainState(model=model))
    assert weighted.mean().item() == pytest.approx(1.0)
    assert weighted[2] > 2 * weighted[0] and weighted[3] > 2 * weighted[1]
    assert torch.equal(_weights(ReweightCallback(alpha=0.0), batch, TrainState(model=model)), torch.ones(4))
    assert torch.equal(_weights(ReweightCallback(start_step=5), batch, TrainState(model=model)), torch.ones(4))
    late = ReweightCallback(start=0.5)
    assert torch.equal(_weights(late, batch, TrainState(model=model, global_step=4, total_steps=10)), torch.ones(4))
    assert not torch.equal(_weights(late, batch, TrainState(model=model, global_step=5, total_steps=10)), torch.ones(4))
    with pytest.raises(CallbackError, match="TrainState.total_steps is not set"):
        _weights(late, batch, TrainState(model=model))


def test_audit_writes_records_summaries_and_flags(tmp_path: Path) -> None:
    batch, model = _scenes(), ColourVote()
    callback = AuditCallback(output_dir=str(tmp_path))
    state = TrainState(model=model, epoch=2)
    CallbackList([callback]).on_batch_start(state, batch)
    callback.on_epoch_end(state)
    records = [json.loads(line) for line in (tmp_path / "audit" / "epoch_002.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [0, 1, 2, 3]
    assert set(records[0]) >= {"label", "prediction", "bg_only_prediction", "fg_only_prediction", "energy_in_mask",
                               "attended_share", "peak_yx", "group", "background_reliance", "view_source"}
    assert [r["bg_only_prediction"] for r in records] == [1, 1, 0, 0]
    summary = json.loads((tmp_path / "audit" / "epoch_002_summary.json").read_text())
    assert summary["classes"]["1"]["count"] == 4 and summary["classes"]["1"]["bg_only_accuracy"] == 0.5
    # Red-background scenes: the background alone gives the label; is the attended region enough alone?
    flagged = {r["id"] for r in records if r["bg_only_p_label"] >= 0.8 and r["fg_only_p_label"] < 0.5}
    assert summary["flagged"] == sorted(flagged)
    restored = AuditCallback(output_dir=str(tmp_path))
    restored.load_state_dict(json.loads(json.dumps(callback.state_dict())))
    assert restored.records == callback.records


def test_audit_sees_the_batch_before_background_randomization(tmp_path: Path) -> None:
    batch, model = _scenes(), ColourVote()
    audit = AuditCallback(output_dir=str(tmp_path))
    swap = BackgroundRandomizationCallback(p=1.0, mode="noise", source="masks")
    CallbackList([swap, audit]).on_batch_start(TrainState(model=model), batch)
    alone = AuditCallback(output_dir=str(tmp_path))
    CallbackList([alone]).on_batch_start(TrainState(model=model), batch)
    assert audit.records == alone.records  # the noise backgrounds never reached the audit


def test_reweighting_can_leave_background_randomized_samples_at_weight_one() -> None:
    batch, model = _scenes(), ColourVote()
    state = TrainState(model=model)
    marked = batch.replace(randomized=torch.tensor([False, False, True, False]))
    plain = _weights(ReweightCallback(alpha=4.0, normalize=False), marked, state)
    skipping = _weights(ReweightCallback(alpha=4.0, normalize=False, skip_randomized=True), marked, state)
    assert plain[2] > 2 and skipping[2] == 1.0  # the conflicting scene 2 is not scored once randomized
    assert torch.equal(skipping[[0, 1, 3]], plain[[0, 1, 3]])


def test_background_randomization_marks_the_samples_it_changed() -> None:
    batch = _scenes()
    changed = BackgroundRandomizationCallback(p=0.5, mode="noise", source="masks", seed=4).on_batch_start(
        TrainState(model=ColourVote()), batch)
    differs = (changed.images != batch.images).flatten(1).any(1)
    assert torch.equal(changed.randomized, differs) and 0 < int(differs.sum()) < 4
    assert batch.randomized is None  # the input batch is left as it was
    earlier = batch.replace(randomized=torch.tensor([True, False, False, False]))
    both = BackgroundRandomizationCallback(p=0.5, mode="noise", source="masks", seed=4).on_batch_start(
        TrainState(model=ColourVote()), earlier)
    assert torch.equal(both.randomized, differs | earlier.randomized)  # a second swap keeps the marks
