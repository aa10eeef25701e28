"""Importing spuco (optional extra ``peers``) without letting it disturb the caller's random state."""

from __future__ import annotations

import importlib
from typing import Any

from ..maps.state import kept_random_state


def from_spuco(module: str, *names: str) -> tuple[Any, ...]:
    """``names`` from the spuco module ``module`` (its import draws from the global generators, which are restored).

    Raises:
        ImportError: spuco is not installed (naming the extra that installs it).
    """
    try:
        with kept_random_state():
            imported = importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"this peer needs spuco ({module}): pip install '.[peers]'") from error
    return tuple(getattr(imported, name) for name in names)
