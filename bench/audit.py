"""`robusttrain audit` on the built-in benchmark: verdicts, model ranking and the time for 2,000 images.

1. Dataset audit of the 0.95-correlated training split and of the group-balanced test split.
2. Model audit (Grad-CAM maps, true masks for the views) of two models trained with the same budget on the
   correlated split: ERM and the default callbacks (reweight, then background swap), e.g. the two models
   that ``make demo`` trains. Both on the same ``--images`` evenly spaced test images, with the blur protocol.
The wall-clock seconds of each command are in the table (CPU threads as torch sets them).

Example:
    python bench/audit.py --data data/synth_waterbirds --erm reports/demo/ERM/seed_0 \
        --randomized reports/demo/reweight_background_swap_Grad-CAM_maps/seed_0 --images 2000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from robusttrain.cli import main as cli


def run(args: list[str]) -> tuple[dict, float]:
    start = time.perf_counter()
    if cli([*args, "--no-progress"]) != 0:
        raise SystemExit(f"audit failed: {args}")
    seconds = time.perf_counter() - start
    output = Path(args[args.index("--output") + 1])
    return json.loads((output / "report.json").read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--erm", required=True, help="training run folder of the ERM model")
    parser.add_argument("--randomized", required=True, help="training run folder of the background-randomized model")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--output", default="reports/bench_audit")
    args = parser.parse_args()
    out = Path(args.output)
    rows = []
    for split in ("train", "test"):
        report, seconds = run(["audit", "--data", args.data, "--split", split, "--output", str(out / f"data_{split}")])
        audit = report["dataset_audit"]
        rows.append(f"| dataset audit, {split} split ({audit['samples']} images) | {audit['verdict']} | "
                     f"{seconds:.0f} s |")
    for name, run_dir in (("ERM", args.erm), ("background-randomized", args.randomized)):
        report, seconds = run(["audit", "--data", args.data, "--split", "test", "--model", run_dir, "--blur",
                               "--no-dataset-audit", "--max-images", str(args.images),
                               "--output", str(out / f"model_{name}")])
        overall, blur = report["model_summary"]["overall"], report["blur"]
        rows.append(f"| model audit + blur, {name} ({overall['count']} test images) | background reliance "
                    f"{overall['background_reliance']:.3f}, accuracy {overall['accuracy']:.3f}, bg-only accuracy "
                    f"{overall['bg_only_accuracy']:.3f}, fg-only accuracy {overall['fg_only_accuracy']:.3f}; "
                    f"blur r10: background {blur['background_blurred_r10']:.3f} / object "
                    f"{blur['object_blurred_r10']:.3f} | {seconds:.0f} s |")
    print("| audit | result | wall clock |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
