"""Compare training configurations over seeds on the same data and budget: the robustness table.

Each run is ``robusttrain train -c <base> -c <config> --seed S``. The table reports mean +- std over seeds of
average, worst-group and BG-Gap (test split), and the training-step time ratio against the first (baseline)
configuration, measured in the same invocation.

Example:
    python recipes/compare.py --runs ERM= reweight=configs/callbacks/reweight_gradcam.yaml --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from robusttrain.experiments import run_all, summarise
from robusttrain.training import OneLineParser
from robusttrain.training.cli import refusing

ROOT = Path(__file__).resolve().parents[1]
def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="LABEL=CONFIG (empty CONFIG = base only)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--base", default=str(ROOT / "configs" / "erm.yaml"))
    parser.add_argument("--output-dir", default="reports/compare")
    parser.add_argument("--reuse", action="store_true", help="keep runs whose metrics.json already exists")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags passed on to robusttrain train")
    args = parser.parse_args(argv)
    output_dir = Path(args.output_dir)
    results = run_all(args.runs, args.seeds, args.base, output_dir, args.extra, args.reuse)
    table = summarise(results)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "compare.md").write_text(table + "\n")
    (output_dir / "compare.json").write_text(json.dumps(results, indent=2))
    print("\n" + table)
    return 0


if __name__ == "__main__":  # bad input: one line, exit 2; Ctrl-C: one line, exit 130
    sys.exit(refusing("recipes/compare.py", main))
