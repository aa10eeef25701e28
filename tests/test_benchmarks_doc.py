"""Every command printed in BENCHMARKS.md still runs on the current code at a tiny budget and writes the CSV its
table is made from (the full runs are benchmarks, never part of `make test`)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from robusttrain.data.benchmark import load_suites

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAINING = ["--image-size", "32", "--epochs", "1", "--max-steps", "2", "--batch-size", "32",
                 "--variant-pool-size", "32", "--eval-batch-size", "64"]


def benchmark_commands() -> list[list[str]]:
    """The commands of BENCHMARKS.md's ``bash`` blocks, continuation lines joined, as argument lists."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "BENCHMARKS.md").read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # environment assignments
                words = words[1:]
            if words and words[:3] != [".venv/bin/pip", "install", "-e"]:  # installing an extra is set-up
                commands.append(words)
    return commands


def distinct_commands() -> list[list[str]]:
    """One command per script and set of options: commands that differ only in values (the ellipse datasets, the
    audit's validation sets) smoke-test the same code, so each is run once."""
    seen, distinct = set(), []
    for words in benchmark_commands():
        key = (words[1], frozenset(word for word in words if word.startswith("--")))
        if key not in seen:
            seen.add(key)
            distinct.append(words)
    return distinct


def _values(words: list[str], name: str) -> list[str]:
    """The values following option ``name`` up to the next option (empty without it)."""
    if name not in words:
        return []
    values = []
    for word in words[words.index(name) + 1:]:
        if word.startswith("--"):
            break
        values.append(word)
    return values


def _without(words: list[str], *names: str) -> list[str]:
    """``words`` without the options ``names`` and their values (the smoke run gives its own)."""
    kept, skipping = [], False
    for word in words:
        if word.startswith("--"):
            skipping = word in names
        if not skipping:
            kept.append(word)
    return kept


def _member_view(tmp: Path, data: Path, suites: list[str]) -> tuple[str, Path]:
    """The first member of the command's suites, with the tiny benchmark standing in for its rendering."""
    member = load_suites([ROOT / s for s in suites])[0].name
    (tmp / "data").mkdir(exist_ok=True)
    (tmp / "data" / member).symlink_to(data)
    return member, tmp / "data"


def _runs(tmp: Path, data: Path) -> tuple[Path, Path]:
    """Two tiny training runs (ERM and the default) for the commands that audit trained models."""
    from robusttrain import TrainOptions, train

    folders = []
    for name, extra in (("erm", []), ("default", ["-c", str(ROOT / "configs" / "callbacks" / "default.yaml")])):
        out = tmp / "runs" / name
        train(TrainOptions.from_argv(["--data-dir", str(data), "--model", "test_resnet", "--output-dir", str(out),
                                      "--no-progress", *TINY_TRAINING, *extra])[0])
        folders.append(out)
    return folders[0], folders[1]


