"""The contract every map source follows, and the helpers they share.

A map method is called as ``method(images, targets=None)`` with images ``(B, C, H, W)`` in [0, 1] and returns
maps ``(B, 1, H, W)`` in [0, 1] on the images' device, 1 = what the prediction depends on. ``targets`` are the
classes to explain (default: the predicted class); for single-output regressors the output itself is explained.
The model is left exactly as it was (see :func:`robusttrain.attention.state.untouched`).

Methods declare what a training loop can do with them as class attributes: ``warm_start`` (the call takes
``init_maps=``, a sample's previous maps, and converges faster from them) and ``training_pass`` (maps can be
read off the training step's own forward pass through :meth:`MapMethod.capture_training_pass`, at no extra
forward).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .state import untouched


def input_channels(model: nn.Module) -> int | None:
    """Channels the model takes: its ``in_chans``, else the first convolution's input channels (None if unknown)."""
    declared = getattr(model, "in_chans", None)
    if declared is not None:
        return int(declared)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return None if first_conv is None else first_conv.in_channels


def check_images(images: torch.Tensor, model: nn.Module | None = None) -> None:
    """Raise a ``ValueError``/``TypeError`` naming what is wrong with an image batch."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [0, 1], got {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"images must be in [0, 1], got values in [{low:.3g}, {high:.3g}] "
                         "(divide 8-bit images by 255; normalisation belongs inside the model)")
    expected = input_channels(model) if model is not None else None
    if expected is not None and images.shape[1] != expected:
        raise ValueError(f"model expects {expected}-channel images, got {images.shape[1]} channels")


def target_scores(outputs: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Score to explain per sample and the class it belongs to.

    Classification (``outputs`` ``(B, K)``, K > 1): the logit of ``targets`` (default argmax).
    Regression (``(B, 1)`` or ``(B,)``): the output itself; the returned "class" is 0.
    """
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.shape[1] == 1:
        return outputs[:, 0], torch.zeros(len(outputs), dtype=torch.long, device=outputs.device)
    if targets is None:
        targets = outputs.argmax(dim=1)
    targets = torch.as_tensor(targets, device=outputs.device).long().reshape(-1)
    if len(targets) != len(outputs):
        raise ValueError(f"got {len(targets)} targets for a batch of {len(outputs)} images")
    if targets.min() < 0 or targets.max() >= outputs.shape[1]:
        raise ValueError(f"targets must be classes in [0, {outputs.shape[1] - 1}], got {targets.tolist()}")
    return outputs.gather(1, targets[:, None])[:, 0], targets


def to_unit_maps(maps: torch.Tensor, size: tuple[int, int], rescale: bool = True) -> torch.Tensor:
    """Resize non-negative raw maps ``(B, 1, h, w)`` to ``size`` (bilinear) and scale each to max 1."""
    maps = F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False).clamp_min(0)
    if not rescale:
        return maps.clamp(0, 1)
    peak = maps.flatten(1).max(dim=1).values.clamp_min(1e-12)
    return (maps / peak[:, None, None, None]).clamp(0, 1)


class TrainingPassCapture(Protocol):
    """Maps taken from one training forward pass: armed before it, read once the loop has its outputs."""

    def maps(self, outputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """Maps ``(B, 1, H, W)`` in [0, 1] of the pass that produced ``outputs``; releases the capture."""

    def release(self) -> None:
        """Remove any hooks (idempotent)."""


class MapMethod:
    """Base class: subclasses implement :meth:`compute`, returning raw non-negative maps ``(B, 1, h, w)``."""

    uses_gradients: ClassVar[bool] = True
    rescale: ClassVar[bool] = True  # False for methods whose raw maps already mean something in [0, 1]
    warm_start: ClassVar[bool] = False
    training_pass: ClassVar[bool] = False

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, targets: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """Maps ``(B, 1, H, W)`` in [0, 1] for ``images`` ``(B, C, H, W)`` in [0, 1]."""
        check_images(images, self.model)
        # NOTE: parameters are frozen inside `untouched`; an input that requires grad keeps the graph alive so
        # gradients with respect to activations (and maps) can still be taken.
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), images.dtype)
        inputs = images.detach().to(dtype).requires_grad_(self.uses_gradients)
        with untouched(self.model), torch.enable_grad():
            maps = self.compute(inputs, targets, **kwargs)
        return to_unit_maps(maps.detach(), images.shape[-2:], self.rescale)

    def capture_training_pass(self, input_size: tuple[int, int]) -> TrainingPassCapture:
        """Arm a capture of the next forward pass of the model (the training step's); see ``training_pass``."""
        raise NotImplementedError(f"{type(self).__name__} cannot take maps from the training pass")
