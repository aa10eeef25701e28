"""Old home of the map methods: they live in :mod:`robusttrain.maps` (feature-mask maps in
:mod:`robusttrain.feature_masks`); every name here still resolves, with a FutureWarning."""

from .._compat import moved

_FEATURE_MASKS = ("MAP_WEIGHTINGS", "FeatureMaskMaps", "attribute_maps", "feature_importance", "per_feature_maps")
_MAPS = ("LICNN", "MAP_METHODS", "ActivationCapture", "AttentionHeadMaps", "ControlledDegradation", "GradCAM",
         "MapMethod", "PoolAttention", "check_images", "create_map_method", "lateral_inhibition", "list_map_methods",
         "resolve_layers", "target_scores", "to_unit_maps", "token_layout", "tokens_to_map", "untouched")

__getattr__ = moved(__name__, {**dict.fromkeys(_MAPS, "robusttrain.maps"),
                               **dict.fromkeys(_FEATURE_MASKS, "robusttrain.feature_masks")})
