"""The benchmark suite: every row of ``recipes/peers.py`` on every member of a versioned suite file, development and
reserved members reported apart.

Each member is rendered once into ``--data-root/<member>`` from its generator config, then ``recipes/peers.py``
runs the rows on it into ``--output-dir/<member>`` (one process per member, ``--jobs`` at a time; ``--reuse``
keeps finished runs, so an interrupted suite resumes). ``--extra`` goes on to ``recipes/train.py`` (e.g.
``--epochs 2`` for a smoke run; on a GPU machine train.py uses the GPU unless ``--cpu``). The table gives, per
member and row, mean +- std over seeds of worst-group and average accuracy; then per row the mean over
development members and over reserved members, flagged when the reserved mean falls 10 or more worst-group points
below the development mean (the row was tuned to the development members and does not carry over); then, per
member, the default against ERM (target: worst-group +10 points, average no worse than -2), JTT and GroupDRO.
A member whose true-mask oracle (``oracle`` row) does not learn the object at this budget (average accuracy below
halfway from chance to 100%) is marked "not counted": it cannot rank methods; the means are given over the counted
members and over all.

Reserved members are evaluated once, on the final code, by ``--members all`` (or ``reserved``); never choose
options on them.

Example:
    python research/suite.py --members development --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from robusttrain.data.benchmark import SuiteMember, generate_benchmark, load_suites
from robusttrain.data.benchmark.suite import ROLES
from robusttrain.experiments import LABELS, SELECTION
from robusttrain.training import OneLineParser

ROOT = Path(__file__).resolve().parents[1]
OVERFIT_POINTS = 10.0  # reserved worst-group mean this far below development = "does not carry over"
TARGET_WORST_GAIN, TARGET_AVERAGE_LOSS = 10.0, 2.0  # the default's target against ERM on every member (points)
LEARNABLE_SHARE = 0.5  # a member counts when the mask oracle's average accuracy gets this share of the way from
#                        chance to 100%: below it no row can learn the object at this budget, so it ranks nothing


def latest_suite() -> Path:
    """The newest suite file, ``research/suites/suite_v<N>.yaml`` with the largest N."""
    return max((ROOT / "research" / "suites").glob("suite_v*.yaml"), key=lambda p: int(p.stem.split("_v")[1]))


def select(suite: list[SuiteMember], wanted: Sequence[str]) -> list[SuiteMember]:
    """Members by role (``development``, ``reserved``, ``all``) or by name.

    Raises:
        ValueError: a name the suite does not have.
    """
    names = {m.name for m in suite}
    unknown = sorted(set(wanted) - names - {"development", "reserved", "all"})
    if unknown:
        raise ValueError(f"unknown suite member(s) {unknown}; the suite has {sorted(names)}")
    return [m for m in suite if "all" in wanted or m.role in wanted or m.name in wanted]


def run_member(member: SuiteMember, args: argparse.Namespace) -> None:
    """``recipes/peers.py`` on one member, in its own process (log in ``<output>/<member>/peers.log``)."""
    out = Path(args.output_dir) / member.name
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "recipes" / "peers.py"), "--rows", *args.rows, "--seeds",
               *map(str, args.seeds), "--output-dir", str(out), *(["--reuse"] if args.reuse else []), "--extra",
               "--data-dir", str(Path(args.data_root) / member.name), "--no-generate", "--image-size",
               str(member.config.image_size), *args.extra]
    with open(out / "peers.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"suite member {member.name} failed (exit {code}); see {out / 'peers.log'}")


def _metric(out: Path, row: str, seeds: Sequence[int], key: str) -> list[float]:
    return [100 * json.loads((out / row / f"seed_{s}" / "metrics.json").read_text())["groups"][key] for s in seeds]


def row_seconds(member_dir: Path, row: str, seed: int) -> float:
    """A row's whole-run time on one seed: its CPU time where recorded (what it computed, whatever else the machine
    ran), else its wall-clock time; DFR's is the ERM run it refits plus the refit."""
    metrics = json.loads((member_dir / row / f"seed_{seed}" / "metrics.json").read_text())
    if "fit_seconds" in metrics:
        return row_seconds(member_dir, "erm", seed) + metrics["fit_seconds"]
    return metrics.get("train_cpu_seconds", metrics["train_seconds"])


