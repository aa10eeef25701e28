"""The audit report: one self-contained HTML page (images inlined), plus JSON and CSV of every record."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .blur import blur_radii

Example = tuple[np.ndarray, np.ndarray, dict[str, Any]]  # image (H, W, 3) in [0, 1], map (H, W), record

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:rgb(34,34,34)}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}.verdict{font-size:1.2em;font-weight:600;padding:.6em;border-radius:6px}
.biased{background:#fde2e2}.unseen{background:#eeeeee}.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;width:136px;font-size:11px}figure img{width:128px;height:128px;image-rendering:pixelated}
figure.thumb{width:68px;display:inline-block;margin:2px}figure.thumb img{width:64px;height:64px}
table.clusters td{vertical-align:top;text-align:left}td.minority{background:#fff1c2;outline:2px solid #e0a800}
.count{font-weight:600}"""
# Marks the page once every image has decoded (read by the headless-browser test and by humans in the console).
CHECK_SCRIPT = """<script>window.addEventListener('load',()=>{const imgs=[...document.images];
document.body.dataset.images=imgs.length;
document.body.dataset.rendered=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;});</script>"""


def png_uri(array: np.ndarray) -> str:
    """An ``(H, W[, 3])`` array in [0, 1] as an inline PNG data URI."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The map as a jet heat map blended over the image, both ``(H, W[, 3])`` in [0, 1]."""
    from matplotlib import colormaps

    coloured = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    return (1 - alpha) * image + alpha * coloured


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure_uri(figure: Any) -> str:
    """A matplotlib figure as an inline PNG data URI (the figure is closed)."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    _pyplot().close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def bar_chart(summary: dict[str, Any], class_names: Sequence[str]) -> str:
    """Per-class accuracy on each view and background reliance, as an inline PNG."""
    keys = ("accuracy", "bg_only_accuracy", "fg_only_accuracy", "background_reliance")
    labels = [class_names[int(c)] if int(c) < len(class_names) else c for c in summary["classes"]]
    figure, axis = _pyplot().subplots(figsize=(max(5, 1.6 * len(labels)), 3.2))
    width = 0.8 / len(keys)
    for k, key in enumerate(keys):
        values = [row[key] for row in summary["classes"].values()]
        axis.bar(np.arange(len(labels)) + k * width, values, width, label=key.replace("_", " "))
    axis.set_xticks(np.arange(len(labels)) + width * (len(keys) - 1) / 2, labels)
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8, ncol=2)
    return _figure_uri(figure)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row.values()) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape("" if value is None else str(value))


def _grid(title: str, examples: Sequence[Example], class_names: Sequence[str]) -> str:
    tiles = []
    for image, heat, record in examples:
        label, prediction = (html.escape(class_names[record[key]]) for key in ("label", "prediction"))
        caption = (f"#{int(record['id'])} label {label} → {prediction}"
                   f"<br>bg reliance {record['background_reliance']:.2f}")
        tiles.append(f"<figure><img alt='sample {record['id']}' src='{png_uri(overlay(image, heat))}'>"
                     f"<figcaption>{caption}</figcaption></figure>")
    return f"<h3>{html.escape(title)}</h3><div class='grid'>{''.join(tiles)}</div>"


def write_sample_tables(output: str | Path, samples: Sequence[dict[str, Any]],
                        records: Sequence[dict[str, Any]] = ()) -> None:
    """``samples.csv`` (the dataset audit's per-sample scores, plus the model's view of each sample when there
    is a model audit) and ``weights.csv`` (``id,weight,path``: what ``recipes/train.py --sample-weights`` reads)."""
    output = Path(output)
    by_id = {r["id"]: r for r in records}
    rows = []
    for sample in samples:
        row = dict(sample)
        if sample["id"] in by_id:
            row.update(model_correct=by_id[sample["id"]]["correct"],
                       model_background_reliance=by_id[sample["id"]]["background_reliance"])
        rows.append(row)
    _write_csv(output / "samples.csv", rows)
    _write_csv(output / "weights.csv", [{"id": r["id"], "weight": r["weight"], "path": r["path"]} for r in samples])


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as handle:
        columns = list(dict.fromkeys(key for row in rows for key in row))  # every field, first-seen order
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def blur_chart(blur: dict[str, float]) -> str:
    """Accuracy against blur radius, background blurred vs object blurred, as an inline PNG."""
    radii = blur_radii(blur)
    figure, axis = _pyplot().subplots(figsize=(4.5, 3))
    for kind, colour in (("background", "tab:green"), ("object", "tab:red")):
        values = [blur["original"]] + [blur[f"{kind}_blurred_r{r:g}"] for r in radii]
        axis.plot([0, *radii], values, marker="o", color=colour, label=f"{kind} blurred")
    axis.set_xlabel("blur radius (px)")
    axis.set_ylabel("accuracy")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    return _figure_uri(figure)


def _dataset_part(dataset: dict[str, Any], class_names: Sequence[str], figures: dict[str, str]) -> list[str]:
    kind = "biased" if dataset["biased"] or dataset.get("biased_by_place") else "unseen"
    parts = [f"<h2>Dataset</h2><p class='verdict {kind}'>{html.escape(dataset['verdict'])}</p>",
             f"<p>Background taken from: {html.escape(', '.join(dataset['background_from']))}; "
             f"label × background-cluster association (Cramér's V): {dataset['cramers_v']:.3f}</p>",
             _table([{"label": class_names[i], **{f"cluster {k}": n for k, n in enumerate(row)}}
                     for i, row in enumerate(dataset["cluster_table"])])]
    groups = dataset.get("groups")
    if groups:
        parts.append("<h3>True groups (label × place column)</h3>" + _table(
            [{"label": class_names[i], **dict(zip(groups["place_names"], row, strict=True))}
             for i, row in enumerate(groups["table"])]))
        association = groups.get("place_association")
        if association:
            parts.append(f"<p>The place column alone predicts the label with {_cell(association['accuracy'])} "
                         f"accuracy (chance {_cell(association['chance'])}); the network estimate above: "
                         f"{_cell(dataset['estimate_accuracy'])}.</p>")
        found = groups["recovery"]
        if not dataset["biased"]:
            parts.append("<p class='recovery'>No samples are flagged: the estimate found no bias.</p>")
        elif found["balanced"]:
            parts.append(f"<p class='recovery'>The true groups are balanced in this split ({found['true_minority']} "
                         "samples off their label's usual place): there is no minority for the flags to find.</p>")
        else:
            parts.append(f"<p class='recovery'>The label-free flags found the true minority (samples not on "
                         f"their label's usual place): {found['found']} of {found['flagged']} flagged samples are in "
                         f"it (precision {_cell(found['precision'])}), {found['found']} of its "
                         f"{found['true_minority']} "
                         f"samples were flagged (recall {_cell(found['recall'])}).</p>")
    parts += [figures[key] for key in ("clusters", "shortcut", "conflicting") if key in figures]
    parts.append("<p>Per-sample scores: <code>samples.csv</code>; suggested sampling weights (flagged and "
                 "unflagged samples of each label get equal mass): <code>weights.csv</code>, for "
                 "<code>recipes/train.py --sample-weights</code>.</p>")
    return parts


def _model_part(summary: dict[str, Any], class_names: Sequence[str]) -> list[str]:
    overall = summary["overall"]
    parts = [f"<h2>Model</h2><p class='verdict model-verdict'>{html.escape(summary['verdict'])}</p>",
             f"<p>mean background reliance {overall['background_reliance']:.3f} (probability that the "
             f"background-only view keeps the prediction; chance {summary['chance']:.3f}), accuracy "
             f"{overall['accuracy']:.3f}</p>",
             _table([{"class": class_names[int(c)], **{k: v for k, v in s.items() if k != "most_background_reliant"}}
                     for c, s in summary["classes"].items()]),
             f"<img alt='per-class bar chart' src='{bar_chart(summary, class_names)}'>"]
    if summary.get("groups"):
        groups = summary["groups"]
        parts.append(f"<h3>Accuracy per true group</h3><p>worst group: {html.escape(groups['worst_group'])} "
                     f"({groups['worst_group_accuracy']:.3f})</p>" + _table(groups["groups"]))
    return parts


def write_report(output: str | Path, info: dict[str, Any], class_names: Sequence[str],
                 records: Sequence[dict[str, Any]] = (), examples: dict[str, Sequence[Example]] | None = None,
                 figures: dict[str, str] | None = None) -> Path:
    """Write ``report.html``, ``report.json`` and (with a model audit) ``records.csv`` into ``output``.

    ``info`` holds the sections that exist: ``dataset_audit``, ``model_summary``, ``blur``, ``skipped``;
    ``figures`` pre-rendered HTML of the dataset audit (``clusters``, ``shortcut``, ``conflicting``).
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps({**info, "records": list(records)}, indent=1))
    if records:
        _write_csv(output / "records.csv", records)
    parts = [f"<h1>Background-bias audit</h1><p>{html.escape(info.get('title', ''))}</p>"]
    if info.get("dataset_audit"):
        parts += _dataset_part(info["dataset_audit"], class_names, figures or {})
    if info.get("model_summary"):
        parts += _model_part(info["model_summary"], class_names)
    for title, group in (examples or {}).items():
        parts.append(_grid(title, group, class_names))
    if info.get("blur"):
        parts.append("<h2>Background-blur protocol (LICNN)</h2>" +
                     _table([{"view": k, "accuracy": v} for k, v in info["blur"].items()]) +
                     f"<img alt='blur chart' src='{blur_chart(info['blur'])}'>")
    skipped = info.get("skipped", [])
    parts.append(f"<h2>Skipped files ({len(skipped)})</h2>" + _table(list(skipped)))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>robusttrain audit</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}{CHECK_SCRIPT}</body></html>")
    path = output / "report.html"
    path.write_text(page)
    return path
