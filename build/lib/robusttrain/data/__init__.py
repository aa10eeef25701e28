"""Datasets, the built-in benchmark generator and joint image/mask transforms."""

from .backgrounds_challenge import IN9_VARIANTS, BackgroundsChallengeDataset
from .base import MaskedImageDataset, Record
from .benchmark import BenchmarkConfig, generate_benchmark
from .celeba import CelebADataset
from .imagefolder import ImageFolderDataset
from .io import CorruptFileError, read_image, read_mask
from .sampling import AdaptiveEpochSampler, EpochShuffleSampler, read_sample_weights
from .transforms import PairTransform, build_eval_transform, build_train_transform
from .waterbirds import WaterbirdsDataset

__all__ = [
    "AdaptiveEpochSampler",
    "IN9_VARIANTS",
    "BackgroundsChallengeDataset",
    "BenchmarkConfig",
    "CelebADataset",
    "CorruptFileError",
    "EpochShuffleSampler",
    "ImageFolderDataset",
    "MaskedImageDataset",
    "PairTransform",
    "Record",
    "WaterbirdsDataset",
    "build_eval_transform",
    "build_train_transform",
    "generate_benchmark",
    "read_sample_weights",
    "read_image",
    "read_mask",
]
