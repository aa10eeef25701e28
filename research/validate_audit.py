"""The audit's verdicts checked against the truth on a benchmark suite's members, for every shortcut kind.

1. Dataset audit of each member's training split, as a user without masks runs it (``--ignore-masks``): does it
   say BIASED, and how well do its flags find the true minority (precision and recall against ``place != y``;
   the flags bar: both >= 0.7 on every learnable member)?
2. Model audit (``--ignore-masks``, ``--max-images`` evenly spaced test images) of every finished training run of
   the suite (``--output-dir`` of ``research/suite.py``: ``<member>/<row>/seed_<s>``), on a copy of the member
   whose metadata hides the groups (every ``place`` 0, no masks, no benchmark.json): the verdict then rests on
   the signals a user without group labels has (the views, the samples whose shortcut suggests another label),
   not on the true groups. Its verdict (recomputed from the report's summary with the current rule, so a change of
   the rule needs no new audits) next to the run's true test worst-group and average accuracy. The bar: no model
   whose worst group is under 60% while its average is over 70% is said to rely on the object. Also counted: every
   model under 20% worst group whatever its average (a model that reads only the shortcut averages about 50%).

Members missing under ``--data-root`` are rendered first; ``--no-models`` runs the dataset audits only (no
training runs needed).

Example:
    python research/validate_audit.py --suite research/suites/suite_v3.yaml --members all \
        --runs reports/suite_v3 --data-root data/suite_v3 --output reports/suite_v3_verdicts
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robusttrain.audit.verdict import model_verdict
from robusttrain.cli import main as cli
from robusttrain.data.benchmark import generate_benchmark, load_suites
from robusttrain.data.waterbirds import write_view
from robusttrain.eval import write_tables_csv
from robusttrain.training import OneLineParser

SHORTCUT_WORDS = ("USES THE BACKGROUND", "RELIES ON THE BACKGROUND")
BAR_WORST, BAR_AVERAGE = 0.60, 0.70  # a model below the first while above the second has learned the shortcut
FALLEN = 0.20  # a model under this worst group has fallen for the shortcut, whatever its average


def audit(args: list[str], output: Path) -> dict:
    """``robusttrain audit`` into ``output`` (reused when its report exists), its report.json."""
    if not (output / "report.json").exists():
        if cli([*args, "--output", str(output), "--ignore-masks", "--no-progress", "--fresh"]) != 0:
            raise SystemExit(f"audit failed: {args}")
    return json.loads((output / "report.json").read_text())


def dataset_rows(members: list, data_root: Path, out: Path) -> list[str]:
    lines = ["| member | shortcut | verdict | flagged | true minority | precision | recall | both >= 0.7? |",
             "|---|---|---|---|---|---|---|---|"]
    for member in members:
        report = audit(["audit", "--data", str(data_root / member.name), "--split", "train"],
                       out / "dataset" / member.name)
        dataset = report["dataset_audit"]
        found = dataset["groups"]["recovery"]
        verdict = "BIASED" if dataset["biased"] else "no bias found"
        if dataset.get("biased_by_place"):
            verdict += " (place column: biased)"
        if found["balanced"]:
            lines.append(f"| {member.name} | {member.config.shortcut} | {verdict} | {found['flagged']} | "
                         "none (groups balanced) | n/a | n/a | n/a |")
            continue
        precision, recall = found["precision"] or 0.0, found["recall"] or 0.0
        lines.append(f"| {member.name} | {member.config.shortcut} | {verdict} | {found['flagged']} | "
                     f"{found['true_minority']} | {precision:.2f} | {recall:.2f} | "
                     f"{'yes' if min(precision, recall) >= 0.7 else 'NO'} |")
    return lines


def model_rows(members: list, data_root: Path, runs: Path, images: int, out: Path) -> list[str]:
    lines = ["| member | shortcut | row | seed | test worst group | test average | verdict | meets the bar? |",
             "|---|---|---|---|---|---|---|---|"]
    misses = []
    fallen = {"all": 0, "background": 0, "one class": 0, "object": 0}  # worst group under the bar, any average
    for member in members:
        data = write_view(data_root / member.name, out / "hidden_groups" / member.name, set_columns={"place": "0"},
                          keep_manifest=False)  # no groups, no masks; names from the layout
        for run in sorted((runs / member.name).glob("*/seed_*")):
            if not (run / "model.pt").exists() or not (run / "metrics.json").exists():
                continue
            groups = json.loads((run / "metrics.json").read_text())["groups"]
            worst, average = groups["worst_group_accuracy"], groups["average_accuracy"]
            report = audit(["audit", "--data", str(data), "--split", "test", "--model", str(run),
                            "--no-dataset-audit", "--max-images", str(images)],
                           out / "model" / member.name / run.parent.name / run.name)
            verdict = model_verdict(report["model_summary"], report.get("blur")).split(":")[0]
            says_object = verdict.startswith("relies on the object")
            learned_shortcut = worst < BAR_WORST and average > BAR_AVERAGE
            if worst < FALLEN:
                fallen["all"] += 1
                fallen["background"] += verdict.startswith(SHORTCUT_WORDS)
                fallen["one class"] += verdict.startswith("ANSWERS ONE CLASS")
                fallen["object"] += says_object
            meets = "n/a"
            if learned_shortcut:
                meets = "NO" if says_object else "yes"
                misses += [f"{member.name}/{run.parent.name}/{run.name}"] if says_object else []
            lines.append(f"| {member.name} | {member.config.shortcut} | {run.parent.name} | {run.name[5:]} | "
                         f"{100 * worst:.1f} | {100 * average:.1f} | {verdict} | {meets} |")
    relevant = [line for line in lines[2:] if not line.endswith("| n/a |")]
    lines.append("")
    lines.append(f"Models under {100 * BAR_WORST:.0f}% worst group and over {100 * BAR_AVERAGE:.0f}% average: "
                 f"{len(relevant)}; said to rely on the object: {len(misses)}"
                 + (f" ({', '.join(misses)})" if misses else ""))
    lines.append(f"Models under {100 * FALLEN:.0f}% worst group, any average: {fallen['all']}; verdict says the "
                 f"background for {fallen['background']}, answers one class for {fallen['one class']}, relies on the "
                 f"object for {fallen['object']}")
    return lines


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", nargs="+", required=True, help="suite files (several: their members together)")
    parser.add_argument("--members", nargs="+", default=["all"], help="development, reserved, all or names")
    parser.add_argument("--runs", help="research/suite.py --output-dir (needed unless --no-models)")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--images", type=int, default=400, help="test images per model audit")
    parser.add_argument("--output", default="reports/audit_validation")
    parser.add_argument("--no-models", action="store_true", help="dataset audits only")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    args = parser.parse_args()
    if args.runs is None and not args.no_models:
        parser.error("--runs is needed for the model audits (or --no-models)")
    members = [m for m in load_suites(args.suite)
               if "all" in args.members or m.role in args.members or m.name in args.members]
    for member in members:  # a member's folder that exists is used as it is
        if not (Path(args.data_root) / member.name).exists():
            generate_benchmark(Path(args.data_root) / member.name, member.config)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    text = dataset_rows(members, Path(args.data_root), out)
    if not args.no_models:
        text += ["", *model_rows(members, Path(args.data_root), Path(args.runs), args.images, out)]
    (out / "verdicts.md").write_text("\n".join(text) + "\n")
    if args.csv:
        write_tables_csv("\n".join(text), args.csv)
    print("\n".join(text))


if __name__ == "__main__":
    main()
