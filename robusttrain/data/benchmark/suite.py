"""A versioned suite of benchmark members (``research/suites/*.yaml``): generator configs split into *development*
members (tune on these) and *reserved* members (evaluated once, on the final code, never used to choose options)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ...config import read_yaml
from .generate import BenchmarkConfig

ROLES = ("development", "reserved")


@dataclass(frozen=True)
class SuiteMember:
    """One member: its name, its role and the generator config that renders it."""

    name: str
    role: str
    config: BenchmarkConfig


def _config(name: str, options: Any) -> BenchmarkConfig:
    if not isinstance(options, dict):
        raise ValueError(f"suite member {name!r}: config must be a mapping, got {options!r}")
    valid = [f.name for f in fields(BenchmarkConfig) if f.name != "format_version"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"suite member {name!r}: unknown config key(s) {unknown}; valid: {valid}")
    converted = {key: tuple(value) if isinstance(value, list) else value for key, value in options.items()}
    try:
        return BenchmarkConfig(**converted)
    except (TypeError, ValueError) as error:
        raise ValueError(f"suite member {name!r}: {error}") from None


def load_suite(path: str | Path) -> list[SuiteMember]:
    """The members of a suite file, in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no members, a member without a valid role, or a config the generator refuses (named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"suite file not found: {path}")
    document = read_yaml(path.read_text(), f"suite file {path}") or {}
    members = document.get("members")
    if not isinstance(members, dict) or not members:
        raise ValueError(f"{path}: 'members' must map member names to {{role, config}}")
    suite = []
    for name, entry in members.items():
        entry = entry if isinstance(entry, dict) else {}
        role = entry.get("role")
        if role not in ROLES:
            raise ValueError(f"suite member {name!r}: role must be one of {list(ROLES)}, got {role!r}")
        suite.append(SuiteMember(str(name), role, _config(name, entry.get("config"))))
    return suite


def load_suites(paths: Sequence[str | Path]) -> list[SuiteMember]:
    """The members of several suite files together; a member that two files share must be the same member.

    Raises:
        ValueError: two files give one member name different roles or configs.
    """
    members: dict[str, SuiteMember] = {}
    for path in paths:
        for member in load_suite(path):
            if members.setdefault(member.name, member) != member:
                raise ValueError(f"suite member {member.name!r} differs between the suite files")
    return list(members.values())
