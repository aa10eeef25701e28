"""`robusttrain audit` on the built-in benchmark: verdicts, how well the flags find the true minority, model
verdicts, the time each command takes and the report's size.

1. Dataset audit of the 0.95-correlated training split, with the true masks and without them (a copy of the
   metadata without its mask column: the background is then a border frame), and of the group-balanced test split.
2. Model audit with maps and the blur protocol (LICNN's: accuracy with the background or the object blurred at
   radii 2, 5, 10) of two models trained with the same budget on the correlated split (e.g. ERM and the default),
   on ``--images`` evenly spaced test images.
3. Dataset + model audit of ``--report-images`` test images: the size of the one-file HTML report.
The wall-clock seconds of each command are in the table (CPU threads as torch sets them).

Example:
    python bench/audit.py --data data/synth_waterbirds --erm reports/compare_default/ERM/seed_0 \
        --randomized reports/compare_default/default/seed_0 --images 1000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from robusttrain.cli import main as cli
from robusttrain.data.waterbirds import write_view
from robusttrain.eval import write_tables_csv


def run(args: list[str]) -> tuple[dict, float]:
    start = time.perf_counter()
    if cli([*args, "--no-progress"]) != 0:
        raise SystemExit(f"audit failed: {args}")
    seconds = time.perf_counter() - start
    output = Path(args[args.index("--output") + 1])
    return json.loads((output / "report.json").read_text()), seconds


def recovery(audit: dict) -> str:
    found = audit["groups"]["recovery"]
    if found["balanced"]:
        return "groups balanced: no minority to find"
    return (f"flags {found['flagged']}, true minority {found['true_minority']}: precision "
            f"{found['precision']:.3f}, recall {found['recall']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--erm", required=True, help="training run folder of the ERM model")
    parser.add_argument("--randomized", required=True, help="training run folder of the callback-trained model")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--report-images", type=int, default=5000)
    parser.add_argument("--output", default="reports/bench_audit")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    args = parser.parse_args()
    out = Path(args.output)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for label, data, split in (("train split, masks", args.data, "train"),
                                   ("train split, no masks", str(write_view(args.data, scratch)),
                                    "train"),
                                   ("test split, masks", args.data, "test")):
            report, seconds = run(["audit", "--data", data, "--split", split, "--output",
                                   str(out / f"data_{label.replace(' ', '_').replace(',', '')}")])
            audit = report["dataset_audit"]
            rows.append(f"| dataset audit, {label} ({audit['samples']} images) | {audit['verdict']}; "
                        f"{recovery(audit)} | {seconds:.0f} s |")
    blur = ["| model | original | background blurred r2 / r5 / r10 | object blurred r2 / r5 / r10 |",
            "|---|---|---|---|"]
    for name, run_dir in (("ERM", args.erm), ("callbacks", args.randomized)):
        report, seconds = run(["audit", "--data", args.data, "--split", "test", "--model", run_dir, "--blur",
                               "--no-dataset-audit", "--max-images", str(args.images),
                               "--output", str(out / f"model_{name}")])
        summary, views = report["model_summary"], report["blur"]
        blur.append(f"| {name} | {100 * views['original']:.1f} | "
                    + " / ".join(f"{100 * views[f'background_blurred_r{r}']:.1f}" for r in (2, 5, 10)) + " | "
                    + " / ".join(f"{100 * views[f'object_blurred_r{r}']:.1f}" for r in (2, 5, 10)) + " |")
        rows.append(f"| model audit + blur, {name} ({summary['overall']['count']} test images) | "
                    f"{summary['verdict']}; worst group {summary['groups']['worst_group_accuracy']:.3f} | "
                    f"{seconds:.0f} s |")
    report, seconds = run(["audit", "--data", args.data, "--split", "test", "--model", args.erm, "--blur",
                           "--max-images", str(args.report_images), "--output", str(out / "report_size")])
    size = (out / "report_size" / "report.html").stat().st_size / 1e6
    rows.append(f"| dataset + model audit + blur, ERM ({args.report_images} test images) | report.html "
                f"{size:.1f} MB | {seconds:.0f} s |")
    table = "| audit | result | wall clock |\n|---|---|---|\n" + "\n".join(rows) + "\n\n" + "\n".join(blur)
    print(table)
    if args.csv:
        write_tables_csv(table, args.csv)


if __name__ == "__main__":
    main()
