"""robusttrain: training-time callbacks that make image classifiers (and regressors) robust to their backgrounds.

The public API is re-exported here; :mod:`robusttrain.integrations` (Lightning, Hugging Face) is imported on
demand, never from this module.
"""

__version__ = "0.2.0"

from . import feature_masks as feature_masks
from .callbacks import Callback as Callback
from .callbacks import CallbackList as CallbackList
from .callbacks import MinorityResamplingCallback as MinorityResamplingCallback
from .callbacks import build_callbacks as build_callbacks
from .callbacks import create_callback as create_callback
from .callbacks import list_callbacks as list_callbacks
from .data import AdaptiveEpochSampler as AdaptiveEpochSampler
from .data import BenchmarkConfig as BenchmarkConfig
from .data import ImageFolderDataset as ImageFolderDataset
from .data import WaterbirdsDataset as WaterbirdsDataset
from .data import generate_benchmark as generate_benchmark
from .data import read_sample_weights as read_sample_weights
from .eval import evaluate_groups as evaluate_groups
from .eval import evaluate_variants as evaluate_variants
from .feature_masks import callback as _feature_mask_callback  # noqa: F401  (registers ``intentional_masks``)
from .feature_masks import maps as _feature_mask_maps  # noqa: F401  (registers the ``feature_masks`` map method)
from .maps import create_map_method as create_map_method
from .maps import list_map_methods as list_map_methods
from .models import ModelConfig as ModelConfig
from .models import create_model as create_model
from .plugin import DEFAULT_CALLBACKS as DEFAULT_CALLBACKS
from .plugin import Robust as Robust
from .training import TrainOptions as TrainOptions
from .training import train as train
from .types import Batch as Batch
from .types import TrainState as TrainState

__all__ = [
    "DEFAULT_CALLBACKS",
    "AdaptiveEpochSampler",
    "Batch",
    "BenchmarkConfig",
    "Callback",
    "CallbackList",
    "ImageFolderDataset",
    "MinorityResamplingCallback",
    "ModelConfig",
    "Robust",
    "TrainOptions",
    "TrainState",
    "WaterbirdsDataset",
    "__version__",
    "build_callbacks",
    "create_callback",
    "create_map_method",
    "create_model",
    "evaluate_groups",
    "evaluate_variants",
    "feature_masks",
    "generate_benchmark",
    "list_callbacks",
    "list_map_methods",
    "read_sample_weights",
    "train",
]
