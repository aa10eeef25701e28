"""Attention maps: one file per map method under one contract, and the sources that schedule them in training.

A map method is ``method(images, targets=None) -> (B, 1, H, W)`` in [0, 1] on the model's device, leaving the model
untouched (``.grad``, BatchNorm statistics, train/eval mode, RNG state). A map source (:class:`MapSource`) runs one
method once per training step on the dataset's images, for the rows its callbacks read, and caches maps by sample
id; :class:`MapProvider` holds the step's sources and fills ``Batch.maps``.
"""

from .attention_head import AttentionHeadMaps
from .base import MapMethod, check_images, target_scores, to_unit_maps
from .cache import MapCache
from .degradation import ControlledDegradation
from .gradcam import GradCAM
from .hooks import ActivationCapture, resolve_layers
from .licnn import LICNN, lateral_inhibition
from .occlusion import Occlusion
from .pool_attention import PoolAttention
from .provider import TRUE_MASKS, MapProvider, build_sources
from .registry import MAP_METHODS, create_map_method, list_map_methods
from .reshape import token_layout, tokens_to_map
from .source import MapSource, check_method_options
from .state import untouched

__all__ = [
    "LICNN",
    "MAP_METHODS",
    "TRUE_MASKS",
    "ActivationCapture",
    "AttentionHeadMaps",
    "ControlledDegradation",
    "GradCAM",
    "MapCache",
    "MapMethod",
    "MapProvider",
    "MapSource",
    "Occlusion",
    "PoolAttention",
    "build_sources",
    "check_images",
    "check_method_options",
    "create_map_method",
    "lateral_inhibition",
    "list_map_methods",
    "resolve_layers",
    "target_scores",
    "to_unit_maps",
    "token_layout",
    "tokens_to_map",
    "untouched",
]
