"""What every minority estimate returns, and the rule that calls a split biased.

An estimate predicts each sample's label out of fold from something other than the object (a small network's
first look, or colour statistics of the background); where it beats chance clearly, the samples it gets wrong are
the estimated bias-conflicting minority (a landbird on water).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

BIAS_MARGIN = 0.10  # accuracy this far above chance = something other than the object predicts the label


def label_probability(out_of_fold: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(N,)``: each row's probability of its own label in ``out_of_fold`` ``(N, K)``."""
    return out_of_fold.gather(1, labels[:, None]).squeeze(1)


@dataclass(frozen=True)
class MinorityEstimate:
    """An estimate's out-of-fold view of a labelled set: what it ``looked_at``, ``out_of_fold`` ``(N, K)`` probabilities
    of ``labels``, its accuracy against ``chance`` (the largest class share), the ``margin`` it must clear, and
    whether it does (``biased``; the network estimate also asks that most mistakes be sure ones)."""

    looked_at: str
    labels: torch.Tensor
    out_of_fold: torch.Tensor
    accuracy: float
    chance: float
    margin: float
    biased: bool
    one_label: bool
    sure_mistakes: float | None = None  # the network estimate's share of sure mistakes (None for the colour estimate)
    flag_below: float | None = None  # flag only mistakes giving the label a probability under this (None: all)
    net: nn.Module | None = None  # the network estimate's net (one fold of its first run), for maps

    @property
    def flagged(self) -> torch.Tensor:
        """``(N,)`` bool: samples whose label the estimate gets wrong (estimated bias-conflicting), sure enough where
        ``flag_below`` asks it."""
        wrong = self.out_of_fold.argmax(1) != self.labels
        if self.flag_below is None:
            return wrong
        return wrong & (label_probability(self.out_of_fold, self.labels) < self.flag_below)


def chance_and_margin(labels: torch.Tensor, num_classes: int) -> tuple[float, float]:
    """Chance (the largest class share of ``labels``) and the margin a prediction must clear above it:
    ``max(BIAS_MARGIN, 3 standard errors)``."""
    chance = float(torch.bincount(labels, minlength=num_classes).max()) / len(labels)
    return chance, max(BIAS_MARGIN, 3 * math.sqrt(chance * (1 - chance) / len(labels)))


def judge(looked_at: str, labels: torch.Tensor, num_classes: int,
          predict: Callable[[], torch.Tensor]) -> MinorityEstimate:
    """Run ``predict`` (out-of-fold probabilities) unless there is one label only, and say whether it predicts
    ``labels`` clearly: accuracy at least ``max(BIAS_MARGIN, 3 standard errors)`` above chance."""
    chance, margin = chance_and_margin(labels, num_classes)
    one_label = int((torch.bincount(labels, minlength=num_classes) > 0).sum()) < 2
    out_of_fold = torch.ones(len(labels), num_classes) / num_classes if one_label else predict()
    accuracy = float((out_of_fold.argmax(1) == labels).float().mean())
    biased = accuracy >= chance + margin and not one_label
    return MinorityEstimate(looked_at, labels, out_of_fold, accuracy, chance, margin, biased, one_label)
