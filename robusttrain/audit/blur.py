"""The LICNN paper's background-blur protocol: accuracy with the background blurred vs the object blurred.

A model that uses the object keeps its accuracy when the background is blurred and loses it when the object
is; a background-reliant model shows the opposite. Regions come from the true masks when the dataset has
them, otherwise from the model's maps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..eval.views import probabilities
from ..maps import create_map_method
from ..transforms import composite, radius_blur, region_from_maps

RADII = (2, 5, 10)


def blur_radii(result: dict[str, float]) -> list[float]:
    """The radii a :func:`blur_protocol` result covers, ascending."""
    return sorted(float(key.rsplit("_r", 1)[1]) for key in result if key.startswith("background_blurred_r"))


def blur_protocol(model: nn.Module, batches: Iterable[dict[str, Any]], radii: Sequence[float] = RADII,
                  method: str = "gradcam") -> dict[str, Any]:
    """Accuracy on the original images and, per radius, with the background or the object blurred."""
    model.eval()
    device = next(model.parameters()).device
    map_method = None
    hits: dict[str, list[torch.Tensor]] = {"original": []}
    for radius in radii:
        hits[f"background_blurred_r{radius:g}"] = []
        hits[f"object_blurred_r{radius:g}"] = []
    for batch in batches:
        images, labels = batch["image"].to(device), batch["target"].to(device)
        if batch.get("mask") is not None:
            regions = (batch["mask"].to(device) > 0.5).float()
        else:
            map_method = map_method or create_map_method(method, model)
            regions = region_from_maps(map_method(images), 0.5)
        hits["original"].append(probabilities(model, images).argmax(1) == labels)
        for radius in radii:
            blurred = radius_blur(images, radius)
            on_blurred_bg = composite(images, regions, blurred)
            on_blurred_object = composite(blurred, regions, images)
            hits[f"background_blurred_r{radius:g}"].append(probabilities(model, on_blurred_bg).argmax(1) == labels)
            hits[f"object_blurred_r{radius:g}"].append(probabilities(model, on_blurred_object).argmax(1) == labels)
    if not hits["original"]:
        raise ValueError("blur protocol got no readable images")
    return {name: float(torch.cat(values).float().mean()) for name, values in hits.items()}
