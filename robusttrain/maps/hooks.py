"""Capture layer outputs by fnmatch name pattern, with hooks that are always released."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn


def resolve_layers(model: nn.Module, patterns: str | Sequence[str]) -> list[tuple[str, nn.Module]]:
    """Modules whose qualified name matches any pattern (``"backbone.layer4"``, ``"*.blocks.11"``)."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found = [(name, m) for name, m in model.named_modules() if any(fnmatch.fnmatch(name, p) for p in patterns)]
    if not found:
        names = [n for n, _ in model.named_modules() if n][-8:]
        raise ValueError(f"no layer matches {patterns}; the model's last layers are {names}")
    return found


class ActivationCapture:
    """Record the outputs of the given layers during forward passes; use as a context manager.

    ``transform`` may replace an output (e.g. gate it): it receives ``(layer_name, output)``.
    """

    def __init__(
        self,
        layers: Sequence[tuple[str, nn.Module]],
        transform: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.layers = list(layers)
        self.transform = transform
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def _hook(self, name: str) -> Callable[..., torch.Tensor | None]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
            if self.transform is not None:
                output = self.transform(name, output)
            self.outputs[name] = output
            return output if self.transform is not None else None

        return hook

    def __enter__(self) -> ActivationCapture:
        self._handles = [module.register_forward_hook(self._hook(name)) for name, module in self.layers]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
