"""The registry of map sources: ``create_map_method("gradcam", model, **options)``."""

from __future__ import annotations

from typing import Any

from torch import nn

from .._registry import Registry
from .base import MapMethod

MAP_METHODS: Registry[MapMethod] = Registry("map method")


def create_map_method(name: str, model: nn.Module, **options: Any) -> MapMethod:
    """Build a registered map method for ``model`` (options are the class's keyword arguments)."""
    return MAP_METHODS.create(name, model, **options)


def list_map_methods(pattern: str = "*") -> list[str]:
    return MAP_METHODS.list(pattern)
