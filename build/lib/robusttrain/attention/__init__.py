"""Map sources under one contract: ``method(images, targets=None) -> (B, 1, H, W)`` in [0, 1], model untouched."""

from .base import MapMethod, check_images, target_scores, to_unit_maps
from .degradation import ControlledDegradation
from .feature_masks import MAP_WEIGHTINGS, FeatureMaskMaps, attribute_maps, feature_importance, per_feature_maps
from .gradcam import GradCAM
from .head import AttentionHeadMaps
from .hooks import ActivationCapture, resolve_layers
from .licnn import LICNN, lateral_inhibition
from .pool_attention import PoolAttention
from .registry import MAP_METHODS, create_map_method, list_map_methods
from .reshape import token_layout, tokens_to_map
from .state import untouched

__all__ = [
    "LICNN",
    "MAP_METHODS",
    "MAP_WEIGHTINGS",
    "ActivationCapture",
    "AttentionHeadMaps",
    "ControlledDegradation",
    "FeatureMaskMaps",
    "GradCAM",
    "MapMethod",
    "PoolAttention",
    "attribute_maps",
    "check_images",
    "create_map_method",
    "feature_importance",
    "lateral_inhibition",
    "list_map_methods",
    "per_feature_maps",
    "resolve_layers",
    "target_scores",
    "to_unit_maps",
    "token_layout",
    "tokens_to_map",
    "untouched",
]
