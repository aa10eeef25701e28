"""Dataset audit without a trained model: does something other than the object predict the label?

Two checks of the training estimate (:mod:`robusttrain.estimate`), both out of fold:

- the deciding one: a small CNN trained briefly on the whole images, the very estimate the default callback makes
  before training (:data:`~robusttrain.estimate.network.ESTIMATE`: one answer about one dataset). A
  shortcut of any kind (colour, texture, layout, a small mark, context) is what a network learns first; where the
  nets predict labels clearly above chance and enough of their mistakes are near-certain ones, the split is biased
  and their confident mistakes are the flagged minority;
- the cheap first look: a linear probe on statistics of the background pixels (colour means and spreads, a joint
  colour histogram, edge density; outside the dilated true mask when there is one, else a border frame of a sixth
  of the image), reported next to it. Backgrounds are clustered on these statistics (k-means) and the label x
  cluster table summarised with Cramer's V.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..estimate import (
    LOOKS_AT_COLOUR,
    background_features,
    estimate_minority_colour,
    estimate_minority_network,
    thumbnails,
)
from ..estimate.base import MinorityEstimate
from ..estimate.network import ESTIMATE, as_input, fit_shortcut_net
from .loading import NoReadableImages
from .samples import sample_scores


class ShortcutPredictor:
    """What a network learns first from one split (the biased training split: :func:`fit_shortcut_net`), applied
    to another: which label each image's shortcut suggests."""

    def __init__(self, batches: Iterable[dict[str, Any]], seed: int = 0) -> None:
        images, labels = [], []
        for batch in batches:
            images.append(thumbnails(batch["image"]))
            labels.append(batch["target"])
        if not images:
            raise NoReadableImages("the shortcut predictor got no readable images")
        y = torch.cat(labels).long()
        self.net = fit_shortcut_net(torch.cat(images), y, int(y.max()) + 1, seed)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The label each image's shortcut suggests, ``(B,)``."""
        return self.net(as_input(thumbnails(images))).argmax(1)


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
    """Both checks' accuracy vs chance, the label x background-cluster table, a verdict line naming what was
    checked, per sample (``per_sample``) its background cluster and the network's out-of-fold view of it
    (:mod:`.samples`), and ``shortcut_net``: one of the estimate's own nets, for the report's maps of what it
    reads (None with one label)."""
    features, images, labels, ids, paths, sources = [], [], [], [], [], set()
    for batch in batches:
        features.append(background_features(batch["image"], batch.get("mask")))
        images.append(thumbnails(batch["image"], ESTIMATE.side))
        labels.append(batch["target"])
        ids += batch["index"].tolist()
        paths += batch["path"]
        sources.add("mask" if batch.get("mask") is not None else "border")
    if not features:
        raise NoReadableImages("dataset audit got no readable images")
    x, y = torch.cat(features), torch.cat(labels).long()
    looked_at = LOOKS_AT_COLOUR if sources == {"border"} else "colour statistics of the background outside the masks"
    colour = estimate_minority_colour(x, y, num_classes, seed, looked_at)
    network = estimate_minority_network(torch.cat(images), y, num_classes, seed, settings=ESTIMATE)
    counts = torch.bincount(y, minlength=num_classes)
    assignment = kmeans(x, min(clusters, max(2, len(y) // 20)), seed=seed)
    table = torch.zeros(num_classes, int(assignment.max()) + 1, dtype=torch.long)
    table.index_put_((y, assignment), torch.ones_like(y), accumulate=True)
    verdict = _verdict(network, colour)
    if network.one_label:
        verdict = f"nothing to audit: all {len(y)} samples have one label, which no background can predict"
    return {"checked": f"{network.looked_at}; {colour.looked_at}", "samples": len(y),
            "estimate_accuracy": network.accuracy, "chance": network.chance, "margin": network.margin,
            "sure_mistakes": network.sure_mistakes, "biased": network.biased,
            "colour_probe": {"looked_at": colour.looked_at, "accuracy": colour.accuracy, "biased": colour.biased},
            "background_from": sorted(sources), "label_counts": counts.tolist(),
            "cluster_table": table.tolist(), "cramers_v": cramers_v(table), "verdict": verdict,
            "per_sample": sample_scores(ids, paths, y, network.out_of_fold, assignment,
                                       network.flagged & network.biased),
            "shortcut_net": network.net}


def _verdict(network: MinorityEstimate, colour: MinorityEstimate) -> str:
    """One line: biased or not by the network check, with what each check found."""
    sure = "n/a" if network.sure_mistakes is None else f"{100 * network.sure_mistakes:.0f}%"
    figures = (f"{network.looked_at} predicts the label with {100 * network.accuracy:.1f}% accuracy vs "
               f"{100 * network.chance:.1f}% chance, {sure} of its mistakes near-certain (label probability under "
               f"{ESTIMATE.sure_probability:g}/K); a linear probe on "
               f"{colour.looked_at} reaches {100 * colour.accuracy:.1f}%")
    if network.biased:
        return f"BIASED: {figures}"
    return (f"no bias found ({figures}); this check does not see a shortcut that a network "
            "learns only after a few passes over the data")
