from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robusttrain.training import CheckpointError, OptionError, TrainOptions, train

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> dict:
    """``robusttrain train`` in this process, errors raised (not turned into exit codes)."""
    return train(TrainOptions.from_argv(argv)[0])


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(data), "--output-dir", str(out), "--model", "test_resnet", "--image-size", "32",
            "--batch-size", "32", "--epochs", "2", "--lr", "0.02", "--drop-rate", "0.2", "--no-progress",
            "--variant-pool-size", "64", *extra]


# Two map sources: one before the step (every 2nd step, half of each batch) and one read off the training pass.
MAPS = "{gradcam: {method: gradcam, every: 2, fraction: 0.5}, free: {method: gradcam, from_training_pass: true}}"
CALLBACKS = ("[{name: reweight, alpha: 2.0, source: free},"
             " {name: background_randomization, p: 0.5, mode: swap, source: gradcam, start: 0.2},"
             " {name: audit, source: gradcam}]")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "model.pt")


@pytest.mark.parametrize("callbacks", ["[]", CALLBACKS], ids=["plain", "with_callbacks"])
def test_resume_mid_epoch_matches_an_uninterrupted_run(tiny_benchmark: Path, tmp_path: Path, callbacks: str) -> None:
    run(_args(tiny_benchmark, tmp_path / "straight", "--maps", MAPS, "--callbacks", callbacks))
    # 160 samples / 32 = 5 steps per epoch: stop after 7 steps (mid-epoch 2), then resume.
    run(_args(tiny_benchmark, tmp_path / "split", "--max-steps", "7", "--maps", MAPS, "--callbacks", callbacks))
    progress = json.loads(next((tmp_path / "split" / "checkpoints").glob("step_00000007/progress.json")).read_text())
    assert progress == {**progress, "epoch": 1, "step_in_epoch": 2, "global_step": 7}
    run(_args(tiny_benchmark, tmp_path / "split", "--resume", "auto", "--maps", MAPS, "--callbacks", callbacks))
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    a = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    b = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert a["groups"] == b["groups"] and a["variants"] == b["variants"] and b["global_step"] == 10
    # One record per epoch, the resumed one covering the whole epoch (its running totals survive the stop).
    assert [r["epoch"] for r in b["history"]] == [0, 1]
    for x, y in zip(a["history"], b["history"], strict=True):
        assert x["train_accuracy"] == y["train_accuracy"] and x["train_loss"] == pytest.approx(y["train_loss"])
    if callbacks != "[]":
        records = [(tmp_path / run / "audit" / "epoch_001.jsonl").read_text() for run in ("split", "straight")]
        assert records[0] == records[1]


def test_disabled_callbacks_change_nothing(tiny_benchmark: Path, tmp_path: Path) -> None:
    disabled = CALLBACKS.replace("}", ", enabled: false}")
    run(_args(tiny_benchmark, tmp_path / "none", "--max-steps", "4"))
    run(_args(tiny_benchmark, tmp_path / "off", "--max-steps", "4", "--maps", MAPS, "--callbacks", disabled))
    run(_args(tiny_benchmark, tmp_path / "on", "--max-steps", "4", "--maps", MAPS, "--callbacks", CALLBACKS))
    none, off, on = (_weights(tmp_path / name) for name in ("none", "off", "on"))
    assert all(torch.equal(none[k], off[k]) for k in none)
    assert not all(torch.equal(none[k], on[k]) for k in none)


def test_resume_from_a_folder_that_is_not_a_checkpoint_is_refused(tiny_benchmark: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        run(_args(tiny_benchmark, tmp_path / "x", "--resume", str(tmp_path)))


def test_resume_from_a_checkpoint_without_per_process_state_is_refused(tiny_benchmark: Path, tmp_path: Path) -> None:
    run(_args(tiny_benchmark, tmp_path / "run", "--max-steps", "2"))
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("step_*"))
    (checkpoint / "process_0.pt").unlink()
    with pytest.raises(CheckpointError, match="process_0.pt is missing"):
        run(_args(tiny_benchmark, tmp_path / "run", "--resume", str(checkpoint)))


