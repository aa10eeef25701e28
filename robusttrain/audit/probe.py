"""Dataset audit without a trained model: how much of the label the background alone predicts.

Each image is reduced to statistics of its background pixels only (colour means and spreads, a joint colour
histogram, edge density): outside the dilated true mask when there is one, otherwise a border frame of a
sixth of the image (objects are usually central). A linear probe is cross-validated on these features; if
it predicts the label clearly above chance, the background carries the label. Backgrounds are also
clustered (k-means) and the label x cluster table summarised with Cramer's V.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .loading import NoReadableImages
from .samples import sample_scores

HISTOGRAM_BINS = 4
BIAS_MARGIN = 0.10  # probe accuracy this far above chance = the background predicts the label


def background_region(images: torch.Tensor, masks: torch.Tensor | None, dilate: int = 2) -> torch.Tensor:
    """``(B, 1, H, W)`` bool: pixels that are background (outside the dilated mask, or the border frame)."""
    if masks is not None:
        grown = F.max_pool2d((masks > 0.5).float(), 2 * dilate + 1, stride=1, padding=dilate)
        return grown < 0.5
    height, width = images.shape[-2:]
    band_y, band_x = max(1, height // 6), max(1, width // 6)
    region = torch.ones(images.shape[0], 1, height, width, dtype=torch.bool, device=images.device)
    region[..., band_y : height - band_y, band_x : width - band_x] = False
    return region


def background_features(images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image statistics of the background pixels, ``(B, 6 + bins^3 + 2)``."""
    region = background_region(images, masks).float()
    count = region.flatten(1).sum(1).clamp_min(1)
    mean = (images * region).flatten(2).sum(2) / count[:, None]
    spread = (((images - mean[..., None, None]) ** 2 * region).flatten(2).sum(2) / count[:, None]).sqrt()
    bins = (images.clamp(0, 1 - 1e-6) * HISTOGRAM_BINS).long()
    codes = (bins[:, 0] * HISTOGRAM_BINS + bins[:, 1]) * HISTOGRAM_BINS + bins[:, 2]
    histogram = torch.zeros(len(images), HISTOGRAM_BINS**3, device=images.device)
    histogram.scatter_add_(1, codes.flatten(1), region.flatten(1))
    histogram = histogram / count[:, None]
    grey = images.mean(1, keepdim=True)
    vertical = (grey[..., 1:, :] - grey[..., :-1, :]).abs()[..., :, 1:]
    edges = vertical + (grey[..., 1:] - grey[..., :-1]).abs()[..., 1:, :]
    inner = region[..., 1:, 1:]
    edge_count = inner.flatten(1).sum(1).clamp_min(1)
    edge_mean = (edges * inner).flatten(1).sum(1) / edge_count
    edge_spread = (((edges - edge_mean[:, None, None, None]) ** 2) * inner).flatten(1).sum(1) / edge_count
    return torch.cat([mean, spread, histogram, edge_mean[:, None], edge_spread.sqrt()[:, None]], dim=1)


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


@dataclass(frozen=True)
class MinorityEstimate:
    """The background probe's out-of-fold view of a labelled set: ``out_of_fold`` ``(N, K)`` probabilities of
    ``labels``, its accuracy against ``chance`` (the largest class share), the ``margin`` it must clear, and whether
    it does (``biased``)."""

    labels: torch.Tensor
    out_of_fold: torch.Tensor
    accuracy: float
    chance: float
    margin: float
    biased: bool
    one_label: bool

    @property
    def flagged(self) -> torch.Tensor:
        """``(N,)`` bool: samples whose label the probe gets wrong (estimated bias-conflicting)."""
        return self.out_of_fold.argmax(1) != self.labels


def estimate_minority(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                      seed: int = 0) -> MinorityEstimate:
    """Fit the probe out of fold on background ``features`` and say whether the background predicts ``labels``
    (accuracy at least ``max(BIAS_MARGIN, 3 standard errors)`` above chance)."""
    counts = torch.bincount(labels, minlength=num_classes)
    chance = float(counts.max()) / len(labels)
    one_label = int((counts > 0).sum()) < 2
    out_of_fold = (torch.ones(len(labels), num_classes) / num_classes if one_label
                   else probe_out_of_fold(features, labels, seed=seed))
    accuracy = float((out_of_fold.argmax(1) == labels).float().mean())
    margin = max(BIAS_MARGIN, 3 * math.sqrt(chance * (1 - chance) / len(labels)))
    biased = accuracy >= chance + margin and not one_label
    return MinorityEstimate(labels, out_of_fold, accuracy, chance, margin, biased, one_label)


