"""The user's batches as they come: where the images, targets and masks sit, and how the images are normalised.

A loader may yield ``(images, labels, ...)`` tuples (torchvision, timm), dicts with ``pixel_values`` / ``labels``
(Hugging Face) or this library's ``image`` / ``target`` dicts. :class:`BatchFormat` finds the fields (or is told
their keys), turns a batch into a :class:`~robusttrain.types.Batch` whose images are in [0, 1] (undoing the
dataset's mean/std normalisation, which maps, blends and swaps need) and puts changed images back as the model
expects them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..types import Batch

IMAGE_KEYS = ("image", "pixel_values", "images", "img", "x", "input")
TARGET_KEYS = ("target", "labels", "label", "targets", "y")
Key = int | str
RANGE_SLACK = 0.02  # interpolation overshoot; a normalised image is far outside this


@dataclass(frozen=True)
class Normalization:
    """``model_input = (pixels - mean) / std`` per channel; identity when ``mean`` is None (images in [0, 1])."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std (the dataset's Normalize), or neither")
        if self.mean is not None:
            mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
            if len(mean) != len(std) or not mean or any(s <= 0 for s in std):
                raise ValueError(f"mean and std must have one value per channel, std > 0; got {mean}, {std}")
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)

    def _stats(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1, 1, 1)
        return (torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(shape),
                torch.tensor(self.std, dtype=images.dtype, device=images.device).view(shape))

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return images
        mean, std = self._stats(images)
        return images * std + mean

    def to_model(self, images: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return images
        mean, std = self._stats(images)
        return (images - mean) / std


class PixelSpaceModel(nn.Module):
    """The user's model seen from [0, 1] images (what map methods feed it): ``model(normalize(images))``, with an
    optional ``call(model, inputs)`` for models whose forward takes other arguments (Hugging Face's
    ``pixel_values=``). Its modules are named as the model's, so layer names in map options stay the user's."""

    def __init__(self, model: nn.Module, batch_format: BatchFormat, call: Any = None) -> None:
        super().__init__()
        self.model, self.batch_format, self.call = model, batch_format, call

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        inputs = self.batch_format.normalization.to_model(images)
        return self.call(self.model, inputs) if self.call is not None else self.model(inputs)

    def named_modules(self, *args: Any, **kwargs: Any) -> Any:
        return self.model.named_modules(*args, **kwargs)


def find_normalization(dataset: Any) -> Normalization | None:
    """The mean/std of a torchvision ``Normalize`` in the dataset's transform (through ``Compose`` and ``Subset``),
    or None when the dataset shows none."""
    seen: set[int] = set()
    while dataset is not None and id(dataset) not in seen:
        seen.add(id(dataset))
        for transform in _transforms(getattr(dataset, "transform", None)):
            if type(transform).__name__ == "Normalize" and hasattr(transform, "mean"):
                return Normalization(tuple(torch.as_tensor(transform.mean, dtype=torch.float64).flatten().tolist()),
                                     tuple(torch.as_tensor(transform.std, dtype=torch.float64).flatten().tolist()))
        dataset = getattr(dataset, "dataset", None)
    return None


def _transforms(transform: Any) -> list[Any]:
    if transform is None:
        return []
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, Sequence):
        return [t for part in inner for t in _transforms(part)]
    return [transform]


class BatchFormat:
    """Reads the fields of the user's collated batches and writes changed images back.

    Args:
        image_key, target_key: position (tuples) or key (dicts) of the images and targets; None: found by name
            (dicts) or positions 0 and 1 (tuples).
        mask_key, group_key: optional masks ``(B, 1, H, W)`` and group ids; None: ``mask`` / ``group`` when present.
        normalization: how the images were normalised (None: found at the first batch's dataset, else none).
    """

    def __init__(self, image_key: Key | None = None, target_key: Key | None = None, mask_key: Key | None = None,
                 group_key: Key | None = None, normalization: Normalization | None = None) -> None:
        self.image_key, self.target_key, self.mask_key, self.group_key = image_key, target_key, mask_key, group_key
        self.normalization = normalization or Normalization()
        self.checked = False  # the first batch's pixel range was checked

    def check_range(self, pixels: torch.Tensor) -> None:
        """``ValueError`` when images are not in [0, 1] once un-normalised: the normalisation is unknown or wrong."""
        low, high = float(pixels.min()), float(pixels.max())
        if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
            mean, std = self.normalization.mean, self.normalization.std
            undone = "" if mean is None else f" after undoing mean {mean} and std {std}"
            raise ValueError(f"images range over [{low:.2f}, {high:.2f}]{undone}, not [0, 1]: give the dataset's "
                             "normalisation as Robust(mean=..., std=...)")
        self.checked = True

    def keys(self, raw: Any) -> tuple[Key, Key, Key | None, Key | None]:
        """Where the images, targets, masks and groups of ``raw`` sit; ``ValueError`` saying what the batch holds."""
        if isinstance(raw, Mapping):
            image = self.image_key if self.image_key is not None else _first(raw, IMAGE_KEYS)
            target = self.target_key if self.target_key is not None else _first(raw, TARGET_KEYS)
            mask = self.mask_key if self.mask_key is not None else ("mask" if "mask" in raw else None)
            group = self.group_key if self.group_key is not None else ("group" if "group" in raw else None)
            missing = [name for name, key in (("images", image), ("targets", target)) if key not in raw]
            if missing:
                raise ValueError(f"batches are dicts with keys {sorted(map(str, raw))}; name the "
                                 f"{' and '.join(missing)} with Robust(image_key=..., target_key=...)")
            return image, target, mask, group
        if isinstance(raw, (tuple, list)):
            image = 0 if self.image_key is None else self.image_key
            target = 1 if self.target_key is None else self.target_key
            if not all(isinstance(k, int) and -len(raw) <= k < len(raw) for k in (image, target)):
                raise ValueError(f"batches are {len(raw)}-tuples; image_key and target_key must be positions in them, "
                                 f"got {image!r} and {target!r}")
            return image, target, self.mask_key, self.group_key
        raise ValueError(f"batches must be tuples or dicts of tensors, got {type(raw).__name__}")

    def read(self, raw: Any, ids: torch.Tensor) -> Batch:
        """The library's :class:`Batch` of ``raw`` with sample ``ids``, images in [0, 1]."""
        image, target, mask, group = self.keys(raw)
        images = raw[image]
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a float (B, C, H, W) tensor, got {shape} (field {image!r})")
        targets = torch.as_tensor(raw[target])
        pixels = self.normalization.to_pixels(images)
        if not self.checked:
            self.check_range(pixels)
        return Batch(images=pixels, targets=targets, indices=ids.to(targets.device),
                     masks=raw[mask] if mask is not None else None,
                     groups=torch.as_tensor(raw[group]) if group is not None else None)

    def write(self, raw: Any, batch: Batch) -> Any:
        """``raw`` with ``batch``'s changed rows in place of its images (unchanged rows keep their exact values)."""
        if batch.randomized is None or not bool(batch.randomized.any()):
            return raw
        image = self.keys(raw)[0]
        changed = batch.randomized.to(batch.images.device)[:, None, None, None]
        images = torch.where(changed, self.normalization.to_model(batch.images), raw[image].to(batch.images.device))
        if isinstance(raw, Mapping):
            return {**raw, image: images}
        parts = list(raw)
        parts[image] = images
        return tuple(parts) if isinstance(raw, tuple) else parts


def _first(raw: Mapping[str, Any], names: Sequence[str]) -> str:
    return next((name for name in names if name in raw), names[0])
