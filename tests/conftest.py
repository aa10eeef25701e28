"""Shared fixtures: a tiny built-in benchmark rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from robusttrain.data import BenchmarkConfig, generate_benchmark

TINY = BenchmarkConfig(image_size=32, n_train=160, n_val=32, n_test=48, seed=7)


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-class benchmark in the Waterbirds layout: 160 train (0.95 correlated), 32 val, 48 test, 32 px."""
    return generate_benchmark(tmp_path_factory.mktemp("bench"), TINY, workers=1)
