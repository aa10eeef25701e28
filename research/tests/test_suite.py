"""The benchmark suite: the versioned file loads and is checked, and two development members run two rows for a few
steps (a smoke run; the suite itself is a benchmark, never part of `make test`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from robusttrain.data.benchmark import BenchmarkConfig, SuiteMember, load_suite, load_suites

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "research" / "suites"


def _recipe():
    """``research/suite.py`` (a script, not a package) as a fresh module."""
    spec = importlib.util.spec_from_file_location("research_suite", ROOT / "research" / "suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_first_suite_has_development_and_reserved_members_that_differ() -> None:
    members = load_suite(SUITES / "suite_v1.yaml")
    roles = [m.role for m in members]
    assert len(members) >= 8 and roles.count("development") >= 4 and roles.count("reserved") >= 4
    configs = [m.config for m in members]
    assert len({(c.shapes, c.domains, c.seed) for c in configs}) == len(configs)
    assert {c.num_classes for c in configs} >= {2, 3, 4, 5} and {c.image_size for c in configs} == {64, 128}
    assert {c.correlation for c in configs} == {0.9, 0.95, 0.99}


def test_the_second_suite_reserves_fresh_members_and_keeps_what_differs() -> None:
    first = {m.config for m in load_suite(SUITES / "suite_v1.yaml")}
    members = load_suite(SUITES / "suite_v2.yaml")
    reserved = [m.config for m in members if m.role == "reserved"]
    assert len(members) >= 8 and len(reserved) >= 4 and len(members) - len(reserved) >= 4
    assert not first & set(reserved) and len({c.seed for c in reserved}) == len(reserved)  # never seen before
    configs = [m.config for m in members]
    assert {c.num_classes for c in configs} >= {2, 3, 4} and {c.image_size for c in configs} == {64, 128}
    assert {c.correlation for c in configs} == {0.9, 0.95, 0.99}


def test_the_third_suite_has_shortcut_kinds_and_one_kind_only_in_reserved_members() -> None:
    earlier = {m.config for v in ("suite_v1.yaml", "suite_v2.yaml") for m in load_suite(SUITES / v)
               if m.role == "reserved"}
    members = load_suite(SUITES / "suite_v3.yaml")
    kinds = {role: {m.config.shortcut for m in members if m.role == role} for role in ("development", "reserved")}
    assert kinds["development"] >= {"colour", "texture", "mark"}
    assert kinds["reserved"] - kinds["development"] == {"context"}  # transfer to a kind nobody tuned on
    reserved = [m.config for m in members if m.role == "reserved"]
    assert not earlier & set(reserved) and len({c.seed for c in reserved}) == len(reserved)
    assert any(m.config.correlation == 0.5 for m in members if m.role == "development")  # a member without bias


def test_the_fourth_suite_reserves_fresh_members_of_three_kinds() -> None:
    earlier = {m.config for v in ("suite_v1.yaml", "suite_v2.yaml", "suite_v3.yaml") for m in load_suite(SUITES / v)}
    members = load_suite(SUITES / "suite_v4.yaml")
    reserved = [m.config for m in members if m.role == "reserved"]
    assert {c.shortcut for c in reserved} == {"colour", "mark", "context"}
    assert not earlier & set(reserved) and len({c.seed for c in reserved}) == len(reserved)
    development = {m.config.shortcut for m in members if m.role == "development"}
    assert development >= {"colour", "texture", "mark", "context"}


def test_the_fifth_suite_reserves_a_fresh_texture_member_and_copies_the_fourths_development() -> None:
    earlier = [load_suite(SUITES / f"suite_v{v}.yaml") for v in range(1, 5)]
    members = load_suite(SUITES / "suite_v5.yaml")
    reserved = [m.config for m in members if m.role == "reserved"]
    assert [c.shortcut for c in reserved] == ["texture"] and reserved[0].texture_amplitude > 60
    assert not {m.config for suite in earlier for m in suite} & set(reserved)
    assert {m.config.seed for suite in earlier for m in suite}.isdisjoint({c.seed for c in reserved})
    development = [(m.name, m.config) for m in members if m.role == "development"]
    assert development == [(m.name, m.config) for m in earlier[3] if m.role == "development"]


def test_the_sixth_suite_reserves_fresh_members_and_copies_the_fifths_development() -> None:
    earlier = [load_suite(SUITES / f"suite_v{v}.yaml") for v in range(1, 6)]
    members = load_suite(SUITES / "suite_v6.yaml")
    reserved = [m.config for m in members if m.role == "reserved"]
    assert {c.shortcut for c in reserved} == {"colour", "mark", "context"}
    assert not {m.config for suite in earlier for m in suite} & set(reserved)
    assert {m.config.seed for suite in earlier for m in suite}.isdisjoint({c.seed for c in reserved})
    development = [(m.name, m.config) for m in members if m.role == "development"]
    blends_chosen_on = [(m.name, m.config) for m in load_suite(SUITES / "counterfactual_dev.yaml")]
    assert development == [(m.name, m.config) for m in earlier[4] if m.role == "development"] + blends_chosen_on


def test_the_seventh_suite_reserves_fresh_members_with_visible_symbols_and_copies_the_sixths_development() -> None:
    earlier = [load_suite(SUITES / f"suite_v{v}.yaml") for v in range(1, 7)]
    checks = [load_suite(SUITES / f"{name}.yaml") for name in ("flags_v1", "flags_v2")]
    members = load_suite(SUITES / "suite_v7.yaml")
    reserved = [m.config for m in members if m.role == "reserved"]
    assert {c.shortcut for c in reserved} == {"mark", "context"} and {c.ink for c in reserved} == {"contrasting"}
    seen = [m.config for suite in earlier + checks for m in suite]
    assert not set(seen) & set(reserved) and {c.seed for c in seen}.isdisjoint({c.seed for c in reserved})
    development = [(m.name, m.config) for m in members if m.role == "development"]
    assert development == [(m.name, m.config) for m in earlier[5] if m.role == "development"]


def test_the_eighth_suite_reserves_fresh_members_of_every_kind_and_copies_the_sevenths_development() -> None:
    earlier = [load_suite(SUITES / f"suite_v{v}.yaml") for v in range(1, 8)]
    checks = [load_suite(SUITES / f"{name}.yaml") for name in ("flags_v1", "flags_v2", "second_pass_dev")]
    members = load_suite(SUITES / "suite_v8.yaml")
    reserved = [m.config for m in members if m.role == "reserved"]
    assert {c.shortcut for c in reserved} == {"colour", "stripes", "halves", "mark", "context"}
    assert any(c.shortcut == "stripes" and c.object_area[1] < 0.1 for c in reserved)  # a small object
    seen = [m.config for suite in earlier + checks for m in suite]
    assert not set(seen) & set(reserved) and {c.seed for c in seen}.isdisjoint({c.seed for c in reserved})
    development = [(m.name, m.config) for m in members if m.role == "development"]
    second_pass = {f"dev_{m.name}": m.config for m in checks[2]}
    assert development[:11] == [(m.name, m.config) for m in earlier[6] if m.role == "development"]
    assert all(second_pass[name] == config for name, config in development[11:])


def recipe_default_suite() -> Path:
    return Path(_recipe().build_parser().get_default("suite")[0])


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
def test_a_development_member_runs_four_rows(tmp_path: Path) -> None:
    recipe = _recipe()
    assert recipe.main(["--members", "dev_texture_tee_triangle", "--rows", "erm", "default",
                        "group_dro", "oracle", "--seeds", "0", "--jobs", "1", "--output-dir", str(tmp_path / "out"),
                        "--data-root", str(tmp_path / "data"),
                        "--extra", "--epochs", "1", "--max-steps", "2", "--variant-pool-size", "32"]) == 0
    text = (tmp_path / "out" / "suite.md").read_text()
    assert "| dev_texture_tee_triangle | development | group_dro | training groups | last step |" in text
    checks = text.split("meets ERM + 10 / - 2?")[1]  # the default's checks
    assert "| dev_texture_tee_triangle | development | texture | " in checks
    assert "(not counted: the oracle stays below the floor)" in checks  # two steps learn no object
    assert "| erm | class | none (0.0 [1]) | n/a | n/a |" in text  # nothing learnable; no reserved member ran
    assert not any(path.name.startswith("reserved") for path in (tmp_path / "data").iterdir())


def _member(name: str, classes: int) -> SuiteMember:
    return SuiteMember(name, "reserved", BenchmarkConfig(num_classes=classes, n_train=100, n_val=50, n_test=50))


def test_a_member_whose_mask_oracle_stays_near_chance_is_not_counted() -> None:
    recipe = _recipe()
    two, four = _member("two", 2), _member("four", 4)
    assert recipe.learnability_floor(two) == 75.0 and recipe.learnability_floor(four) == 62.5
    seed_means = {("two", "erm"): (0.0, 50.0), ("two", "default"): (5.0, 51.0), ("two", "oracle"): (1.0, 74.0),
                  ("four", "erm"): (0.0, 25.0), ("four", "default"): (40.0, 70.0), ("four", "oracle"): (50.0, 63.0)}
    counted = recipe.learnable([two, four], seed_means)
    assert counted == {"two": False, "four": True}
    lines = recipe.checks([two, four], ["erm", "default", "oracle"], seed_means, counted, {"two": 1.1, "four": 1.25})
    not_counted = "NO (not counted: the oracle stays below the floor)"
    assert lines[2] == f"| two | reserved | colour | 74.0 (75.0) | +5.0 | +1.0 | {not_counted} | 1.10x |"
    assert lines[3] == "| four | reserved | colour | 63.0 (62.5) | +40.0 | +45.0 | yes | 1.25x |"
    del seed_means["two", "oracle"]  # no oracle row: learnability is not checked, the member counts
    assert recipe.learnable([two], seed_means) == {"two": True}


def test_the_suite_runs_the_newest_suite_file_by_default() -> None:
    newest = max(int(p.stem.split("_v")[1]) for p in SUITES.glob("suite_v*.yaml"))
    assert recipe_default_suite() == SUITES / f"suite_v{newest}.yaml" and newest >= 7


def test_several_suites_run_as_one_and_a_member_they_share_must_agree(tmp_path: Path) -> None:
    together = load_suites([SUITES / "suite_v6.yaml", SUITES / "suite_v7.yaml"])
    reserved = [m.name for m in together if m.role == "reserved"]
    assert len(reserved) == 5 and len(set(m.name for m in together)) == len(together)
    clash = tmp_path / "clash.yaml"
    clash.write_text("version: 99\nmembers:\n  dev_cross_ring:\n    role: development\n"
                     "    config: {num_classes: 2, correlation: 0.9, seed: 1}\n")
    with pytest.raises(ValueError, match="dev_cross_ring.*differs between the suite files"):
        load_suites([SUITES / "suite_v7.yaml", clash])


def test_dfr_rows_take_the_time_of_the_erm_run_they_refit(tmp_path: Path) -> None:
    for row, metrics in (("erm", {"train_cpu_seconds": 100.0, "train_seconds": 60.0}),
                         ("dfr", {"erm_run": "elsewhere", "fit_seconds": 5.0})):
        (tmp_path / row / "seed_0").mkdir(parents=True)
        (tmp_path / row / "seed_0" / "metrics.json").write_text(json.dumps(metrics))
    recipe = _recipe()
    assert recipe.row_seconds(tmp_path, "erm", 0) == 100.0
    assert recipe.row_seconds(tmp_path, "dfr", 0) == 105.0