class BackgroundProbe:
    """A label predictor from border-frame background features, fitted on one split (the biased training split)
    and applied to another: which label each image's background suggests."""

    def __init__(self, batches: Iterable[dict[str, Any]], weight_decay: float = 1e-3, steps: int = 200) -> None:
        features, labels = [], []
        for batch in batches:
            features.append(background_features(batch["image"]))
            labels.append(batch["target"])
        if not features:
            raise NoReadableImages("background probe got no readable images")
        y = torch.cat(labels).long()
        self.score = fit_standardised(torch.cat(features), y, int(y.max()) + 1, weight_decay, steps)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The label each image's background suggests, ``(B,)``."""
        return self.score(background_features(images)).argmax(1)


def kmeans(features: torch.Tensor, clusters: int, seed: int = 0, steps: int = 50) -> torch.Tensor:
    """Cluster index per row (k-means++ initialisation, Lloyd iterations) on standardised features."""
    x = (features - features.mean(0)) / features.std(0).clamp_min(1e-6)
    generator = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=generator)]
    while len(centres) < clusters:
        distance = torch.cdist(x, centres).min(1).values.pow(2)
        centres = torch.cat([centres, x[torch.multinomial(distance + 1e-12, 1, generator=generator)]])
    for _ in range(steps):
        assignment = torch.cdist(x, centres).argmin(1)
        centres = torch.stack([x[assignment == k].mean(0) if (assignment == k).any() else centres[k]
                               for k in range(clusters)])
    return torch.cdist(x, centres).argmin(1)


def cramers_v(table: torch.Tensor) -> float:
    """Association of a contingency table in [0, 1] (0 = independent)."""
    table = table.double()
    total = table.sum()
    expected = table.sum(1, keepdim=True) * table.sum(0, keepdim=True) / total
    chi2 = ((table - expected) ** 2 / expected.clamp_min(1e-12)).sum()
    k = min(table.shape) - 1
    return float((chi2 / (total * k)).sqrt()) if k > 0 else 0.0


def dataset_audit(batches: Iterable[dict[str, Any]], num_classes: int, clusters: int = 8,
                  seed: int = 0) -> dict[str, Any]:
    """Probe accuracy vs chance, the label x background-cluster table, a verdict line, and per sample
    (``samples``): its background cluster and the probe's out-of-fold view of it (:mod:`.samples`)."""
    features, labels, ids, paths, sources = [], [], [], [], set()
    for batch in batches:
        features.append(background_features(batch["image"], batch.get("mask")))
        labels.append(batch["target"])
        ids += batch["index"].tolist()
        paths += batch["path"]
        sources.add("mask" if batch.get("mask") is not None else "border")
    if not features:
        raise NoReadableImages("dataset audit got no readable images")
    x, y = torch.cat(features), torch.cat(labels).long()
    estimate = estimate_minority(x, y, num_classes, seed)
    out_of_fold, accuracy, chance, one_label = (estimate.out_of_fold, estimate.accuracy, estimate.chance,
                                                estimate.one_label)
    margin, biased = estimate.margin, estimate.biased
    counts = torch.bincount(y, minlength=num_classes)
    assignment = kmeans(x, min(clusters, max(2, len(y) // 20)), seed=seed)
    table = torch.zeros(num_classes, int(assignment.max()) + 1, dtype=torch.long)
    table.index_put_((y, assignment), torch.ones_like(y), accumulate=True)
    verdict = (f"{'BIASED' if biased else 'no clear bias'}: the background alone predicts the label with "
               f"{100 * accuracy:.1f}% accuracy vs {100 * chance:.1f}% chance")
    if one_label:
        verdict = f"nothing to audit: all {len(y)} samples have one label, which no background can predict"
    return {"samples": len(y), "probe_accuracy": accuracy, "chance": chance, "margin": margin, "biased": biased,
            "background_from": sorted(sources), "label_counts": counts.tolist(),
            "cluster_table": table.tolist(), "cramers_v": cramers_v(table), "verdict": verdict,
            "per_sample": sample_scores(ids, paths, y, out_of_fold, assignment, biased)}
