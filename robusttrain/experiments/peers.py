"""robusttrain side by side with the methods users would otherwise run: one data set, model, augmentation,
budget (optimizer steps) and set of seeds; one table that says which labels each row uses.

Rows: ``erm`` (class labels); ``default`` (class; ``configs/callbacks/default.yaml``); ``audit_weights`` (class;
``robusttrain audit`` then ``--sample-weights``); ``jtt`` (class; spuco's JTT error set after ``jtt_share`` of the
epochs, then a fresh model with the errors upweighted ``jtt_upweight`` times); ``group_balanced`` (training
groups; 1 / group size as weights); ``group_dro`` (training groups; spuco's group weights); ``dfr`` (class +
validation groups; spuco's DFR head refit on the ``erm`` model); ``oracle`` (true masks; background swap).
Every row is evaluated on the last step's model (DFR: the refitted head) on the test split.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from ..cli import main as robusttrain_main
from ..data import WaterbirdsDataset, build_eval_transform
from ..models import ModelConfig, load_weights
from ..peers import dfr_model, jtt_weights
from ..training import TrainOptions, build_datasets, evaluate_run
from .compare import train_argv

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
    """Runs each row for one seed into ``output_dir/<row>/seed_<S>`` and returns its ``metrics.json``.

    Args:
        base: the ``robusttrain train`` config every row starts from.
        extra: flags added to every row's training command (data, budget).
        output_dir: where the rows' runs go.
        callbacks_dir: the folder of ``default.yaml`` and ``oracle_swap.yaml``.
        reuse: keep finished runs.
        jtt_share, jtt_upweight: JTT's first-phase share of the epochs and its weight of the error set.
    """

    def __init__(self, base: str, extra: Sequence[str], output_dir: Path, callbacks_dir: Path, reuse: bool = False,
                 jtt_share: float = 0.2, jtt_upweight: float = 20.0) -> None:
        if not 0 < jtt_share < 1 or not math.isfinite(jtt_upweight) or jtt_upweight < 1:
            raise ValueError("--jtt-share must lie in (0, 1) and --jtt-upweight be >= 1")
        self.base, self.extra, self.output_dir, self.reuse = base, list(extra), Path(output_dir), reuse
        self.callbacks_dir, self.jtt_share, self.jtt_upweight = Path(callbacks_dir), jtt_share, jtt_upweight
        self.options, _ = TrainOptions.from_argv(["-c", base, *extra])
        self.train_set = WaterbirdsDataset(self.options.data_dir, "train",
                                           build_eval_transform(self.options.image_size))

    def run(self, row: str, seed: int) -> dict[str, Any]:
        """Row ``row`` (a key of :data:`LABELS`) for ``seed``; returns its metrics."""
        return getattr(self, row)(self.output_dir / row / f"seed_{seed}", seed)

    def train(self, out: Path, seed: int, *flags: str) -> dict[str, Any]:
        """One training run; its ``run_seconds`` (whole-run time of the row) is its ``train_seconds``."""
        if not (self.reuse and (out / "metrics.json").is_file()):
            train_argv(["-c", self.base, *self.extra, "--seed", str(seed), "--output-dir", str(out), "--no-progress",
                        "--overwrite", *flags])
        metrics = json.loads((out / "metrics.json").read_text())
        return {**metrics, "run_seconds": metrics["train_seconds"]}

    def erm(self, out: Path, seed: int) -> dict[str, Any]:
        return self.train(out, seed)

    def default(self, out: Path, seed: int) -> dict[str, Any]:
        return self.train(out, seed, "-c", str(self.callbacks_dir / "default.yaml"))

    def oracle(self, out: Path, seed: int) -> dict[str, Any]:
        return self.train(out, seed, "-c", str(self.callbacks_dir / "oracle_swap.yaml"))

    def audit_weights(self, out: Path, seed: int) -> dict[str, Any]:
        audit = self.output_dir / "audit_train"
        if not (audit / "weights.csv").is_file():
            code = robusttrain_main(["audit", "--data", str(self.options.data_dir), "--split", "train",
                                     "--image-size", str(self.options.image_size), "--ignore-masks",
                                     "--output", str(audit), "--no-progress"])
            if code != 0:
                raise RuntimeError(f"the dataset audit of {self.options.data_dir} failed")
        metrics = self.train(out, seed, "--sample-weights", str(audit / "weights.csv"))
        audit_seconds = json.loads((audit / "report.json").read_text()).get("seconds", 0.0)
        return {**metrics, "run_seconds": metrics["run_seconds"] + audit_seconds}

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
        epochs = self.options.epochs
        first = max(1, round(self.jtt_share * epochs))
        if first >= epochs:
            raise ValueError(f"--jtt-share {self.jtt_share} leaves no epoch of {epochs} for JTT's second phase")
        phase1 = out / "phase1"
        first_phase = self.train(phase1, seed, "--epochs", str(first))
        model = ModelConfig.load(phase1).build()
        load_weights(model, phase1 / "model.pt")
        weights = jtt_weights(model, self.train_set, self.jtt_upweight).tolist()
        ids = [r.sample_id for r in self.train_set.records]
        path = write_weights(out / "jtt_weights.csv", ids, weights)
        metrics = self.train(out, seed, "--epochs", str(epochs - first), "--sample-weights", str(path))
        return {**metrics, "run_seconds": metrics["run_seconds"] + first_phase["run_seconds"]}

    def dfr(self, out: Path, seed: int) -> dict[str, Any]:
        erm = self.output_dir / "erm" / f"seed_{seed}"
        erm_seconds = self.erm(erm, seed)["run_seconds"]
        if self.reuse and (out / "metrics.json").is_file():
            metrics = json.loads((out / "metrics.json").read_text())
            return {**metrics, "run_seconds": erm_seconds + metrics["fit_seconds"]}
        start = time.perf_counter()
        model = ModelConfig.load(erm).build()
        load_weights(model, erm / "model.pt")
        options, _ = TrainOptions.from_argv(["-c", str(erm / "config.yaml")])
        datasets = build_datasets(options)
        retrained = dfr_model(model.eval(), datasets["val"], seed=seed)
        metrics = evaluate_run(options, retrained, datasets, Accelerator(cpu=True))
        metrics.update(erm_run=str(erm), fit_seconds=time.perf_counter() - start)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
        return {**metrics, "run_seconds": erm_seconds + metrics["fit_seconds"]}


def peers_table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: mean +- std (percent) over seeds per column, with each row's label use and selection rule, and
    its whole-run time over ERM's (measured in the same invocation or reused runs: JTT both phases, DFR ERM's run
    plus the refit, audit weights the audit plus training)."""
    lines = ["| Row | labels used | model selection | seeds | " + " | ".join(c for c, _ in COLUMNS)
             + " | whole-run time / ERM |", "|---" * (len(COLUMNS) + 5) + "|"]
    erm_seconds = statistics.mean(m["run_seconds"] for m in results["erm"]) if "erm" in results else None
    for row, runs in results.items():
        cells = []
        for _, (section, key) in COLUMNS:
            values = [100 * float(m[section][key]) for m in runs if key in m.get(section, {})]
            if not values:
                cells.append("n/a")
                continue
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        ratio = "n/a" if erm_seconds is None else f"{statistics.mean(m['run_seconds'] for m in runs) / erm_seconds:.2f}"
        lines.append(f"| {row} | {LABELS[row]} | {SELECTION[row]} | {len(runs)} | " + " | ".join(cells)
                     + f" | {ratio} |")
    return "\n".join(lines)


