"""`robusttrain audit`: dataset probe verdicts, model background reliance, blur protocol, the CLI and its report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robusttrain.audit import audit_model, blur_protocol, dataset_audit, open_dataset, read_batches
from robusttrain.audit.model_audit import summarize_records
from robusttrain.audit.run import record_settings
from robusttrain.cli import build_parser, main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class ObjectColour(nn.Module):
    """Class 1 = a red object, class 0 = a blue one, from crisply saturated pixels (object-reliant, blur-sensitive)."""

    in_chans = 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        red = (images[:, 0] - images[:, 2]).flatten(1)
        score = (red.amax(1) - 0.6).relu() - ((-red).amax(1) - 0.6).relu()
        return torch.stack([-score, score], dim=1) * self.scale


class BackgroundTint(nn.Module):
    """Class 1 = a green-tinted image, read from the mean colour (background-reliant)."""

    in_chans = 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(40.0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        green = images[:, 1].mean((1, 2)) - images[:, [0, 2]].mean((1, 2, 3)) - 0.05
        return torch.stack([-green, green], dim=1) * self.scale


def _scenes(count: int = 32) -> dict:
    """Red/blue squares (the label) on green/grey backgrounds that agree with the label, with masks."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(count) % 2
    images = torch.full((count, 3, 32, 32), 0.4)
    images[labels == 1, 1] = 0.6  # green tint for class 1
    masks = torch.zeros(count, 1, 32, 32)
    for i, label in enumerate(labels.tolist()):
        top, left = torch.randint(2, 20, (2,), generator=generator).tolist()
        masks[i, :, top : top + 10, left : left + 10] = 1
        colour = torch.tensor([0.9, 0.1, 0.1]) if label else torch.tensor([0.1, 0.1, 0.9])
        images[i, :, top : top + 10, left : left + 10] = colour[:, None, None]
    return {"image": images, "target": labels, "index": torch.arange(count), "mask": masks,
            "path": [f"scene_{i}.png" for i in range(count)]}


def test_background_reliance_ranks_a_background_model_above_an_object_model() -> None:
    batch = _scenes()
    reliance, swapped = {}, {}
    for name, model in {"object": ObjectColour(), "background": BackgroundTint()}.items():
        records = audit_model(model, [batch], "degradation", {"steps": 5}, progress=False)
        summary = summarize_records(records, 2)
        assert summary["overall"]["accuracy"] == 1.0
        reliance[name] = summary["overall"]["background_reliance"]
        swapped[name] = summary["overall"]["background_swap_accuracy"]
    assert reliance["background"] > 0.9 and reliance["object"] < 0.6
    # the object on the other label's background: the object model keeps every answer, the tint model none
    assert swapped["object"] == 1.0 and swapped["background"] == 0.0


def test_blur_protocol_separates_object_and_background_models() -> None:
    batch = _scenes()
    objects = blur_protocol(ObjectColour(), [batch], radii=(5,))
    backgrounds = blur_protocol(BackgroundTint(), [batch], radii=(5,))
    assert objects["background_blurred_r5"] == 1.0 and objects["object_blurred_r5"] < 1.0
    assert backgrounds["background_blurred_r5"] == backgrounds["object_blurred_r5"] == 1.0  # the tint survives


def test_dataset_audit_flags_the_correlated_split_and_clears_the_balanced_one(tiny_benchmark: Path) -> None:
    train = open_dataset(tiny_benchmark, "train", 32)
    test = open_dataset(tiny_benchmark, "test", 32)
    biased = dataset_audit(read_batches(train, 64), 2)
    balanced = dataset_audit(read_batches(test, 64), 2)
    assert biased["biased"] and biased["estimate_accuracy"] > 0.8, biased["verdict"]
    assert not balanced["biased"] and balanced["estimate_accuracy"] < 0.7, balanced["verdict"]
    assert biased["verdict"].startswith("BIASED: a small CNN trained briefly out of fold on the whole images (2 runs "
                                        "averaged) predicts the label with")
    assert "a linear probe on colour statistics of the background outside the masks reaches" in biased["verdict"]
    # A check that found nothing names what it checked and what it cannot see; it flags nobody.
    assert balanced["verdict"].startswith("no bias found (a small CNN trained briefly out of fold")
    assert "does not see a shortcut that a network learns only after a few passes" in balanced["verdict"]
    assert not any(row["bias_conflicting"] for row in balanced["per_sample"])
    assert biased["cramers_v"] > balanced["cramers_v"]
    without_masks = dataset_audit(({k: v for k, v in b.items() if k != "mask"} for b in read_batches(train, 64)), 2)
    assert without_masks["background_from"] == ["border"] and without_masks["biased"]
    assert without_masks["colour_probe"]["looked_at"] == "colour statistics of the border frame"


