"""Results tables become CSV files exactly as printed (what BENCHMARKS.md's tables are made from)."""

from __future__ import annotations

import csv
from pathlib import Path

from robusttrain.eval import table_rows, write_tables_csv

TEXT = """model=test_resnet threads=2
| configuration | ratio |
|---|---|
| plain | 1.00 |
| callbacks/default | 1.02 |

Two tables, one file each:

| model | method | maps / s |
|:---|---:|---|
| resnet18 | gradcam | 470 |
"""


def test_each_markdown_table_is_written_as_its_own_csv(tmp_path: Path) -> None:
    assert table_rows(TEXT)[0] == [["configuration", "ratio"], ["plain", "1.00"], ["callbacks/default", "1.02"]]
    written = write_tables_csv(TEXT, tmp_path / "results" / "bench.csv")
    assert [p.name for p in written] == ["bench.csv", "bench_2.csv"]
    with open(written[1], newline="") as handle:
        assert list(csv.reader(handle)) == [["model", "method", "maps / s"], ["resnet18", "gradcam", "470"]]
    assert write_tables_csv("no table here", tmp_path / "none.csv") == []
