"""Run a model over datasets: group accuracy, IN-9 variant accuracy and BG-Gap, on one or many processes.

Every function accepts an optional ``accelerate.Accelerator``; with one, the loader is sharded across
processes and results are gathered with ``gather_for_metrics`` (which drops the padding of distributed
samplers), so every sample is counted exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.base import MaskedImageDataset
from ..transforms.compositing import only_bg_tiled
from .groups import group_accuracy
from .variants import VARIANTS, make_variants


def _loader(dataset: MaskedImageDataset, batch_size: int, num_workers: int, accelerator: Any) -> DataLoader:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    return accelerator.prepare_data_loader(loader) if accelerator is not None else loader


def _device(model: nn.Module, accelerator: Any) -> torch.device:
    return accelerator.device if accelerator is not None else next(model.parameters()).device


def _gather(accelerator: Any, tensor: torch.Tensor) -> torch.Tensor:
    return accelerator.gather_for_metrics(tensor) if accelerator is not None else tensor


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: MaskedImageDataset,
    batch_size: int = 256,
    num_workers: int = 0,
    accelerator: Any = None,
) -> dict[str, np.ndarray]:
    """Predicted class, target, group and sample index of every sample (model put in eval mode, then restored)."""
    was_training = model.training
    model.eval()
    device = _device(model, accelerator)
    out: dict[str, list[torch.Tensor]] = {"prediction": [], "target": [], "group": [], "index": []}
    try:
        for batch in _loader(dataset, batch_size, num_workers, accelerator):
            logits = model(batch["image"].to(device))
            values = {"prediction": logits.argmax(dim=1), "target": batch["target"].to(device),
                      "group": batch["group"].to(device), "index": batch["index"].to(device)}
            for key, value in values.items():
                out[key].append(_gather(accelerator, value).cpu())
    finally:
        model.train(was_training)
    return {key: torch.cat(values).numpy() for key, values in out.items()}


def evaluate_groups(
    model: nn.Module,
    dataset: MaskedImageDataset,
    train_group_counts: Sequence[int] | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    accelerator: Any = None,
) -> dict[str, Any]:
    """:func:`group_accuracy` of ``model`` on ``dataset``, with group names attached."""
    result = predict(model, dataset, batch_size, num_workers, accelerator)
    metrics = group_accuracy(result["prediction"], result["target"], result["group"], train_group_counts)
    metrics["group_names"] = {g: dataset.group_names[g] for g in metrics["group_accuracy"]}
    return metrics


@torch.no_grad()
def background_pool(pool: MaskedImageDataset, max_size: int = 2000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Only-BG-T backgrounds and targets of up to ``max_size`` pool images (a fixed random subset)."""
    if not pool.has_masks:
        raise ValueError("the background pool needs foreground masks to remove objects")
    order = np.random.default_rng(seed).permutation(len(pool))[:max_size]
    images, targets = [], []
    for start in range(0, len(order), 256):
        items = [pool[int(i)] for i in order[start : start + 256]]
        batch_images = torch.stack([it["image"] for it in items])
        batch_masks = torch.stack([it["mask"] for it in items])
        images.append(only_bg_tiled(batch_images, batch_masks))
        targets.extend(it["target"] for it in items)
    return torch.cat(images), torch.tensor(targets, dtype=torch.long)


@torch.no_grad()
def evaluate_variants(
    model: nn.Module,
    dataset: MaskedImageDataset,
    pool: MaskedImageDataset | None = None,
    variants: Sequence[str] = VARIANTS,
    batch_size: int = 256,
    num_workers: int = 0,
    seed: int = 0,
    max_pool: int = 2000,
    accelerator: Any = None,
) -> dict[str, float]:
    """Accuracy on each IN-9 variant built from ``dataset``'s masks, plus ``bg_gap`` = Mixed-Same - Mixed-Rand.

    Args:
        pool: where Mixed-* backgrounds come from. Mixed-Same needs backgrounds that are *typical* of the class,
            so for group-balanced test sets pass the training split (default: ``dataset`` itself).

    Raises:
        ValueError: ``dataset`` has no masks, or an unknown variant is requested.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {VARIANTS}")
    if not dataset.has_masks:
        raise ValueError("IN-9 variants need foreground masks, and this dataset has none")
    pool_backgrounds, pool_targets = background_pool(pool or dataset, max_pool, seed)
    was_training = model.training
    model.eval()
    device = _device(model, accelerator)
    correct: dict[str, list[torch.Tensor]] = {v: [] for v in variants}
    try:
        for batch in _loader(dataset, batch_size, num_workers, accelerator):
            images, masks = batch["image"].to(device), batch["mask"].to(device)
            targets = batch["target"].to(device)
            built = make_variants(images, masks, targets, batch["index"], pool_backgrounds, pool_targets,
                                  dataset.num_classes, seed)
            for name in variants:
                hits = model(built[name]).argmax(dim=1) == targets
                correct[name].append(_gather(accelerator, hits).cpu())
    finally:
        model.train(was_training)
    result = {name: float(torch.cat(hits).float().mean()) for name, hits in correct.items()}
    if "mixed_same" in result and "mixed_rand" in result:
        result["bg_gap"] = result["mixed_same"] - result["mixed_rand"]
    return result


def evaluate_in9_folders(
    model: nn.Module,
    root: str | Path,
    split: str = "val",
    image_size: int | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    accelerator: Any = None,
) -> dict[str, float]:
    """Accuracy on every variant folder present in a Backgrounds Challenge tree, plus ``bg_gap``."""
    from ..data.backgrounds_challenge import IN9_VARIANTS, BackgroundsChallengeDataset
    from ..data.transforms import build_eval_transform

    result: dict[str, float] = {}
    for variant in IN9_VARIANTS:
        if not (Path(root) / variant / split).is_dir():
            continue
        dataset = BackgroundsChallengeDataset(root, variant, split, build_eval_transform(image_size), use_masks=False)
        out = predict(model, dataset, batch_size, num_workers, accelerator)
        result[variant] = float((out["prediction"] == out["target"]).mean())
    if not result:
        raise FileNotFoundError(f"no IN-9 variant folders under {root} (expected e.g. {root}/original/{split})")
    if "mixed_same" in result and "mixed_rand" in result:
        result["bg_gap"] = result["mixed_same"] - result["mixed_rand"]
    return result
