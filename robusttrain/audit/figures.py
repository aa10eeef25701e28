"""Pictures of what the dataset audit found, as HTML fragments with inlined thumbnails: backgrounds per cluster
and label, and the samples the out-of-fold estimate finds most misleading (with the model's heat maps)."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..maps import create_map_method
from .report import overlay, png_uri

THUMBNAILS_PER_CELL = 3
TOP_CONFLICTING = 8


def _images(dataset: Any, ids: Sequence[int]) -> dict[int, torch.Tensor]:
    """``id -> (3, H, W)`` image in [0, 1] for the readable ones among ``ids``."""
    position = {r.sample_id: i for i, r in enumerate(dataset.records)}
    found = {}
    for sample in ids:
        try:
            found[sample] = dataset[position[sample]]["image"]
        except (KeyError, OSError, ValueError):
            continue
    return found


def _thumbnail(image: torch.Tensor, caption: str, heat: torch.Tensor | None = None) -> str:
    array = image.permute(1, 2, 0).cpu().numpy()
    if heat is not None:
        array = overlay(array, heat.cpu().numpy())
    return (f"<figure class='thumb'><img alt='{html.escape(caption)}' src='{png_uri(array)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def minority_cells(table: Sequence[Sequence[int]]) -> set[tuple[int, int]]:
    """``(label, cluster)`` cells with samples whose label is not the cluster's most common one."""
    cells = set()
    for cluster in range(len(table[0])):
        column = [row[cluster] for row in table]
        dominant = max(range(len(column)), key=column.__getitem__)
        cells |= {(label, cluster) for label, count in enumerate(column) if count and label != dominant}
    return cells


def cluster_grid(dataset: Any, rows: Sequence[dict[str, Any]], class_names: Sequence[str],
                 table: Sequence[Sequence[int]], per_cell: int = THUMBNAILS_PER_CELL, highlight: bool = True) -> str:
    """A grid with a row per label and a column per background cluster: the cell's count and a few of its
    images; with ``highlight`` (the audit found a bias), cells whose label disagrees with their cluster's usual
    label (the minority) are highlighted."""
    members: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row in rows:
        members[row["label"], row["cluster"]].append(row["id"])
    shown = {cell: ids[:per_cell] for cell, ids in members.items()}
    images = _images(dataset, [i for ids in shown.values() for i in ids])
    highlighted = minority_cells(table) if highlight else set()
    head = "<tr><th>label \\ cluster</th>" + "".join(f"<th>{k}</th>" for k in range(len(table[0]))) + "</tr>"
    body = []
    for label, name in enumerate(class_names):
        cells = []
        for cluster in range(len(table[0])):
            thumbs = "".join(_thumbnail(images[i], f"#{i}") for i in shown.get((label, cluster), []) if i in images)
            style = " class='minority'" if (label, cluster) in highlighted else ""
            cells.append(f"<td{style}><div class='count'>{table[label][cluster]}</div>{thumbs}</td>")
        body.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    legend = ("highlighted cells hold samples whose label is not their cluster's usual one (the minority)" if highlight
              else "no cell is highlighted: the estimate found no bias, so no minority is claimed")
    return ("<h3>Backgrounds by cluster and label</h3><p>Rows are labels, columns background clusters; "
            f"{legend}.</p>"
            f"<table class='clusters'>{head}{''.join(body)}</table>")


def conflicting_lists(dataset: Any, rows: Sequence[dict[str, Any]], class_names: Sequence[str],
                      top: int = TOP_CONFLICTING, model: nn.Module | None = None, method: str = "gradcam") -> str:
    """Per label, the flagged samples whose background most suggests another label (lowest out-of-fold
    probability of their label), with the model's heat maps when a model is given."""
    parts = ["<h3>Most bias-conflicting samples per label</h3><p>The out-of-fold net, which never saw them, gives "
             "their label the lowest probability: what it learned first (the shortcut) points to another class.</p>"]
    map_method = create_map_method(method, model) if model is not None else None
    for label, name in enumerate(class_names):
        flagged = sorted((r for r in rows if r["label"] == label and r["bias_conflicting"]),
                         key=lambda r: r["estimate_p_label"])[:top]
        images = _images(dataset, [r["id"] for r in flagged])
        flagged = [r for r in flagged if r["id"] in images]
        heats: list[torch.Tensor | None] = [None] * len(flagged)
        if map_method is not None and flagged:
            device = next(model.parameters()).device
            batch = torch.stack([images[r["id"]] for r in flagged]).to(device)
            heats = list(map_method(batch)[:, 0])
        tiles = "".join(_thumbnail(images[r["id"]], f"#{r['id']} p(label) {r['estimate_p_label']:.2f}", heat)
                        for r, heat in zip(flagged, heats, strict=True))
        parts.append(f"<h4>{html.escape(name)} ({len(flagged)} shown)</h4><div class='grid'>{tiles or 'none'}</div>")
    return "".join(parts)
