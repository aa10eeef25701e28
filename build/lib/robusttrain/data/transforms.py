"""Albumentations pipelines applied jointly to an image and its mask, so masks stay aligned under augmentation.

Randomness is re-seeded per sample from ``(seed, epoch, index)``: the same sample gets the same augmentation
in any worker, on any rank and after resuming from a checkpoint, which makes training exactly resumable.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch


class PairTransform:
    """Apply an albumentations pipeline to ``(image, mask)`` and return tensors.

    Args:
        pipeline: albumentations ``Compose`` (``None`` = only convert to tensors).
        seed: base seed of the per-sample augmentation randomness.

    Returns (from ``__call__``):
        image float32 ``(3, H, W)`` in [0, 1]; mask float32 ``(1, H, W)`` in [0, 1] or ``None``.
    """

    def __init__(self, pipeline: A.Compose | None = None, seed: int = 0) -> None:
        self.pipeline = pipeline
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(
        self, image: np.ndarray, mask: np.ndarray | None, index: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pipeline is not None:
            seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
            self.pipeline.set_random_seed(int(seed))
            out = self.pipeline(image=image, mask=mask) if mask is not None else self.pipeline(image=image)
            image, mask = out["image"], out.get("mask")
        image_t = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255.0)
        mask_t = None if mask is None else torch.from_numpy(np.array(mask, dtype=np.float32))[None]
        return image_t, mask_t


def build_train_transform(
    image_size: int, seed: int = 0, crop_scale: tuple[float, float] = (0.7, 1.0), hflip: bool = True
) -> PairTransform:
    """Random resized crop (+ horizontal flip), the usual Waterbirds/ImageNet training augmentation."""
    steps: list[A.BasicTransform] = [
        A.RandomResizedCrop(size=(image_size, image_size), scale=crop_scale, interpolation=cv2.INTER_LINEAR,
                            mask_interpolation=cv2.INTER_LINEAR)
    ]
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    return PairTransform(A.Compose(steps), seed=seed)


def build_eval_transform(image_size: int | None = None) -> PairTransform:
    """Resize to ``image_size`` (when given); no randomness."""
    if image_size is None:
        return PairTransform(None)
    resize = A.Resize(image_size, image_size, interpolation=cv2.INTER_AREA, mask_interpolation=cv2.INTER_LINEAR)
    return PairTransform(A.Compose([resize]))
