"""Where users train: :class:`Robust`, the one object that carries the default (or any callbacks) into a plain
PyTorch loop, Lightning (:mod:`robusttrain.integrations.lightning`) and the Hugging Face Trainer
(:mod:`robusttrain.integrations.transformers`); ``robusttrain train`` runs on it too."""

from .formats import BatchFormat, Normalization, PixelSpaceModel, find_normalization
from .loader import ID_KEY, IndexedDataset, RobustLoader, WithIds
from .losses import PerSampleLoss, class_cross_entropy
from .robust import DEFAULT_CALLBACKS, Criterion, Robust, make_callbacks

__all__ = [
    "DEFAULT_CALLBACKS",
    "ID_KEY",
    "BatchFormat",
    "Criterion",
    "IndexedDataset",
    "Normalization",
    "PerSampleLoss",
    "PixelSpaceModel",
    "Robust",
    "RobustLoader",
    "WithIds",
    "class_cross_entropy",
    "find_normalization",
    "make_callbacks",
]
