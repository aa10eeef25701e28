"""The default against other callback configs, with each run's final flags scored against the true minority.

Each member of a suite file is rendered, then ``robusttrain train`` runs with ``configs/callbacks/default.yaml`` and
with each ``--configs`` file (``--jobs`` runs side by side); one CSV row per member, config and seed: test worst
group and average, the flags at the run's end (from its last checkpoint) against the true minority (precision,
recall), and the epoch at which a second look switched resampling on.
It measured the widening second look (commit 6ae41d5) and the plain-ERM start (8b6aec4): the model's near-certain
mistakes joining the estimate's flags on a biased split (research/results.md).

Example:
    OMP_NUM_THREADS=1 python research/studies/flags_after_training.py --suite research/suites/suite_v8.yaml \
        --members dev_stripes_16 --configs CONFIG.yaml --data-root data/suite_v8 --output-dir reports/widen \
        --csv reports/widen.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from robusttrain.audit.groups import true_minority  # noqa: E402
from robusttrain.data.benchmark import SuiteMember, generate_benchmark, load_suites  # noqa: E402
from robusttrain.data.waterbirds import WaterbirdsDataset  # noqa: E402

DEFAULT = ROOT / "configs" / "callbacks" / "default.yaml"
FIELDS = ["member", "config", "seed", "worst_group", "average", "flagged", "true_minority", "precision", "recall",
          "look_epoch", "seconds"]


def truth(root: Path) -> set[int]:
    """The true minority of a member's training split (ids whose place is not their label's most common)."""
    dataset = WaterbirdsDataset(root, "train", None)
    return true_minority({r.sample_id: r.target for r in dataset.records},
                         {r.sample_id: r.group % dataset.num_places for r in dataset.records})


def final_flags(run: Path) -> set[int]:
    """The default's flagged ids in the run's last checkpoint (its callbacks' state, plain tensors and lists)."""
    last = sorted((run / "checkpoints").glob("step_*"))[-1]
    state = torch.load(last / "process_0.pt", weights_only=True)["callbacks"]
    return set(next(v for k, v in state.items() if "MinorityResampling" in k)["flagged"])


def scores(flags: set[int], minority: set[int]) -> tuple[float, float]:
    right = len(flags & minority)
    return (right / len(flags) if flags else float("nan"), right / len(minority) if minority else float("nan"))


def run(member: SuiteMember, config: Path, seed: int, data: Path, minority: set[int], out: Path) -> dict:
    """One training run of ``member`` with ``config`` (kept when its metrics exist), scored."""
    folder = out / member.name / config.stem / f"seed_{seed}"
    if not (folder / "metrics.json").is_file():
        command = [str(Path(sys.executable).parent / "robusttrain"), "train", "-c", str(ROOT / "configs" / "erm.yaml"),
                   "-c", str(config), "--data-dir", str(data), "--no-generate", "--image-size",
                   str(member.config.image_size), "--seed", str(seed), "--output-dir", str(folder), "--no-progress",
                   "--overwrite"]
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f"seed_{seed}.log", "w") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    metrics = json.loads((folder / "metrics.json").read_text())
    decision = next(iter(metrics["decisions"].values()))
    flags = final_flags(folder)
    look = decision.get("second_look") or {}
    precision, recall = scores(flags, minority)
    return {"member": member.name, "config": config.stem, "seed": seed,
            "worst_group": round(100 * metrics["groups"]["worst_group_accuracy"], 2),
            "average": round(100 * metrics["groups"]["average_accuracy"], 2), "flagged": len(flags),
            "true_minority": len(minority), "precision": round(precision, 3), "recall": round(recall, 3),
            "look_epoch": look.get("epoch", "") if look.get("biased") else "",
            "seconds": round(metrics.get("train_seconds", 0.0), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--members", nargs="+", required=True)
    parser.add_argument("--configs", nargs="+", required=True, help="callback configs run beside the default")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    members = [m for m in load_suites([args.suite]) if m.name in args.members or m.role in args.members]
    minorities = {}
    for member in members:
        generate_benchmark(Path(args.data_root) / member.name, member.config)
        minorities[member.name] = truth(Path(args.data_root) / member.name)  # once per member, not per run
    jobs = [(m, Path(c), s) for m in members for s in args.seeds for c in [DEFAULT, *args.configs]]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda j: run(j[0], j[1], j[2], Path(args.data_root) / j[0].name,
                                           minorities[j[0].name], Path(args.output_dir)), jobs))
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(", ".join(f"{k}={row[k]}" for k in FIELDS if row[k] != ""), flush=True)


if __name__ == "__main__":
    main()
