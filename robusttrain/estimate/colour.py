"""The colour estimate: a linear probe on statistics of each image's background pixels, out of fold.

Background pixels are those outside the dilated true mask when there is one, otherwise a border frame of a sixth
of the image (objects are usually central). The statistics are colour means and spreads, a joint colour histogram
and edge density: they see colour and coarse texture of the frame, not layout, small marks or context next to the
object (:data:`LOOKS_AT_COLOUR` says so wherever a verdict is printed). Cheaper than the network estimate, and blind
to every shortcut that is not colour.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .base import MinorityEstimate, judge

HISTOGRAM_BINS = 4
LOOKS_AT_COLOUR = "colour statistics of the border frame"  # what the features see, named in every verdict


def background_region(images: torch.Tensor, masks: torch.Tensor | None, dilate: int = 2) -> torch.Tensor:
    """``(B, 1, H, W)`` bool: pixels that are background (outside the dilated mask, or the border frame)."""
    if masks is not None:
        grown = F.max_pool2d((masks > 0.5).float(), 2 * dilate + 1, stride=1, padding=dilate)
        return grown < 0.5
    height, width = images.shape[-2:]
    band_y, band_x = max(1, height // 6), max(1, width // 6)
    region = torch.ones(images.shape[0], 1, height, width, dtype=torch.bool, device=images.device)
    region[..., band_y : height - band_y, band_x : width - band_x] = False
    return region


def background_features(images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image statistics of the background pixels, ``(B, 6 + bins^3 + 2)``."""
    region = background_region(images, masks).float()
    count = region.flatten(1).sum(1).clamp_min(1)
    mean = (images * region).flatten(2).sum(2) / count[:, None]
    spread = (((images - mean[..., None, None]) ** 2 * region).flatten(2).sum(2) / count[:, None]).sqrt()
    bins = (images.clamp(0, 1 - 1e-6) * HISTOGRAM_BINS).long()
    codes = (bins[:, 0] * HISTOGRAM_BINS + bins[:, 1]) * HISTOGRAM_BINS + bins[:, 2]
    histogram = torch.zeros(len(images), HISTOGRAM_BINS**3, device=images.device)
    histogram.scatter_add_(1, codes.flatten(1), region.flatten(1))
    histogram = histogram / count[:, None]
    grey = images.mean(1, keepdim=True)
    vertical = (grey[..., 1:, :] - grey[..., :-1, :]).abs()[..., :, 1:]
    edges = vertical + (grey[..., 1:] - grey[..., :-1]).abs()[..., 1:, :]
    inner = region[..., 1:, 1:]
    edge_count = inner.flatten(1).sum(1).clamp_min(1)
    edge_mean = (edges * inner).flatten(1).sum(1) / edge_count
    edge_spread = (((edges - edge_mean[:, None, None, None]) ** 2) * inner).flatten(1).sum(1) / edge_count
    return torch.cat([mean, spread, histogram, edge_mean[:, None], edge_spread.sqrt()[:, None]], dim=1)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
                 steps: int) -> torch.nn.Linear:
    """Multinomial logistic regression with an L2 penalty, fitted by L-BFGS."""
    linear = torch.nn.Linear(x.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), y) + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


def fit_standardised(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
                     steps: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`fit_logistic` on ``x`` standardised by its own mean and spread; returns raw features -> logits."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    linear = fit_logistic((x - mean) / std, y, num_classes, weight_decay, steps)
    return lambda features: linear((features - mean) / std)


def colour_out_of_fold(features: torch.Tensor, labels: torch.Tensor, folds: int = 5, seed: int = 0,
                      weight_decay: float = 1e-3, steps: int = 200) -> torch.Tensor:
    """Class probabilities ``(N, K)`` of a multinomial logistic regression on standardised features, each row
    predicted by the fold that did not train on it."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    num_classes = int(labels.max()) + 1
    probabilities = torch.zeros(len(labels), num_classes)
    for fold in range(folds):
        held = order[fold::folds]
        kept = torch.cat([order[f::folds] for f in range(folds) if f != fold])
        score = fit_standardised(features[kept], labels[kept], num_classes, weight_decay, steps)
        with torch.no_grad():
            probabilities[held] = score(features[held]).softmax(1)
    return probabilities


def estimate_minority_colour(features: torch.Tensor, labels: torch.Tensor, num_classes: int, seed: int = 0,
                      looked_at: str = LOOKS_AT_COLOUR) -> MinorityEstimate:
    """Fit the colour estimate's linear probe out of fold on background ``features`` (:func:`background_features`) and
    say whether the background predicts ``labels`` (:func:`judge`)."""
    return judge(looked_at, labels, num_classes, lambda: colour_out_of_fold(features, labels, seed=seed))
