"""YAML configs as argparse defaults (timm's two-stage parsing): CLI flags > YAML file > built-in defaults."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

MAX_VALUES = 100_000  # values a YAML document may expand to: anchors and aliases cannot make more


def expanded_size(value: Any, limit: int = MAX_VALUES) -> int:
    """How many values ``value`` holds once every shared (aliased) container is counted each time it is used;
    counting stops past ``limit``. Linear in the distinct containers, so an alias bomb is measured, not expanded."""
    sizes: dict[int, int] = {}

    def size(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        if id(item) not in sizes:
            sizes[id(item)] = 0  # a container that holds itself counts once
            children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
            total = 1
            for child in children:
                total += size(child)
                if total > limit:
                    break
            sizes[id(item)] = total
        return sizes[id(item)]

    return size(value)


def read_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` of ``text``, refused (``ValueError`` naming ``where``) when it is not valid YAML or when
    anchors and aliases expand it to more than :data:`MAX_VALUES` values."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem, mark = getattr(error, "problem", None), getattr(error, "problem_mark", None)
        first = (f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if problem and mark
                 else " ".join(str(error).split())[:300] or type(error).__name__)
        raise ValueError(f"{where} is not valid YAML: {first}") from None
    if expanded_size(value) > MAX_VALUES:
        raise ValueError(f"{where}: its anchors and aliases expand to more than {MAX_VALUES} values; write the "
                         "values out instead")
    return value


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a flat YAML mapping. Raises ``FileNotFoundError`` / ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    data = read_yaml(path.read_text(), f"config {path}") or {}
    if not isinstance(data, dict):
        raise ValueError(f"config {path} must be a mapping of option: value, got {type(data).__name__}")
    return data


BOOLEAN_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)


def checked_value(action: argparse.Action, value: Any, where: str) -> Any:
    """A config file's ``value`` for ``action``'s option, converted and checked exactly as the flag's text would be
    (type, choices, booleans), so a config file cannot set what the command line would refuse.

    Raises:
        ValueError: naming ``where`` (file and key), what was expected and what was given.
    """
    if isinstance(action, BOOLEAN_ACTIONS):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if value is None:
        return None
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {value!r}")
        if action.nargs == "+" and not value:
            raise ValueError(f"{where} must list at least one value")
        return [checked_value(_single(action), item, f"{where}[{i}]") for i, item in enumerate(value)]
    convert = action.type
    if not isinstance(value, str):  # YAML typed it: it must already be what the flag's type makes of text
        if convert is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        if convert is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if convert is None:
            hint = (" (YAML reads an unquoted no/yes/off/on as false/true: put the word in quotes)"
                    if isinstance(value, bool) else "")
            raise ValueError(f"{where} must be a string, got {value!r}{hint}")
    if convert is not None:
        try:
            value = convert(value)  # as argparse converts the flag's text
        except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{where} must be one of {list(action.choices)}, got {value!r}")
    return value


def _single(action: argparse.Action) -> argparse.Action:
    """``action`` as if it took one value (to check each item of a list option)."""
    return argparse.Action(action.option_strings, action.dest, type=action.type, choices=action.choices)


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``-c/--config FILE`` (repeatable: later files override earlier ones) first, use the files' keys as
    defaults of ``parser``, then parse the remaining flags. Every file value is checked as its flag would be.

    Raises:
        ValueError: a YAML file names an option that ``parser`` does not have (with the valid names), or gives
            a value its flag would refuse (naming the file and key).
    """
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("-c", "--config", action="append", default=[])
    known, remaining = config_parser.parse_known_args(argv)
    actions = {action.dest: action for action in parser._actions}
    for path in known.config:
        values = load_config(path)
        unknown = sorted(k for k in values if k.replace("-", "_") not in actions)
        if unknown:
            raise ValueError(f"config {path} has unknown options {unknown}; valid options: {sorted(actions)}")
        checked = {}
        for key, value in values.items():
            dest = key.replace("-", "_")
            checked[dest] = checked_value(actions[dest], value, f"config {path}: {key}")
        parser.set_defaults(**checked)
    args = parser.parse_args(remaining)
    args.config = known.config
    return args


def save_config(args: argparse.Namespace, path: str | Path) -> None:
    """Write the resolved options as YAML (so a run can be repeated with ``-c path``)."""
    values = {k: v for k, v in vars(args).items() if k != "config"}
    Path(path).write_text(yaml.safe_dump(values, sort_keys=True))
