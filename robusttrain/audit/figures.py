"""Pictures of what the dataset audit found, as HTML fragments with inlined thumbnails: backgrounds per cluster
and label, where the estimate's net finds the shortcut, and the samples the out-of-fold estimate finds most
misleading (with the model's heat maps)."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..estimate import thumbnails
from ..estimate.network import as_input
from ..maps import Occlusion, create_map_method
from .report import overlay, png_uri

THUMBNAILS_PER_CELL = 3
TOP_CONFLICTING = 8
SHORTCUT_EXAMPLES = 4  # typical and flagged samples mapped per label
FAINT = 0.05  # a largest fall in probability under this: no single region decides


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


def _thumbnail(image: torch.Tensor, caption: str, heat: torch.Tensor | None = None, size: str = "thumb") -> str:
    """An inlined image (``size``: the CSS class, ``thumb`` 64 px or ``large`` 128 px) with a caption."""
    array = image.permute(1, 2, 0).cpu().numpy()
    if heat is not None:
        array = overlay(array, heat.cpu().numpy())
    return (f"<figure class='{size}'><img alt='{html.escape(caption)}' src='{png_uri(array)}'>"
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


def _most_conflicting(rows: Sequence[dict[str, Any]], label: int) -> list[dict[str, Any]]:
    """``label``'s flagged samples, those whose background most suggests another label (lowest out-of-fold
    probability of their label) first."""
    return sorted((r for r in rows if r["label"] == label and r["bias_conflicting"]),
                  key=lambda r: r["estimate_p_label"])


def conflicting_lists(dataset: Any, rows: Sequence[dict[str, Any]], class_names: Sequence[str],
                      top: int = TOP_CONFLICTING, model: nn.Module | None = None, method: str = "gradcam") -> str:
    """Per label, the flagged samples whose background most suggests another label (lowest out-of-fold
    probability of their label), with the model's heat maps when a model is given."""
    parts = ["<h3>Most bias-conflicting samples per label</h3><p>The out-of-fold net, which never saw them, gives "
             "their label the lowest probability: what it learned first (the shortcut) points to another class.</p>"]
    map_method = create_map_method(method, model) if model is not None else None
    for label, name in enumerate(class_names):
        flagged = _most_conflicting(rows, label)[:top]
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


def shortcut_maps(dataset: Any, rows: Sequence[dict[str, Any]], class_names: Sequence[str], net: nn.Module,
                  side: int, per_label: int = SHORTCUT_EXAMPLES) -> str:
    """Where the shortcut is: occlusion maps of the estimate's ``net`` (reading thumbnails of ``side`` px) for
    each label's most typical samples (highest out-of-fold probability of their label; mapped for that label)
    and its flagged ones (mapped for the label the out-of-fold net gave them). Where filling a patch moves the
    answer (a mark, a context object) the map shows that fall; where none does (a colour, a texture, a scene)
    it shows what each patch alone keeps."""
    fill = Occlusion(net, mode="fill", scale="probability")
    keep = Occlusion(net, mode="keep", scale="probability")
    parts = ["<h3>Where the shortcut is: what the estimate's net reads</h3><p>Maps of the small net the estimate "
             "trains, for the label named under each image. Where filling a patch with the image's mean colour "
             "lowers the net's probability of that label by at least "
             f"{FAINT:g}, the map shows that fall (a mark or a context object shows as a hot spot; the caption "
             "gives the largest fall). Where no patch does, the evidence is spread over the image (a colour, a "
             "texture, a scene): the map then shows the probability each patch keeps when it alone is left and "
             "the rest is filled (the caption gives its mean).</p>"]
    for label, name in enumerate(class_names):
        typical = sorted((r for r in rows if r["label"] == label and not r["bias_conflicting"]),
                         key=lambda r: -r["estimate_p_label"])
        for title, chosen, explained in (("typical", typical[:per_label], "label"),
                                         ("flagged", _most_conflicting(rows, label)[:per_label],
                                          "estimate_prediction")):
            images = _images(dataset, [r["id"] for r in chosen])
            chosen = [r for r in chosen if r["id"] in images]
            if not chosen:
                continue
            batch = torch.stack([images[r["id"]] for r in chosen])
            small = as_input(thumbnails(batch, side)).contiguous()
            targets = torch.tensor([r[explained] for r in chosen])
            falls, kept = fill(small, targets), keep(small, targets)
            tiles = []
            for i, (row, target) in enumerate(zip(chosen, targets.tolist(), strict=True)):
                peak = float(falls[i].max())
                if peak >= FAINT:
                    heat, caption = falls[i] / peak, f"a patch filled: -{peak:.2f}"
                else:
                    heat, caption = kept[i], f"spread: a patch alone keeps {float(kept[i].mean()):.2f}"
                heat = F.interpolate(heat[None], size=batch.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
                tiles.append(_thumbnail(images[row["id"]], f"#{row['id']} {class_names[target]}, {caption}", heat,
                                        size="large"))
            parts.append(f"<h4>{html.escape(name)}, {title}</h4><div class='grid'>{''.join(tiles)}</div>")
    return "".join(parts)