def time_ratio(out: Path, seeds: Sequence[int]) -> float:
    """The default's whole-run time over ERM's on one member (data pass included), mean over seeds of the
    per-seed ratios."""
    return statistics.mean(row_seconds(out, "default", s) / row_seconds(out, "erm", s) for s in seeds)


def _cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def learnability_floor(member: SuiteMember) -> float:
    """The mask oracle's average accuracy (%) at which the member's object counts as learnable at this budget:
    halfway from chance (1 / classes) to 100%."""
    chance = 100.0 / member.config.num_classes
    return chance + LEARNABLE_SHARE * (100.0 - chance)


def learnable(members: list[SuiteMember], seed_means: dict[tuple[str, str], tuple[float, float]]) -> dict[str, bool]:
    """Per member, whether the mask oracle's mean average accuracy reaches ``learnability_floor`` (every member
    counts when the oracle row did not run)."""
    return {m.name: (m.name, "oracle") not in seed_means or seed_means[m.name, "oracle"][1] >= learnability_floor(m)
            for m in members}


def table(members: list[SuiteMember], rows: Sequence[str], seeds: Sequence[int], output_dir: Path) -> str:
    """Per-member results; per-row means over development and reserved members, all of them and the learnable ones
    (the overfit flag compares the learnable ones); then the default's checks."""
    lines = ["| Member | role | Row | labels used | model selection | Worst-group acc | Avg acc |",
             "|---|---|---|---|---|---|---|"]
    seed_means: dict[tuple[str, str], tuple[float, float]] = {}  # (member, row) -> worst-group, average
    for member in members:
        for row in rows:
            worst = _metric(output_dir / member.name, row, seeds, "worst_group_accuracy")
            average = _metric(output_dir / member.name, row, seeds, "average_accuracy")
            seed_means[member.name, row] = statistics.mean(worst), statistics.mean(average)
            lines.append(f"| {member.name} | {member.role} | {row} | {LABELS[row]} | "
                         f"{SELECTION[row]} | {_cell(worst)} | {_cell(average)} |")
    counted = learnable(members, seed_means)
    lines += ["", "| Row | labels used | development WGA, learnable (all) | reserved WGA, learnable (all) "
              "| carries over? |", "|---|---|---|---|---|"]
    for row in rows:
        learnable_means, cells = [], []
        for role in ROLES:
            every = [seed_means[m.name, row][0] for m in members if m.role == role]
            some = [seed_means[m.name, row][0] for m in members if m.role == role and counted[m.name]]
            learnable_means.append(some)
            cells.append(_role_mean(some, every))
        dev, held = learnable_means
        verdict = "n/a"
        if dev and held:
            gap = statistics.mean(dev) - statistics.mean(held)
            verdict = f"NO: {gap:.1f} points lower on reserved" if gap >= OVERFIT_POINTS else "yes"
        lines.append(f"| {row} | {LABELS[row]} | {' | '.join(cells)} | {verdict} |")
    if {"default", "erm"} <= set(rows):
        times = {m.name: time_ratio(output_dir / m.name, seeds) for m in members}
        lines += ["", *checks(members, rows, seed_means, counted, times)]
    return "\n".join(lines)


