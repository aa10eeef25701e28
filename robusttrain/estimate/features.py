"""What the minority estimate looks at: statistics of each image's background pixels.

Background pixels are those outside the dilated true mask when there is one, otherwise a border frame of a sixth
of the image (objects are usually central). The statistics are colour means and spreads, a joint colour histogram
and edge density: they see colour and coarse texture of the frame, not layout, small marks or context next to the
object (:data:`LOOKS_AT` says so wherever a verdict is printed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

HISTOGRAM_BINS = 4
LOOKS_AT = "colour statistics of the border frame"  # what the features see, named in every verdict


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
