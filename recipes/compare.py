"""Compare training configurations over seeds on the same data and budget: the robustness table.

Each run is ``recipes/train.py -c <base> -c <config> --seed S``. The table reports mean +- std over seeds of
average, worst-group and BG-Gap (test split), and the training-step time ratio against the first (baseline)
configuration, measured in the same invocation.

Example:
    python recipes/compare.py --runs ERM= reweight=configs/callbacks/reweight_gradcam.yaml --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train as train_recipe  # noqa: E402  (sibling recipe script)

ROOT = Path(__file__).resolve().parents[1]
METRICS = (("Avg acc", ("groups", "average_accuracy")), ("Worst-group acc", ("groups", "worst_group_accuracy")),
           ("Mixed-Rand", ("variants", "mixed_rand")), ("BG-Gap", ("variants", "bg_gap")))


def _value(metrics: dict[str, Any], path: tuple[str, str]) -> float:
    return float(metrics[path[0]][path[1]])


def summarise(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown table: mean +- std (percent) per metric, and the step-time ratio to the first run."""
    baseline = next(iter(results.values()))
    base_step = statistics.mean(m["step_seconds"] / m["global_step"] for m in baseline)
    header = "| Run | seeds | " + " | ".join(name for name, _ in METRICS) + " | step time ratio |"
    lines = [header, "|---" * (len(METRICS) + 3) + "|"]
    for label, runs in results.items():
        cells = []
        for _, path in METRICS:
            values = [100 * _value(m, path) for m in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        ratio = statistics.mean(m["step_seconds"] / m["global_step"] for m in runs) / base_step
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return "\n".join(lines)


def run_all(runs: Sequence[str], seeds: Sequence[int], base: str, output_dir: Path, extra: Sequence[str],
            reuse: bool = False) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    for spec in runs:
        label, _, config = spec.partition("=")
        for seed in seeds:
            out = output_dir / re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") / f"seed_{seed}"
            argv = ["-c", base] + (["-c", config] if config else [])
            argv += ["--seed", str(seed), "--output-dir", str(out), "--no-progress", *extra]
            if not (reuse and (out / "metrics.json").is_file()):
                train_recipe.main(argv)
            results.setdefault(label, []).append(json.loads((out / "metrics.json").read_text()))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="LABEL=CONFIG (empty CONFIG = base only)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--base", default=str(ROOT / "configs" / "erm.yaml"))
    parser.add_argument("--output-dir", default="reports/compare")
    parser.add_argument("--reuse", action="store_true", help="keep runs whose metrics.json already exists")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags passed on to train.py")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    results = run_all(args.runs, args.seeds, args.base, output_dir, args.extra, args.reuse)
    table = summarise(results)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "compare.md").write_text(table + "\n")
    (output_dir / "compare.json").write_text(json.dumps(results, indent=2))
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
