"""The project speaks of the library as it is: no work-log words, issue numbers or dates in its pages, docstrings
and configs (the story of how a default was chosen lives in research/), short module docstrings and config
comments, and a results page of tables with their commands and CSVs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDINALS = ("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
            "fourteenth|fifteenth")
WORK_LOG = re.compile(rf"\bsessions?\b|\b({ORDINALS}|\d+(st|nd|rd|th)) (round|entry|stop)\b", re.I)
ISSUE = re.compile(r"(^|[\s(\[])#\d+\b")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
HEADING = re.compile(rf"^#+ .*\b({ORDINALS})\b", re.I | re.M)


def project_files() -> list[Path]:
    """The pages, code and configs a user reads (research/ and tests/ excluded)."""
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *(ROOT / "docs").rglob("*.md")]
    for folder, pattern in (("robusttrain", "*.py"), ("recipes", "*.py"), ("bench", "*.py"), ("configs", "*.yaml")):
        files += sorted((ROOT / folder).rglob(pattern))
    return [f for f in files if f.is_file()]


@pytest.mark.parametrize("path", project_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_work_log_words_issue_numbers_or_dates(path: Path) -> None:
    text = path.read_text()
    for name, pattern in (("work-log word", WORK_LOG), ("issue reference", ISSUE), ("date", DATE)):
        found = [m.group(0).strip() for m in pattern.finditer(text)]
        assert not found, f"{path.relative_to(ROOT)}: {name} {found[:3]}"
    if path.suffix == ".md":
        assert not HEADING.findall(text), f"{path.relative_to(ROOT)}: a heading numbered as a work-log entry"


def test_the_check_catches_what_it_should() -> None:
    assert WORK_LOG.search("Suite v6, tenth session") and WORK_LOG.search("the twelfth round")
    assert ISSUE.search("as #28 asks") and not ISSUE.search("color:#222")
    assert DATE.search("## Suite v4, 2026-12-03") and HEADING.search("## The ninth look at blends")


@pytest.mark.parametrize("folder", ["robusttrain", "recipes", "bench"])
def test_module_docstrings_are_short(folder: str) -> None:
    long = [f"{p.relative_to(ROOT)}: {len(doc.splitlines())} lines" for p in sorted((ROOT / folder).rglob("*.py"))
            if (doc := ast.get_docstring(ast.parse(p.read_text()), clean=False)) and len(doc.splitlines()) > 15]
    assert not long, long


def test_config_comment_blocks_are_short() -> None:
    long = []
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        run = 0
        for line in path.read_text().splitlines():
            run = run + 1 if line.lstrip().startswith("#") else 0
            if run > 5:
                long.append(str(path.relative_to(ROOT)))
                break
    assert not long, long


def test_benchmarks_is_a_results_page() -> None:
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert len(text.splitlines()) <= 300
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert sections
    for section in sections:
        title = section.splitlines()[0]
        if "|---" in section:  # a table: the command that made it and the CSV it wrote
            assert "```bash" in section, f"section {title!r} has a table but no command"
            csvs = re.findall(r"results/[\w./-]+\.csv", section)
            assert csvs and all((ROOT / c).is_file() for c in csvs), f"section {title!r}: CSV missing {csvs}"
