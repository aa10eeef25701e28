"""Property-based checks: map methods and batch transforms give a clear error or a correct result, never garbage."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robusttrain.maps import create_map_method
from robusttrain.transforms import (
    MODES,
    bounding_boxes,
    composite,
    new_backgrounds,
    only_bg_tiled,
    region_from_maps,
)

from .maps.models import RedDetector

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = {"degradation": {"steps": 2}}
MODEL = RedDetector().eval()


@st.composite
def image_batches(draw):
    batch = draw(st.integers(0, 3))
    channels = draw(st.sampled_from([1, 3, 4]))
    height, width = draw(st.integers(4, 24)), draw(st.integers(4, 24))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.uint8]))
    scale = draw(st.sampled_from([1.0, 255.0, -1.0]))
    seed = draw(st.integers(0, 2**16))
    images = torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed)) * scale
    if draw(st.booleans()) and images.numel():
        images.view(-1)[draw(st.integers(0, images.numel() - 1))] = draw(st.sampled_from([float("nan"), float("inf")]))
    return images.to(dtype) if dtype != torch.uint8 else (images.abs() * 255).clamp(0, 255).to(torch.uint8)


def _valid(images: torch.Tensor) -> bool:
    return (images.shape[0] > 0 and images.shape[1] == 3 and images.is_floating_point()
            and bool(torch.isfinite(images).all()) and float(images.min()) >= 0 and float(images.max()) <= 1)


@pytest.mark.parametrize("name", ["gradcam", "licnn", "degradation"])
@SETTINGS
@given(images=image_batches())
def test_map_methods_give_a_named_error_or_valid_maps(name: str, images: torch.Tensor) -> None:
    method = create_map_method(name, MODEL, **OPTIONS.get(name, {}))
    if not _valid(images):
        with pytest.raises((ValueError, TypeError), match=r"images|channels|batch|floating"):
            method(images)
        return
    maps = method(images)
    assert maps.shape == (images.shape[0], 1, *images.shape[2:]) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


@SETTINGS
@given(batch=st.integers(1, 4), height=st.integers(3, 20), width=st.integers(3, 20), mode=st.sampled_from(MODES),
       seed=st.integers(0, 2**16), mismatch=st.booleans())
def test_background_replacement_keeps_regions_and_range(batch, height, width, mode, seed, mismatch) -> None:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, height, width, generator=generator)
    maps = torch.rand(batch, 1, height + int(mismatch), width, generator=generator)
    if mismatch:
        with pytest.raises(ValueError, match="mask/image size mismatch"):
            new_backgrounds(images, region_from_maps(maps), mode, generator)
        return
    regions = region_from_maps(maps, threshold=0.5)
    backgrounds = new_backgrounds(images, regions, mode, generator)
    assert backgrounds.shape == images.shape and torch.isfinite(backgrounds).all()
    assert backgrounds.min() >= 0 and backgrounds.max() <= 1
    mixed = composite(images, regions, backgrounds)
    kept = regions.expand_as(images) > 0
    assert torch.equal(mixed[kept], images[kept])
    # Only-BG-T changes nothing outside each region's bounding box.
    tiled = only_bg_tiled(images, regions)
    outside = torch.ones_like(regions, dtype=torch.bool)
    for i, (top, bottom, left, right) in enumerate(bounding_boxes(regions).tolist()):
        outside[i, :, top:bottom, left:right] = False
    outside = outside.expand_as(images)
    assert torch.equal(tiled[outside], images[outside])


def test_integer_masks_are_refused() -> None:
    with pytest.raises(TypeError, match="floating point"):
        composite(torch.rand(1, 3, 4, 4), torch.ones(1, 1, 4, 4, dtype=torch.uint8), torch.rand(1, 3, 4, 4))
