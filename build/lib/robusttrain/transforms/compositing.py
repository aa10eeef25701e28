"""Compositing primitives shared by training-time transforms and evaluation: boxes, tiling, pasting.

All functions take image batches ``(B, C, H, W)`` in [0, 1] and masks ``(B, 1, H, W)`` in [0, 1].
"""

from __future__ import annotations

import torch


def check_pair(images: torch.Tensor, masks: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the problem unless images are ``(B, C, H, W)`` and masks ``(B, 1, H, W)``."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks must be (B, 1, H, W), got shape {tuple(masks.shape)}")
    if masks.shape[0] != images.shape[0] or masks.shape[2:] != images.shape[2:]:
        raise ValueError(f"mask/image size mismatch: masks {tuple(masks.shape)} vs images {tuple(images.shape)}")
    if not (images.is_floating_point() and masks.is_floating_point()):
        raise TypeError(f"images and masks must be floating point, got {images.dtype} and {masks.dtype}")


def bounding_boxes(masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-mask box ``(top, bottom, left, right)`` (bottom/right exclusive), long ``(B, 4)`` on the masks' device.

    An empty mask gives an empty box ``(0, 0, 0, 0)``.
    """
    inside = masks[:, 0] > threshold
    rows, cols = inside.any(dim=2), inside.any(dim=1)
    height, width = rows.shape[1], cols.shape[1]
    boxes = torch.stack([
        rows.float().argmax(dim=1), height - rows.flip(1).float().argmax(dim=1),
        cols.float().argmax(dim=1), width - cols.flip(1).float().argmax(dim=1),
    ], dim=1)
    return torch.where(rows.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes))


def only_fg(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Foreground on black."""
    check_pair(images, masks)
    return images * masks


def no_fg(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Foreground pixels set to black (the silhouette stays, which leaks shape)."""
    check_pair(images, masks)
    return images * (1 - masks)


def only_bg_black(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Only-BG-B: the object's bounding box set to black."""
    check_pair(images, masks)
    out = images.clone()
    for i, (top, bottom, left, right) in enumerate(bounding_boxes(masks).tolist()):
        out[i, :, top:bottom, left:right] = 0
    return out


def only_bg_tiled(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Only-BG-T: the bounding box filled with tiles of the largest margin strip outside it.

    When the box covers the whole frame (no margin), the box is filled with the mean colour of the pixels
    outside the mask, or black when there are none. Vectorised over the batch (one gather, no per-sample loop).
    """
    check_pair(images, masks)
    height, width = images.shape[2:]
    boxes = bounding_boxes(masks)
    top, bottom, left, right = boxes.unbind(dim=1)
    # Margin strips, in the order a tie is broken: left, right, top, bottom (the largest area wins).
    areas = torch.stack([left * height, (width - right) * height, top * width, (height - bottom) * width], dim=1)
    strip = areas.argmax(dim=1)
    rows = torch.arange(height, device=images.device).expand(len(images), height)
    cols = torch.arange(width, device=images.device).expand(len(images), width)
    # Each strip tiled from its own start: source index = strip start + position modulo strip length.
    length = torch.stack([left, width - right, top, height - bottom], dim=1).gather(1, strip[:, None]).clamp_min(1)
    start = torch.stack([torch.zeros_like(left), right, torch.zeros_like(top), bottom], dim=1).gather(1, strip[:, None])
    horizontal = (strip < 2)[:, None]
    source_cols = torch.where(horizontal, start + cols % length, cols)
    source_rows = torch.where(horizontal, rows, start + rows % length)
    batch = torch.arange(len(images), device=images.device)[:, None, None]
    tiled = images.permute(0, 2, 3, 1)[batch, source_rows[:, :, None], source_cols[:, None, :]].permute(0, 3, 1, 2)
    no_margin = areas.amax(dim=1) == 0
    if no_margin.any():
        outside = (masks <= 0.5).to(images.dtype)
        fill = (images * outside).sum(dim=(2, 3)) / outside.sum(dim=(2, 3)).clamp_min(1)
        tiled = torch.where(no_margin[:, None, None, None], fill[:, :, None, None].expand_as(images), tiled)
    in_box = ((rows >= top[:, None]) & (rows < bottom[:, None]))[:, :, None] \
        & ((cols >= left[:, None]) & (cols < right[:, None]))[:, None, :]
    return torch.where(in_box[:, None], tiled, images)


def composite(foregrounds: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
    """Paste the masked foreground onto ``backgrounds``: ``m * fg + (1 - m) * bg``."""
    check_pair(foregrounds, masks)
    if backgrounds.shape != foregrounds.shape:
        raise ValueError(f"backgrounds {tuple(backgrounds.shape)} must match foregrounds {tuple(foregrounds.shape)}")
    return masks * foregrounds + (1 - masks) * backgrounds
