"""The reference pages build (mkdocs, strict: a broken link, page or API reference fails), and the default the
docs and configs name is the one the library runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robusttrain import DEFAULT_CALLBACKS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_docs_build_with_every_reference_resolved(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("robusttrain.Robust") > 0


def test_every_page_is_in_the_navigation() -> None:
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {page for entry in nav for page in entry.values()}
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_the_default_config_is_the_librarys_default() -> None:
    config = yaml.safe_load((ROOT / "configs" / "callbacks" / "default.yaml").read_text())
    assert config == {"callbacks": list(DEFAULT_CALLBACKS)}
