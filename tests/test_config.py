from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from robusttrain.config import parse_with_config, save_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--model", default="resnet18")
    return parser


def test_cli_overrides_yaml_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("lr: 0.5\nmodel: test_vit\n")
    args = parse_with_config(_parser(), ["-c", str(config), "--lr", "0.01"])
    assert args.lr == 0.01 and args.model == "test_vit"
    save_config(args, tmp_path / "resolved.yaml")
    again = parse_with_config(_parser(), ["-c", str(tmp_path / "resolved.yaml")])
    assert again.lr == 0.01 and again.model == "test_vit"


def test_unknown_or_malformed_config_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 0.5\n")
    with pytest.raises(ValueError, match=r"unknown options \['learning_rate'\]"):
        parse_with_config(_parser(), ["-c", str(config)])
    config.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        parse_with_config(_parser(), ["-c", str(config)])
    with pytest.raises(FileNotFoundError, match="config file not found"):
        parse_with_config(_parser(), ["-c", str(tmp_path / "nope.yaml")])
