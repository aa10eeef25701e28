"""``make demo``'s recipe: ERM, the default and the map-driven variant side by side, one report (a few steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .loading import load_recipe


@pytest.mark.slow
def test_the_demo_reports_erm_the_default_and_the_shared_maps_variant(tiny_benchmark: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    demo = load_recipe("demo")
    out = tmp_path / "demo"
    assert demo.main(["--output-dir", str(out), "--data-dir", str(tiny_benchmark), "--extra", "--no-generate",
                      "--image-size", "32", "--max-steps", "3", "--variant-pool-size", "16"]) == 0
    runs = json.loads((out / "results.json").read_text())
    assert list(runs) == ["ERM", "minority resampling (default)", "default + Grad-CAM swap (shared maps)"]
    report = (out / "report.md").read_text()
    assert "Shortcut visible in ERM" in report and "minority resampling (default) per group" in report
    # The default says what it decided, on the console while it trains and in the report.
    assert "What the default decided: minority_resampling: biased: a small CNN trained briefly out of fold" in report
    assert "minority_resampling: biased:" in capsys.readouterr().out
    swap_config = (out / "default_Grad-CAM_swap_shared_maps" / "seed_0" / "config.yaml").read_text()
    assert "gradcam" in swap_config  # the variant ran with its Grad-CAM map source
