"""Hostile datasets and run folders against the audit: names that carry markup, paths that leave the dataset,
weights replaced under a resumed audit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image

from robusttrain.audit import run as audit_run
from robusttrain.cli import main
from robusttrain.data import ImageFolderDataset
from robusttrain.data.io import UnsafePathError, confined
from robusttrain.models import ModelConfig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = ['"><svg onload=alert(1)>', "<img src=x onerror=alert(2)>"]


def hostile_tree(root: Path) -> Path:
    """Two class folders whose names are markup, each with images whose file names are markup too."""
    for k, name in enumerate(HOSTILE):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(12):
            colour = (40 + 200 * k, 60 + 10 * i, 90)
            image = Image.new("RGB", (32, 32), colour)
            image.paste((255 - colour[0], 0, 0), (8 + i % 4, 8, 20 + i % 4, 20))
            image.save(folder / f"<b onmouseover=alert({k})>{i}.png")
    return root


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("RT_REQUIRE_BROWSER"),
                    reason="Debian chromium not installed (.ci/run installs it and sets RT_REQUIRE_BROWSER)")
def test_a_report_of_a_tree_whose_every_name_is_hostile_creates_no_element_of_its_own(tmp_path: Path) -> None:
    assert CHROMIUM is not None, "RT_REQUIRE_BROWSER is set but chromium is not installed"
    data, output = hostile_tree(tmp_path / "data"), tmp_path / "audit"
    assert main(["audit", "--data", str(data), "--model", "test_resnet", "--image-size", "32", "--examples", "4",
                 "--output", str(output), "--no-progress"]) == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    page = subprocess.run([CHROMIUM, *flags, "--dump-dom", (output / "report.html").as_uri()], capture_output=True,
                          text=True, timeout=120).stdout
    assert "Most background-reliant samples" in page  # the model audit's grids with their captions were rendered
    assert "&lt;svg onload=alert(1)&gt;" in page  # the names are there, as text
    assert "<svg" not in page and "<b " not in page and "onerror" not in re.sub(r"&lt;img[^<]*", "", page)
    images = re.findall(r"<img\b[^>]*>", page)
    assert images and all('src="data:image/png;base64,' in tag for tag in images), [t[:80] for t in images]


def test_confined_refuses_absolute_paths_dot_dot_and_symlinks_that_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    (tmp_path / "outside.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    assert confined(root, "in/a.png", "row 2") == root / "in" / "a.png"
    for bad, message in (("/etc/passwd", "absolute path"), ("../outside.png", "leads outside"),
                         ("in/../../outside.png", "leads outside"), ("link.png", "leads outside"),
                         ("", "empty file name")):
        with pytest.raises(UnsafePathError, match=f"row 2: .*{message}|row 2: {message}"):
            confined(root, bad, "row 2")


def test_an_image_folder_with_a_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "data" / label / "0.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    (tmp_path / "data" / "a" / "1.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(UnsafePathError, match="1.png.* leads outside"):
        ImageFolderDataset(tmp_path / "data")


def test_a_resumed_model_audit_refuses_weights_replaced_at_the_same_path(
    tiny_benchmark: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    run, output = tmp_path / "run", tmp_path / "audit"
    run.mkdir()
    config = ModelConfig(name="test_resnet", num_classes=2)
    config.save(run)
    torch.manual_seed(0)
    torch.save(config.build().state_dict(), run / "model.pt")
    argv = ["audit", "--data", str(tiny_benchmark), "--split", "val", "--model", str(run), "--image-size", "32",
            "--no-dataset-audit", "--output", str(output), "--no-progress"]

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the audit stops after its records, before the report: they stay partial

    monkeypatch.setattr(audit_run, "write_report", interrupted)
    assert main(argv) == 130  # Ctrl-C: one line, exit 130
    assert (output / audit_run.PARTIAL).is_file()
    monkeypatch.undo()
    torch.manual_seed(1)
    torch.save(config.build().state_dict(), run / "model.pt")  # another model at the same path
    assert main(argv) == 2
    assert "holds records of another audit (model_content" in capsys.readouterr().err
