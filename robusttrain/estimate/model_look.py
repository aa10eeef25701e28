"""The second look: the user's own model's mistakes on the training set, early in its run (JTT's premise).

A shortcut that the estimate's brief net does not learn may still be what the user's model learns first. Where the
estimate before training found no bias, the model's predictions on each training sample during the first part of
the run are judged by the network estimate's rule: biased when the model clears chance by the margin and enough of
its mistakes are near-certain ones (a model that read a shortcut is sure where the shortcut points elsewhere; one
that is still learning the object hesitates); the flags are its near-certain mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import chance_and_margin
from .network import ESTIMATE, NetworkSettings


@dataclass(frozen=True)
class ModelLook:
    """What the model's own predictions say: its ``accuracy`` on the training samples against ``chance`` and
    ``margin``, the share of its mistakes that are ``sure`` ones, whether that makes the split ``biased``, and the
    ``flagged`` samples ``(N,)`` (its near-certain mistakes; none without bias)."""

    accuracy: float
    chance: float
    margin: float
    mistakes: int
    sure: float
    biased: bool
    flagged: torch.Tensor


def judge_model_predictions(labels: torch.Tensor, correct: torch.Tensor, label_probability: torch.Tensor,
                            num_classes: int, settings: NetworkSettings = ESTIMATE) -> ModelLook:
    """Judge the model's predictions of ``labels`` (``correct`` bool and the probability it gave each sample's own
    label, both ``(N,)``) by the network estimate's rule (``settings``: sure and flag thresholds over K)."""
    chance, margin = chance_and_margin(labels, num_classes)
    accuracy = float(correct.float().mean())
    wrong = ~correct
    mistakes = int(wrong.sum())
    sure_below = settings.sure_probability / num_classes
    sure = float((label_probability[wrong] < sure_below).float().mean()) if mistakes else 0.0
    biased = accuracy >= chance + margin and mistakes > 0 and sure >= settings.sure_share
    flag_below = settings.flag_probability if settings.flag_probability is not None else 1.0
    flagged = wrong & (label_probability < flag_below / num_classes) & biased
    return ModelLook(accuracy, chance, margin, mistakes, sure, biased, flagged)
