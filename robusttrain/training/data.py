"""The data a training run reads: its splits, checked before anything is written, and the weights file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import (
    BenchmarkConfig,
    ImageFolderDataset,
    MaskedImageDataset,
    WaterbirdsDataset,
    build_eval_transform,
    build_train_transform,
    generate_benchmark,
    read_sample_weights,
)
from .options import OptionError, TrainOptions


def generate(options: TrainOptions) -> None:
    """Render the built-in benchmark into ``options.data_dir`` (kept when it is already there)."""
    config = BenchmarkConfig(num_classes=options.benchmark_classes, image_size=options.image_size,
                             correlation=options.benchmark_correlation, seed=options.benchmark_seed)
    generate_benchmark(options.data_dir, config.scaled(options.benchmark_fraction))


def build_datasets(options: TrainOptions) -> dict[str, MaskedImageDataset]:
    """Train / val / test splits plus ``train_eval``, an un-augmented view of train (the data pass and the
    background pool of the IN-9 variants).

    Raises:
        FileNotFoundError, ValueError: missing or malformed data, named; a training split with one class.
    """
    root = Path(options.data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"--data-dir {root} is not a folder (pass --generate to render the built-in "
                                "benchmark there)")
    for flag, folder in (("--masks-dir", options.masks_dir), ("--in9-dir", options.in9_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise FileNotFoundError(f"{flag} {folder} is not a folder")
    train_tf = build_train_transform(options.image_size, seed=options.seed)
    if options.dataset == "waterbirds":
        splits = {name: WaterbirdsDataset(root, name, build_eval_transform(options.image_size), options.masks_dir)
                  for name in ("train", "val", "test")}
        splits["train_eval"] = splits["train"]
        splits["train"] = WaterbirdsDataset(root, "train", train_tf, options.masks_dir)
    else:
        masks = Path(options.masks_dir) if options.masks_dir else None
        splits = {"train": ImageFolderDataset(root / "train", masks and masks / "train", train_tf)}
        classes = splits["train"].class_names
        splits["train_eval"] = ImageFolderDataset(root / "train", masks and masks / "train",
                                                  build_eval_transform(options.image_size), classes)
        for name in ("val", "test"):
            if (root / name).is_dir():
                splits[name] = ImageFolderDataset(root / name, masks and masks / name,
                                                  build_eval_transform(options.image_size), classes)
    present = np.unique(splits["train"].targets)
    if len(present) < 2:
        raise ValueError(f"the training split of {root} has one class ({splits['train'].class_names[present[0]]}): "
                         "a classifier needs at least two")
    return splits


def file_weights(options: TrainOptions, train_set: MaskedImageDataset) -> torch.Tensor | None:
    """The ``--sample-weights`` file's weights in the training set's order, or None without the option.

    Raises:
        OptionError: the file is missing or does not fit the training set (named).
    """
    if options.sample_weights is None:
        return None
    try:
        return read_sample_weights(options.sample_weights, [r.sample_id for r in train_set.records])
    except (FileNotFoundError, ValueError) as error:
        raise OptionError(f"--sample-weights: {error}") from None
