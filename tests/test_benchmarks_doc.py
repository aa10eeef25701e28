"""Every command printed in BENCHMARKS.md still runs on the current code, at a tiny budget: it parses, trains a few
steps, and writes the result file its table is made from. (The full runs are benchmarks, never part of
`make test`.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from robusttrain.data.benchmark import SuiteMember, load_suite

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAINING = ["--no-generate", "--image-size", "32", "--epochs", "2", "--max-steps", "2", "--batch-size", "32",
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
            if words:
                commands.append(words)
    return commands


def _option(words: list[str], name: str) -> tuple[str, ...]:
    """The values following ``name`` up to the next option (empty without it)."""
    if name not in words:
        return ()
    values = []
    for word in words[words.index(name) + 1:]:
        if word.startswith("--"):
            break
        values.append(word)
    return tuple(values)


def distinct_commands() -> list[list[str]]:
    """One command per script, set of options and compared configurations: the smoke run replaces the other
    options' values (suites by the tiny benchmark, members, rows, seeds, data and output folders), so commands
    differing only there would smoke-test the same thing again (the suite files are checked by
    :func:`test_every_suite_named_has_a_development_member`)."""
    seen, distinct = set(), []
    for words in benchmark_commands():
        configurations = _option(words, "--runs") if words[1] == "recipes/compare.py" else ()  # kept by the smoke
        key = (words[1], frozenset(word for word in words if word.startswith("--")), configurations)
        if key not in seen:
            seen.add(key)
            distinct.append(words)
    return distinct


def first_development_member(args: list[str]) -> SuiteMember:
    """The first development member of the command's ``--suite`` (suite v4 when it names none)."""
    suite = (_option(args, "--suite") or ("research/suites/suite_v4.yaml",))[0]
    return next(m for m in load_suite(ROOT / suite) if m.role == "development")


def smoke(words: list[str], tmp: Path, data: Path) -> tuple[list[str], Path, str]:
    """The command at a tiny budget into ``tmp``, the result file it must write and a row that file must hold."""
    assert words[0] == ".venv/bin/python", words
    script, args = words[1], words[2:]
    out = tmp / "out"
    if script == "recipes/peers.py":
        own = ["--seeds", "0", "--rows", "erm", "default", "jtt", "--jtt-share", "0.5", "--output-dir", str(out)]
        training, result, row = ["--data-dir", str(data), *TINY_TRAINING], out / "peers.md", "| erm |"
    elif script == "research/suite.py":
        own = ["--seeds", "0", "--members", first_development_member(args).name, "--rows", "erm", "default",
               "--jobs", "1", "--output-dir", str(out), "--data-root", str(tmp / "data")]
        training, result, row = (["--epochs", "1", "--max-steps", "2", "--variant-pool-size", "32"],
                                 out / "suite.md", "| erm |")
    elif script == "research/suite_verdicts.py":  # the dataset audit of one member (the tiny benchmark stands in)
        member = first_development_member(args)
        (tmp / "data").mkdir()
        (tmp / "data" / member.name).symlink_to(data)
        own = ["--members", member.name, "--data-root", str(tmp / "data"), "--runs", str(tmp / "runs"),
               "--output", str(out), "--no-models"]
        training, result, row = [], out / "verdicts.md", f"| {member.name} | {member.config.shortcut} | BIASED |"
    elif script == "research/studies/half_fallen_models.py":  # one run on one member (the tiny benchmark stands in)
        member = first_development_member(args).name
        (tmp / "data").mkdir()
        (tmp / "data" / member).symlink_to(data)
        own = ["--members", member, "--seeds", "0", "--jobs", "1", "--data-root", str(tmp / "data"),
               "--output-dir", str(out)]
        result = out / member / "one_minority" / "seed_0" / "metrics.json"
        return [sys.executable, script, *args, *own, "--extra", *TINY_TRAINING[1:]], result, "worst_group_accuracy"
    elif script == "research/studies/shortcut_map_coverage.py":
        own = ["--data", str(data), "--blocks", "2", "--thresholds", "0.5", "--output", str(out / "coverage.md")]
        training, result, row = [], out / "coverage.md", f"| {data.name} | 2 (8 px) | 0.5 |"
    elif script == "bench/callback_overhead.py":
        own = ["--steps", "3", "--warmup", "1", "--batches", "2", "--batch", "8", "--size", "32",
               "--output", str(out / "overhead.md")]
        training, result, row = [], out / "overhead.md", "| plain |"
    elif script == "recipes/compare.py":
        own = ["--seeds", "0", "--output-dir", str(out)]
        training, result, row = ["--data-dir", str(data), *TINY_TRAINING], out / "compare.md", "| ERM |"
    else:
        raise AssertionError(f"BENCHMARKS.md runs {script}: add its tiny budget here")
    cut = args.index("--extra") if "--extra" in args else len(args)
    extra = args[cut + 1:] if cut < len(args) else []
    if script.startswith("bench/"):  # takes no training flags
        return [sys.executable, script, *args[:cut], *own], result, row
    return [sys.executable, script, *args[:cut], *own, "--extra", *extra, *training], result, row


def test_benchmarks_md_prints_the_command_of_each_table() -> None:
    commands = benchmark_commands()
    scripts = {words[1] for words in commands}
    assert {"recipes/peers.py", "research/suite.py", "recipes/compare.py"} <= scripts
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert text.count("```bash") == len(commands) and "_TABLE" not in text


def test_every_suite_named_has_a_development_member() -> None:
    suites = {_option(words, "--suite") for words in benchmark_commands()} - {()}
    assert len(suites) >= 3
    for suite in suites:
        assert first_development_member(["--suite", *suite])


@pytest.mark.slow
@pytest.mark.parametrize("position", range(len(distinct_commands())))
def test_each_benchmark_command_runs_at_a_tiny_budget(position: int, tiny_benchmark: Path, tmp_path: Path) -> None:
    command, result, row = smoke(distinct_commands()[position], tmp_path, tiny_benchmark)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert result.is_file() and row in result.read_text()
