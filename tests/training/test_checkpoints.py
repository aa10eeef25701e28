"""Run folders that were tampered with, truncated or replaced: the loop loads data only, passes over damaged
checkpoints, and never loses a finished run to one that fails."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from robusttrain.data.io import file_sha256
from robusttrain.training import CheckpointError, TrainOptions, train
from robusttrain.training import loop as training_loop
from robusttrain.training.checkpoints import PROGRESS_FILE, checkpoint_folders

SMALL = ["--model", "test_resnet", "--image-size", "32", "--batch-size", "32", "--epochs", "2", "--no-progress",
         "--variant-pool-size", "64"]


def run(data: Path, out: Path, *flags: str) -> dict:
    return train(TrainOptions.from_argv(["--data-dir", str(data), "--output-dir", str(out), *SMALL, *flags])[0])


class Planted:
    """A pickle that, when loaded by an unsafe ``torch.load``, creates a file (any code could run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def unfinished_run(data: Path, out: Path) -> Path:
    """A run stopped after its first epoch's checkpoint, as if killed: no metrics.json, no model.pt."""
    run(data, out, "--checkpoint-every", "2", "--max-steps", "5")
    (out / "metrics.json").unlink()
    (out / "model.pt").unlink()
    return out


def test_a_checkpoint_file_carrying_pickled_code_is_refused_and_never_run(tiny_benchmark: Path,
                                                                          tmp_path: Path) -> None:
    out = unfinished_run(tiny_benchmark, tmp_path / "run")
    newest = checkpoint_folders(out)[-1]
    marker = tmp_path / "code_ran"
    with open(newest / "process_0.pt", "wb") as handle:
        pickle.dump({"callbacks": Planted(marker), "buffers": {}}, handle)
    # The attacker controls the folder, hashes included: only the data-only load stands between them and us.
    progress = json.loads((newest / PROGRESS_FILE).read_text())
    progress["files"]["process_0.pt"] = file_sha256(newest / "process_0.pt")
    (newest / PROGRESS_FILE).write_text(json.dumps(progress))
    with pytest.raises(CheckpointError, match=r"process_0.pt is not plain data, refused"):
        run(tiny_benchmark, out, "--checkpoint-every", "2", "--resume", str(newest))
    run(tiny_benchmark, out, "--checkpoint-every", "2", "--resume", "auto")  # passed over for the older one
    assert not marker.exists()


def test_a_truncated_checkpoint_is_passed_over_for_the_previous_one(tiny_benchmark: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    straight = run(tiny_benchmark, tmp_path / "straight", "--checkpoint-every", "2")
    out = unfinished_run(tiny_benchmark, tmp_path / "run")
    older, newest = checkpoint_folders(out)[-2:]
    weights = next(p for p in newest.iterdir() if p.name.startswith("model"))
    weights.write_bytes(weights.read_bytes()[:100])  # truncated as by a full disk
    resumed = run(tiny_benchmark, out, "--checkpoint-every", "2", "--resume", "auto")
    said = capsys.readouterr().out
    assert f"checkpoint {newest} is damaged" in said and f"resuming from {older}" in said
    assert resumed["groups"] == straight["groups"]  # the older checkpoint resumes the same run exactly


def test_every_checkpoint_damaged_is_refused_naming_the_file(tiny_benchmark: Path, tmp_path: Path) -> None:
    out = unfinished_run(tiny_benchmark, tmp_path / "run")
    for folder in checkpoint_folders(out):
        (folder / "process_0.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no intact checkpoint .*process_0.pt does not match the hash"):
        run(tiny_benchmark, out, "--checkpoint-every", "2", "--resume", "auto")


def test_a_failing_overwrite_puts_the_finished_run_back(tiny_benchmark: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    run(tiny_benchmark, out, "--max-steps", "2")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def failing(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("the new run failed mid-way")

    monkeypatch.setattr(training_loop, "_fit", failing)
    with pytest.raises(RuntimeError, match="failed mid-way"):
        run(tiny_benchmark, out, "--max-steps", "2", "--lr", "0.01", "--overwrite")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (tmp_path / ".run.replaced").exists()
    monkeypatch.undo()
    run(tiny_benchmark, out, "--max-steps", "2", "--lr", "0.01", "--overwrite")  # a successful one replaces it
    assert "lr: 0.01" in (out / "config.yaml").read_text()
    assert not (tmp_path / ".run.replaced").exists()


def test_a_run_ended_by_max_steps_continues_with_a_larger_budget_and_says_so(tiny_benchmark: Path,
                                                                             tmp_path: Path) -> None:
    straight = run(tiny_benchmark, tmp_path / "straight")
    out = tmp_path / "run"
    run(tiny_benchmark, out, "--max-steps", "7")
    config = (out / "config.yaml").read_text()
    resumed = run(tiny_benchmark, out, "--resume", "auto")
    assert resumed["groups"] == straight["groups"] and resumed["global_step"] == 10
    assert resumed["resumes"] == [{"from_step": 7, "max_steps": [7, 0]}]
    assert (out / "config.yaml").read_text() == config  # a resume never rewrites the run's options
    assert resumed["train_seconds"] >= resumed["step_seconds"]  # the whole run's time, not only the resumed part
