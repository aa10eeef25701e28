"""Draw weights from an estimated minority: each label's flagged and unflagged samples get equal mass."""

from __future__ import annotations

import torch


def balanced_weights(labels: torch.Tensor, flagged: torch.Tensor) -> torch.Tensor:
    """Weights giving flagged and unflagged samples of each label equal total mass; a label's mass is kept."""
    weights = torch.ones(len(labels), dtype=torch.float64)
    for label in labels.unique():
        rows = labels == label
        total, conflicting = int(rows.sum()), int((rows & flagged).sum())
        if 0 < conflicting < total:
            weights[rows & flagged] = total / (2 * conflicting)
            weights[rows & ~flagged] = total / (2 * (total - conflicting))
    return weights
