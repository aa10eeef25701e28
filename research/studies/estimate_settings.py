"""Which network-estimate settings see what, at what cost: biased or not, flags against the true minority, seconds.

Renders each member of a suite file (its training split only is read), makes the estimate's thumbnails once, then
runs :func:`robusttrain.estimate.estimate_minority_network` with each candidate setting and writes one CSV row per
member and setting: the verdict, the net's accuracy, its share of sure mistakes, how many it flagged, precision and
recall against the true minority (``place`` not the label's most common place) and the estimate's seconds on this
machine. The question it answers: can one setting serve both the training default (within its share of the
whole-run time) and the dataset audit (as sensitive and as precise as the audit's three wide runs)?
``--flag-below`` adds, from the same out-of-fold probabilities, a row per threshold (the label's probability under
T / K flags a mistake; ``1`` flags every mistake under 1/K, ``all`` every mistake): how much recall a looser rule
buys and what it costs in precision.

Example:
    python research/studies/estimate_settings.py --suite research/suites/suite_v7.yaml --members development \
        --data-root data/suite_v7 --csv reports/estimate_settings.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robusttrain.audit.groups import true_minority  # noqa: E402
from robusttrain.data.benchmark import generate_benchmark, load_suites  # noqa: E402
from robusttrain.data.transforms import build_eval_transform  # noqa: E402
from robusttrain.data.waterbirds import WaterbirdsDataset  # noqa: E402
from robusttrain.estimate import (  # noqa: E402
    ESTIMATE,
    NetworkSettings,
    estimate_minority_network,
    network,  # noqa: E402
    thumbnails,
)
from robusttrain.estimate.network import WIDTH  # noqa: E402

DEFAULT_MIN_STEPS = network.MIN_STEPS

# "audit" and "half_1run_flag0.1": the audit's and the training default's settings before they became one
# (ESTIMATE = "half_2runs_flag0.2").
CANDIDATES: dict[str, NetworkSettings] = {
    "audit": replace(ESTIMATE, width=WIDTH, runs=3),
    "half_1run_flag0.1": replace(ESTIMATE, runs=1, flag_probability=0.1),
    "full_1run_flag0.2": replace(ESTIMATE, width=WIDTH, runs=1),
    "half_3runs_flag0.2": replace(ESTIMATE, runs=3),
    "half_2runs_flag0.2": ESTIMATE,
    "half_3runs_72steps": replace(ESTIMATE, runs=3),
    "half_2runs_72steps": ESTIMATE,
}
MIN_STEPS = {"half_3runs_72steps": 70, "half_2runs_72steps": 70}  # fewer updates on small sets than the module's


def member_views(root: Path, side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thumbnails, labels and the true-minority mask of a member's training split."""
    dataset = WaterbirdsDataset(root, "train", build_eval_transform(None))
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, num_workers=0)
    images, labels = [], []
    for batch in loader:
        images.append(thumbnails(batch["image"], side))
        labels.append(batch["target"])
    labels_by_id = {r.sample_id: r.target for r in dataset.records}
    places = {r.sample_id: r.group % dataset.num_places for r in dataset.records}
    minority = true_minority(labels_by_id, places)
    truth = torch.tensor([r.sample_id in minority for r in dataset.records])
    return torch.cat(images), torch.cat(labels).long(), truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--members", nargs="+", default=["development"])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--settings", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--flag-below", nargs="+", default=[], help="thresholds T (flags under T/K) or 'all'")
    args = parser.parse_args()
    members = [m for m in load_suites([args.suite]) if m.role in args.members or m.name in args.members
               or "all" in args.members]
    out = Path(args.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["member", "setting", "seed", "biased", "accuracy", "sure_mistakes", "flagged",
                         "true_minority", "precision", "recall", "seconds"])
        for member in members:
            root = generate_benchmark(Path(args.data_root) / member.name, member.config)
            images, labels, truth = member_views(root, ESTIMATE.side)
            for name in args.settings:
                for seed in args.seeds:
                    network.MIN_STEPS = MIN_STEPS.get(name, DEFAULT_MIN_STEPS)
                    start = time.perf_counter()
                    found = estimate_minority_network(images, labels, int(labels.max()) + 1, seed,
                                                      settings=CANDIDATES[name])
                    seconds = time.perf_counter() - start
                    rules = [(name, found.flagged)]
                    k = found.out_of_fold.shape[1]
                    for threshold in args.flag_below:
                        below = None if threshold == "all" else float(threshold) / k
                        rules.append((f"{name}@{threshold}", replace(found, flag_below=below).flagged))
                    for rule, flags in rules:
                        flagged = flags & found.biased
                        hits = int((flagged & truth).sum())
                        precision = hits / int(flagged.sum()) if flagged.any() else float("nan")
                        recall = hits / int(truth.sum()) if truth.any() else float("nan")
                        row = [member.name, rule, seed, found.biased, round(found.accuracy, 4),
                               round(found.sure_mistakes or 0.0, 3), int(flagged.sum()), int(truth.sum()),
                               round(precision, 3), round(recall, 3), round(seconds, 1)]
                        writer.writerow(row)
                        handle.flush()
                        print(*row, sep="\t", flush=True)


if __name__ == "__main__":
    main()
