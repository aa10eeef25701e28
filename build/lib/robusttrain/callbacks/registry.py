"""The callback registry: build callbacks by name from config entries (``{name: ..., option: value}``)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from .._registry import Registry
from .base import Callback, CallbackList

CALLBACKS: Registry[Callback] = Registry("callback")


def create_callback(name: str, **options: Any) -> Callback:
    return CALLBACKS.create(name, **options)


def list_callbacks(pattern: str = "*") -> list[str]:
    return CALLBACKS.list(pattern)


def build_callbacks(entries: Sequence[Mapping[str, Any]] | None,
                    maps: Mapping[str, Mapping[str, Any]] | None = None) -> CallbackList:
    """A :class:`CallbackList` from config entries (each entry's ``name`` picks the callback) and the ``maps``
    section (map source name -> :class:`~robusttrain.maps.MapSource` options).

    Raises:
        ValueError: an entry without ``name``, an unknown name, options the callback does not take, or a bad
            map source.
    """
    callbacks = []
    for position, entry in enumerate(entries or []):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ValueError(f"callback entry {position} must be a mapping with a 'name', got {entry!r}")
        options = {k: v for k, v in entry.items() if k != "name"}
        factory = CALLBACKS.get(entry["name"])
        try:
            callbacks.append(factory(**options))
        except TypeError as error:
            raise ValueError(f"callback {entry['name']!r}: {error}; valid options: {_options_of(factory)}") from None
        except ValueError as error:
            raise ValueError(f"callback {entry['name']!r}: {error}") from None
    return CallbackList(callbacks, maps)


def _options_of(factory: type) -> list[str]:
    """Keyword options a callback class takes, through its ``**options`` chain of base classes."""
    names: list[str] = []
    for cls in getattr(factory, "__mro__", (factory,)):
        if "__init__" in vars(cls):
            for name, parameter in inspect.signature(vars(cls)["__init__"]).parameters.items():
                if name != "self" and parameter.kind is parameter.POSITIONAL_OR_KEYWORD and name not in names:
                    names.append(name)
    return names
