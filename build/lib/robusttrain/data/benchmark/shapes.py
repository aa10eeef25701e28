"""Procedural foreground objects with exact (anti-aliased) masks.

Each class is a shape family; pose, size, aspect ratio and appearance are random and drawn from
class-independent distributions, so only the *shape* identifies the class. Shapes are rasterised at
``SUPERSAMPLE`` times the target resolution and box-filtered down, which gives soft mask edges like the
CUB segmentations used by Waterbirds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4

# A shape is a list of (polygon in unit coordinates roughly within [-1, 1], fill value 1=add / 0=cut).
ShapeOps = list[tuple[np.ndarray, int]]


def _circle(cx: float, cy: float, r: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _star(points: int, inner: float) -> np.ndarray:
    t = np.arange(2 * points) * math.pi / points - math.pi / 2
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _cross(rng: np.random.Generator) -> ShapeOps:
    w = rng.uniform(0.28, 0.4)
    return [
        (np.array([[-w, -1], [w, -1], [w, 1], [-w, 1]]), 1),
        (np.array([[-1, -w], [1, -w], [1, w], [-1, w]]), 1),
    ]


def _ring(rng: np.random.Generator) -> ShapeOps:
    return [(_circle(0, 0, 1.0), 1), (_circle(0, 0, rng.uniform(0.45, 0.6)), 0)]


def _star5(rng: np.random.Generator) -> ShapeOps:
    return [(_star(5, rng.uniform(0.42, 0.55)), 1)]


def _crescent(rng: np.random.Generator) -> ShapeOps:
    return [(_circle(0, 0, 1.0), 1), (_circle(rng.uniform(0.45, 0.6), -0.1, 0.85), 0)]


def _arrow(rng: np.random.Generator) -> ShapeOps:
    s = rng.uniform(0.22, 0.32)
    return [(np.array([[-1, -s], [0.1, -s], [0.1, -0.75], [1, 0], [0.1, 0.75], [0.1, s], [-1, s]]), 1)]


def _tee(rng: np.random.Generator) -> ShapeOps:
    w = rng.uniform(0.25, 0.35)
    return [(np.array([[-1, -1], [1, -1], [1, -1 + 2 * w], [w, -1 + 2 * w], [w, 1], [-w, 1], [-w, -1 + 2 * w],
                       [-1, -1 + 2 * w]]), 1)]


def _triangle(rng: np.random.Generator) -> ShapeOps:
    return [(np.array([[0, -1], [0.95, 0.8], [-0.95, 0.8]]), 1)]


def _hourglass(rng: np.random.Generator) -> ShapeOps:
    w = rng.uniform(0.12, 0.22)
    return [(np.array([[-0.8, -1], [0.8, -1], [w, 0], [0.8, 1], [-0.8, 1], [-w, 0]]), 1)]


SHAPES: dict[str, Callable[[np.random.Generator], ShapeOps]] = {
    "cross": _cross,
    "ring": _ring,
    "star": _star5,
    "crescent": _crescent,
    "arrow": _arrow,
    "tee": _tee,
    "triangle": _triangle,
    "hourglass": _hourglass,
}


HOLED_SHAPES = frozenset({"ring"})  # shapes with a fully enclosed hole (the has_hole attribute)
PATTERNS = ("solid", "stripes", "dots")


@dataclass(frozen=True)
class ShapeDraw:
    """The random choices of one object instance: what :func:`rasterise` turns into a mask.

    ``area`` is the drawn share of the image covered by the instance's bounding square.
    """

    shape: str
    ops: ShapeOps
    angle: float
    aspect: float
    area: float
    centre: np.ndarray
    size: int


@dataclass(frozen=True)
class AppearanceDraw:
    """The random choices of one object texture: base and second colour (HSV), pattern and its mix weight."""

    base_hsv: tuple[float, float, float]
    second_hsv: tuple[float, float, float]
    pattern: str
    pattern_angle: float
    period: float
    mix: float

    @property
    def warm_colour(self) -> bool:
        """Base hue red, orange, yellow or pink (a third of the hue circle)."""
        hue = self.base_hsv[0]
        return hue < 1 / 6 or hue >= 5 / 6


def _half_axes(area: float, aspect: float, size: int) -> np.ndarray:
    """Half extents (x, y) in pixels of an instance whose bounding square covers ``area`` of the image."""
    half_extent = math.sqrt(area) * size / 2.0
    return np.array([half_extent * math.sqrt(aspect), half_extent / math.sqrt(aspect)])


def draw_shape(shape: str, size: int, rng: np.random.Generator,
               area_range: tuple[float, float] = (0.12, 0.35)) -> ShapeDraw:
    """Draw one random instance of ``shape`` (pose, aspect 0.7-1.3, bounding-square area in ``area_range``)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose from {sorted(SHAPES)}")
    ops = SHAPES[shape](rng)
    angle = rng.uniform(0, 2 * math.pi)
    aspect = rng.uniform(0.7, 1.3)
    area = rng.uniform(*area_range)
    scale = _half_axes(area, aspect, size)
    reach = float(np.abs(scale).max()) * 1.05
    low, high = reach, size - reach
    centre = rng.uniform(low, high, size=2) if high > low else np.full(2, size / 2.0)
    return ShapeDraw(shape, ops, angle, aspect, area, centre, size)


