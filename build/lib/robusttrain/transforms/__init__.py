"""Batch-level image operations: compositing primitives and background replacement."""

from .background import MODES, new_backgrounds, radius_blur, region_from_maps, texture_backgrounds
from .compositing import (
    bounding_boxes,
    check_pair,
    composite,
    no_fg,
    only_bg_black,
    only_bg_tiled,
    only_fg,
)

__all__ = [
    "MODES",
    "bounding_boxes",
    "check_pair",
    "composite",
    "new_backgrounds",
    "no_fg",
    "only_bg_black",
    "only_bg_tiled",
    "only_fg",
    "radius_blur",
    "region_from_maps",
    "texture_backgrounds",
]
