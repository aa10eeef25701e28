"""Shared fixtures of tests/ and research/tests/: small built-in benchmarks rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from robusttrain.data import BenchmarkConfig, generate_benchmark

TINY = BenchmarkConfig(image_size=32, n_train=160, n_val=32, n_test=48, seed=7)


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-class benchmark in the Waterbirds layout: 160 train (0.95 correlated), 32 val, 48 test, 32 px."""
    return generate_benchmark(tmp_path_factory.mktemp("bench"), TINY, workers=1)


@pytest.fixture(scope="session")
def image_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-folder tree (``<root>/train/<class>/*.png``) of a 400-image training split with a 0.95 background
    shortcut: what a user's own ImageFolder data looks like."""
    import csv
    import shutil

    root = generate_benchmark(tmp_path_factory.mktemp("bench400"),
                              BenchmarkConfig(image_size=32, n_train=400, n_val=8, n_test=8, seed=11), workers=1)
    tree = tmp_path_factory.mktemp("tree")
    with open(root / "metadata.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "0":
                folder = tree / "train" / row["img_filename"].split("/")[0]
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / row["img_filename"], folder)
    return tree
