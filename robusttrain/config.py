"""YAML configs as argparse defaults (timm's two-stage parsing): CLI flags > YAML file > built-in defaults."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a flat YAML mapping. Raises ``FileNotFoundError`` / ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"config {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"config {path} must be a mapping of option: value, got {type(data).__name__}")
    return data


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``-c/--config FILE`` (repeatable: later files override earlier ones) first, use the files' keys as
    defaults of ``parser``, then parse the remaining flags.

    Raises:
        ValueError: a YAML file names an option that ``parser`` does not have (with the valid names).
    """
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("-c", "--config", action="append", default=[])
    known, remaining = config_parser.parse_known_args(argv)
    valid = {action.dest for action in parser._actions}
    for path in known.config:
        values = load_config(path)
        unknown = sorted(k for k in values if k.replace("-", "_") not in valid)
        if unknown:
            raise ValueError(f"config {path} has unknown options {unknown}; valid options: {sorted(valid)}")
        parser.set_defaults(**{k.replace("-", "_"): v for k, v in values.items()})
    args = parser.parse_args(remaining)
    args.config = known.config
    return args


def save_config(args: argparse.Namespace, path: str | Path) -> None:
    """Write the resolved options as YAML (so a run can be repeated with ``-c path``)."""
    values = {k: v for k, v in vars(args).items() if k != "config"}
    Path(path).write_text(yaml.safe_dump(values, sort_keys=True))
