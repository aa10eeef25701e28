"""Plain-text (Markdown) tables of robustness results, for terminals and reports."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

COLUMNS = (
    ("Avg acc", ("groups", "average_accuracy")),
    ("Avg acc (train-weighted)", ("groups", "weighted_average_accuracy")),
    ("Worst-group acc", ("groups", "worst_group_accuracy")),
    ("Only-FG", ("variants", "only_fg")),
    ("Only-BG-T", ("variants", "only_bg_t")),
    ("Mixed-Same", ("variants", "mixed_same")),
    ("Mixed-Rand", ("variants", "mixed_rand")),
    ("Mixed-Next", ("variants", "mixed_next")),
    ("BG-Gap", ("variants", "bg_gap")),
)


def _lookup(metrics: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = metrics
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return float(value)


def results_table(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table, one row per run, accuracies in percent ("-" where a metric was not computed)."""
    header = "| Run | " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for run, metrics in runs.items():
        cells = [_lookup(metrics, path) for _, path in COLUMNS]
        lines.append(f"| {run} | " + " | ".join("-" if c is None else f"{100 * c:.1f}" for c in cells) + " |")
    return "\n".join(lines)


def group_table(metrics: Mapping[str, Any]) -> str:
    """Per-group accuracy of one run as a Markdown table."""
    groups = metrics["groups"]
    names = groups.get("group_names", {})
    lines = ["| Group | n | Accuracy |", "|---|---|---|"]
    for group, accuracy in sorted(groups["group_accuracy"].items(), key=lambda kv: int(kv[0])):
        count = groups["group_counts"][group]
        lines.append(f"| {names.get(group, group)} | {count} | {100 * accuracy:.1f} |")
    return "\n".join(lines)


def table_rows(markdown: str) -> list[list[list[str]]]:
    """Every Markdown table in ``markdown``, as lists of rows of cells (header first, the ``|---|`` line dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def write_tables_csv(markdown: str, path: str | Path) -> list[Path]:
    """Each Markdown table in ``markdown`` as a CSV file: the first at ``path``, the next ones beside it with
    ``_2``, ``_3``... before the suffix (what a results page's table is made from)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for number, rows in enumerate(table_rows(markdown), start=1):
        target = path if number == 1 else path.with_name(f"{path.stem}_{number}{path.suffix}")
        with open(target, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
        written.append(target)
    return written
