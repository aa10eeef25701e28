"""robusttrain side by side with the methods users would otherwise run: one data set, model, augmentation,
budget (optimizer steps) and set of seeds; one table that says which labels each row uses.

Rows (``--rows``; all by default):

| row | labels used | how |
|---|---|---|
| ``erm`` | class | ``recipes/train.py -c BASE`` |
| ``default`` | class | ``+ -c configs/callbacks/default.yaml`` (robusttrain's default callbacks) |
| ``audit_weights`` | class | ``robusttrain audit --split train --ignore-masks``, then ``--sample-weights`` |
| ``jtt`` | class | spuco's JTT error set after ``--jtt-share`` of the epochs of ERM, then a fresh model trained on
  the rest of the budget with the errors upweighted ``--jtt-upweight`` times (fixed, not tuned on groups) |
| ``group_balanced`` | training groups | ``--sample-weights`` with 1 / (group size) |
| ``group_dro`` | training groups | the ``group_dro`` callback (spuco's group weights) |
| ``dfr`` | class + validation groups | spuco's DFR: the ``erm`` row's model with its last layer refitted on the
  group-balanced validation split (C chosen by validation worst-group accuracy) |
| ``oracle`` | masks | ``+ -c configs/callbacks/oracle_swap.yaml`` (background swap with the true masks) |

Every row is evaluated on the last step's model (DFR: the refitted head) on the test split. Runs are kept in
``--output-dir/<row>/seed_<S>``; ``--reuse`` keeps finished ones, so an interrupted invocation resumes.

Example:
    python recipes/peers.py --seeds 0 1 2 --output-dir reports/peers
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train as train_recipe  # noqa: E402  (sibling recipe script)
from accelerate import Accelerator  # noqa: E402

from robusttrain.cli import main as robusttrain_cli  # noqa: E402
from robusttrain.config import parse_with_config  # noqa: E402
from robusttrain.data import WaterbirdsDataset, build_eval_transform  # noqa: E402
from robusttrain.models import ModelConfig, load_weights  # noqa: E402
from robusttrain.peers import dfr_model, jtt_weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LABELS = {"erm": "class", "default": "class", "audit_weights": "class", "jtt": "class",
          "group_balanced": "training groups", "group_dro": "training groups", "dfr": "class + validation groups",
          "oracle": "class + masks"}
SELECTION = {row: "last step" for row in LABELS} | {"dfr": "last step; C by validation worst group"}
COLUMNS = (("Avg acc", ("groups", "average_accuracy")), ("Worst-group acc", ("groups", "worst_group_accuracy")),
           ("Mixed-Rand", ("variants", "mixed_rand")), ("BG-Gap", ("variants", "bg_gap")))


def write_weights(path: Path, ids: Sequence[int], weights: Sequence[float]) -> Path:
    """``id,weight`` rows, the file ``recipes/train.py --sample-weights`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "weight"])
        writer.writerows(zip(ids, weights, strict=True))
    return path


class Peers:
    """Runs each row for one seed into ``output_dir/<row>/seed_<S>`` and returns its ``metrics.json``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.output_dir = Path(args.output_dir)
        self.train_args = parse_with_config(train_recipe.build_parser(), ["-c", args.base, *args.extra])
        self.train_set = WaterbirdsDataset(self.train_args.data_dir, "train",
                                           build_eval_transform(self.train_args.image_size))

    def train(self, out: Path, seed: int, *flags: str) -> dict[str, Any]:
        if not (self.args.reuse and (out / "metrics.json").is_file()):
            train_recipe.main(["-c", self.args.base, *self.args.extra, "--seed", str(seed), "--output-dir", str(out),
                               "--no-progress", "--overwrite", *flags])
        return json.loads((out / "metrics.json").read_text())

    def erm(self, out: Path, seed: int) -> dict[str, Any]:
        return self.train(out, seed)

    def default(self, out: Path, seed: int) -> dict[str, Any]:
        return self.train(out, seed, "-c", str(ROOT / "configs" / "callbacks" / "default.yaml"))

    def oracle(self, out: Path, seed: int) -> dict[str, Any]:
        return self.train(out, seed, "-c", str(ROOT / "configs" / "callbacks" / "oracle_swap.yaml"))

    def audit_weights(self, out: Path, seed: int) -> dict[str, Any]:
        audit = self.output_dir / "audit_train"
        if not (audit / "weights.csv").is_file():
            code = robusttrain_cli(["audit", "--data", str(self.train_args.data_dir), "--split", "train",
                                    "--image-size", str(self.train_args.image_size), "--ignore-masks",
                                    "--output", str(audit), "--no-progress"])
            if code != 0:
                raise SystemExit(f"the dataset audit of {self.train_args.data_dir} failed")
        return self.train(out, seed, "--sample-weights", str(audit / "weights.csv"))

    def group_balanced(self, out: Path, seed: int) -> dict[str, Any]:
        groups = torch.as_tensor(self.train_set.groups)
        sizes = torch.bincount(groups).double()
        weights = (1 / sizes[groups]).tolist()
        ids = [r.sample_id for r in self.train_set.records]
        return self.train(out, seed, "--sample-weights", str(write_weights(out / "group_weights.csv", ids, weights)))

    def group_dro(self, out: Path, seed: int) -> dict[str, Any]:
        entry = [{"name": "group_dro", "num_groups": self.train_set.num_groups}]
        return self.train(out, seed, "--callbacks", json.dumps(entry))

    def jtt(self, out: Path, seed: int) -> dict[str, Any]:
        epochs = self.train_args.epochs
        first = max(1, round(self.args.jtt_share * epochs))
        if first >= epochs:
            raise SystemExit(f"--jtt-share {self.args.jtt_share} leaves no epoch of {epochs} for JTT's second phase")
        phase1 = out / "phase1"
        self.train(phase1, seed, "--epochs", str(first))
        model = ModelConfig.load(phase1).build()
        load_weights(model, phase1 / "model.pt")
        weights = jtt_weights(model, self.train_set, self.args.jtt_upweight).tolist()
        ids = [r.sample_id for r in self.train_set.records]
        path = write_weights(out / "jtt_weights.csv", ids, weights)
        return self.train(out, seed, "--epochs", str(epochs - first), "--sample-weights", str(path))

    def dfr(self, out: Path, seed: int) -> dict[str, Any]:
        if self.args.reuse and (out / "metrics.json").is_file():
            return json.loads((out / "metrics.json").read_text())
        erm = self.output_dir / "erm" / f"seed_{seed}"
        self.erm(erm, seed)
        model = ModelConfig.load(erm).build()
        load_weights(model, erm / "model.pt")
        args = parse_with_config(train_recipe.build_parser(), ["-c", str(erm / "config.yaml")])
        datasets = train_recipe.build_datasets(args)
        retrained = dfr_model(model.eval(), datasets["val"], seed=seed)
        metrics = train_recipe.evaluate(args, Accelerator(cpu=True), retrained, datasets)
        metrics["erm_run"] = str(erm)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        return metrics


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: mean +- std (percent) over seeds per column, with each row's label use and selection rule."""
    lines = ["| Row | labels used | model selection | seeds | " + " | ".join(c for c, _ in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 4) + "|"]
    for row, runs in results.items():
        cells = []
        for _, (section, key) in COLUMNS:
            values = [100 * float(m[section][key]) for m in runs if key in m.get(section, {})]
            if not values:
                cells.append("n/a")
                continue
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        lines.append(f"| {row} | {LABELS[row]} | {SELECTION[row]} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--base", default=str(ROOT / "configs" / "erm.yaml"))
    parser.add_argument("--output-dir", default="reports/peers")
    parser.add_argument("--reuse", action="store_true", help="keep runs whose metrics.json already exists")
    parser.add_argument("--jtt-share", type=float, default=0.2, help="share of the epochs in JTT's first phase")
    parser.add_argument("--jtt-upweight", type=float, default=20.0, help="JTT's weight of the error set")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags passed on to train.py")
    args = parser.parse_args(argv)
    if not 0 < args.jtt_share < 1 or not math.isfinite(args.jtt_upweight) or args.jtt_upweight < 1:
        parser.error("--jtt-share must lie in (0, 1) and --jtt-upweight be >= 1")
    peers = Peers(args)
    results: dict[str, list[dict[str, Any]]] = {}
    for row in args.rows:
        run: Callable[[Path, int], dict[str, Any]] = getattr(peers, row)
        results[row] = [run(peers.output_dir / row / f"seed_{seed}", seed) for seed in args.seeds]
    text = table(results)
    (peers.output_dir / "peers.md").write_text(text + "\n")
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
