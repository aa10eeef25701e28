"""A small generic name -> factory registry (timm-style ``register`` / ``create`` / ``list``)."""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class Registry(Generic[T]):
    """Factories by name. ``create`` drops ``None`` keyword arguments so configs can leave options unset."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            key = name or _snake_case(factory.__name__)
            if key in self._entries:
                warnings.warn(f"{self.kind} {key!r} is registered again; the new one replaces it", stacklevel=2)
            self._entries[key] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {self.list()}")
        return self._entries[name]

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **{k: v for k, v in kwargs.items() if v is not None})
