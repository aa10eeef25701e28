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


def test_config_values_are_checked_as_their_flags_would_be(tmp_path: Path) -> None:
    """Each value a flag would refuse is refused from YAML too, naming the key (it used to train something else)."""
    parser = _parser()
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--attention-head", action="store_true")
    parser.add_argument("--generate", action=argparse.BooleanOptionalAction, default=False)
    config = tmp_path / "c.yaml"
    for text, message in [("optimizer: adam", r"optimizer must be one of \['sgd', 'adamw'\], got 'adam'"),
                          ("optimizer: SGD", "got 'SGD'"),
                          ("attention_head: 'false'", "attention_head must be true or false, got 'false'"),
                          ("generate: 1", "generate must be true or false, got 1"),
                          ("epochs: 1.5", "epochs must be an integer, got 1.5"),
                          ("epochs: ten", "invalid literal"),
                          ("lr: fast", "could not convert"),
                          ("model: 18", "model must be a string, got 18")]:
        config.write_text(text + "\n")
        with pytest.raises(ValueError, match=message):
            parse_with_config(parser, ["-c", str(config)])
    config.write_text("epochs: '12'\nlr: 1\nattention_head: true\n")  # text converts as on the command line
    args = parse_with_config(parser, ["-c", str(config)])
    assert args.epochs == 12 and args.lr == 1.0 and isinstance(args.lr, float) and args.attention_head is True


def test_list_options_from_yaml_are_checked_item_by_item(tmp_path: Path) -> None:
    parser = _parser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--variants", nargs="+", default=["a"], choices=["a", "b"])
    config = tmp_path / "c.yaml"
    for text, message in [("seeds: 3", "seeds must be a list, got 3"),
                          ("seeds: []", "seeds must list at least one value"),
                          ("seeds: [1, 2.5]", r"seeds\[1\] must be an integer, got 2.5"),
                          ("variants: [a, c]", r"variants\[1\] must be one of \['a', 'b'\], got 'c'")]:
        config.write_text(text + "\n")
        with pytest.raises(ValueError, match=message):
            parse_with_config(parser, ["-c", str(config)])
    config.write_text("seeds: [1, '2']\nvariants: [b]\n")
    args = parse_with_config(parser, ["-c", str(config)])
    assert args.seeds == [1, 2] and args.variants == ["b"]
