"""Models that fall for a shortcut halfway, for the model verdict's validation (#28 item 4): one class's
off-place samples are upweighted, the other class's are not.

Plain ERM on the generated members either reads the shortcut alone (average near 50%) or learns the object for
both minority groups together; models whose worst group is under 20% while the average is over 60% (the bar's
regime, common on real data) did not appear in 69 ERM runs. Here the training batches are drawn with weights
that give class ``--class``'s off-place groups as much weight as its on-place group (true training groups are
used to *make* the model, never to judge it): the model must read objects on the places where that class
appears off its own, and can go on reading the place elsewhere. Each run is ``robusttrain train -c BASE
--sample-weights`` into ``<output-dir>/<member>/one_minority/seed_<s>``, where ``research/validate_audit.py`` finds
it next to the suite's own rows.

Example:
    OMP_NUM_THREADS=1 python research/studies/half_fallen_models.py --suite research/suites/verdicts_v3.yaml \
        --members all \
        --seeds 0 1 --jobs 2 --data-root data/verdicts_v3 --output-dir reports/verdicts_v3
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from robusttrain.data import WaterbirdsDataset
from robusttrain.data.benchmark import load_suite
from robusttrain.experiments.compare import train_argv
from robusttrain.experiments.peers import write_weights

ROW = "one_minority"


def one_class_weights(data: Path, upweighted: int) -> tuple[list[int], list[float]]:
    """Sample ids of the training split and their weights: class ``upweighted``'s off-place groups weighted up to
    the size of its on-place group, every other sample 1."""
    train = WaterbirdsDataset(data, "train")
    labels = torch.as_tensor([r.target for r in train.records])
    places = torch.as_tensor(train.places)
    weights = torch.ones(len(labels), dtype=torch.float64)
    own = int(((labels == upweighted) & (places == upweighted)).sum())
    for place in places.unique().tolist():
        group = (labels == upweighted) & (places == place)
        if place != upweighted and group.any():
            weights[group] = own / int(group.sum())
    return [r.sample_id for r in train.records], weights.tolist()


def run(job: tuple[str, Path, Path, int, int, list[str]]) -> str:
    """One training run (skipped when finished); returns its folder."""
    base, data, out, upweighted, seed, extra = job
    if not (out / "metrics.json").is_file():
        weights = write_weights(out / f"weights_class{upweighted}.csv", *one_class_weights(data, upweighted))
        train_argv(["-c", base, "--data-dir", str(data), "--no-generate", "--seed", str(seed), "--output-dir",
                    str(out), "--no-progress", "--overwrite", "--sample-weights", str(weights), *extra])
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--members", nargs="+", default=["all"], help="development, reserved, all or names")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--class", dest="upweighted", type=int, default=1, help="the class whose off-place samples "
                        "are upweighted")
    parser.add_argument("--base", default="configs/erm.yaml")
    parser.add_argument("--data-root", required=True, help="research/suite.py --data-root (members rendered there)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags for every training run")
    args = parser.parse_args()
    members = [m for m in load_suite(args.suite)
               if "all" in args.members or m.role in args.members or m.name in args.members]
    jobs = [(args.base, Path(args.data_root) / m.name, Path(args.output_dir) / m.name / ROW / f"seed_{seed}",
             args.upweighted, seed, args.extra) for m in members for seed in args.seeds]
    missing = [str(job[1]) for job in jobs if not (job[1] / "metadata.csv").is_file()]
    if missing:
        raise SystemExit(f"members not rendered (run research/suite.py first): {', '.join(sorted(set(missing)))}")
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = list(pool.map(run, jobs))
    else:
        done = [run(job) for job in jobs]
    print("\n".join(done))


if __name__ == "__main__":
    main()
