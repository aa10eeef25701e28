"""recipes/peers.py, a few steps per row with spuco installed: the rows run, write their metrics, and the table says
which labels each uses. (The full comparison is a benchmark: BENCHMARKS.md, never part of `make test`.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from .loading import load_recipe

pytestmark = pytest.mark.slow


def _recipe():
    return load_recipe("peers")


def test_peer_rows_run_side_by_side(tiny_benchmark: Path, tmp_path: Path) -> None:
    extra = ["--data-dir", str(tiny_benchmark), "--no-generate", "--model", "test_resnet", "--image-size", "32",
             "--batch-size", "32", "--epochs", "2", "--variant-pool-size", "64"]
    assert _recipe().main(["--rows", "jtt", "group_dro", "dfr", "--seeds", "0", "--output-dir", str(tmp_path),
                           "--jtt-share", "0.5", "--extra", *extra]) == 0
    table = (tmp_path / "peers.md").read_text()
    assert "| jtt | class | last step | 1 |" in table
    assert "| group_dro | training groups | last step | 1 |" in table
    assert "| dfr | class + validation groups | last step; C by validation worst group | 1 |" in table
    with open(tmp_path / "jtt" / "seed_0" / "jtt_weights.csv") as handle:
        weights = [float(row["weight"]) for row in csv.DictReader(handle)]
    assert len(weights) == 160 and set(weights) <= {1.0, 20.0}
    # JTT: one epoch of ERM, then one on the reweighted data; the run's budget is the ERM row's
    phase2 = json.loads((tmp_path / "jtt" / "seed_0" / "metrics.json").read_text())
    phase1 = json.loads((tmp_path / "jtt" / "seed_0" / "phase1" / "metrics.json").read_text())
    assert phase1["global_step"] + phase2["global_step"] == 10
    dro = json.loads((tmp_path / "group_dro" / "seed_0" / "metrics.json").read_text())
    assert dro["global_step"] == 10 and 0 <= dro["groups"]["worst_group_accuracy"] <= 1
    dfr = json.loads((tmp_path / "dfr" / "seed_0" / "metrics.json").read_text())
    assert dfr["erm_run"].endswith("erm/seed_0") and "worst_group_accuracy" in dfr["groups"]
