from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY
from robusttrain.data import BenchmarkConfig, generate_benchmark
from robusttrain.data.benchmark import group_counts, render_sample, shortcuts, split_plan


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_from_the_seed(tmp_path: Path, tiny_benchmark: Path) -> None:
    again = generate_benchmark(tmp_path / "again", TINY, workers=2)
    assert _digest(again) == _digest(tiny_benchmark)
    other = generate_benchmark(tmp_path / "other", BenchmarkConfig(**{**TINY.__dict__, "seed": 8}), workers=1)
    assert _digest(other) != _digest(tiny_benchmark)


def test_train_split_is_correlated_and_eval_splits_are_group_balanced() -> None:
    config = BenchmarkConfig()
    train = group_counts(config, "train")
    assert train.sum() == config.n_train
    for y in range(2):
        assert train[y, y] / train[y].sum() == pytest.approx(0.95, abs=1e-3)
    for split in ("val", "test"):
        counts = group_counts(config, split)
        assert (counts == counts[0, 0]).all() and counts[0, 0] > 0


def test_a_correlation_per_class_sets_each_class_share_and_survives_a_reuse(tmp_path: Path) -> None:
    config = BenchmarkConfig(**{**TINY.__dict__, "correlation": (0.99, 0.8), "n_train": 200})
    train = group_counts(config, "train")
    assert train[0].tolist() == [99, 1] and train[1].tolist() == [20, 80]
    root = generate_benchmark(tmp_path / "asymmetric", config, workers=1)
    assert generate_benchmark(root, config) == root  # the per-class values read back from benchmark.json match


