"""The joint-attention-head objective: per-sample terms, gradients to both networks, options, errors."""

from __future__ import annotations

import pytest
import torch

from robusttrain.callbacks import JointAttentionCallback, build_callbacks
from robusttrain.models import create_model
from robusttrain.types import Batch, TrainState


def _setup(num_outputs: int = 2, **options):
    torch.manual_seed(0)
    model = create_model("test_resnet", num_outputs, attention_head=True, head_width=8)
    callback = JointAttentionCallback(**options)
    return model, callback, TrainState(model=model)


def _regression_batch() -> Batch:
    return Batch(images=torch.rand(4, 3, 32, 32), targets=torch.randn(4, 2), indices=torch.arange(4))


def test_per_sample_objective_and_gradients_reach_task_model_and_head() -> None:
    model, callback, state = _setup()
    batch = _regression_batch()
    outputs = model(batch.images)
    losses = (outputs - batch.targets).pow(2).mean(1)
    total = callback.on_loss(state, batch, outputs, losses)
    assert total.shape == (4,) and torch.all(total >= losses)
    total.mean().backward()
    assert model.attention_head.body[0].weight.grad.abs().sum() > 0
    assert model.task_model.backbone.fc.weight.grad.abs().sum() > 0
    assert 0 < state.metrics["joint_attention/background_area"] < 1


def test_without_the_background_term_only_the_area_prior_is_added() -> None:
    model, callback, state = _setup(task_weight=2.0, background_weight=0.0, area_weight=3.0, background_area=0.9)
    batch = _regression_batch()
    outputs = model(batch.images)
    losses = torch.rand(4)
    total = callback.on_loss(state, batch, outputs, losses)
    with torch.no_grad():
        background = 1 - model.attention(batch.images).flatten(1).mean(1)
    torch.testing.assert_close(total, 2 * losses + 3 * (background - 0.9) ** 2)


def test_before_start_step_only_the_task_loss_trains_and_the_head_gets_no_gradient() -> None:
    model, callback, state = _setup(task_weight=2.0, start_step=3)
    batch = _regression_batch()
    for step, started in [(0, False), (2, False), (3, True)]:
        state.global_step = step
        model.zero_grad(set_to_none=True)
        outputs = model(batch.images)
        losses = (outputs - batch.targets).pow(2).mean(1)
        total = callback.on_loss(state, batch, outputs, losses)
        total.mean().backward()
        assert (model.attention_head.body[0].weight.grad is not None) == started
        if not started:
            torch.testing.assert_close(total, 2 * losses)


def test_with_several_processes_the_head_gets_zero_gradients_before_start_step() -> None:
    model, callback, state = _setup(start_step=3)
    state.world_size = 2  # DDP needs a gradient for every parameter
    batch = _regression_batch()
    outputs = model(batch.images)
    losses = (outputs - batch.targets).pow(2).mean(1)
    total = callback.on_loss(state, batch, outputs, losses)
    torch.testing.assert_close(total, losses)
    total.mean().backward()
    grad = model.attention_head.body[0].weight.grad
    assert grad is not None and not grad.any()


@pytest.mark.parametrize("replacement", ["noise", "swap", "mean"])
@pytest.mark.parametrize("blend", ["soft", "sample"])
def test_classification_with_every_replacement_and_blend(replacement: str, blend: str) -> None:
    model, callback, state = _setup(num_outputs=3, replacement=replacement, blend=blend, match="target")
    batch = Batch(images=torch.rand(4, 3, 32, 32), targets=torch.tensor([0, 1, 2, 1]))
    outputs = model(batch.images)
    losses = torch.nn.functional.cross_entropy(outputs, batch.targets, reduction="none")
    total = callback.on_loss(state, batch, outputs, losses)
    assert total.shape == (4,) and torch.isfinite(total).all()


def test_logit_matching_is_zero_when_the_head_keeps_everything() -> None:
    model, callback, state = _setup(num_outputs=3, match="logits", area_weight=0.0, blend="soft")
    torch.nn.init.zeros_(model.attention_head.body[-1].weight)
    torch.nn.init.constant_(model.attention_head.body[-1].bias, 30.0)  # W = 1 everywhere
    model.eval()
    batch = Batch(images=torch.rand(4, 3, 32, 32), targets=torch.tensor([0, 1, 2, 1]))
    outputs = model(batch.images)
    total = callback.on_loss(state, batch, outputs, torch.zeros(4))
    torch.testing.assert_close(total, torch.zeros(4), atol=1e-6, rtol=0)


def test_bad_options_and_missing_head_are_named() -> None:
    with pytest.raises(ValueError, match="unknown background replacement 'blur'"):
        JointAttentionCallback(replacement="blur")
    with pytest.raises(ValueError, match="S_R"):
        JointAttentionCallback(background_area=1.5)
    with pytest.raises(ValueError, match="unknown blend"):
        JointAttentionCallback(blend="hard")
    with pytest.raises(ValueError, match="start_step"):
        JointAttentionCallback(start_step=-1)
    with pytest.raises(ValueError, match="unknown callback 'joint'"):
        build_callbacks([{"name": "joint"}])
    callback = build_callbacks([{"name": "joint_attention", "background_area": 0.9}])
    plain = create_model("test_resnet", 2)
    batch = _regression_batch()
    with pytest.raises(Exception, match="no attention head"):
        callback.on_loss(TrainState(model=plain), batch, plain(batch.images), torch.zeros(4))
