"""Per-feature attention masks (the intentional attention mask transformation paper), in one place.

:mod:`.net` is the model part (:class:`FeatureMaskNet`, built by ``create_model(..., feature_masks=True)``, and the
:class:`MaskTransform`); :mod:`.maps` its map method (``feature_masks``) and feature importances; :mod:`.callback`
the ``intentional_masks`` callback; :mod:`.evaluation` the mask statistics ``recipes/feature_masks.py`` reports.
Each module sits at the layer of what it extends (models, maps, callbacks), so only :mod:`.net` is imported here;
the other names load on first use.
"""

from importlib import import_module
from typing import Any

from .net import TRANSFORM_MODES, FeatureMaskNet, MaskTransform, find_feature_masks

_LAZY = {
    "IMPORTANCE_METHODS": "maps", "MAP_WEIGHTINGS": "maps", "FeatureMaskMaps": "maps", "attribute_maps": "maps",
    "feature_importance": "maps", "per_feature_maps": "maps", "IntentionalMaskCallback": "callback",
    "BACKGROUND_ATTRIBUTES": "evaluation", "importance_images": "evaluation", "importance_overlap": "evaluation",
    "mask_correlations": "evaluation", "study_test_data": "evaluation", "top_features": "evaluation",
}

__all__ = ["TRANSFORM_MODES", "FeatureMaskNet", "MaskTransform", "find_feature_masks", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