def write_csv(members: list[SuiteMember], rows: Sequence[str], seeds: Sequence[int], output_dir: Path,
              path: Path) -> None:
    """Every run: member, its role and shortcut kind, row, the labels it uses, seed, worst-group and average
    accuracy (%), whole-run seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["member", "role", "shortcut", "row", "labels", "seed", "worst_group", "average", "seconds"])
        for member in members:
            for row in rows:
                for seed in seeds:
                    metrics = json.loads((output_dir / member.name / row / f"seed_{seed}" / "metrics.json").read_text())
                    writer.writerow([member.name, member.role, member.config.shortcut, row, LABELS[row], seed,
                                     round(100 * metrics["groups"]["worst_group_accuracy"], 2),
                                     round(100 * metrics["groups"]["average_accuracy"], 2),
                                     round(row_seconds(output_dir / member.name, row, seed), 1)])


def _role_mean(some: list[float], every: list[float]) -> str:
    """``mean [members]`` of a role's worst-group accuracies over its learnable members, then over all of them."""
    text = [f"{statistics.mean(v):.1f} [{len(v)}]" if v else "none" for v in (some, every)]
    return f"{text[0]} ({text[1]})" if every else "n/a"


def checks(members: list[SuiteMember], rows: Sequence[str], seed_means: dict[tuple[str, str], tuple[float, float]],
           counted: dict[str, bool], times: dict[str, float]) -> list[str]:
    """Per member (and its shortcut kind), the default against ERM (the target: worst-group at least ERM + 10,
    average at least ERM - 2), against JTT and GroupDRO where they ran (differences of seed means, points), and the
    default's whole-run time over ERM's. A member whose mask oracle stays below ``learnability_floor`` is marked as
    not counted: no row can learn its object at this budget."""
    header = ("| Member | role | shortcut | oracle avg (floor) | default - ERM WGA | default - ERM avg "
              "| meets ERM + 10 / - 2? |")
    peers = [row for row in ("jtt", "group_dro") if row in rows]
    header += "".join(f" default - {row} WGA |" for row in peers) + " time default / ERM |"
    lines = [header, "|---" * (8 + len(peers)) + "|"]
    for member in members:
        default_worst, default_average = seed_means[member.name, "default"]
        erm_worst, erm_average = seed_means[member.name, "erm"]
        worst, average = default_worst - erm_worst, default_average - erm_average
        meets = "yes" if worst >= TARGET_WORST_GAIN and average >= -TARGET_AVERAGE_LOSS else "NO"
        oracle = "not run"
        if (member.name, "oracle") in seed_means:
            oracle = f"{seed_means[member.name, 'oracle'][1]:.1f} ({learnability_floor(member):.1f})"
        if not counted[member.name]:
            meets += " (not counted: the oracle stays below the floor)"
        cells = "".join(f" {default_worst - seed_means[member.name, row][0]:+.1f} |" for row in peers)
        lines.append(f"| {member.name} | {member.role} | {member.config.shortcut} | {oracle} | {worst:+.1f} | "
                     f"{average:+.1f} | {meets} |{cells} {times[member.name]:.2f}x |")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", nargs="+", default=[str(latest_suite())],
                        help="suite files (default: the newest suite_v*.yaml); several: their members together")
    parser.add_argument("--members", nargs="+", default=["development"],
                        help="development, reserved, all, or member names")
    parser.add_argument("--rows", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output-dir", default="reports/suite")
    parser.add_argument("--data-root", default="data/suite")
    parser.add_argument("--jobs", type=int, default=1, help="members run side by side (one process each)")
    parser.add_argument("--reuse", action="store_true", help="keep runs whose metrics.json already exists")
    parser.add_argument("--csv", help="also write every run's results here (one row per member, row and seed)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags passed on to train.py")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer, got {args.jobs}")
    try:
        members = select(load_suites(args.suite), args.members)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    for member in members:  # rendered once, before any process reads it
        generate_benchmark(Path(args.data_root) / member.name, member.config)
    largest_first = sorted(members, key=lambda m: m.config.n_train * m.config.image_size**2, reverse=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # the slowest member does not start last
        for future in [pool.submit(run_member, member, args) for member in largest_first]:
            future.result()
    text = table(members, args.rows, args.seeds, Path(args.output_dir))
    Path(args.output_dir, "suite.md").write_text(text + "\n")
    if args.csv:
        write_csv(members, args.rows, args.seeds, Path(args.output_dir), Path(args.csv))
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
