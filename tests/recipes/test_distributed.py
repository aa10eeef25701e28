"""The training recipe under ``accelerate launch`` with 2 CPU processes (gloo): every callback, gathered audit
records with no duplicated or missing sample ids (the sampler pads an uneven last batch), and the same model
as one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.utils import set_seed

from robusttrain.data import WaterbirdsDataset
from robusttrain.models import create_model

ROOT = Path(__file__).resolve().parents[2]
# 160 train samples in batches of 24 per process: 7 batches, so the second process's last batch is padding.
EVERY_CALLBACK = ("[{name: joint_attention, background_area: 0.9, start_step: 2},"
                  " {name: reweight, alpha: 2.0, source: head},"
                  " {name: background_randomization, p: 0.5, mode: swap, source: free, start: 0.25},"
                  " {name: audit, source: gradcam}]")
EVERY_SOURCE = ("{head: {method: attention_head, fraction: 0.5}, gradcam: {method: gradcam},"
                " free: {method: gradcam, from_training_pass: true}}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train(data: Path, out: Path, processes: int, batch_size: int, *extra: str) -> dict:
    args = ["--data-dir", str(data), "--output-dir", str(out), "--model", "test_resnet", "--image-size", "32",
            "--batch-size", str(batch_size), "--epochs", "2", "--lr", "0.02", "--no-progress", "--cpu",
            "--variant-pool-size", "64", *extra]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu" if processes > 1 else "--cpu",
                "--num_processes", str(processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(_free_port())]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    done = subprocess.run([*launcher, str(ROOT / "recipes" / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_every_callback_runs_on_two_processes_and_the_audit_covers_each_sample_once(
    tiny_benchmark: Path, tmp_path: Path
) -> None:
    metrics = _train(tiny_benchmark, tmp_path, 2, 24, "--attention-head", "--maps", EVERY_SOURCE,
                     "--callbacks", EVERY_CALLBACK)
    assert metrics["num_processes"] == 2 and metrics["global_step"] == 2 * 4
    train_ids = sorted(r.sample_id for r in WaterbirdsDataset(tiny_benchmark, "train").records)
    for epoch in (0, 1):
        lines = (tmp_path / "audit" / f"epoch_{epoch:03d}.jsonl").read_text().splitlines()
        ids = [json.loads(line)["id"] for line in lines]
        assert ids == train_ids  # sorted, each sample exactly once, none missing
    # Evaluation is gathered without the distributed sampler's padding: every test sample counted once.
    assert sum(metrics["groups"]["group_counts"].values()) == len(WaterbirdsDataset(tiny_benchmark, "test"))


@pytest.mark.slow
def test_two_processes_resume_each_with_its_own_callback_state(tiny_benchmark: Path, tmp_path: Path) -> None:
    callbacks = ("[{name: reweight, alpha: 2.0, source: half},"
                 " {name: background_randomization, p: 0.5, mode: swap, source: free}, {name: audit}]")
    maps = "{half: {method: gradcam, fraction: 0.5}, free: {method: gradcam, from_training_pass: true}}"
    extra = ("--maps", maps, "--callbacks", callbacks)
    _train(tiny_benchmark, tmp_path / "straight", 2, 24, *extra)
    _train(tiny_benchmark, tmp_path / "split", 2, 24, "--max-steps", "3", *extra)  # mid-epoch 1 of 4 steps
    _train(tiny_benchmark, tmp_path / "split", 2, 24, "--resume", "auto", *extra)
    final = [tmp_path / run / "checkpoints" / "step_00000008" for run in ("straight", "split")]
    states = [[torch.load(f / f"process_{rank}.pt", weights_only=True)["callbacks"] for rank in (0, 1)]
              for f in final]
    # Each process caches the maps of its own shard: the two differ, and each resumes with its own (and with
    # its own BatchNorm statistics, which the maps of the first resumed step depend on).
    assert json.dumps(states[0][0], sort_keys=True) != json.dumps(states[0][1], sort_keys=True)
    for rank in (0, 1):
        assert json.dumps(states[1][rank], sort_keys=True) == json.dumps(states[0][rank], sort_keys=True), rank
    straight, resumed = torch.load(final[0].parent.parent / "model.pt"), torch.load(final[1].parent.parent / "model.pt")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    for name in ("metrics.json", "model.pt"):  # as if killed after its last checkpoint
        (tmp_path / "split" / name).unlink()
    with pytest.raises(AssertionError, match="resume it with 2 processes, not 1"):
        _train(tiny_benchmark, tmp_path / "split", 1, 24, "--resume", "auto", *extra)


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_benchmark: Path, tmp_path: Path) -> None:
    extra = ("--max-steps", "3", "--optimizer", "sgd", "--momentum", "0", "--model", "test_nfnet")
    _train(tiny_benchmark, tmp_path / "two", 2, 16, *extra)
    _train(tiny_benchmark, tmp_path / "one", 1, 32, *extra)
    two, one = torch.load(tmp_path / "two" / "model.pt"), torch.load(tmp_path / "one" / "model.pt")
    set_seed(0)
    start = create_model("test_nfnet", 2).state_dict()  # the recipe's initial weights (same seed)
    keys = [k for k in start if start[k].is_floating_point() and "running" not in k]
    update_one = torch.cat([(one[k] - start[k]).flatten() for k in keys])
    update_two = torch.cat([(two[k] - start[k]).flatten() for k in keys])
    # Same samples per global step, averaged gradients, a model without BatchNorm (whose statistics would see
    # 16 instead of 32 images): the updates agree up to the order of floating-point sums.
    assert update_one.norm() > 1e-3
    assert float((update_two - update_one).norm() / update_one.norm()) < 1e-3
