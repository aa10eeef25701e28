"""The data a training run reads: its splits, checked before anything is written, and the weights file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..data import (
    BenchmarkConfig,
    CorruptFileError,
    ImageFolderDataset,
    MaskedImageDataset,
    WaterbirdsDataset,
    build_eval_transform,
    build_train_transform,
    generate_benchmark,
    read_sample_weights,
)
from ..data.io import check_image
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


def data_fingerprint(datasets: dict[str, MaskedImageDataset]) -> dict[str, str]:
    """Per split, a SHA-256 of what the run reads: each sample's image and mask path, file size, label and group.
    A resume compares it with the run's: a changed label, image list or image file is another run's data."""
    prints = {}
    for split in ("train", "val", "test"):
        if split not in datasets:
            continue
        digest = hashlib.sha256()
        for record in datasets[split].records:
            sizes = [path.stat().st_size if path.is_file() else -1 for path in (record.image, record.mask) if path]
            digest.update(f"{record.image}|{record.mask}|{sizes}|{record.target}|{record.group}|"
                          f"{record.attributes}\n".encode())
        prints[split] = digest.hexdigest()
    return prints


def check_files(datasets: dict[str, MaskedImageDataset]) -> None:
    """Every image and mask of every split is a whole file (checked, not decoded), before anything is written.

    Raises:
        FileNotFoundError, CorruptFileError: naming the split and the file.
    """
    seen: set[Path] = set()
    for split, dataset in datasets.items():
        for record in dataset.records:
            for path in (record.image, record.mask):
                if path is None or path in seen:
                    continue
                seen.add(path)
                try:
                    check_image(path)
                except (FileNotFoundError, CorruptFileError) as error:
                    raise type(error)(f"{split} split: {error}") from None
