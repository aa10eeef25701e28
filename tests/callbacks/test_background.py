from __future__ import annotations

import pytest
import torch

from robusttrain.callbacks import BackgroundRandomizationCallback, CallbackList
from robusttrain.transforms import MODES
from robusttrain.types import Batch, TrainState

from ..attention.models import RedDetector, red_square_scenes


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
