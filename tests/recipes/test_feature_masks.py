"""recipes/feature_masks.py: every row trains a few steps and the summary has each row and measurement (a smoke
run; the 3-seed study is a benchmark, in BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .loading import ROOT, load_recipe


def _recipe():
    return load_recipe("feature_masks")


def test_every_row_runs_and_is_summarised(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = _recipe()
    out = tmp_path / "out"
    options = ["-c", str(ROOT / "configs" / "feature_masks.yaml"), "--data-dir", str(tmp_path / "data"),
               "--image-size", "32", "--output-dir", str(out), "--seeds", "0", "--max-steps", "4", "--batch-size",
               "16", "--eval-images", "32", "--transform-start", "0.5", "--transform-window", "0.25"]
    code = recipe.main([*options, "--benchmark-fraction", "0.02", "--jobs", "2"])
    assert code == 0
    table = (out / "summary.md").read_text()
    for row in ("plain", "single_mask", "multi_channel", "multi_channel + inference transform", "intentional"):
        assert f"| {row} |" in table
    numbers = json.loads((out / "summary.json").read_text())
    features = numbers["multi_channel"]["masks"][0]["mask_correlation"]["between_features"]
    assert numbers["single_mask"]["masks"][0]["mask_correlation"]["between_features"] == pytest.approx(1.0)
    assert features < 0.9  # per-feature masks are not one shared mask
    intentional = json.loads((out / "runs" / "intentional_s0" / "result.json").read_text())["intentional"]
    for weighting in ("decision", "importance"):
        assert set(intentional["masks"]["energy_over_uniform"][weighting]) == {"y", "place", "patterned",
                                                                               "warm_colour", "large_object"}
    probe = json.loads((out / "runs" / "plain_s0" / "probe.json").read_text())  # the config resamples y
    assert probe["samples"] > 0 and "flagged" in probe
    assert (out / "runs" / "multi_channel_s0" / "top_feature_masks.png").stat().st_size > 1000
    (out / "summary.md").unlink()
    trained = (out / "runs" / "plain_s0" / "model.pt").stat().st_mtime_ns
    moved_config = tmp_path / "same_options.yaml"  # the same values from another file
    moved_config.write_text((ROOT / "configs" / "feature_masks.yaml").read_text())
    assert recipe.main([*options, "--no-generate", "-c", str(moved_config)]) == 0  # only the summary is rewritten
    assert (out / "runs" / "plain_s0" / "model.pt").stat().st_mtime_ns == trained
    summary = (out / "summary.md").read_text()
    with pytest.raises(SystemExit):
        recipe.main([*options, "--no-generate", "--lr", "0.1"])
    assert "plain_s0 was run with lr=0.05 (now 0.1)" in capsys.readouterr().err
    assert (out / "summary.md").read_text() == summary  # a refused invocation leaves the earlier results


def test_bad_options_are_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = _recipe()
    with pytest.raises(SystemExit):
        recipe.main(["--attributes", "patterned", "--output-dir", str(tmp_path / "o")])
    assert "must include the spurious pair" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipe.main(["--transform-mode", "binarise", "--transform-damp", "2", "--output-dir", str(tmp_path / "o")])
    assert "damp must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipe.main(["--resample-on", "shape", "--output-dir", str(tmp_path / "o")])
    assert "--resample-on must be one of --attributes" in capsys.readouterr().err
    for flags, message in ((["--eval-images", "0"], "--eval-images must be a positive integer"),
                           (["--noise-variances", "0.01", "-1"], "--noise-variances must be finite numbers >= 0")):
        with pytest.raises(SystemExit):
            recipe.main([*flags, "--output-dir", str(tmp_path / "o")])
        assert message in capsys.readouterr().err
    args = recipe.build_parser().parse_args(["--resample-on", "none"])
    recipe.check(args, recipe.build_parser())
    assert args.resample_on is None  # the config's y switched off from the command line
    assert not (tmp_path / "o").exists()
