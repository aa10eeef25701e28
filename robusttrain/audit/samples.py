"""Per-sample findings of the dataset audit: which samples the shortcut misleads, and a weight for each.

A sample is *estimated bias-conflicting* when the out-of-fold estimate (a small net trained briefly on the other
fold: what a network learns first), gets its label wrong on a split it found biased: its shortcut (background,
mark, texture...) looks like another class's. On biased data these are the
minority groups (a landbird on water) that an ERM model fails on. The suggested weight balances, within each
label, the flagged and the unflagged samples (each half of the label's mass), the group-balanced sampling of
the estimated groups; on data without a clear bias every weight is 1 (the estimate's mistakes are then noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..estimate import balanced_weights
from ..estimate.base import label_probability

Row = dict[str, Any]


def sample_scores(ids: Sequence[int], paths: Sequence[str], labels: torch.Tensor, out_of_fold: torch.Tensor,
                  clusters: torch.Tensor, flagged: torch.Tensor) -> list[Row]:
    """One row per sample: label, background cluster, the estimate's out-of-fold probability of the label and its
    prediction, ``bias_conflicting`` (``flagged``: the estimate's sure mistakes on a split it found biased; without
    a bias its mistakes are noise and nothing is flagged) and the suggested sampling ``weight``."""
    predictions = out_of_fold.argmax(1)
    weights = balanced_weights(labels, flagged) if flagged.any() else torch.ones(len(labels), dtype=torch.float64)
    p_label = label_probability(out_of_fold, labels)
    return [{"id": int(ids[i]), "path": paths[i], "label": int(labels[i]), "cluster": int(clusters[i]),
             "estimate_p_label": round(float(p_label[i]), 5), "estimate_prediction": int(predictions[i]),
             "bias_conflicting": bool(flagged[i]), "weight": round(float(weights[i]), 5)}
            for i in range(len(labels))]
