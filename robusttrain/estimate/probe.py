"""The label-free minority estimate: a linear probe that predicts each sample's label from its background alone,
out of fold. Where it predicts labels clearly above chance, the samples it gets wrong are the estimated
bias-conflicting minority (a landbird on water). Shared by the training callbacks (``probe_weights``) and the
dataset audit (``robusttrain audit``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .features import LOOKS_AT

BIAS_MARGIN = 0.10  # probe accuracy this far above chance = the background predicts the label


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
                 steps: int) -> torch.nn.Linear:
    """Multinomial logistic regression with an L2 penalty, fitted by L-BFGS."""
    linear = torch.nn.Linear(x.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), y) + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


def fit_standardised(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
                     steps: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`fit_logistic` on ``x`` standardised by its own mean and spread; returns raw features -> logits."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    linear = fit_logistic((x - mean) / std, y, num_classes, weight_decay, steps)
    return lambda features: linear((features - mean) / std)


def probe_out_of_fold(features: torch.Tensor, labels: torch.Tensor, folds: int = 5, seed: int = 0,
                      weight_decay: float = 1e-3, steps: int = 200) -> torch.Tensor:
    """Class probabilities ``(N, K)`` of a multinomial logistic regression on standardised features, each row
    predicted by the fold that did not train on it."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    num_classes = int(labels.max()) + 1
    probabilities = torch.zeros(len(labels), num_classes)
    for fold in range(folds):
        held = order[fold::folds]
        kept = torch.cat([order[f::folds] for f in range(folds) if f != fold])
        score = fit_standardised(features[kept], labels[kept], num_classes, weight_decay, steps)
        with torch.no_grad():
            probabilities[held] = score(features[held]).softmax(1)
    return probabilities


def label_probability(out_of_fold: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(N,)``: each row's probability of its own label in ``out_of_fold`` ``(N, K)``."""
    return out_of_fold.gather(1, labels[:, None]).squeeze(1)


@dataclass(frozen=True)
class MinorityEstimate:
    """A probe's out-of-fold view of a labelled set: what it ``looked_at``, ``out_of_fold`` ``(N, K)`` probabilities
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
    sure_mistakes: float | None = None  # the network estimate's share of sure mistakes (None for the colour probe)
    flag_below: float | None = None  # flag only mistakes giving the label a probability under this (None: all)

    @property
    def flagged(self) -> torch.Tensor:
        """``(N,)`` bool: samples whose label the probe gets wrong (estimated bias-conflicting), sure enough where
        ``flag_below`` asks it."""
        wrong = self.out_of_fold.argmax(1) != self.labels
        if self.flag_below is None:
            return wrong
        return wrong & (label_probability(self.out_of_fold, self.labels) < self.flag_below)


def judge(looked_at: str, labels: torch.Tensor, num_classes: int,
          predict: Callable[[], torch.Tensor]) -> MinorityEstimate:
    """Run ``predict`` (out-of-fold probabilities) unless there is one label only, and say whether it predicts
    ``labels`` clearly: accuracy at least ``max(BIAS_MARGIN, 3 standard errors)`` above chance."""
    counts = torch.bincount(labels, minlength=num_classes)
    chance = float(counts.max()) / len(labels)
    one_label = int((counts > 0).sum()) < 2
    out_of_fold = torch.ones(len(labels), num_classes) / num_classes if one_label else predict()
    accuracy = float((out_of_fold.argmax(1) == labels).float().mean())
    margin = max(BIAS_MARGIN, 3 * math.sqrt(chance * (1 - chance) / len(labels)))
    biased = accuracy >= chance + margin and not one_label
    return MinorityEstimate(looked_at, labels, out_of_fold, accuracy, chance, margin, biased, one_label)


def estimate_minority(features: torch.Tensor, labels: torch.Tensor, num_classes: int, seed: int = 0,
                      looked_at: str = LOOKS_AT) -> MinorityEstimate:
    """Fit the linear probe out of fold on background ``features`` (:func:`~.features.background_features`) and
    say whether the background predicts ``labels`` (:func:`judge`)."""
    return judge(looked_at, labels, num_classes, lambda: probe_out_of_fold(features, labels, seed=seed))
