"""How per-feature masks differ: between features, between attributes; how importances overlap between attributes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data import WaterbirdsDataset, build_eval_transform
from ..eval.evaluate import background_pool
from ..eval.variants import make_variants


def _standardised(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``(..., N)`` centred and scaled over the last dim, and which rows vary at all."""
    centred = values - values.mean(dim=-1, keepdim=True)
    norm = centred.norm(dim=-1, keepdim=True)
    varies = norm[..., 0] > 1e-6
    return centred / norm.clamp_min(1e-12), varies


def mask_correlations(masks: torch.Tensor) -> dict[str, float]:
    """Mean pairwise spatial correlation of masks ``(B, A, C, h, w)``.

    ``between_features``: pairs of features of one attribute in one image; ``between_attributes``: one feature
    in one image under pairs of attributes (NaN with one attribute). Masks constant over space have no
    correlation and are left out (``constant_share`` says how many). 1 means one shared mask (an attention
    branch); lower means features (attributes) are masked differently.
    """
    if masks.ndim != 5:
        raise ValueError(f"masks must be (B, A, C, h, w), got {tuple(masks.shape)}")
    unit, varies = _standardised(masks.flatten(3).double())  # (B, A, C, N)
    pairs = unit @ unit.transpose(-1, -2)  # (B, A, C, C)
    both = varies[..., :, None] & varies[..., None, :]
    off_diagonal = ~torch.eye(masks.shape[2], dtype=torch.bool)
    features = pairs[both & off_diagonal]
    result = {"between_features": float(features.mean()) if features.numel() else math.nan,
              "constant_share": float((~varies).double().mean())}
    across = unit.transpose(1, 2)  # (B, C, A, N)
    pairs_a = across @ across.transpose(-1, -2)
    varies_a = varies.transpose(1, 2)
    both_a = varies_a[..., :, None] & varies_a[..., None, :]
    off_a = ~torch.eye(masks.shape[1], dtype=torch.bool)
    attributes = pairs_a[both_a & off_a]
    result["between_attributes"] = float(attributes.mean()) if attributes.numel() else math.nan
    return result


def top_features(importance: torch.Tensor, fraction: float = 0.1) -> list[list[int]]:
    """Per attribute, the indices of its top ``fraction`` of features by importance ``(A, C)``, best first."""
    k = max(1, math.ceil(fraction * importance.shape[1]))
    return importance.topk(k, dim=1).indices.tolist()


def importance_overlap(importance: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """``(A, A)`` Jaccard overlap of the attributes' top-``fraction`` feature sets."""
    sets = [set(t) for t in top_features(importance, fraction)]
    return torch.tensor([[len(a & b) / len(a | b) for b in sets] for a in sets])


BACKGROUND_ATTRIBUTES = ("place",)  # the built-in benchmark's attribute carried by the background; others: object


def study_test_data(data_dir: str | Path, image_size: int, attributes: Sequence[str],
                    count: int) -> dict[str, torch.Tensor]:
    """A fixed subset (``count`` images) of the test split of a Waterbirds-layout dataset with attribute columns:
    images, masks, attributes, places, targets, indices and Mixed-Rand images (the feature-mask study's data)."""
    test = WaterbirdsDataset(data_dir, "test", build_eval_transform(image_size), attributes=attributes)
    picks = np.random.default_rng(0).permutation(len(test))[:count]
    items = [test[int(i)] for i in picks]
    data = {key: torch.stack([torch.as_tensor(it[name]) for it in items])
            for key, name in (("images", "image"), ("masks", "mask"), ("attributes", "attributes"),
                              ("targets", "target"), ("indices", "index"))}
    data["places"] = torch.tensor([test.places[int(i)] for i in picks])
    pool = WaterbirdsDataset(data_dir, "train", build_eval_transform(image_size))
    backgrounds, pool_targets = background_pool(pool, max_size=2000)
    data["mixed_rand"] = make_variants(data["images"], data["masks"], data["targets"], data["indices"], backgrounds,
                                       pool_targets, test.num_classes)["mixed_rand"]
    return data


def importance_images(data_dir: str | Path, image_size: int, count: int = 512) -> torch.Tensor:
    """A fixed subset of the (un-augmented) training split, the images feature importances are computed on."""
    train = WaterbirdsDataset(data_dir, "train", build_eval_transform(image_size))
    picks = np.random.default_rng(1).permutation(len(train))[:count]
    return torch.stack([train[int(i)]["image"] for i in picks])
