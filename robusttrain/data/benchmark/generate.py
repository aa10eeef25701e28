"""The built-in background-bias benchmark: Waterbirds statistics, procedural pixels, exact masks.

Class ``y`` is a shape family (:mod:`.shapes`); its background domain (:mod:`.backgrounds`) agrees with the class
with probability ``correlation`` in the training split (one value, or one per class) and is spread evenly over the
other domains otherwise; validation and test are group-balanced, as in Waterbirds. Each sample is rendered from its
own ``np.random.default_rng([seed, split, i])``: deterministic from the seed, renderable in parallel. The layout is
Waterbirds' so one loader serves both::

    root/benchmark.json   root/metadata.csv (img_id,img_filename,y,split,place,mask_filename + 0/1 attributes)
    root/00.cross/000123.png   root/masks/00.cross/000123.png (uint8 soft mask, 255 = object)

Every sample also carries binary attributes of what was rendered (:data:`ATTRIBUTES`) for multi-attribute
recognition; benchmarks written before those columns existed gain them in place (replayed, images untouched).
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .backgrounds import DOMAINS
from .shapes import HOLED_SHAPES, SHAPES, AppearanceDraw, ShapeDraw, draw_appearance, draw_shape, paint, rasterise
from .shortcuts import GRATING_AMPLITUDE, GRATINGS, INKS, check_shortcut, render_scene

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 2  # 2: attribute columns in metadata.csv
ATTRIBUTES = {
    "has_hole": "the shape has an enclosed hole (ring)",
    "patterned": "the object's texture is stripes or dots, not a solid colour",
    "warm_colour": "the object's base hue is red, orange, yellow or pink",
    "large_object": "the object's bounding square covers more than the middle of object_area",
}


@dataclass(frozen=True)
class BenchmarkConfig:
    """Generator settings. Defaults reproduce Waterbirds' split sizes and its 0.95 train correlation.

    Args:
        num_classes: K, the number of shape classes and of background domains (2..8).
        image_size: side of the square images in pixels.
        correlation: P(domain == class) in the training split: one value, or one per class (a shortcut that is
            stronger for some classes than for others, whose minority groups then part ways).
        n_train: training split size.
        n_val: validation split size, rounded down to a multiple of K*K so that every group has the same size.
        n_test: test split size, rounded down likewise.
        class_proportions: training class shares (default uniform).
        object_area: range of the object's bounding-square area as a fraction of the image.
        shapes: names from ``SHAPES`` (default: the first K).
        domains: names from ``DOMAINS`` (default: the first K).
        shortcut: what carries the spurious ``place`` (:data:`~.shortcuts.SHORTCUTS`): ``colour`` (the background
            domain), ``texture`` (a grating's orientation over colour-matched photos), ``stripes`` (the axis of
            fine, faint stripes), ``halves`` (whether the photos above and below a band share a domain: a
            relation, learned after the first passes), ``mark`` (a small symbol
            anywhere outside the object) or ``context`` (a strip touching the object).
        texture_amplitude: the ``texture`` and ``stripes`` kinds' grating amplitude on the 0..255 scale (how
            loudly the shortcut speaks; the object is drawn over it, unchanged). Only those kinds have one.
        ink: how the ``mark`` and ``context`` kinds colour their symbol (:data:`~.shortcuts.INKS`): ``any``, dark
            or light at random (some symbols all but vanish into the photo), or ``contrasting``, each symbol turned
            to its negative where that differs more from the photo it covers (every symbol visible).
        seed: everything is a deterministic function of it.
    """

    num_classes: int = 2
    image_size: int = 64
    correlation: float | tuple[float, ...] = 0.95
    n_train: int = 4795
    n_val: int = 1199
    n_test: int = 5794
    class_proportions: tuple[float, ...] | None = None
    object_area: tuple[float, float] = (0.06, 0.2)
    shapes: tuple[str, ...] | None = None
    domains: tuple[str, ...] | None = None
    shortcut: str = "colour"
    texture_amplitude: float = GRATING_AMPLITUDE
    ink: str = "any"
    seed: int = 0
    format_version: int = field(default=FORMAT_VERSION, repr=False)

    def __post_init__(self) -> None:
        k = self.num_classes
        if not 2 <= k <= min(len(SHAPES), len(DOMAINS)):
            raise ValueError(f"num_classes must be between 2 and {min(len(SHAPES), len(DOMAINS))}, got {k}")
        if isinstance(self.correlation, tuple) and len(self.correlation) != k:
            raise ValueError(f"correlation needs one value or {k} (one per class), got {self.correlation}")
        if not all(isinstance(c, (int, float)) and 0.0 <= c <= 1.0 for c in self.class_correlations):
            raise ValueError(f"correlation must be in [0, 1], got {self.correlation}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {self.image_size}")
        for name in ("n_train", "n_val", "n_test"):
            if getattr(self, name) < k * k:
                raise ValueError(f"{name} must be at least num_classes**2 = {k * k}, got {getattr(self, name)}")
        low, high = self.object_area
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"object_area must satisfy 0 < low <= high <= 1, got {self.object_area}")
        if self.class_proportions is not None:
            props = self.class_proportions
            if len(props) != k or min(props) <= 0:
                raise ValueError(f"class_proportions needs {k} positive shares, got {props}")
        check_shortcut(self.shortcut, k)
        amplitude = self.texture_amplitude
        if isinstance(amplitude, bool) or not isinstance(amplitude, (int, float)) or not 0 < amplitude <= 127.5:
            raise ValueError(f"texture_amplitude must be in (0, 127.5], got {amplitude}")
        if self.shortcut not in GRATINGS and amplitude != GRATING_AMPLITUDE:
            raise ValueError(f"texture_amplitude applies to shortcuts {' and '.join(map(repr, GRATINGS))} only, "
                             f"not {self.shortcut!r}")
        if self.ink not in INKS:
            raise ValueError(f"unknown ink {self.ink!r}; choose from {list(INKS)}")
        if self.ink != "any" and self.shortcut not in ("mark", "context"):
            raise ValueError(f"ink applies to shortcuts 'mark' and 'context' only, not {self.shortcut!r}")
        for attr, pool in (("shapes", SHAPES), ("domains", DOMAINS)):
            names = getattr(self, attr)
            if names is not None:
                unknown = [n for n in names if n not in pool]
                if len(names) != k or unknown or len(set(names)) != k:
                    raise ValueError(f"{attr} needs {k} distinct names from {sorted(pool)}, got {names}")

    @property
    def class_correlations(self) -> tuple[float, ...]:
        """P(domain == class) in the training split, per class."""
        return self.correlation if isinstance(self.correlation, tuple) else (self.correlation,) * self.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.shapes or tuple(SHAPES)[: self.num_classes]

    @property
    def domain_names(self) -> tuple[str, ...]:
        return self.domains or tuple(DOMAINS)[: self.num_classes]

    def scaled(self, fraction: float) -> BenchmarkConfig:
        """The same benchmark with every split ``fraction`` times as large (for CI and demos)."""
        k2 = self.num_classes**2
        sizes = {n: max(k2, round(getattr(self, n) * fraction)) for n in ("n_train", "n_val", "n_test")}
        return BenchmarkConfig(**{**asdict(self), **sizes})


def group_counts(config: BenchmarkConfig, split: str) -> np.ndarray:
    """Sample counts per (class, domain) group, an int array ``(K, K)`` indexed ``[y, place]``."""
    k = config.num_classes
    counts = np.zeros((k, k), dtype=np.int64)
    if split != "train":
        total = config.n_val if split == "val" else config.n_test
        counts[:] = total // (k * k)
        return counts
    shares = np.array(config.class_proportions or [1.0] * k, dtype=np.float64)
    per_class = np.floor(config.n_train * shares / shares.sum()).astype(np.int64)
    per_class[: config.n_train - per_class.sum()] += 1
    for y in range(k):
        major = int(round(config.class_correlations[y] * per_class[y]))
        counts[y, y] = major
        others = [d for d in range(k) if d != y]
        rest = per_class[y] - major
        for j, d in enumerate(others):
            counts[y, d] = rest // len(others) + (1 if j < rest % len(others) else 0)
    return counts


def split_plan(config: BenchmarkConfig, split: str) -> list[tuple[int, int]]:
    """The (y, place) of every sample of ``split`` in file order (shuffled deterministically)."""
    counts = group_counts(config, split)
    plan = [(y, d) for y in range(config.num_classes) for d in range(config.num_classes) for _ in range(counts[y, d])]
    order = np.random.default_rng([config.seed, SPLITS.index(split), 1_000_003]).permutation(len(plan))
    return [plan[i] for i in order]


Draws = tuple[np.random.Generator, ShapeDraw, AppearanceDraw]


def _draws(config: BenchmarkConfig, split: str, i: int, y: int) -> Draws:
    rng = np.random.default_rng([config.seed, SPLITS.index(split), i])
    shape = draw_shape(config.class_names[y], config.image_size, rng, config.object_area)
    return rng, shape, draw_appearance(config.image_size, rng)


def _attributes(config: BenchmarkConfig, shape: ShapeDraw, appearance: AppearanceDraw) -> dict[str, int]:
    middle = sum(config.object_area) / 2
    return {"has_hole": int(shape.shape in HOLED_SHAPES), "patterned": int(appearance.pattern != "solid"),
            "warm_colour": int(appearance.warm_colour), "large_object": int(shape.area > middle)}


def sample_attributes(config: BenchmarkConfig, split: str, i: int, y: int) -> dict[str, int]:
    """The binary :data:`ATTRIBUTES` of sample ``i`` of ``split`` (the draws only, nothing is rendered)."""
    _, shape, appearance = _draws(config, split, i, y)
    return _attributes(config, shape, appearance)


def render_sample(config: BenchmarkConfig, split: str, i: int, y: int, place: int) -> tuple[np.ndarray, np.ndarray]:
    """Render sample ``i`` of ``split``: uint8 image ``(S, S, 3)`` and float32 soft mask ``(S, S)`` in [0, 1]."""
    rng, shape, appearance = _draws(config, split, i, y)
    mask = rasterise(shape)
    foreground = paint(appearance, config.image_size).astype(np.float32)
    background = render_scene(config.shortcut, place, config.domain_names, mask, config.image_size, rng,
                              config.texture_amplitude, config.ink)
    image = mask[..., None] * foreground + (1.0 - mask[..., None]) * background
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


def _write_sample(job: tuple[BenchmarkConfig, str, int, int, int, Path, str, str]) -> None:
    config, split, i, y, place, root, image_name, mask_name = job
    image, mask = render_sample(config, split, i, y, place)
    Image.fromarray(image).save(root / image_name)
    Image.fromarray(np.round(mask * 255).astype(np.uint8)).save(root / mask_name)


def generate_benchmark(
    root: str | Path, config: BenchmarkConfig | None = None, *, workers: int = 2, overwrite: bool = False
) -> Path:
    """Render the benchmark to ``root`` in the Waterbirds-like layout and return ``root``.

    An existing benchmark with the same config is reused; one with a different config raises unless
    ``overwrite`` is set.

    Raises:
        FileExistsError: ``root`` holds a benchmark made with another config (or other files).
    """
    config = config or BenchmarkConfig()
    root = Path(root)
    manifest = root / "benchmark.json"
    wanted = {"config": asdict(config)}
    if manifest.exists() and not overwrite:
        found = json.loads(manifest.read_text())
        # made before the shortcut kinds, the texture amplitude or the ink option
        config_found = {"shortcut": "colour", "texture_amplitude": GRATING_AMPLITUDE, "ink": "any",
                        **found.get("config", {})}
        config_wanted = json.loads(json.dumps(wanted["config"]))
        if config_found == config_wanted:
            return root
        if config_found.get("format_version", 1) == 1 and config_found == {**config_wanted, "format_version": 1}:
            _add_attribute_columns(root, config, found)
            return root
        raise FileExistsError(f"{root} holds a benchmark made with another config: render into another folder, or "
                              "delete this one first")
    if root.exists() and any(root.iterdir()) and not manifest.exists() and not overwrite:
        raise FileExistsError(f"{root} is not empty and holds no benchmark.json; refusing to write into it")

    rows, jobs = [], []
    img_id = 0
    for split_code, split in enumerate(SPLITS):
        for i, (y, place) in enumerate(split_plan(config, split)):
            folder = f"{y:02d}.{config.class_names[y]}"
            image_name = f"{folder}/{img_id:06d}.png"
            mask_name = f"masks/{folder}/{img_id:06d}.png"
            rows.append({"img_id": img_id, "img_filename": image_name, "y": y, "split": split_code, "place": place,
                         "mask_filename": mask_name, **sample_attributes(config, split, i, y)})
            jobs.append((config, split, i, y, place, root, image_name, mask_name))
            img_id += 1
    for y, name in enumerate(config.class_names):
        for folder in (root / f"{y:02d}.{name}", root / "masks" / f"{y:02d}.{name}"):
            folder.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_sample, jobs, chunksize=64))
    else:
        for job in jobs:
            _write_sample(job)

    _write_rows(root / "metadata.csv", rows)
    summary = {
        **wanted,
        "class_names": list(config.class_names),
        "domain_names": list(config.domain_names),
        "group_counts": {s: group_counts(config, s).tolist() for s in SPLITS},
    }
    manifest.write_text(json.dumps(summary, indent=2))
    return root


def _write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    """Write ``metadata.csv`` through a temporary file, so a failure never leaves half a file."""
    partial = path.with_suffix(".csv.partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)


def _add_attribute_columns(root: Path, config: BenchmarkConfig, manifest: dict[str, object]) -> None:
    """Upgrade a format-1 benchmark: replay each sample's draws for its attributes; images stay as they are."""
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    samples = [(split, i, y) for split in SPLITS for i, (y, _) in enumerate(split_plan(config, split))]
    if len(rows) != len(samples):
        raise ValueError(f"{root}/metadata.csv has {len(rows)} rows, its benchmark.json config makes {len(samples)}; "
                         "regenerate it with overwrite=True")
    for row, (split, i, y) in zip(rows, samples, strict=True):
        row.update(sample_attributes(config, split, i, y))
    _write_rows(root / "metadata.csv", rows)
    (root / "benchmark.json").write_text(json.dumps({**manifest, "config": asdict(config)}, indent=2))
