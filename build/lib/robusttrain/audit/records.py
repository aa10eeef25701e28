"""The per-sample audit record, one format for the training-time audit callback and ``robusttrain audit``.

Each record says, for one sample: its label and the model's prediction with probabilities, what the model
predicts on the background-only view (the region removed, IN-9 Only-BG-T fill) and on the foreground-only view
(the region on the mean colour), where the region came from (``view_source``: the true ``mask`` or the ``map``),
how much of the image it covers, and map statistics (energy inside the true mask when there is one).
``background_reliance`` is the probability the background-only view keeps the full image's prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..eval.localization import energy_in_mask

Record = dict[str, Any]


def mean_or_none(values: list[float]) -> float | None:
    """The mean, or ``None`` for no values (a summary field the data cannot fill)."""
    return sum(values) / len(values) if values else None


def view_records(
    ids: Sequence[int],
    labels: torch.Tensor,
    full: torch.Tensor,
    on_bg: torch.Tensor,
    on_fg: torch.Tensor,
    regions: torch.Tensor,
    maps: torch.Tensor,
    masks: torch.Tensor | None = None,
    view_source: str = "map",
) -> list[Record]:
    """Records from probabilities ``(B, K)`` on the full image and on both views, the ``regions`` that made the
    views and the ``maps`` ``(B, 1, H, W)`` (``masks`` for the energy in the true object)."""
    labels = labels.long().to(full.device)
    predictions = full.argmax(dim=1)
    rows = torch.arange(len(full), device=full.device)
    picked = {
        "p_label": full[rows, labels], "p_prediction": full[rows, predictions],
        "bg_only_p_label": on_bg[rows, labels], "background_reliance": on_bg[rows, predictions],
        "fg_only_p_label": on_fg[rows, labels], "foreground_support": on_fg[rows, predictions],
    }
    energy = energy_in_mask(maps, masks.to(maps.device)) if masks is not None else None
    width = maps.shape[-1]
    peaks = maps.flatten(1).argmax(dim=1).tolist()
    shares, means = regions.flatten(1).mean(1).tolist(), maps.flatten(1).mean(1).tolist()
    records = []
    for j, sample in enumerate(ids):
        label, prediction = int(labels[j]), int(predictions[j])
        records.append({
            "id": int(sample), "label": label, "prediction": prediction, "correct": label == prediction,
            "bg_only_prediction": int(on_bg[j].argmax()), "fg_only_prediction": int(on_fg[j].argmax()),
            **{key: round(float(value[j]), 5) for key, value in picked.items()},
            "view_source": view_source, "attended_share": round(shares[j], 5), "map_mean": round(means[j], 5),
            "peak_yx": [peaks[j] // width, peaks[j] % width],
            "energy_in_mask": None if energy is None else round(float(energy[j]), 5),
        })
    return records
