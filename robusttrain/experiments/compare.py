"""Training configurations over seeds on the same data and budget, and their robustness table."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..training import TrainOptions, train

METRICS = (("Avg acc", ("groups", "average_accuracy")), ("Worst-group acc", ("groups", "worst_group_accuracy")),
           ("Mixed-Rand", ("variants", "mixed_rand")), ("BG-Gap", ("variants", "bg_gap")))


def train_argv(argv: Sequence[str]) -> dict[str, Any]:
    """One ``robusttrain train`` run from its command-line words, in this process; returns its metrics."""
    options, _ = TrainOptions.from_argv(argv)
    return train(options)


def summarise(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown table: mean +- std (percent) per metric, and the step-time and whole-run-time (data pass
    included) ratios to the first run."""
    baseline = next(iter(results.values()))
    base_step = statistics.mean(m["step_seconds"] / m["global_step"] for m in baseline)
    base_run = statistics.mean(m["train_seconds"] for m in baseline)
    header = ("| Run | seeds | " + " | ".join(name for name, _ in METRICS)
              + " | step time ratio | whole-run time ratio |")
    lines = [header, "|---" * (len(METRICS) + 4) + "|"]
    for label, runs in results.items():
        cells = []
        for _, (section, key) in METRICS:
            values = [100 * float(m[section][key]) for m in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        ratio = statistics.mean(m["step_seconds"] / m["global_step"] for m in runs) / base_step
        whole = statistics.mean(m["train_seconds"] for m in runs) / base_run
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + f" | {ratio:.2f} | {whole:.2f} |")
    return "\n".join(lines)


def run_all(runs: Sequence[str], seeds: Sequence[int], base: str, output_dir: Path, extra: Sequence[str],
            reuse: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Train each ``LABEL=CONFIG`` (empty CONFIG: ``base`` only) for each seed into
    ``output_dir/<label>/seed_<S>``; ``reuse`` keeps finished runs. Returns the metrics by label."""
    results: dict[str, list[dict[str, Any]]] = {}
    for spec in runs:
        label, _, config = spec.partition("=")
        for seed in seeds:
            out = output_dir / re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") / f"seed_{seed}"
            argv = ["-c", base] + (["-c", config] if config else [])
            argv += ["--seed", str(seed), "--output-dir", str(out), "--no-progress", *extra]
            if not (reuse and (out / "metrics.json").is_file()):
                train_argv([*argv, "--overwrite"])
            results.setdefault(label, []).append(json.loads((out / "metrics.json").read_text()))
    return results
