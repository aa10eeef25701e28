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

Reserved members are evaluated once, on the final code, by ``--members reserved``; never choose options on them.

Example:
    python recipes/suite.py --members development --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers as peers_recipe  # noqa: E402  (sibling recipe script)

from robusttrain.data.benchmark import SuiteMember, generate_benchmark, load_suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OVERFIT_POINTS = 10.0  # reserved worst-group mean this far below development = "does not carry over"
TARGET_WORST_GAIN, TARGET_AVERAGE_LOSS = 10.0, 2.0  # the default's target against ERM on every member (points)


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


def _cell(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def table(members: list[SuiteMember], rows: Sequence[str], seeds: Sequence[int], output_dir: Path) -> str:
    """Per-member results, then per-row means over development and over reserved members (with the overfit flag)."""
    lines = ["| Member | role | Row | labels used | model selection | Worst-group acc | Avg acc |",
             "|---|---|---|---|---|---|---|"]
    means: dict[tuple[str, str], list[float]] = {}
    seed_means: dict[tuple[str, str], tuple[float, float]] = {}  # (member, row) -> worst-group, average
    for member in members:
        for row in rows:
            worst = _metric(output_dir / member.name, row, seeds, "worst_group_accuracy")
            average = _metric(output_dir / member.name, row, seeds, "average_accuracy")
            means.setdefault((row, member.role), []).append(statistics.mean(worst))
            seed_means[member.name, row] = statistics.mean(worst), statistics.mean(average)
            lines.append(f"| {member.name} | {member.role} | {row} | {peers_recipe.LABELS[row]} | "
                         f"{peers_recipe.SELECTION[row]} | {_cell(worst)} | {_cell(average)} |")
    lines += ["", "| Row | labels used | development WGA (members) | reserved WGA (members) | carries over? |",
              "|---|---|---|---|---|"]
    for row in rows:
        dev, held = means.get((row, "development")), means.get((row, "reserved"))
        dev_text = f"{statistics.mean(dev):.1f} ({len(dev)})" if dev else "n/a"
        held_text = f"{statistics.mean(held):.1f} ({len(held)})" if held else "n/a"
        verdict = "n/a"
        if dev and held:
            gap = statistics.mean(dev) - statistics.mean(held)
            verdict = f"NO: {gap:.1f} points lower on reserved" if gap >= OVERFIT_POINTS else "yes"
        lines.append(f"| {row} | {peers_recipe.LABELS[row]} | {dev_text} | {held_text} | {verdict} |")
    if {"default", "erm"} <= set(rows):
        lines += ["", *checks(members, rows, seed_means)]
    return "\n".join(lines)


def checks(members: list[SuiteMember], rows: Sequence[str],
           seed_means: dict[tuple[str, str], tuple[float, float]]) -> list[str]:
    """Per member, the default against ERM (the target: worst-group at least ERM + 10, average at least ERM - 2),
    against JTT and GroupDRO where they ran (differences of seed means, points)."""
    header = "| Member | role | default - ERM WGA | default - ERM avg | meets ERM + 10 / - 2? |"
    peers = [row for row in ("jtt", "group_dro") if row in rows]
    header += "".join(f" default - {row} WGA |" for row in peers)
    lines = [header, "|---" * (5 + len(peers)) + "|"]
    for member in members:
        default_worst, default_average = seed_means[member.name, "default"]
        erm_worst, erm_average = seed_means[member.name, "erm"]
        worst, average = default_worst - erm_worst, default_average - erm_average
        meets = "yes" if worst >= TARGET_WORST_GAIN and average >= -TARGET_AVERAGE_LOSS else "NO"
        cells = "".join(f" {default_worst - seed_means[member.name, row][0]:+.1f} |" for row in peers)
        lines.append(f"| {member.name} | {member.role} | {worst:+.1f} | {average:+.1f} | {meets} |{cells}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default=str(ROOT / "configs" / "suite" / "suite_v1.yaml"))
    parser.add_argument("--members", nargs="+", default=["development"],
                        help="development, reserved, all, or member names")
    parser.add_argument("--rows", nargs="+", default=list(peers_recipe.LABELS), choices=list(peers_recipe.LABELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output-dir", default="reports/suite")
    parser.add_argument("--data-root", default="data/suite")
    parser.add_argument("--jobs", type=int, default=1, help="members run side by side (one process each)")
    parser.add_argument("--reuse", action="store_true", help="keep runs whose metrics.json already exists")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags passed on to train.py")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer, got {args.jobs}")
    try:
        members = select(load_suite(args.suite), args.members)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    for member in members:  # rendered once, before any process reads it
        generate_benchmark(Path(args.data_root) / member.name, member.config)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(run_member, member, args) for member in members]:
            future.result()
    text = table(members, args.rows, args.seeds, Path(args.output_dir))
    Path(args.output_dir, "suite.md").write_text(text + "\n")
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
