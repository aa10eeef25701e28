"""The callback registry: build callbacks by name from config entries (``{name: ..., option: value}``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._registry import Registry
from .base import Callback, CallbackList

CALLBACKS: Registry[Callback] = Registry("callback")


def create_callback(name: str, **options: Any) -> Callback:
    return CALLBACKS.create(name, **options)


def list_callbacks(pattern: str = "*") -> list[str]:
    return CALLBACKS.list(pattern)


def build_callbacks(entries: Sequence[Mapping[str, Any]] | None) -> CallbackList:
    """A :class:`CallbackList` from config entries; each entry's ``name`` picks the callback.

    Raises:
        ValueError: an entry without ``name``, an unknown name, or options the callback does not take.
    """
    callbacks = []
    for position, entry in enumerate(entries or []):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ValueError(f"callback entry {position} must be a mapping with a 'name', got {entry!r}")
        options = {k: v for k, v in entry.items() if k != "name"}
        try:
            callbacks.append(create_callback(entry["name"], **options))
        except TypeError as error:
            raise ValueError(f"callback {entry['name']!r}: {error}") from error
    return CallbackList(callbacks)
