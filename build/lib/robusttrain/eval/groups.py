"""Group-robustness metrics: average, per-group and worst-group accuracy (Waterbirds conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def group_accuracy(
    predictions: Sequence[int] | np.ndarray,
    targets: Sequence[int] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    train_group_counts: Sequence[int] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy overall, per group and in the worst group.

    Two "average accuracy" conventions exist for Waterbirds; both are reported when possible:
    ``average_accuracy`` is the plain mean over the evaluated samples (DFR), and
    ``weighted_average_accuracy`` weights each group's accuracy by its share of the *training* set
    (GroupDRO/JTT), given ``train_group_counts`` indexed by group id.

    Returns:
        dict with ``average_accuracy``, ``worst_group_accuracy``, ``worst_group``, ``group_accuracy``
        ``{group: acc}``, ``group_counts`` ``{group: n}`` and, with train counts, ``weighted_average_accuracy``.
        Groups absent from the evaluated samples are left out (they cannot be the worst group).

    Raises:
        ValueError: empty input or inputs of different lengths.

    Example:
        >>> group_accuracy([0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 2, 2])["worst_group_accuracy"]
        0.5
    """
    predictions, targets, groups = (np.asarray(a).reshape(-1) for a in (predictions, targets, groups))
    if not len(predictions) == len(targets) == len(groups):
        raise ValueError(f"predictions, targets and groups differ in length: "
                         f"{len(predictions)}, {len(targets)}, {len(groups)}")
    if len(predictions) == 0:
        raise ValueError("cannot compute accuracy of an empty set of predictions")
    correct = predictions == targets
    per_group = {int(g): float(correct[groups == g].mean()) for g in np.unique(groups)}
    counts = {int(g): int((groups == g).sum()) for g in per_group}
    worst = min(per_group, key=lambda g: (per_group[g], g))
    result: dict[str, Any] = {
        "average_accuracy": float(correct.mean()),
        "worst_group_accuracy": per_group[worst],
        "worst_group": worst,
        "group_accuracy": per_group,
        "group_counts": counts,
    }
    if train_group_counts is not None:
        weights = np.asarray(train_group_counts, dtype=np.float64)
        covered = [g for g in per_group if g < len(weights) and weights[g] > 0]
        total = weights[covered].sum()
        if total > 0:
            result["weighted_average_accuracy"] = float(sum(weights[g] * per_group[g] for g in covered) / total)
    return result
