"""The package as a pip user gets it: build the wheel, install it outside the repository (reusing the installed
dependencies, no download), and run ``robusttrain train`` and ``robusttrain audit`` from another folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
    return done


def test_the_installed_wheel_trains_and_audits_from_another_folder(tmp_path: Path) -> None:
    source, wheels, target, work = tmp_path / "source", tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    # The build runs on a copy of what the wheel is made of, so it leaves nothing (build/) in the repository.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "robusttrain", source / "robusttrain", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
          str(source)], tmp_path, env)
    wheel = next(wheels.glob("robusttrain-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()  # the product only: no research/, tests/, configs/ or results/
    assert all(n.startswith(("robusttrain/", "robusttrain-")) for n in names), [n for n in names][:5]
    assert "robusttrain/plugin/robust.py" in names and not any("research" in n for n in names)
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], tmp_path,
         env)
    # The installed copy comes first on the path: the repository's editable install must not be what runs.
    installed = {**env, "PYTHONPATH": str(target)}
    where = _run([sys.executable, "-c", "import robusttrain; print(robusttrain.__file__, robusttrain.__version__)"],
                 work, installed).stdout.split()
    assert where[0].startswith(str(target)) and wheel.name.startswith(f"robusttrain-{where[1]}-"), where
    script = target / "bin" / "robusttrain"
    assert script.is_file()
    assert "--data-dir" in _run([str(script), "train", "--help"], work, installed).stdout
    assert "--model" in _run([str(script), "audit", "--help"], work, installed).stdout
    _run([str(script), "train", "--generate", "--data-dir", "data", "--benchmark-fraction", "0.04",
          "--image-size", "32", "--model", "test_resnet", "--epochs", "1", "--batch-size", "32", "--no-progress",
          "--variant-pool-size", "64", "--callbacks", "[{name: minority_resampling}]", "--output-dir", "run"], work,
         installed)
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    assert "worst_group_accuracy" in metrics["groups"] and "MinorityResamplingCallback" in str(metrics["decisions"])
    _run([str(script), "audit", "--data", "data", "--split", "val", "--image-size", "32", "--model", "run",
          "--output", "audit", "--no-progress"], work, installed)
    assert (work / "audit" / "report.html").is_file()
