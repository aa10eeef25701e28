"""Model-parameter randomisation sanity check (Adebayo et al., 2018), cascading from the top layer down.

The model's parameter groups are re-initialised one after another from the output towards the input; after
each step the maps are recomputed and compared with the trained model's maps by Spearman rank correlation
and by HOG-feature similarity. A map method that explains the *model* must drift away as layers are
randomised; one that stays similar reflects the input (edges), not what the model learned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from skimage.feature import hog
from torch import nn

from ..maps.base import MapMethod
from ..maps.hooks import resolve_layers


def default_layer_groups(model: nn.Module) -> list[str]:
    """Top-level children of the backbone that hold parameters, from the output down to the input."""
    root = getattr(model, "backbone", model)
    prefix = "backbone." if root is not model else ""
    return [f"{prefix}{name}" for name, child in reversed(list(root.named_children()))
            if any(True for _ in child.parameters())]


def reinitialise(module: nn.Module, seed: int) -> None:
    """Fresh parameters for ``module``: ``reset_parameters`` where a layer has it, ``N(0, 0.02)`` otherwise."""
    torch.manual_seed(seed)
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
        else:
            for param in sub.parameters(recurse=False):
                nn.init.normal_(param, std=0.02)


def hog_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the HOG descriptors of two 2-D maps."""
    features = [hog(m, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for m in (a, b)]
    if features[0].std() < 1e-12 or features[1].std() < 1e-12:
        return 0.0
    return float(np.corrcoef(features[0], features[1])[0, 1])


def map_similarity(reference: torch.Tensor, maps: torch.Tensor) -> dict[str, float]:
    """Mean Spearman rank correlation and HOG similarity between two map batches ``(B, 1, H, W)``."""
    spearman, hogs = [], []
    for ref, other in zip(reference[:, 0].cpu().numpy(), maps[:, 0].cpu().numpy(), strict=True):
        # NOTE: a constant map has no ranking; it counts as uncorrelated.
        constant = ref.std() < 1e-12 or other.std() < 1e-12
        spearman.append(0.0 if constant else float(spearmanr(ref.ravel(), other.ravel()).statistic))
        hogs.append(hog_similarity(ref, other))
    return {"spearman": float(np.mean(spearman)), "hog": float(np.mean(hogs))}


def cascading_randomization(
    model: nn.Module,
    method_factory: Callable[[nn.Module], MapMethod],
    images: torch.Tensor,
    targets: torch.Tensor | None = None,
    layer_groups: Sequence[str] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Similarity to the trained model's maps after randomising each successive layer group.

    Args:
        method_factory: builds the map method for a model, e.g. ``lambda m: GradCAM(m)``.
        targets: classes to explain; default: the trained model's predictions, kept fixed for every step.
        layer_groups: fnmatch patterns, top (output) first; default :func:`default_layer_groups`.

    Returns:
        One record per step: ``{"randomized": [groups so far], "spearman": .., "hog": ..}``, starting with the
        trained model itself (similarity 1).
    """
    work = copy.deepcopy(model)
    if targets is None:
        with torch.no_grad():
            was_training = work.training
            work.eval()
            targets = work(images).argmax(dim=1)
            work.train(was_training)
    reference = method_factory(work)(images, targets)
    records = [{"randomized": [], **map_similarity(reference, reference)}]
    groups = list(layer_groups) if layer_groups is not None else default_layer_groups(work)
    for i, group in enumerate(groups):
        for _, module in resolve_layers(work, group):
            reinitialise(module, seed + i)
        maps = method_factory(work)(images, targets)
        records.append({"randomized": groups[: i + 1], **map_similarity(reference, maps)})
    return records
