"""Hostile or unlucky conditions a run meets, each as a subprocess: crafted checkpoint files, a dataset changed under
a run, a killed replacement, a full disk, Ctrl-C. Each gets one line naming the thing and the right exit code, no
traceback, and leaves what an earlier run wrote as it was (or falls back to the intact older checkpoint)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robusttrain.data import AdaptiveEpochSampler
from robusttrain.training import TrainOptions, train

from .folders import folder_hash

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(ROOT / "recipes" / "train.py")]
SMALL = ["--model", "test_resnet", "--image-size", "32", "--batch-size", "32", "--epochs", "2", "--no-progress",
         "--variant-pool-size", "64"]

pytestmark = pytest.mark.slow


class Pickled:
    """An object whose unpickling would run a shell command (never run: every loader refuses it as data)."""

    def __reduce__(self) -> tuple:
        return os.system, ("echo pwned",)


def run(command: list[str], cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "ROBUSTTRAIN_DEBUG"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environment)


def one_line(done: subprocess.CompletedProcess, code: int, *named: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert all(name in lines[0] for name in named), lines[0]


def rehash(folder: Path) -> None:
    """Recompute ``progress.json``'s file hashes, as someone crafting a checkpoint would."""
    progress = json.loads((folder / "progress.json").read_text())
    progress["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
                         if p.name != "progress.json"}
    (folder / "progress.json").write_text(json.dumps(progress))


