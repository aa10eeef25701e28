"""GroupDRO (Sagawa et al., 2020) as a callback: a peer that uses *training group labels*, the reference a
label-free method tries to reach. The group weights and their exponentiated-gradient update are spuco's
(``spuco.robust_train.group_dro.GroupWeightedLoss``, optional extra ``peers``); this callback only turns spuco's
scalar loss into the per-sample losses the callback contract passes on.
"""

from __future__ import annotations

from typing import Any

import torch

from ..peers.spuco import from_spuco
from ..types import Batch, TrainState
from .base import Callback
from .registry import CALLBACKS


@CALLBACKS.register("group_dro")
class GroupDROCallback(Callback):
    """Per-sample losses ``q_g * B / n_g * loss_i``, whose mean is spuco's ``sum_g q_g * mean_{i in g} loss_i``.

    Args:
        num_groups: how many groups the data has (``Batch.groups`` in ``[0, num_groups)``).
        step_size: the group weights' learning rate (spuco's ``group_weight_lr``).

    Raises:
        ValueError: a batch without group labels, or a group id outside ``[0, num_groups)``.
    """

    order = 30

    def __init__(self, num_groups: int, step_size: float = 0.01, **options: Any) -> None:
        super().__init__(**options)
        if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
            raise ValueError(f"num_groups must be a positive integer, got {num_groups!r}")
        if isinstance(step_size, bool) or not isinstance(step_size, (int, float)) or not step_size > 0:
            raise ValueError(f"step_size must be a positive number, got {step_size!r}")
        self.num_groups = num_groups
        (GroupWeightedLoss,) = from_spuco("spuco.robust_train.group_dro", "GroupWeightedLoss")
        self.loss = GroupWeightedLoss(torch.nn.CrossEntropyLoss(reduction="none"), num_groups, float(step_size))

    def check(self, state: TrainState, batch: Batch) -> None:
        if batch.groups is None:
            raise ValueError("group_dro needs group labels: the dataset must give each sample a 'group'")

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if batch.groups is None:
            raise ValueError("group_dro needs group labels: the dataset must give each sample a 'group'")
        groups = batch.groups.to(losses.device).long()
        if groups.min() < 0 or groups.max() >= self.num_groups:
            raise ValueError(f"group ids must lie in [0, {self.num_groups}), got {sorted(groups.unique().tolist())}")
        self.loss.group_weights = self.loss.group_weights.to(losses.device)
        counts = torch.bincount(groups, minlength=self.num_groups).to(losses.dtype)
        sums = torch.zeros(self.num_groups, dtype=losses.dtype, device=losses.device)
        sums.index_add_(0, groups, losses.detach())
        self.loss.update_group_weights(sums / counts.clamp_min(1))  # spuco's exponentiated-gradient step
        weights = self.loss.group_weights[groups] * len(losses) / counts[groups]
        return losses * weights

    def state_dict(self) -> dict[str, Any]:
        return {"group_weights": self.loss.group_weights.tolist()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss.group_weights = torch.tensor(state_dict["group_weights"])
