"""Map sources of the training step: computed once per step on the dataset's images, shared, cached by sample id."""

from .cache import MapCache
from .provider import TRUE_MASKS, MapProvider, build_sources
from .source import MapSource, check_method_options

__all__ = ["TRUE_MASKS", "MapCache", "MapProvider", "MapSource", "build_sources", "check_method_options"]