@pytest.fixture(scope="module")
def runs(tiny_benchmark: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run stopped by ``--max-steps`` with two checkpoints (steps 5 and 6), and its unfinished twin."""
    base = tmp_path_factory.mktemp("trust")
    stopped = base / "stopped"
    train(TrainOptions.from_argv(["--data-dir", str(tiny_benchmark), "--output-dir", str(stopped), *SMALL,
                                  "--max-steps", "6", "--checkpoint-every", "3"])[0])
    unfinished = base / "unfinished"
    shutil.copytree(stopped, unfinished)
    (unfinished / "metrics.json").unlink()
    (unfinished / "model.pt").unlink()
    return {"base": base, "stopped": stopped, "unfinished": unfinished, "data": tiny_benchmark}


def _copy(runs: dict[str, Path], name: str, source: str = "unfinished") -> tuple[Path, Path, Path]:
    """A copy of a run and its older and newest checkpoints."""
    target = runs["base"] / name
    shutil.copytree(runs[source], target)
    older, newest = sorted((target / "checkpoints").iterdir())
    return target, older, newest


def _resume(runs: dict[str, Path], out: Path, *flags: str) -> list[str]:
    return [*TRAIN, "--data-dir", str(runs["data"]), "--output-dir", str(out), *SMALL, "--max-steps", "8", *flags]


@pytest.mark.parametrize("file", ["optimizer.bin", "scheduler.bin", "random_states_0.pkl", "model.safetensors"])
def test_pickled_code_in_any_checkpoint_file_is_refused_by_name_or_passed_over(runs: dict[str, Path],
                                                                                file: str) -> None:
    out, older, newest = _copy(runs, f"pickled_{file}")
    torch.save({"state": Pickled()}, newest / file)
    rehash(newest)
    before = folder_hash(out)
    named = run(_resume(runs, out, "--resume", str(newest)))
    one_line(named, 2, f"{newest / file}", "not plain data")
    assert folder_hash(out) == before
    auto = run(_resume(runs, out, "--resume", "auto"))  # the intact older checkpoint is used, and said so
    assert auto.returncode == 0 and "pwned" not in auto.stdout, auto.stderr[-2000:]
    assert f"{newest / file} is not plain data" in auto.stdout and f"resuming from {older}" in auto.stdout


def test_a_file_that_robusttrain_does_not_write_is_refused(runs: dict[str, Path]) -> None:
    out, _, newest = _copy(runs, "extra_file")
    torch.save({"state": Pickled()}, newest / "custom_checkpoint_0.pkl")
    rehash(newest)
    one_line(run(_resume(runs, out, "--resume", str(newest))), 2, "custom_checkpoint_0.pkl",
             "not a file robusttrain writes")


def test_a_truncated_progress_file_falls_back_to_the_older_checkpoint(runs: dict[str, Path]) -> None:
    out, older, newest = _copy(runs, "truncated_progress", source="stopped")
    (newest / "progress.json").write_text((newest / "progress.json").read_text()[:40])
    done = run(_resume(runs, out, "--resume", "auto"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from {older}" in done.stdout
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 8


def test_a_resume_on_changed_data_is_refused_by_name(runs: dict[str, Path]) -> None:
    data, out = runs["base"] / "own_data", runs["base"] / "changed_data"
    shutil.copytree(runs["data"], data)
    command = [*TRAIN, "--data-dir", str(data), "--output-dir", str(out), *SMALL]
    assert run([*command, "--max-steps", "3"]).returncode == 0
    with open(data / "metadata.csv", newline="") as handle:  # every label flipped in place, the folder the same
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["y"] = str(1 - int(row["y"]))
    with open(data / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = folder_hash(out)
    one_line(run([*command, "--max-steps", "6", "--resume", "auto"]), 2, "data changed since it started",
             "train", "labels, image list or image files")
    assert folder_hash(out) == before


def test_a_run_left_aside_by_a_killed_overwrite_is_named_and_kept(runs: dict[str, Path]) -> None:
    out, _, _ = _copy(runs, "replaced", source="stopped")
    aside = out.with_name(f".{out.name}.replaced")  # what a kill -9 during --overwrite leaves
    aside.mkdir()
    for name in ("metrics.json", "model.pt"):
        shutil.move(out / name, aside / name)
    kept = folder_hash(aside)
    for flags in ((), ("--overwrite",)):
        one_line(run(_resume(runs, out, *flags)), 2, str(aside), "interrupted --overwrite", "move its files back")
    assert folder_hash(aside) == kept


def test_huge_sample_weights_still_spread_the_draws(tmp_path: Path) -> None:
    sampler = AdaptiveEpochSampler(100, seed=0)
    sampler.set_weights(torch.full((100,), 1e308, dtype=torch.float64))
    assert len(set(sampler)) > 50  # a sum that overflows to inf would draw one sample only


def test_ctrl_c_mid_run_is_one_line_exit_130_and_the_run_resumes(runs: dict[str, Path]) -> None:
    out = runs["base"] / "interrupted"
    command = [*TRAIN, "--data-dir", str(runs["data"]), "--output-dir", str(out), *SMALL, "--epochs", "40",
               "--checkpoint-every", "2"]
    # Ctrl-C reaches the run as it does in a terminal, even where the tests run as a background job (whose children
    # inherit an ignored SIGINT)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not list((out / "checkpoints").glob("step_*/progress.json")) and time.time() < deadline:
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    done = subprocess.CompletedProcess(command, process.returncode, "", stderr)
    one_line(done, 130, "interrupted at step", "continue with --resume auto")
    resumed = run([*command, "--resume", "auto", "--epochs", "40", "--max-steps", "4"])
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-2000:]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MB filesystem (needs the right to mount one: root in a container; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.decode().strip()[:200]}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_named_with_the_file_and_what_is_intact(runs: dict[str, Path], small_disk: Path) -> None:
    done = run([*TRAIN, "--data-dir", str(runs["data"]), "--output-dir", str(small_disk / "run"), *SMALL])
    one_line(done, 2, "no space left on device writing", str(small_disk / "run"))
    assert "intact" in done.stderr


def test_an_audit_into_a_read_only_folder_is_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    mount = tmp_path / "readonly"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only filesystem here: {done.stderr.decode().strip()[:200]}")
    try:
        audit = run([sys.executable, "-m", "robusttrain.cli", "audit", "--data", str(runs["data"]), "--output",
                     str(mount / "audit"), "--no-progress"])
        one_line(audit, 2, "Read-only file system")
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_an_audit_takes_the_split_code_its_message_offers(runs: dict[str, Path], tmp_path: Path) -> None:
    done = run([sys.executable, "-m", "robusttrain.cli", "audit", "--data", str(runs["data"]), "--split", "1",
                "--output", str(tmp_path / "audit"), "--no-progress"])
    assert done.returncode == 0 and (tmp_path / "audit" / "report.html").is_file(), done.stderr[-2000:]