def test_cli_skips_corrupt_files_resumes_and_writes_a_report(tiny_benchmark: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_benchmark, data)
    corrupt = open_dataset(data, "test", 32).records[-1].image
    corrupt.write_bytes(b"not an image")
    output = tmp_path / "audit"
    args = ["audit", "--data", str(data), "--split", "test", "--model", "test_resnet", "--image-size", "32",
            "--batch-size", "16", "--examples", "4", "--blur", "--output", str(output), "--no-progress"]
    # An interrupted earlier run left records for two samples: they are kept, not recomputed.
    test_ids = sorted(r.sample_id for r in open_dataset(data, "test", 32).records)
    output.mkdir()
    earlier = [{"id": i, "path": "earlier", "label": 0, "prediction": 0, "correct": True, "bg_only_prediction": 0,
                "fg_only_prediction": 0, "p_label": 0.5, "p_prediction": 0.5, "bg_only_p_label": 0.5,
                "background_reliance": 0.5, "fg_only_p_label": 0.5, "foreground_support": 0.5,
                "view_source": "mask", "attended_share": 0.1, "map_mean": 0.1, "peak_yx": [0, 0],
                "energy_in_mask": 0.5} for i in test_ids[:2]]
    parsed = build_parser().parse_args(args)
    header = {"settings": record_settings(parsed)}
    (output / "records.partial.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [header, *earlier]))
    other = [*args[:5], "--model", "resnet18", *args[7:]]  # the same output, another model: refused, kept
    assert main(other) == 2 and (output / "records.partial.jsonl").is_file()
    assert main(args) == 0
    report = json.loads((output / "report.json").read_text())
    ids = [r["id"] for r in report["records"]]
    assert len(ids) == len(set(ids)) == len(test_ids) - 1
    assert [r["path"] for r in report["records"][:2]] == ["earlier", "earlier"]
    assert [s["path"] for s in report["skipped"]] == [str(corrupt)] and "cannot decode" in report["skipped"][0]["error"]
    assert set(report["blur"]) >= {"original", "background_blurred_r10", "object_blurred_r2"}
    assert (output / "records.csv").read_text().count("\n") == len(ids) + 1
    assert str(corrupt) in (output / "report.html").read_text()
    assert not (output / "records.partial.jsonl").exists()
    maps = np.load(output / "maps.npz")  # per image the map (16x16 uint8), also for the resumed run's new records
    assert maps["maps"].shape[1:] == (16, 16) and set(maps["ids"].tolist()) == set(ids) - set(test_ids[:2])
    assert "map" not in report["records"][-1]


def test_cli_names_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["audit", "--data", str(tmp_path / "missing")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["audit", "--data", str(tmp_path / "empty")]) == 2
    assert "no dataset layout recognised" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["audit", "--data", str(tmp_path), "--maps", "nope"])
    with pytest.raises(SystemExit):
        main(["audit", "--data", str(tmp_path), "--max-images", "-3"])
    assert "must be a positive integer, got -3" in capsys.readouterr().err


def test_cli_names_an_output_file_and_a_class_count_the_data_does_not_have(
    tiny_benchmark: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "report").write_text("an earlier report")
    assert main(["audit", "--data", str(tiny_benchmark), "--output", str(tmp_path / "report")]) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert main(["audit", "--data", str(tiny_benchmark), "--num-classes", "3", "--output", str(tmp_path / "a")]) == 2
    assert "--num-classes 3 disagrees with the data, which has 2 classes" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("RT_REQUIRE_BROWSER"),
                    reason="Debian chromium not installed (.ci/run installs it and sets RT_REQUIRE_BROWSER)")
