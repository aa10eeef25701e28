"""Old import paths kept as thin aliases: each name still resolves, with a FutureWarning naming its new home."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def moved(old: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old`` that serves each name of ``homes`` (name -> new module) with a warning."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} moved to {homes[name]}.{name}; {old} will be removed", FutureWarning,
                      stacklevel=2)
        return getattr(import_module(homes[name]), name)

    return __getattr__
