"""What carries the shortcut: the generator's ``shortcut`` kinds.

Every kind gives each sample a spurious ``place`` in 0..K-1 that agrees with the class with the training split's
``correlation``; the kinds differ in *what* of the picture ``place`` changes:

- ``colour``: the background domain, a colour-graded family of photos (:mod:`.backgrounds`).
- ``texture``: an oriented grating over photos of every domain (with two places the two diagonals, which a
  horizontal flip swaps: under flip augmentation it agrees with the label half the time).
- ``stripes``: fine stripes over photos of every domain, their axis the place (rows or columns: a flip keeps them).
- ``halves``: photos above and below a grey band, of domains ``place`` apart: each half alone has every place's
  colours, only the relation tells it (a network learns it after its first pass).
- ``mark``: a small symbol outside the object (``ink: contrasting`` keeps each one visible).
- ``context``: a strip touching the object's lower edge, one pattern per place.

In every kind the true mask is the object alone: the shortcut belongs to the background.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .backgrounds import DOMAINS, render_background
from .shapes import SUPERSAMPLE

SHORTCUTS = ("colour", "texture", "stripes", "halves", "mark", "context")
INKS = ("any", "contrasting")  # how the mark and context kinds colour their symbol (module docstring)
GRATING_AMPLITUDE = 60.0  # the texture kind's default grating, added to the photo (0..255 scale; zero mean)
STRIPE_PERIOD = (0.05, 0.07)  # the stripes kind's period, as a share of the image side (3-4.5 px at 64)
GRATINGS = ("texture", "stripes")  # the kinds that take an amplitude
HALVES_SPLIT, HALVES_BAND = (0.4, 0.6), 0.12  # the halves kind: where the band's middle is, its height (shares)
MARK_SIDE = (0.2, 0.26)  # side of the mark kind's symbol, as a share of the image side
MARKS = ("plus", "ring", "bar", "corner", "cross", "dot", "triangle", "square")
CONTEXTS = ("bar", "wave", "dots", "zigzag", "double", "steps", "comb", "arc")


def check_shortcut(kind: str, num_classes: int) -> None:
    """Raise ValueError naming the problem if ``kind`` cannot carry ``num_classes`` places."""
    if kind not in SHORTCUTS:
        raise ValueError(f"unknown shortcut kind {kind!r}; choose from {list(SHORTCUTS)}")
    available = {"colour": len(DOMAINS), "texture": 8, "stripes": 8, "halves": len(DOMAINS),
                 "mark": len(MARKS),
                 "context": len(CONTEXTS)}[kind]
    if num_classes > available:
        raise ValueError(f"shortcut {kind!r} has {available} places, num_classes is {num_classes}")


def render_scene(kind: str, place: int, domains: tuple[str, ...], mask: np.ndarray, size: int,
                 rng: np.random.Generator, amplitude: float, ink_rule: str = "any") -> np.ndarray:
    """The background of one sample, float32 ``(size, size, 3)`` in 0..255, carrying ``place`` as ``kind`` says.

    ``mask`` is the object's soft mask (the mark and context kinds place their symbol relative to it);
    ``amplitude`` is the texture and stripes kinds' grating amplitude; ``ink_rule`` (:data:`INKS`) how the mark
    and context kinds colour their symbol.
    """
    if kind == "colour":
        return render_background(domains[place], size, rng).astype(np.float32)
    if kind == "halves":
        return _halves(place, domains, size, rng)
    photo = render_background(domains[int(rng.integers(len(domains)))], size, rng).astype(np.float32)
    if kind == "texture":
        return _grating(photo, place, len(domains), rng, amplitude)
    if kind == "stripes":
        return _stripes(photo, place, len(domains), rng, amplitude)
    ink = _ink(rng)
    coverage = _mark(place, size, mask, rng) if kind == "mark" else _context(place, size, mask, rng)
    if ink_rule == "contrasting":
        ink = contrasting_ink(ink, photo, coverage)
    return _stamp(photo, coverage, ink)


def _halves(place: int, domains: tuple[str, ...], size: int, rng: np.random.Generator) -> np.ndarray:
    """A photo of a random domain above one of the domain ``place`` steps further, a grey band between them."""
    first = int(rng.integers(len(domains)))
    top = render_background(domains[first], size, rng).astype(np.float32)
    bottom = render_background(domains[(first + place) % len(domains)], size, rng).astype(np.float32)
    middle = int(round(size * rng.uniform(*HALVES_SPLIT)))
    band = max(1, int(round(size * HALVES_BAND / 2)))
    scene = np.concatenate([top[:middle], bottom[middle:]])
    scene[max(0, middle - band) : middle + band] = 128.0
    return scene


def _ink(rng: np.random.Generator) -> np.ndarray:
    """A symbol colour drawn independently of the place: dark or light, any hue."""
    tone = rng.uniform(0.0, 0.25) if rng.random() < 0.5 else rng.uniform(0.75, 1.0)
    hue = rng.uniform(0.7, 1.3, size=3)
    return np.clip(tone * 255 * hue, 0, 255).astype(np.float32)


def ink_contrast(ink: np.ndarray, photo: np.ndarray, coverage: np.ndarray) -> float:
    """How far ``ink`` is from the photo it covers: mean absolute difference over channels, weighted by
    ``coverage`` (0..255)."""
    weights = coverage / max(float(coverage.sum()), 1e-6)
    return float((np.abs(photo - ink).mean(2) * weights).sum())


def contrasting_ink(ink: np.ndarray, photo: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """``ink`` or its negative (``255 - ink``), whichever differs more from the photo under ``coverage`` (no
    random draw, so every other draw of the sample stays as it was)."""
    negative = 255.0 - ink
    return negative if ink_contrast(negative, photo, coverage) > ink_contrast(ink, photo, coverage) else ink


def _stamp(photo: np.ndarray, coverage: np.ndarray, ink: np.ndarray) -> np.ndarray:
    return (1 - coverage[..., None]) * photo + coverage[..., None] * ink


def _grating(photo: np.ndarray, place: int, places: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Add to ``photo`` a zero-mean sinusoidal grating of ``amplitude`` (0..255 scale) whose orientation is the place
    (spread over half a turn; with two places the two diagonals, which have the same edge density along rows and
    columns)."""
    angle = math.pi / 4 + math.pi * place / places + rng.uniform(-0.1, 0.1)  # 2 places: the two diagonals
    period = photo.shape[0] * rng.uniform(0.12, 0.18)
    return _wave(photo, angle, period, rng, amplitude)