def rasterise(draw: ShapeDraw) -> np.ndarray:
    """The instance's soft mask, float32 ``(size, size)`` in [0, 1] (supersampled, box-filtered)."""
    size = draw.size
    scale = _half_axes(draw.area, draw.aspect, size)
    rotation = np.array([[math.cos(draw.angle), -math.sin(draw.angle)], [math.sin(draw.angle), math.cos(draw.angle)]])
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(canvas)
    for polygon, fill in draw.ops:
        points = (polygon * scale) @ rotation.T + draw.centre
        pen.polygon([tuple(p) for p in points * SUPERSAMPLE], fill=255 * fill)
    mask = np.asarray(canvas, dtype=np.float32).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return mask / 255.0


def render_shape_mask(
    shape: str, size: int, rng: np.random.Generator, area_range: tuple[float, float] = (0.12, 0.35)
) -> np.ndarray:
    """Rasterise one random instance of ``shape`` and return its soft mask, float32 ``(size, size)`` in [0, 1].

    The instance is rotated, stretched (aspect 0.7-1.3) and scaled so that its bounding square covers
    roughly ``area_range`` of the image, then placed so that it stays inside the frame.
    """
    return rasterise(draw_shape(shape, size, rng, area_range))


def draw_appearance(size: int, rng: np.random.Generator) -> AppearanceDraw:
    """Draw a class-independent object texture: random hue, then solid, stripes or dots."""
    base = (rng.uniform(0, 1), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))
    second = (rng.uniform(0, 1), rng.uniform(0.3, 1.0), rng.uniform(0.2, 0.9))
    pattern = int(rng.integers(0, 3))
    angle, period = 0.0, 0.0
    if pattern == 1:
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(4, 9) * size / 64
    elif pattern == 2:
        period = rng.uniform(5, 10) * size / 64
    mix = rng.uniform(0.4, 0.9)
    return AppearanceDraw(base, second, PATTERNS[pattern], angle, period, mix)


def paint(draw: AppearanceDraw, size: int) -> np.ndarray:
    """The texture of ``draw``, uint8 ``(size, size, 3)``."""
    base, second = _hsv_to_rgb(*draw.base_hsv), _hsv_to_rgb(*draw.second_hsv)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if draw.pattern == "solid":
        weight = np.zeros((size, size), np.float32)
    elif draw.pattern == "stripes":
        along = xx * math.cos(draw.pattern_angle) + yy * math.sin(draw.pattern_angle)
        weight = (np.sin(along * 2 * math.pi / draw.period) > 0).astype(np.float32)
    else:
        wave = np.sin(xx * 2 * math.pi / draw.period) * np.sin(yy * 2 * math.pi / draw.period)
        weight = (wave > 0.5).astype(np.float32)
    weight = weight[..., None] * draw.mix
    image = (1 - weight) * base + weight * second
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def render_appearance(size: int, rng: np.random.Generator) -> np.ndarray:
    """A class-independent object texture, uint8 ``(size, size, 3)``: random hue, then solid, stripes or dots."""
    return paint(draw_appearance(size, rng), size)


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    from matplotlib.colors import hsv_to_rgb

    return hsv_to_rgb(np.array([h, s, v], dtype=np.float32)).astype(np.float32)