def test_metadata_matches_the_plan(tiny_benchmark: Path) -> None:
    with open(tiny_benchmark / "metadata.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == TINY.n_train + 48 + 32
    ids = [int(r["img_id"]) for r in rows]
    assert len(set(ids)) == len(ids)
    for code, split in enumerate(("train", "val", "test")):
        plan = [(int(r["y"]), int(r["place"])) for r in rows if int(r["split"]) == code]
        assert plan == split_plan(TINY, split)
    manifest = json.loads((tiny_benchmark / "benchmark.json").read_text())
    assert manifest["group_counts"]["val"] == [[8, 8], [8, 8]]


def test_mask_marks_exactly_the_pasted_object() -> None:
    image, mask = render_sample(TINY, "train", 3, y=1, place=0)
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
    assert 0.02 < mask.mean() < 0.3
    # Swapping the background changes only pixels outside the object.
    other, other_mask = render_sample(TINY, "train", 3, y=1, place=1)
    assert np.array_equal(mask, other_mask)
    inside = mask == 1.0
    assert np.array_equal(image[inside], other[inside])
    assert not np.array_equal(image[mask == 0], other[mask == 0])


def _backgrounds(kind: str, place: int, count: int = 40) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mean colour of the background pixels of ``count`` samples of class 0 at ``place``, and their images."""
    config = BenchmarkConfig(shortcut=kind, shapes=("tee", "triangle"), domains=("masonry", "interior"), seed=3)
    means, images = [], []
    for i in range(count):
        image, mask = render_sample(config, "train", i, y=0, place=place)
        means.append(image[mask < 0.01].mean(0))
        images.append((image, mask))
    return np.mean(means, 0), images


@pytest.mark.parametrize("kind", ["texture", "stripes", "halves", "mark", "context"])
def test_a_non_colour_shortcut_keeps_the_colours_of_every_place(kind: str) -> None:
    colour_gap = np.abs(_backgrounds("colour", 0)[0] - _backgrounds("colour", 1)[0]).max()
    first, images = _backgrounds(kind, 0)
    second, others = _backgrounds(kind, 1)
    assert colour_gap > 20 and np.abs(first - second).max() < 8  # the same photo pool at every place
    for (image, mask), (other, other_mask) in zip(images, others, strict=True):
        assert np.array_equal(mask, other_mask)  # the place changes only the background
        assert np.array_equal(image[mask == 1.0], other[mask == 1.0])
        assert not np.array_equal(image[mask == 0], other[mask == 0])


def _place_difference(kind: str, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels that differ between places 0 and 1 of sample ``i`` (same draws otherwise), and the object mask."""
    config = BenchmarkConfig(shortcut=kind, image_size=64, seed=4)
    first, mask = render_sample(config, "train", i, y=0, place=0)
    second, _ = render_sample(config, "train", i, y=0, place=1)
    return np.abs(first.astype(int) - second.astype(int)).sum(2) > 0, mask


def test_a_mark_is_small_and_misses_the_object_and_context_touches_it() -> None:
    for i in range(10):
        changed, mask = _place_difference("mark", i)
        assert 0 < changed.sum() <= 2 * (0.26 * 64) ** 2 and not changed[mask > 0.99].any()
        changed, mask = _place_difference("context", i)
        object_rows, changed_rows = np.nonzero(mask.max(1) > 0.5)[0], np.nonzero(changed.any(1))[0]
        assert changed.any() and not changed[mask > 0.99].any()
        assert changed_rows.min() <= object_rows.max() + 2  # the strip starts at the object's lower edge
        assert changed_rows.max() <= object_rows.max() + 0.3 * 64  # and stays next to it


def test_a_louder_grating_changes_the_background_more_and_the_object_not_at_all() -> None:
    def place_gap(amplitude: float) -> tuple[float, np.ndarray, np.ndarray]:
        config = BenchmarkConfig(shortcut="texture", texture_amplitude=amplitude, seed=5)
        first, mask = render_sample(config, "train", 2, y=0, place=0)
        second, _ = render_sample(config, "train", 2, y=0, place=1)
        outside = mask < 0.01
        return np.abs(first.astype(float) - second.astype(float))[outside].mean(), first, mask

    quiet, quiet_image, mask = place_gap(60.0)
    loud, loud_image, _ = place_gap(120.0)
    assert loud > 1.5 * quiet
    assert np.array_equal(quiet_image[mask == 1.0], loud_image[mask == 1.0])


@pytest.mark.parametrize("kind", ["mark", "context"])
def test_contrasting_ink_makes_every_symbol_stand_out_and_changes_nothing_else(
        kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``ink: any`` some symbols all but vanish into the photo under them; ``contrasting`` turns those to their
    negative, so each symbol differs from its photo at least as much, and no pixel outside the symbol changes."""
    stamped: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    stamp = shortcuts._stamp
    monkeypatch.setattr(shortcuts, "_stamp", lambda photo, coverage, ink: (
        stamped.append((photo, coverage, ink)), stamp(photo, coverage, ink))[1])
    gaps = {"any": [], "contrasting": []}
    for i in range(40):
        images = {}
        for ink in gaps:
            config = BenchmarkConfig(shortcut=kind, ink=ink, image_size=64, seed=6)
            images[ink] = render_sample(config, "train", i, y=0, place=1)[0]
            photo, coverage, colour = stamped[-1]
            gaps[ink].append(shortcuts.ink_contrast(colour, photo, coverage))
        outside = stamped[-1][1] == 0
        assert np.array_equal(images["any"][outside], images["contrasting"][outside])  # photo and object as they were
    before, after = np.array(gaps["any"]), np.array(gaps["contrasting"])
    assert (after >= before).all() and (before < 30).sum() >= 4  # the default leaves faint symbols ...
    assert after.min() > 50  # ... the option none


def _along_rows_and_columns(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean absolute step between neighbouring background pixels along a row and along a column."""
    grey, outside = image.astype(float).mean(2), mask < 0.01
    along_row = np.abs(np.diff(grey, axis=1))[outside[:, 1:] & outside[:, :-1]].mean()
    along_column = np.abs(np.diff(grey, axis=0))[outside[1:] & outside[:-1]].mean()
    return along_row, along_column


def test_stripes_run_along_the_axis_of_their_place_and_a_flip_keeps_it() -> None:
    config = BenchmarkConfig(shortcut="stripes", texture_amplitude=40, seed=6)
    for i in range(6):
        for place in (0, 1):
            image, mask = render_sample(config, "train", i, y=i % 2, place=place)
            for view, view_mask in ((image, mask), (image[:, ::-1], mask[:, ::-1])):
                along_row, along_column = _along_rows_and_columns(view, view_mask)
                assert (along_row > 1.5 * along_column) if place == 0 else (along_column > 1.5 * along_row)


def test_halves_tell_the_place_only_by_comparing_top_and_bottom() -> None:
    config = BenchmarkConfig(shortcut="halves", shapes=("tee", "triangle"), domains=("sky", "lunar"), seed=7)
    tops, gaps = {0: [], 1: []}, {0: [], 1: []}
    for i in range(40):
        for place in (0, 1):
            image, mask = render_sample(config, "train", i, y=0, place=place)
            rows = np.arange(64)[:, None].repeat(64, 1)
            top = image[(rows < 20) & (mask < 0.01)].mean(0)
            bottom = image[(rows >= 44) & (mask < 0.01)].mean(0)
            tops[place].append(top)
            gaps[place].append(np.abs(top - bottom).mean())
            grey = [bool((image[r][mask[r] == 0] == 128).all()) for r in range(64)]
            assert "1" * 8 in "".join(str(int(g)) for g in grey[20:44])  # a grey band keeps the photos apart
    # Each half alone has the colours of every place; how far the two halves differ is the place.
    assert np.abs(np.mean(tops[0], 0) - np.mean(tops[1], 0)).max() < 15
    assert np.mean(gaps[1]) > 1.5 * np.mean(gaps[0])


def test_a_benchmark_written_before_the_texture_amplitude_is_still_reused(tmp_path: Path) -> None:
    config = BenchmarkConfig(**{**TINY.__dict__, "shortcut": "texture", "n_train": 8, "n_val": 4, "n_test": 4})
    root = generate_benchmark(tmp_path / "older", config, workers=1)
    manifest = json.loads((root / "benchmark.json").read_text())
    del manifest["config"]["texture_amplitude"], manifest["config"]["ink"]  # nor the ink option
    (root / "benchmark.json").write_text(json.dumps(manifest))
    assert generate_benchmark(root, config) == root
    with pytest.raises(FileExistsError, match="another config"):
        generate_benchmark(root, BenchmarkConfig(**{**config.__dict__, "texture_amplitude": 90.0}))


def test_existing_benchmark_is_reused_but_a_different_config_is_refused(tiny_benchmark: Path) -> None:
    assert generate_benchmark(tiny_benchmark, TINY) == tiny_benchmark
    with pytest.raises(FileExistsError, match="another config"):
        generate_benchmark(tiny_benchmark, BenchmarkConfig(**{**TINY.__dict__, "seed": 1}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_classes": 9}, "num_classes"), ({"correlation": 1.5}, "correlation"),
     ({"correlation": (0.9, 0.9, 0.9)}, "one per class"), ({"correlation": (0.9, -0.1)}, "correlation"),
     ({"n_val": 3}, "n_val"),
     ({"shapes": ("cross", "blob")}, "shapes"), ({"image_size": 8}, "image_size"),
     ({"shortcut": "smell"}, "unknown shortcut kind 'smell'"),
     ({"shortcut": "texture", "texture_amplitude": 0}, "texture_amplitude must be in"),
     ({"shortcut": "texture", "texture_amplitude": 200}, "texture_amplitude must be in"),
     ({"shortcut": "texture", "texture_amplitude": True}, "texture_amplitude must be in"),
     ({"shortcut": "mark", "texture_amplitude": 90}, "applies to shortcuts 'texture' and 'stripes' only"),
     ({"shortcut": "halves", "texture_amplitude": 30}, "applies to shortcuts 'texture' and 'stripes' only"),
     ({"shortcut": "mark", "ink": "neon"}, "unknown ink 'neon'"),
     ({"shortcut": "colour", "ink": "contrasting"}, "ink applies to shortcuts 'mark' and 'context' only")],
)
def test_bad_config_is_rejected_with_its_name(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchmarkConfig(**kwargs)


def test_more_classes_use_more_shapes_and_domains() -> None:
    config = BenchmarkConfig(num_classes=4, n_train=400, n_val=64, n_test=64)
    assert len(set(config.class_names)) == 4 and len(set(config.domain_names)) == 4
    assert group_counts(config, "test").tolist() == [[4] * 4] * 4


def test_metadata_carries_the_rendered_attributes(tiny_benchmark: Path) -> None:
    from robusttrain.data import WaterbirdsDataset
    from robusttrain.data.benchmark import ATTRIBUTES

    train = WaterbirdsDataset(tiny_benchmark, "train", attributes=[*ATTRIBUTES, "y"])
    values = train.attributes
    assert values.shape == (len(train), len(ATTRIBUTES) + 1)
    names = train.attribute_names
    # has_hole is the ring class (class 1 of the 2-class benchmark); the others vary within each class
    assert (values[:, names.index("has_hole")] == train.targets).all()
    for name in ("patterned", "warm_colour", "large_object"):
        share = values[:, names.index(name)].mean()
        assert 0.15 < share < 0.85, (name, share)
    item = train[0]
    assert item["attributes"].dtype.is_floating_point and item["attributes"].tolist() == values[0].tolist()
    # the size attribute agrees with the exact mask: large objects cover more of the image
    areas = np.array([train[i]["mask"].mean().item() for i in range(len(train))])
    large = values[:, names.index("large_object")] == 1
    assert areas[large].mean() > 1.3 * areas[~large].mean()


def test_a_version_1_benchmark_gains_its_attribute_columns_and_keeps_its_images(tmp_path: Path,
                                                                               tiny_benchmark: Path) -> None:
    import shutil

    from robusttrain.data.benchmark import ATTRIBUTES

    old = tmp_path / "old"
    shutil.copytree(tiny_benchmark, old)
    manifest = json.loads((old / "benchmark.json").read_text())
    manifest["config"]["format_version"] = 1
    (old / "benchmark.json").write_text(json.dumps(manifest))
    with open(old / "metadata.csv", newline="") as handle:
        rows = [{k: v for k, v in r.items() if k not in ATTRIBUTES} for r in csv.DictReader(handle)]
    with open(old / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    images_before = _digest(old / "00.cross")
    generate_benchmark(old, TINY)
    assert (old / "metadata.csv").read_text() == (tiny_benchmark / "metadata.csv").read_text()
    manifest_now = json.loads((old / "benchmark.json").read_text())
    assert manifest_now == json.loads((tiny_benchmark / "benchmark.json").read_text())
    assert _digest(old / "00.cross") == images_before


def test_an_attribute_column_that_is_absent_or_not_binary_is_named(tiny_benchmark: Path, tmp_path: Path) -> None:
    from robusttrain.data import WaterbirdsDataset

    with pytest.raises(ValueError, match=r"no attribute columns \['wings'\]"):
        WaterbirdsDataset(tiny_benchmark, "train", attributes=["wings"])
    three = generate_benchmark(tmp_path / "three", BenchmarkConfig(num_classes=3, image_size=16, n_train=18,
                                                                    n_val=9, n_test=9), workers=1)
    with pytest.raises(ValueError, match=r"row \d+: attribute 'y' must be 0 or 1, got '2'"):
        WaterbirdsDataset(three, "train", attributes=["y"])
