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

Example = tuple[np.ndarray, np.ndarray, dict[str, Any]]  # image (H, W, 3) in [0, 1], map (H, W), record

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}.verdict{font-size:1.2em;font-weight:600;padding:.6em;border-radius:6px}
.biased{background:#fde2e2}.clear{background:#e2f5e2}.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;width:136px;font-size:11px}figure img{width:128px;height:128px;image-rendering:pixelated}"""
# Marks the page once every image has decoded (read by the headless-browser test and by humans in the console).
CHECK_SCRIPT = """<script>window.addEventListener('load',()=>{const imgs=[...document.images];
document.body.dataset.images=imgs.length;
document.body.dataset.rendered=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;});</script>"""


def _png(array: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The map as a jet heat map blended over the image, both ``(H, W[, 3])`` in [0, 1]."""
    from matplotlib import colormaps

    coloured = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    return (1 - alpha) * image + alpha * coloured


def bar_chart(summary: dict[str, Any], class_names: Sequence[str]) -> str:
    """Per-class accuracy on each view and background reliance, as an inline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("accuracy", "bg_only_accuracy", "fg_only_accuracy", "background_reliance")
    labels = [class_names[int(c)] if int(c) < len(class_names) else c for c in summary["classes"]]
    figure, axis = plt.subplots(figsize=(max(5, 1.6 * len(labels)), 3.2))
    width = 0.8 / len(keys)
    for k, key in enumerate(keys):
        values = [row[key] for row in summary["classes"].values()]
        axis.bar(np.arange(len(labels)) + k * width, values, width, label=key.replace("_", " "))
    axis.set_xticks(np.arange(len(labels)) + width * (len(keys) - 1) / 2, labels)
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


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
        caption = (f"#{record['id']} label {class_names[record['label']]} → {class_names[record['prediction']]}"
                   f"<br>bg reliance {record['background_reliance']:.2f}")
        tiles.append(f"<figure><img alt='sample {record['id']}' src='{_png(overlay(image, heat))}'>"
                     f"<figcaption>{caption}</figcaption></figure>")
    return f"<h3>{html.escape(title)}</h3><div class='grid'>{''.join(tiles)}</div>"


def write_report(output: str | Path, info: dict[str, Any], class_names: Sequence[str],
                 records: Sequence[dict[str, Any]] = (), examples: dict[str, Sequence[Example]] | None = None
                 ) -> Path:
    """Write ``report.html``, ``report.json`` and (with a model audit) ``records.csv`` into ``output``.

    ``info`` holds the sections that exist: ``dataset_audit``, ``model_summary``, ``blur``, ``skipped``.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps({**info, "records": list(records)}, indent=1))
    if records:
        with open(output / "records.csv", "w", newline="") as handle:
            columns = list(dict.fromkeys(key for record in records for key in record))  # every field, first-seen order
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(records)
    parts = [f"<h1>Background-bias audit</h1><p>{html.escape(info.get('title', ''))}</p>"]
    dataset = info.get("dataset_audit")
    if dataset:
        kind = "biased" if dataset["biased"] else "clear"
        parts.append(f"<h2>Dataset</h2><p class='verdict {kind}'>{html.escape(dataset['verdict'])}</p>")
        parts.append(f"<p>Background taken from: {', '.join(dataset['background_from'])}; "
                     f"label × background-cluster association (Cramér's V): {dataset['cramers_v']:.3f}</p>")
        table = [{"label": class_names[i], **{f"cluster {k}": n for k, n in enumerate(row)}}
                 for i, row in enumerate(dataset["cluster_table"])]
        parts.append(_table(table))
    summary = info.get("model_summary")
    if summary:
        overall = summary["overall"]
        parts.append(f"<h2>Model</h2><p class='verdict'>mean background reliance {overall['background_reliance']:.3f} "
                     f"(probability that the background-only view keeps the prediction; chance "
                     f"{summary['chance']:.3f}), accuracy {overall['accuracy']:.3f}</p>")
        rows = [{"class": class_names[int(c)], **{k: v for k, v in s.items() if k != "most_background_reliant"}}
                for c, s in summary["classes"].items()]
        parts.append(_table(rows))
        parts.append(f"<img alt='per-class bar chart' src='{bar_chart(summary, class_names)}'>")
    for title, group in (examples or {}).items():
        parts.append(_grid(title, group, class_names))
    if info.get("blur"):
        parts.append("<h2>Background-blur protocol (LICNN)</h2>" +
                     _table([{"view": k, "accuracy": v} for k, v in info["blur"].items()]))
    skipped = info.get("skipped", [])
    parts.append(f"<h2>Skipped files ({len(skipped)})</h2>" + _table(list(skipped)))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>robusttrain audit</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}{CHECK_SCRIPT}</body></html>")
    path = output / "report.html"
    path.write_text(page)
    return path
