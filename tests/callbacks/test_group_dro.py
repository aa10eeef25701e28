"""GroupDRO callback: the loss spuco's GroupWeightedLoss gives, as per-sample losses, with resumable weights."""

from __future__ import annotations

import pytest
import torch
from spuco.robust_train.group_dro import GroupWeightedLoss  # installed by `make test` (extra `peers`)

from robusttrain.callbacks import GroupDROCallback, build_callbacks
from robusttrain.types import Batch, TrainState


def _batch(groups: list[int]) -> Batch:
    return Batch(images=torch.zeros(len(groups), 3, 8, 8), targets=torch.tensor(groups) % 2,
                 indices=torch.arange(len(groups)), groups=torch.tensor(groups))


def test_per_sample_losses_average_to_spucos_group_weighted_loss() -> None:
    torch.manual_seed(0)
    groups = [0, 0, 0, 0, 0, 1, 1, 2, 3, 3]
    outputs, batch = torch.randn(10, 2), _batch(groups)
    reference = GroupWeightedLoss(torch.nn.CrossEntropyLoss(reduction="none"), 4, 0.01)
    callback = GroupDROCallback(num_groups=4, step_size=0.01)
    for _ in range(3):  # the weights evolve the same way step after step
        expected = reference(outputs, batch.targets, batch.groups)
        losses = torch.nn.functional.cross_entropy(outputs, batch.targets, reduction="none")
        weighted = callback.on_loss(TrainState(), batch, outputs, losses)
        assert weighted.shape == (10,) and weighted.mean() == pytest.approx(float(expected), rel=1e-5)
    assert torch.allclose(callback.loss.group_weights, reference.group_weights)


def test_the_worst_group_gains_weight_and_the_state_resumes() -> None:
    callback = GroupDROCallback(num_groups=2, step_size=0.5)
    batch = _batch([0, 0, 1, 1])
    for _ in range(5):
        callback.on_loss(TrainState(), batch, torch.zeros(4, 2), torch.tensor([0.1, 0.1, 2.0, 2.0]))
    weights = callback.loss.group_weights
    assert weights[1] > 0.9 and weights.sum() == pytest.approx(1.0)
    restored = build_callbacks([{"name": "group_dro", "num_groups": 2}]).callbacks[0]
    restored.load_state_dict(callback.state_dict())
    assert torch.allclose(restored.loss.group_weights, weights)


def test_bad_groups_and_options_are_named() -> None:
    callback = GroupDROCallback(num_groups=2)
    with pytest.raises(ValueError, match=r"group ids must lie in \[0, 2\), got \[0, 5\]"):
        callback.on_loss(TrainState(), _batch([0, 5]), torch.zeros(2, 2), torch.ones(2))
    no_groups = Batch(images=torch.zeros(2, 3, 8, 8), targets=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="group_dro needs group labels"):
        callback.on_loss(TrainState(), no_groups, torch.zeros(2, 2), torch.ones(2))
    with pytest.raises(ValueError, match="num_groups must be a positive integer"):
        GroupDROCallback(num_groups=0)
