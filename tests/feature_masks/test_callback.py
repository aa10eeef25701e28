"""The intentional_masks callback: importances over its window, the transformation from its start, exact resume."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from robusttrain.callbacks import CallbackList, build_callbacks
from robusttrain.feature_masks import IntentionalMaskCallback, find_feature_masks
from robusttrain.models import create_model
from robusttrain.types import Batch, TrainState


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("test_resnet", 2, feature_masks=True, attributes=2, mask_width=8, output_stride=8)


def _batch(step: int) -> Batch:
    generator = torch.Generator().manual_seed(step)
    return Batch(images=torch.rand(8, 3, 32, 32, generator=generator),
                 targets=torch.randint(0, 2, (8, 2), generator=generator).float())


def _train(model, callbacks: CallbackList, state: TrainState, optimizer, steps: range, seen: list) -> None:
    for step in steps:
        batch = callbacks.on_batch_start(state, _batch(step))
        seen.append(find_feature_masks(model).transform is not None)
        outputs = model(batch.images)
        losses = F.binary_cross_entropy_with_logits(outputs, batch.targets, reduction="none").mean(dim=1)
        losses = callbacks.on_loss(state, batch, outputs, losses)
        optimizer.zero_grad()
        losses.mean().backward()
        optimizer.step()
        state.global_step += 1
        callbacks.on_step_end(state)


def _run(steps: range, model=None, state_dict=None, optimizer_state=None):
    model = model or _model()
    callback = IntentionalMaskCallback(start=0.5, window=0.25, top_fraction=0.25)
    callbacks = CallbackList([callback])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    state = TrainState(model=model, total_steps=8, global_step=steps.start)
    if state_dict is not None:
        callbacks.load_state_dict(state_dict)
    callbacks.setup(state)
    model.train()
    seen: list[bool] = []
    _train(model, callbacks, state, optimizer, steps, seen)
    return model, callback, callbacks, optimizer, seen


def test_the_transformation_starts_at_its_fraction_of_training_from_the_window_importances() -> None:
    model, callback, _, _, seen = _run(range(8))
    assert seen == [False] * 4 + [True] * 4  # start 0.5 of 8 steps
    assert callback.importance_count == 2  # steps 2 and 3: the window of 0.25 before the start
    net = find_feature_masks(model)
    assert net.selected.sum(dim=1).tolist() == [24, 24]  # a quarter of the 96 features per attribute
    assert torch.allclose(net.importance, callback.importance_sum / 2)


def test_resume_continues_exactly() -> None:
    straight, *_ = _run(range(8))
    first, _, callbacks, optimizer, _ = _run(range(3))
    saved_model = copy.deepcopy(first.state_dict())
    fresh = _model()
    fresh.load_state_dict(saved_model)
    resumed, *_ = _run(range(3, 8), fresh, callbacks.state_dict(), optimizer.state_dict())
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        if isinstance(a, torch.Tensor):
            assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_a_model_without_feature_masks_and_bad_options_are_named() -> None:
    callbacks = build_callbacks([{"name": "intentional_masks"}])
    with pytest.raises(Exception, match="model has no feature masks"):
        callbacks.setup(TrainState(model=create_model("test_resnet", 2)))
    with pytest.raises(ValueError, match="importance must be one of"):
        build_callbacks([{"name": "intentional_masks", "importance": "saliency"}])
    with pytest.raises(ValueError, match="mode must be one of"):
        build_callbacks([{"name": "intentional_masks", "mode": "boost"}])
    with pytest.raises(ValueError, match="window is a fraction"):
        build_callbacks([{"name": "intentional_masks", "window": 3}])