def smoke(words: list[str], tmp: Path, data: Path) -> tuple[list[str], Path]:
    """The command at a tiny budget into ``tmp``, and the CSV it must write."""
    assert words[0] == ".venv/bin/python", words
    script, args = words[1], words[2:]
    csv = tmp / "table.csv"
    out = ["--csv", str(csv)]
    if script == "research/suite.py":  # renders one member for real (a suite checks what its folder holds)
        member = load_suites([ROOT / s for s in _values(args, "--suite")])[0].name
        own = ["--suite", *_values(args, "--suite"), "--members", member, "--seeds", "0", "--rows", "erm",
               "default", "--jobs", "1", "--data-root", str(tmp / "suite_data"),
               "--output-dir", str(tmp / "out"), *out, "--extra", *TINY_TRAINING]
        return [sys.executable, script, *own], csv
    if script == "research/validate_audit.py":
        member, root = _member_view(tmp, data, _values(args, "--suite"))
        own = ["--suite", *_values(args, "--suite"), "--members", member, "--data-root", str(root), "--output",
               str(tmp / "out"), "--images", "16", *out]
        if "--no-models" in args:
            return [sys.executable, script, *own, "--no-models"], csv
        runs = tmp / "suite_runs" / member
        for row, folder in zip(("erm", "default"), _runs(tmp, data), strict=True):
            (runs / row).mkdir(parents=True)
            (runs / row / "seed_0").symlink_to(folder)
        return [sys.executable, script, *own, "--runs", str(tmp / "suite_runs")], csv
    if script == "bench/paths.py":
        own = ["--data-dir", str(tmp / "bench"), "--fraction", "0.03", "--epochs", "1", "--seeds", "0",
               "--work-dir", str(tmp / "work"), "--output", str(csv)]
        return [sys.executable, script, *_without(args, "--data-dir", "--seeds", "--work-dir", "--output"), *own], csv
    if script == "bench/callback_overhead.py":
        own = ["--steps", "3", "--warmup", "1", "--batches", "2", "--batch", "8", "--size", "32", *out]
        return [sys.executable, script, *_without(args, "--steps", "--batch", "--size", "--csv"), *own], csv
    if script == "bench/maps_per_second.py":
        own = ["--models", "test_resnet", "--batch", "4", "--size", "32", "--repeats", "1", *out]
        return [sys.executable, script, *_without(args, "--models", "--batch", "--size", "--csv"), *own], csv
    if script == "bench/audit.py":
        erm, default = _runs(tmp, data)
        own = ["--data", str(data), "--erm", str(erm), "--randomized", str(default), "--images", "16",
               "--report-images", "16", "--output", str(tmp / "out"), *out]
        return [sys.executable, script, *own], csv
    if script == "recipes/map_quality.py":
        own = ["--data-dir", str(tmp / "balanced"), "--images", "8", "--sanity-images", "2", "--steps", "2",
               "--output-dir", str(tmp / "out"), *out, "--extra", "--benchmark-fraction", "0.02", *TINY_TRAINING]
        return [sys.executable, script, *_without(args, "--output-dir", "--csv"), *own], csv
    if script == "recipes/noise_robustness.py":
        own = ["--images", "8", "--variances", "0", "0.5", "--output-dir", str(tmp / "out"), *out, "--extra",
               "--data-dir", str(tmp / "balanced"), "--benchmark-fraction", "0.02", *TINY_TRAINING]
        return [sys.executable, script, *_without(args, "--output-dir", "--csv"), *own], csv
    if script == "recipes/ellipses.py":
        own = ["--train-size", "64", "--test-size", "16", "--epochs", "1", "--start-epoch", "0", "--output-dir",
               str(tmp / "out"), *out]
        return [sys.executable, script, *_without(args, "--output-dir", "--csv"), *own], csv
    if script == "recipes/feature_masks.py":
        own = ["--data-dir", str(tmp / "fm"), "--image-size", "32", "--seeds", "0", "--max-steps", "2",
               "--batch-size", "16", "--eval-images", "16", "--benchmark-fraction", "0.02", "--jobs", "1",
               "--output-dir", str(tmp / "out"), *out]
        return [sys.executable, script, *_without(args, "--output-dir", "--csv", "--jobs"), *own], csv
    raise AssertionError(f"BENCHMARKS.md runs {script}: add its tiny budget here")


def test_every_command_writes_a_csv_under_results_that_is_there() -> None:
    commands = benchmark_commands()
    sections = (ROOT / "BENCHMARKS.md").read_text().split("\n## ")[1:]
    tables = [section for section in sections if "|---" in section]
    assert tables and commands
    for section in tables:  # a table is never without the command that makes it
        assert "```bash" in section, section.splitlines()[0]
    for words in commands:
        written = _values(words, "--csv") or _values(words, "--output")
        assert written and written[0].startswith("results/"), words
        assert (ROOT / written[0]).is_file(), f"{written[0]} is missing: run the command and commit its CSV"


@pytest.mark.slow
@pytest.mark.parametrize("position", range(len(distinct_commands())))
def test_each_benchmark_command_runs_at_a_tiny_budget(position: int, tiny_benchmark: Path, tmp_path: Path) -> None:
    command, csv = smoke(distinct_commands()[position], tmp_path, tiny_benchmark)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert csv.is_file() and len(csv.read_text().splitlines()) >= 2, csv
