"""The three 32x32 ellipse datasets of the joint-attention-head paper, generated with exact ellipse masks.

* ``inclination``: one ellipse among circles; target = its inclination (degrees in [0, 180)).
* ``intersection_points``: two ellipses plus point noise; target = where their major axes cross (pixels).
* ``intersection_objects``: two ellipses plus patches cut from scikit-image's shipped photos (real-object noise).

Ellipses and distractors share one colour palette, so only shape tells them apart. Pixel ``(row, col)`` covers
``[col, col + 1) x [row, row + 1)``: coordinates are continuous, the image centre is ``(16, 16)``.
Every sample is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .benchmark.backgrounds import DOMAINS, load_source

SIZE = 32
SUPERSAMPLE = 4
KINDS = ("inclination", "intersection_points", "intersection_objects")
PAPER_SIZES = {"inclination": (8000, 3000), "intersection_points": (3000, 100), "intersection_objects": (8000, 3000)}


@dataclass(frozen=True)
class Ellipse:
    """Centre ``(x, y)`` in pixels, semi-axes ``a >= b`` and inclination ``angle`` (degrees, x towards y)."""

    x: float
    y: float
    a: float
    b: float
    angle: float

    @property
    def direction(self) -> np.ndarray:
        rad = math.radians(self.angle)
        return np.array([math.cos(rad), math.sin(rad)])


_OFFSETS = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE


def ellipse_coverage(ellipse: Ellipse) -> np.ndarray:
    """Anti-aliased coverage of ``ellipse`` in [0, 1], ``(32, 32)`` (computed inside its bounding box only)."""
    reach = ellipse.a + 1
    col0, col1 = max(int(ellipse.x - reach), 0), min(int(ellipse.x + reach) + 1, SIZE)
    row0, row1 = max(int(ellipse.y - reach), 0), min(int(ellipse.y + reach) + 1, SIZE)
    coverage = np.zeros((SIZE, SIZE))
    if col1 <= col0 or row1 <= row0:
        return coverage
    xs = (np.arange(col0, col1)[:, None] + _OFFSETS).ravel() - ellipse.x
    ys = (np.arange(row0, row1)[:, None] + _OFFSETS).ravel() - ellipse.y
    dx, dy = np.meshgrid(xs, ys)
    cos, sin = ellipse.direction
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    inside = (along / ellipse.a) ** 2 + (across / ellipse.b) ** 2 <= 1
    coverage[row0:row1, col0:col1] = inside.reshape(row1 - row0, SUPERSAMPLE, col1 - col0, SUPERSAMPLE).mean((1, 3))
    return coverage


def axes_intersection(first: Ellipse, second: Ellipse) -> np.ndarray:
    """Where the major axes (as infinite lines) of two ellipses cross, ``(x, y)``."""
    d1, d2 = first.direction, second.direction
    matrix = np.stack([d1, -d2], axis=1)
    if abs(np.linalg.det(matrix)) < 1e-6:
        raise ValueError("major axes are parallel: they do not intersect")
    t = np.linalg.solve(matrix, np.array([second.x - first.x, second.y - first.y]))[0]
    return np.array([first.x, first.y]) + t * d1


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.45, 1.0, size=3)


def _paint(canvas: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> None:
    canvas *= 1 - coverage[..., None]
    canvas += coverage[..., None] * colour


def _background(rng: np.random.Generator) -> np.ndarray:
    level = rng.uniform(0.05, 0.3)
    return np.clip(level + rng.normal(0, 0.03, size=(SIZE, SIZE, 3)), 0, 1)


def _random_ellipse(rng: np.random.Generator, centre: np.ndarray | None = None,
                    angle: float | None = None) -> Ellipse:
    a, b = rng.uniform(5.0, 9.0), rng.uniform(2.0, 3.2)
    if centre is None:
        centre = rng.uniform(a + 1, SIZE - a - 1, size=2)
    return Ellipse(float(centre[0]), float(centre[1]), a, b, rng.uniform(0, 180) if angle is None else angle)


def _place_circles(canvas: np.ndarray, occupied: np.ndarray, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(3, 7))):
        for _attempt in range(20):
            radius = rng.uniform(1.8, 3.5)
            circle = Ellipse(*rng.uniform(radius, SIZE - radius, size=2), radius, radius, 0.0)
            cover = ellipse_coverage(circle)
            if (cover * occupied).sum() < 0.5:
                _paint(canvas, cover, _random_colour(rng))
                occupied = np.maximum(occupied, cover)
                break


def _place_points(canvas: np.ndarray, occupied: np.ndarray, rng: np.random.Generator) -> None:
    count = int(rng.integers(25, 60))
    free = np.flatnonzero(occupied.ravel() == 0)
    for pixel in rng.choice(free, size=min(count, len(free)), replace=False):
        canvas[pixel // SIZE, pixel % SIZE] = _random_colour(rng)


_OBJECT_SOURCES = tuple(s for domain in ("interior", "portrait", "sky", "masonry") for s in DOMAINS[domain])


def _place_objects(canvas: np.ndarray, occupied: np.ndarray, rng: np.random.Generator) -> None:
    """Patches cut from shipped photos (rectangles with a ragged outline), pasted off the ellipses."""
    for _ in range(int(rng.integers(2, 5))):
        for _attempt in range(20):
            height, width = rng.integers(4, 10, size=2)
            top, left = rng.integers(0, SIZE - height + 1), rng.integers(0, SIZE - width + 1)
            patch_mask = np.zeros((SIZE, SIZE))
            patch_mask[top : top + height, left : left + width] = rng.random((height, width)) < 0.9
            if (patch_mask * occupied).sum() >= 0.5:
                continue
            picture = load_source(_OBJECT_SOURCES[rng.integers(len(_OBJECT_SOURCES))])
            side = int(rng.integers(16, 96))
            y0 = rng.integers(0, picture.shape[0] - side * height // 8 - 1)
            x0 = rng.integers(0, picture.shape[1] - side * width // 8 - 1)
            rows = y0 + (np.arange(height) * side // 8)
            cols = x0 + (np.arange(width) * side // 8)
            patch = picture[np.ix_(rows, cols)].astype(np.float64) / 255
            region = canvas[top : top + height, left : left + width]
            keep = patch_mask[top : top + height, left : left + width, None]
            region[:] = region * (1 - keep) + patch * keep
            occupied = np.maximum(occupied, patch_mask)
            break


def _grow(region: np.ndarray) -> np.ndarray:
    """``region`` dilated by one pixel (8-neighbourhood)."""
    padded = np.pad(region, 1)
    return np.logical_or.reduce([padded[1 + dy : 1 + dy + SIZE, 1 + dx : 1 + dx + SIZE]
                                 for dy in (-1, 0, 1) for dx in (-1, 0, 1)])


def _two_ellipses(rng: np.random.Generator) -> tuple[list[Ellipse], np.ndarray]:
    """Two separate ellipses inside the image whose major axes cross inside it at >= 30 degrees."""
    while True:
        crossing = rng.uniform(6, SIZE - 6, size=2)
        first_angle = rng.uniform(0, 180)
        second_angle = (first_angle + rng.uniform(30, 150)) % 180
        ellipses = []
        for angle in (first_angle, second_angle):
            shift = rng.uniform(-11, 11)
            direction = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
            ellipses.append(_random_ellipse(rng, crossing + shift * direction, angle))
        if any(min(e.x, e.y) < e.a * 0.6 + 0.5 or max(e.x, e.y) > SIZE - e.a * 0.6 - 0.5 for e in ellipses):
            continue
        covers = [ellipse_coverage(e) for e in ellipses]
        if min(c.sum() for c in covers) < 0.8 * min(math.pi * e.a * e.b for e in ellipses):
            continue  # clipped by the border
        if (_grow(covers[0] > 0) & (covers[1] > 0)).any():
            continue  # touching: keep at least one clear pixel between them
        return ellipses, axes_intersection(*ellipses)


def render_sample(kind: str, seed: int, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sample: image float ``(32, 32, 3)`` in [0, 1], ellipse mask ``(32, 32)`` in [0, 1], raw target.

    The raw target is the inclination in degrees (``inclination``) or the crossing ``(x, y)`` in pixels.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ellipse dataset {kind!r}; choose from {list(KINDS)}")
    rng = np.random.default_rng([seed, index, KINDS.index(kind)])
    canvas = _background(rng)
    if kind == "inclination":
        ellipses = [_random_ellipse(rng)]
        target = np.array([ellipses[0].angle])
    else:
        ellipses, target = _two_ellipses(rng)
    mask = np.zeros((SIZE, SIZE))
    for ellipse in ellipses:
        cover = ellipse_coverage(ellipse)
        _paint(canvas, cover, _random_colour(rng))
        mask = np.maximum(mask, cover)
    occupied = (mask > 0).astype(np.float64)
    distractors: dict[str, Callable] = {"inclination": _place_circles, "intersection_points": _place_points,
                                        "intersection_objects": _place_objects}
    distractors[kind](canvas, occupied, rng)
    return np.clip(canvas, 0, 1), mask, target


def encode_targets(kind: str, raw: torch.Tensor) -> torch.Tensor:
    """Regression targets the model learns: ``(cos 2t, sin 2t)`` for angles (periodic), ``xy / 16 - 1`` else."""
    if kind == "inclination":
        doubled = torch.deg2rad(raw[:, 0]) * 2
        return torch.stack([doubled.cos(), doubled.sin()], dim=1)
    return raw / (SIZE / 2) - 1


def decode_outputs(kind: str, outputs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_targets` for model outputs ``(B, 2)``."""
    if outputs.ndim != 2 or outputs.shape[1] != 2:
        raise ValueError(f"expected outputs of shape (B, 2), got {tuple(outputs.shape)}")
    if kind == "inclination":
        return (torch.rad2deg(torch.atan2(outputs[:, 1], outputs[:, 0])) / 2 % 180)[:, None]
    return (outputs + 1) * (SIZE / 2)


