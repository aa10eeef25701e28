from __future__ import annotations

import pytest
import torch

from robusttrain.callbacks import BackgroundRandomizationCallback, CallbackList
from robusttrain.transforms import MODES
from robusttrain.types import Batch, TrainState

from ..maps.models import RedDetector, red_square_scenes


def _batch(n: int = 6) -> Batch:
    images, masks = red_square_scenes(batch=n)
    return Batch(images=images, targets=torch.ones(n, dtype=torch.long), indices=torch.arange(n), masks=masks)


@pytest.mark.parametrize("mode", MODES)
def test_randomisation_keeps_the_attended_region_exactly(mode: str) -> None:
    batch = _batch()
    callback = BackgroundRandomizationCallback(p=1.0, mode=mode, source="masks")
    out = callback.on_batch_start(TrainState(global_step=3), batch)
    inside = batch.masks.expand_as(batch.images) > 0.5
    assert torch.equal(out.images[inside], batch.images[inside])
    assert not torch.equal(out.images[~inside], batch.images[~inside])
    assert out.images.shape == batch.images.shape and out.images.min() >= 0 and out.images.max() <= 1
    # Replayable: the same step gives the same batch; another step another one.
    assert torch.equal(out.images, callback.on_batch_start(TrainState(global_step=3), batch).images)
    if mode in ("swap", "noise", "texture"):
        assert not torch.equal(out.images, callback.on_batch_start(TrainState(global_step=4), batch).images)


def test_maps_source_pastes_the_region_a_model_attends_to() -> None:
    batch = _batch()
    callback = BackgroundRandomizationCallback(p=1.0, mode="noise", source="gradcam", threshold=0.5)
    out = CallbackList([callback]).on_batch_start(TrainState(model=RedDetector().eval(), global_step=0), batch)
    inside = batch.masks.expand_as(batch.images) > 0.5
    kept = (out.images == batch.images).all(dim=1, keepdim=True).expand_as(batch.images)
    # The red squares (what the detector looks at) survive; most of the background does not.
    assert kept[inside].float().mean() > 0.9 and kept[~inside].float().mean() < 0.3


def test_p_zero_is_the_identity_and_inverse_hides_the_region() -> None:
    batch = _batch()
    same = BackgroundRandomizationCallback(p=0.0, source="masks").on_batch_start(TrainState(), batch)
    assert same is batch
    hidden = BackgroundRandomizationCallback(p=1.0, mode="mean", source="masks", inverse=True).on_batch_start(
        TrainState(), batch)
    outside = batch.masks.expand_as(batch.images) < 0.5
    assert torch.equal(hidden.images[outside], batch.images[outside])
    red = hidden.images[:, 0][batch.masks[:, 0] > 0.5]
    assert (red < 0.7).all()  # the red squares are gone


def test_start_step_and_bad_options() -> None:
    batch = _batch()
    callback = BackgroundRandomizationCallback(p=1.0, source="masks", start_step=10)
    assert callback.on_batch_start(TrainState(global_step=9), batch) is batch
    with pytest.raises(ValueError, match="source 'masks' needs batches with masks"):
        BackgroundRandomizationCallback(p=1.0, source="masks").on_batch_start(TrainState(), batch.replace(masks=None))
    with pytest.raises(ValueError, match="source must be the name of a map source"):
        BackgroundRandomizationCallback(source="")
    with pytest.raises(ValueError, match="p must be a number in"):
        BackgroundRandomizationCallback(p=1.5)
    with pytest.raises(ValueError, match="grow must be a number in"):
        BackgroundRandomizationCallback(grow="2px")
    with pytest.raises(ValueError, match="give start .* or start_step .*, not both"):
        BackgroundRandomizationCallback(start=0.5, start_step=3)


def _labelled_backgrounds(labels: list[int]) -> Batch:
    """A red square on a background whose blue level says the label (0.2 for label 0, 0.8 for label 1)."""
    n = len(labels)
    images = torch.zeros(n, 3, 16, 16)
    masks = torch.zeros(n, 1, 16, 16)
    masks[:, :, 5:11, 5:11] = 1
    for row, label in enumerate(labels):
        images[row, 2] = 0.2 + 0.6 * label
    images[:, 0:1] = torch.where(masks > 0, 1.0, 0.0)
    images[:, 2:3] = torch.where(masks > 0, 0.0, images[:, 2:3])
    return Batch(images=images, targets=torch.tensor(labels), indices=torch.arange(n), masks=masks)


def test_other_label_donors_give_every_object_a_background_of_another_class() -> None:
    batch = _labelled_backgrounds([0, 0, 0, 0, 0, 1, 1, 0])  # two images of label 1 among eight
    outside = batch.masks[:, 0] < 0.5
    other = BackgroundRandomizationCallback(p=1.0, mode="swap", source="masks", donors="other_label")
    anyone = BackgroundRandomizationCallback(p=1.0, mode="swap", source="masks")
    for step in range(5):
        out = other.on_batch_start(TrainState(global_step=step), batch).images
        for row, label in enumerate(batch.targets.tolist()):
            blue = out[row, 2][outside[row]]
            assert torch.allclose(blue, torch.full_like(blue, 0.8 - 0.6 * label)), (step, row)
        assert torch.equal(out[:, 0][~outside], batch.images[:, 0][~outside])  # objects kept exactly
    # Any donor: with six of eight images of label 0, some label-0 images keep a label-0 background.
    same = sum(bool(torch.allclose(anyone.on_batch_start(TrainState(global_step=s), batch).images[r, 2][outside[r]],
                                   torch.full((int(outside[r].sum()),), 0.2)))
               for s in range(5) for r in range(8) if batch.targets[r] == 0)
    assert same > 0
    # A batch of one label falls back to any other sample.
    alike = _labelled_backgrounds([1, 1, 1])
    assert other.on_batch_start(TrainState(), alike).randomized.all()


def test_other_label_donors_need_swap_and_class_labels() -> None:
    with pytest.raises(ValueError, match="unknown donors 'nearest'"):
        BackgroundRandomizationCallback(donors="nearest")
    with pytest.raises(ValueError, match="donors='other_label' needs mode 'swap'"):
        BackgroundRandomizationCallback(mode="noise", donors="other_label")
    batch = _labelled_backgrounds([0, 1])
    regression = batch.replace(targets=torch.rand(2, 1))
    with pytest.raises(ValueError, match="donors 'other_label' needs class labels"):
        BackgroundRandomizationCallback(p=1.0, source="masks", donors="other_label").on_batch_start(
            TrainState(), regression)