def test_report_renders_every_image_in_headless_chromium(tiny_benchmark: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None, "RT_REQUIRE_BROWSER is set but chromium is not installed"
    output = tmp_path / "audit"
    assert main(["audit", "--data", str(tiny_benchmark), "--split", "train", "--model", "test_resnet", "--blur",
                 "--image-size", "32", "--examples", "3", "--output", str(output), "--no-progress"]) == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    page = subprocess.run([CHROMIUM, *flags, "--dump-dom", (output / "report.html").as_uri()], capture_output=True,
                          text=True, timeout=120).stdout
    images = int(page.split('data-images="')[1].split('"')[0])
    rendered = int(page.split('data-rendered="')[1].split('"')[0])
    # bar chart, blur chart, two heat-map grids, the cluster grid, the shortcut maps of each label's typical
    # samples and the bias-conflicting lists, all decoded
    assert images >= 2 + 2 * 3 + 8 + 2 * 4 and rendered == images
    for section in ("Backgrounds by cluster and label", "class=\"minority\"", "Most bias-conflicting samples",
                    "Where the shortcut is", "typical</h4>", "a patch alone keeps",
                    "True groups", "class=\"verdict model-verdict\"", "Accuracy per true group"):
        assert section in page, section
    screenshot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1300,2600", f"--screenshot={screenshot}",
                    (output / "report.html").as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(screenshot) as shot:  # the page painted: a full-size picture with more than a few colours
        assert shot.size == (1300, 2600) and len(shot.convert("RGB").getcolors(1 << 20) or []) > 500


def test_a_split_the_imagefolder_tree_lacks_is_refused_not_replaced_by_the_root(tmp_path: Path) -> None:
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "train" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "train" / label / "0.png")
    assert len(open_dataset(tmp_path, "train", 8)) == 2
    with pytest.raises(ValueError, match=r"split folders \['train'\] but no test/"):
        open_dataset(tmp_path, "test", 8)


def test_a_split_with_no_readable_image_still_gets_a_report_naming_each_file(
    tiny_benchmark: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_benchmark, data)
    paths = [record.image for record in open_dataset(data, "val", 32).records]
    for path in paths:
        path.write_bytes(b"not an image")
    for extra in ([], ["--model", "test_resnet", "--no-dataset-audit"]):
        output = tmp_path / f"audit{len(extra)}"
        assert main(["audit", "--data", str(data), "--split", "val", "--image-size", "32", "--output", str(output),
                     "--no-progress", *extra]) == 2
        assert f"none of the {len(paths)} images" in capsys.readouterr().err
        report = json.loads((output / "report.json").read_text())
        assert sorted(s["path"] for s in report["skipped"]) == sorted(map(str, paths))
        assert all(str(path) in (output / "report.html").read_text() for path in paths)
    earlier = (tmp_path / "audit0" / "report.json").read_text()  # an earlier report is never overwritten
    assert main(["audit", "--data", str(data), "--split", "val", "--output", str(tmp_path / "audit0")]) == 2
    assert (tmp_path / "audit0" / "report.json").read_text() == earlier
    assert (tmp_path / "audit0" / "unreadable" / "report.html").is_file()


def test_a_single_class_dataset_is_named_and_a_model_with_more_classes_refused(
    tiny_benchmark: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import csv

    from robusttrain.models import ModelConfig

    data = tmp_path / "single"
    shutil.copytree(tiny_benchmark, data)
    (data / "benchmark.json").unlink()  # class names come from the labels alone
    with open(data / "metadata.csv") as handle:
        rows = list(csv.DictReader(handle))
    with open(data / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "y": "0"} for row in rows)
    assert main(["audit", "--data", str(data), "--split", "val", "--output", str(tmp_path / "a")]) == 0
    assert "nothing to audit: all 32 samples have one label" in capsys.readouterr().out
    run = tmp_path / "run"
    run.mkdir()
    config = ModelConfig(name="test_resnet", num_classes=2)
    config.save(run)
    torch.save({"model": config.build().state_dict()}, run / "model.pt")
    assert main(["audit", "--data", str(data), "--split", "val", "--model", str(run), "--output",
                 str(tmp_path / "b")]) == 2
    assert "has 2 classes but the data has 1" in capsys.readouterr().err
    assert main(["audit", "--data", str(data), "--split", "val", "--model", str(run / "model.pt"), "--arch",
                 "test_resnet", "--output", str(tmp_path / "c")]) == 2  # a weights file: the classifier is checked
    assert "do not fit test_resnet with the data's 1 classes" in capsys.readouterr().err