def target_errors(kind: str, outputs: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """Per-sample error in the paper's unit: degrees (inclination, modulo 180) or pixels (Euclidean)."""
    predicted = decode_outputs(kind, outputs.detach().float())
    if kind == "inclination":
        difference = (predicted[:, 0] - raw[:, 0]).abs() % 180
        return torch.minimum(difference, 180 - difference)
    return (predicted - raw).norm(dim=1)


class EllipseDataset(Dataset):
    """In-memory ellipse dataset with the library's sample dict (``image``, ``target``, ``index``, ``mask``).

    ``target`` is the encoded regression target (:func:`encode_targets`); ``raw_target`` the angle or point.
    Train and test splits use disjoint index ranges of the same seed.
    """

    def __init__(self, kind: str, size: int, seed: int = 0, split: str = "train") -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if size <= 0:
            raise ValueError(f"dataset size must be positive, got {size}")
        self.kind = kind
        offset = 0 if split == "train" else 10_000_000
        samples = [render_sample(kind, seed, offset + i) for i in range(size)]
        images = np.stack([s[0] for s in samples]).transpose(0, 3, 1, 2)
        self.images = torch.from_numpy((images * 255).round().astype(np.uint8))
        self.masks = torch.from_numpy(np.stack([s[1] for s in samples])[:, None].astype(np.float32))
        self.raw_targets = torch.from_numpy(np.stack([s[2] for s in samples]).astype(np.float32))
        self.targets = encode_targets(kind, self.raw_targets)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return {"image": self.images[index].float() / 255, "target": self.targets[index], "index": index,
                "mask": self.masks[index], "raw_target": self.raw_targets[index]}
