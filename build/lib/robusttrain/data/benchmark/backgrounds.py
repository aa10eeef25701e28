"""Background domains built from the real photos and textures that scikit-image ships (no downloads).

A domain is a *family* of sources with a shared colour grading, like Waterbirds' "land" (bamboo forest +
broadleaf forest) and "water" (ocean + lake). A background is a random crop of one source of the family,
resized, flipped and lightly jittered, so backgrounds vary within a domain while the domain itself stays
easy to read from global colour and texture statistics (the shortcut the benchmark is built around).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Source:
    """One shipped scikit-image picture and the RGB tint applied when it is grey."""

    loader: str
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


DOMAINS: dict[str, tuple[Source, ...]] = {
    "foliage": (Source("grass", (0.45, 0.85, 0.35)), Source("gravel", (0.55, 0.6, 0.3))),
    "sky": (Source("rocket"), Source("hubble_deep_field", (0.6, 0.75, 1.0))),
    "masonry": (Source("brick", (0.95, 0.5, 0.35)), Source("coins", (0.9, 0.6, 0.4))),
    "interior": (Source("coffee"), Source("chelsea")),
    "paper": (Source("page", (1.0, 0.95, 0.8)), Source("text", (0.95, 0.9, 0.75))),
    "lunar": (Source("moon", (0.7, 0.8, 0.95)), Source("camera", (0.75, 0.8, 0.9))),
    "tissue": (Source("immunohistochemistry"), Source("retina")),
    "portrait": (Source("astronaut"),),
}


@cache
def load_source(source: Source) -> np.ndarray:
    """The source picture as uint8 RGB ``(H, W, 3)``, tinted if it is grey."""
    import skimage.data

    image = getattr(skimage.data, source.loader)()
    if image.ndim == 2:
        image = np.repeat(image[..., None].astype(np.float32), 3, axis=2) * np.array(source.tint, np.float32)
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


def render_background(domain: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random background of ``domain``, uint8 ``(size, size, 3)``."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown background domain {domain!r}; choose from {sorted(DOMAINS)}")
    sources = DOMAINS[domain]
    picture = load_source(sources[rng.integers(len(sources))])
    height, width = picture.shape[:2]
    side = int(min(height, width) * rng.uniform(0.35, 0.9))
    top = rng.integers(0, height - side + 1)
    left = rng.integers(0, width - side + 1)
    crop = Image.fromarray(picture[top : top + side, left : left + side]).resize((size, size), Image.BILINEAR)
    image = np.asarray(crop, dtype=np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    gain = rng.uniform(0.85, 1.15)
    offset = rng.uniform(-12, 12)
    return np.clip(image * gain + offset, 0, 255).astype(np.uint8)