@pytest.mark.slow
def test_recipe_runs_from_the_command_line_with_a_config(tiny_benchmark: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    cmd = [sys.executable, str(ROOT / "recipes" / "train.py"), "-c", str(ROOT / "configs" / "erm.yaml"),
           *_args(tiny_benchmark, out, "--epochs", "1", "--no-generate")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["groups"]) >= {"average_accuracy", "worst_group_accuracy", "weighted_average_accuracy"}
    assert set(metrics["variants"]) >= {"original", "only_fg", "only_bg_t", "mixed_same", "mixed_rand", "bg_gap"}
    resolved = (out / "config.yaml").read_text()
    assert "model: test_resnet" in resolved and "epochs: 1" in resolved


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_weights_and_callback_state(tiny_benchmark: Path, tmp_path: Path) -> None:
    """SIGKILL mid-epoch (not a clean stop), resume from the last complete checkpoint, compare everything."""
    extra = ("--epochs", "3", "--checkpoint-every", "2", "--maps", MAPS, "--callbacks", CALLBACKS)
    run(_args(tiny_benchmark, tmp_path / "straight", *extra))
    killed = tmp_path / "killed"
    cmd = [sys.executable, str(ROOT / "recipes" / "train.py"), *_args(tiny_benchmark, killed, *extra)]
    process = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = killed / "checkpoints" / "step_00000002" / "progress.json"  # mid-epoch 1 (5 steps per epoch)
    deadline = time.monotonic() + 300
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"
    run(_args(tiny_benchmark, killed, *extra, "--resume", "auto"))
    straight, resumed = _weights(tmp_path / "straight"), _weights(killed)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    for epoch in range(3):  # the audit callback's records: identical whatever the interruption
        name = f"audit/epoch_{epoch:03d}.jsonl"
        assert (killed / name).read_text() == (tmp_path / "straight" / name).read_text()
    # Callback state (map caches, counters, audit records) in the final checkpoints: identical.
    runs = (killed, tmp_path / "straight")
    states = [torch.load(run / "checkpoints" / "step_00000015" / "process_0.pt", weights_only=True)["callbacks"]
              for run in runs]
    assert json.dumps(states[0], sort_keys=True) == json.dumps(states[1], sort_keys=True)


@pytest.mark.parametrize(("flag", "value", "message"), [("--batch-size", "0", "--batch-size must be >= 1, got 0"),
                                                        ("--image-size", "0", "--image-size must be >= 8, got 0"),
                                                        ("--epochs", "-1", "--epochs must be >= 1"),
                                                        ("--lr", "0", "--lr must be a positive number"),
                                                        ("--lr", "nan", "--lr must be a finite number")])
def test_out_of_range_options_are_refused_by_flag_name(tmp_path: Path, flag: str, value: str, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        run(["--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), flag, value])
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_refused_invocation_leaves_the_run_folder_as_it_was(tiny_benchmark: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    run(_args(tiny_benchmark, folder, "--max-steps", "2"))
    written = {name: (folder / name).read_text() for name in ("config.yaml", "model.json", "metrics.json")}
    with pytest.raises(OptionError, match="finished run"):
        run(_args(tiny_benchmark, folder, "--max-steps", "2", "--lr", "0.5"))
    with pytest.raises(OptionError, match=r"cannot resume .* --model 'test_resnet' -> 'resnet18'"):
        run(_args(tiny_benchmark, folder, "--resume", "auto", "--model", "resnet18"))
    with pytest.raises(OptionError, match=r"--batch-size 32 -> 16"):
        run([*_args(tiny_benchmark, folder, "--resume", "auto"), "--batch-size", "16"])
    assert {name: (folder / name).read_text() for name in written} == written
    run(_args(tiny_benchmark, folder, "--max-steps", "2", "--overwrite"))


def test_sample_weights_change_which_samples_train_and_bad_files_are_refused(tiny_benchmark: Path,
                                                                           tmp_path: Path) -> None:
    from robusttrain.data import WaterbirdsDataset

    records = WaterbirdsDataset(tiny_benchmark, "train").records
    only_class_one = tmp_path / "weights.csv"  # every draw a class-1 sample: the model learns to say 1
    only_class_one.write_text("id,weight\n" + "".join(f"{r.sample_id},{float(r.target == 1)}\n" for r in records))
    run(_args(tiny_benchmark, tmp_path / "weighted", "--max-steps", "4", "--sample-weights",
                      str(only_class_one)))
    run(_args(tiny_benchmark, tmp_path / "plain", "--max-steps", "4"))
    history = json.loads((tmp_path / "weighted" / "metrics.json").read_text())["history"]
    assert history[0]["train_accuracy"] > 0.9  # all of it class 1
    assert yaml_value(tmp_path / "weighted" / "config.yaml", "sample_weights") == str(only_class_one)
    partial = tmp_path / "partial.csv"
    partial.write_text("id,weight\n" + "".join(f"{r.sample_id},1\n" for r in records[:10]))
    with pytest.raises(OptionError, match=r"--sample-weights: .*no weight for 150 of the 160 training samples"):
        run(_args(tiny_benchmark, tmp_path / "refused", "--sample-weights", str(partial)))
    assert not (tmp_path / "refused" / "config.yaml").exists()


def yaml_value(path: Path, key: str) -> object:
    import yaml

    return yaml.safe_load(path.read_text())[key]


def test_fine_tunes_from_a_local_timm_weights_file(tiny_benchmark: Path, tmp_path: Path) -> None:
    import timm

    source = timm.create_model("test_resnet")  # the ImageNet head: timm re-makes it for 2 classes
    torch.save(source.state_dict(), tmp_path / "w.pth")
    run(_args(tiny_benchmark, tmp_path / "run", "--pretrained-file", str(tmp_path / "w.pth"), "--lr", "1e-12",
              "--max-steps", "1", "--drop-rate", "0"))
    trained = _weights(tmp_path / "run")
    assert torch.allclose(trained["backbone.conv1.0.weight"], source.state_dict()["conv1.0.weight"])
    assert trained["backbone.fc.weight"].shape[0] == 2
    with pytest.raises(OptionError, match="one source of initial weights, not --checkpoint and --pretrained"):
        run(_args(tiny_benchmark, tmp_path / "two", "--pretrained", "--checkpoint", str(tmp_path / "w.pth")))


def test_hub_weights_offline_are_refused_in_one_line(tiny_benchmark: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "robusttrain.cli", "train", *_args(tiny_benchmark, tmp_path / "run", "--pretrained")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1
    assert "could not load pretrained weights of test_resnet from the hub" in done.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