def _stripes(photo: np.ndarray, place: int, places: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Add to ``photo`` fine zero-mean stripes of ``amplitude`` whose axis is the place (spread over half a turn
    from columns; with two places columns or rows, both unchanged by a horizontal flip)."""
    angle = math.pi * place / places + rng.uniform(-0.05, 0.05)
    return _wave(photo, angle, photo.shape[0] * rng.uniform(*STRIPE_PERIOD), rng, amplitude)


def _wave(photo: np.ndarray, angle: float, period: float, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """``photo`` plus a sinusoid of ``amplitude`` and ``period`` (pixels) varying along ``angle``, random phase."""
    size = photo.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    along = xx * math.cos(angle) + yy * math.sin(angle) + rng.uniform(0, period)
    wave = np.sin(along * 2 * math.pi / period)
    return np.clip(photo + amplitude * wave[..., None], 0, 255)


def _canvas(size: int) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """A supersampled drawing canvas (as the objects are drawn: :func:`~.shapes.rasterise`) and its scale."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    return canvas, ImageDraw.Draw(canvas), SUPERSAMPLE


def _coverage(canvas: Image.Image, size: int) -> np.ndarray:
    return np.asarray(canvas, dtype=np.float32).reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3)) / 255.0


def _free_spot(mask: np.ndarray, side: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a ``side`` square that misses the object (the emptiest of 20 random tries)."""
    size = mask.shape[0]
    best, best_overlap = (0, 0), math.inf
    for _ in range(20):
        top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        overlap = float(mask[top : top + side, left : left + side].sum())
        if overlap < best_overlap:
            best, best_overlap = (top, left), overlap
        if overlap == 0:
            break
    return best


def _mark(place: int, size: int, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coverage ``(size, size)`` of the place's symbol at a random spot outside the object."""
    side = max(5, int(round(size * rng.uniform(*MARK_SIDE))))
    top, left = _free_spot(mask, side, rng)
    canvas, pen, s = _canvas(size)
    x0, y0, x1, y1 = left * s, top * s, (left + side) * s - 1, (top + side) * s - 1
    mid_x, mid_y, width = (x0 + x1) / 2, (y0 + y1) / 2, max(s, side * s // 4)
    symbol = MARKS[place]
    if symbol == "plus":
        pen.rectangle([mid_x - width / 2, y0, mid_x + width / 2, y1], fill=255)
        pen.rectangle([x0, mid_y - width / 2, x1, mid_y + width / 2], fill=255)
    elif symbol == "ring":
        pen.ellipse([x0, y0, x1, y1], outline=255, width=width)
    elif symbol == "bar":
        pen.rectangle([x0, mid_y - width / 2, x1, mid_y + width / 2], fill=255)
    elif symbol == "corner":
        pen.rectangle([x0, y0, x0 + width, y1], fill=255)
        pen.rectangle([x0, y1 - width, x1, y1], fill=255)
    elif symbol == "cross":
        pen.line([x0, y0, x1, y1], fill=255, width=width)
        pen.line([x0, y1, x1, y0], fill=255, width=width)
    elif symbol == "dot":
        pen.ellipse([mid_x - side * s / 3, mid_y - side * s / 3, mid_x + side * s / 3, mid_y + side * s / 3], fill=255)
    elif symbol == "triangle":
        pen.polygon([(mid_x, y0), (x1, y1), (x0, y1)], fill=255)
    else:
        pen.rectangle([x0, y0, x1, y1], outline=255, width=width)
    return _coverage(canvas, size) * (1 - mask)


def _context(place: int, size: int, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coverage ``(size, size)`` of the place's strip, drawn along the object's lower edge and touching it."""
    rows = np.nonzero(mask.max(axis=1) > 0.5)[0]
    cols = np.nonzero(mask.max(axis=0) > 0.5)[0]
    if len(rows) == 0:
        rows = cols = np.array([size // 2])
    bottom = min(int(rows.max()) + 1, size - 3)
    span = max(int(cols.max() - cols.min()) + 1, size // 4)
    centre = (int(cols.max()) + int(cols.min())) / 2 + rng.uniform(-2, 2)
    canvas, pen, s = _canvas(size)
    x0, x1 = (centre - span * 0.7) * s, (centre + span * 0.7) * s
    height = max(2.0, size * 0.08) * s
    y0 = bottom * s
    pattern = CONTEXTS[place]
    steps = 6
    xs = np.linspace(x0, x1, steps * 2 + 1)
    if pattern == "bar":
        pen.rectangle([x0, y0, x1, y0 + height], fill=255)
    elif pattern == "wave":
        t = np.linspace(0, 1, 64)
        points = [(x0 + (x1 - x0) * v, y0 + height + height * math.sin(v * 4 * math.pi)) for v in t]
        pen.line(points, fill=255, width=int(height * 0.6))
    elif pattern == "dots":
        for x in xs[::2]:
            pen.ellipse([x - height * 0.6, y0, x + height * 0.6, y0 + height * 1.2], fill=255)
    elif pattern == "zigzag":
        points = [(x, y0 + (0 if i % 2 == 0 else 2 * height)) for i, x in enumerate(xs)]
        pen.line(points, fill=255, width=int(height * 0.6))
    elif pattern == "double":
        pen.rectangle([x0, y0, x1, y0 + height * 0.5], fill=255)
        pen.rectangle([x0, y0 + height * 1.3, x1, y0 + height * 1.8], fill=255)
    elif pattern == "steps":
        for i in range(steps):
            left = x0 + (x1 - x0) * i / steps
            pen.rectangle([left, y0 + height * (i % 3) * 0.5, left + (x1 - x0) / steps, y0 + height * 2], fill=255)
    elif pattern == "comb":
        pen.rectangle([x0, y0, x1, y0 + height * 0.5], fill=255)
        for x in xs[::2]:
            pen.rectangle([x - height * 0.25, y0, x + height * 0.25, y0 + height * 2], fill=255)
    else:
        pen.arc([x0, y0 - height * 2, x1, y0 + height * 2], 0, 180, fill=255, width=int(height * 0.6))
    return _coverage(canvas, size) * (1 - mask)
