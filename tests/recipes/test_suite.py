"""The benchmark suite: the versioned file loads and is checked, and two development members run two rows for a few
steps (a smoke run; the suite itself is a benchmark, never part of `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robusttrain.data.benchmark import load_suite

from .loading import ROOT, load_recipe

SUITE = ROOT / "configs" / "suite" / "suite_v1.yaml"


def _recipe():
    return load_recipe("suite")


def test_the_suite_has_development_and_reserved_members_that_differ() -> None:
    members = load_suite(SUITE)
    roles = [m.role for m in members]
    assert len(members) >= 8 and roles.count("development") >= 4 and roles.count("reserved") >= 4
    configs = [m.config for m in members]
    assert len({(c.shapes, c.domains, c.seed) for c in configs}) == len(configs)
    assert {c.num_classes for c in configs} >= {2, 3, 4, 5} and {c.image_size for c in configs} == {64, 128}
    assert {c.correlation for c in configs} == {0.9, 0.95, 0.99}


def test_a_bad_suite_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("members: {a: {role: dev, config: {}}}")
    with pytest.raises(ValueError, match=r"suite member 'a': role must be one of \['development', 'reserved'\]"):
        load_suite(path)
    path.write_text("members: {a: {role: reserved, config: {clases: 3}}}")
    with pytest.raises(ValueError, match=r"suite member 'a': unknown config key\(s\) \['clases'\]"):
        load_suite(path)
    path.write_text("members: {a: {role: reserved, config: {num_classes: 1}}}")
    with pytest.raises(ValueError, match="suite member 'a': num_classes must be between 2"):
        load_suite(path)
    with pytest.raises(SystemExit):
        _recipe().main(["--members", "no_such_member", "--output-dir", str(tmp_path)])


@pytest.mark.slow
def test_two_development_members_run_three_rows(tmp_path: Path) -> None:
    recipe = _recipe()
    assert recipe.main(["--members", "dev_cross_ring", "dev_three_way", "--rows", "erm", "default", "group_dro",
                        "--seeds", "0", "--jobs", "2", "--output-dir", str(tmp_path / "out"),
                        "--data-root", str(tmp_path / "data"),
                        "--extra", "--epochs", "1", "--max-steps", "2", "--variant-pool-size", "32"]) == 0
    text = (tmp_path / "out" / "suite.md").read_text()
    assert "| dev_three_way | development | group_dro | training groups | last step |" in text
    assert "| dev_cross_ring | development | " in text.split("meets ERM + 10 / - 2?")[1]  # the default's checks
    assert "| erm | class | " in text and "| n/a | n/a |" in text  # no reserved member was run
    assert not (tmp_path / "data" / "reserved_ring_star").exists()
