from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from robusttrain.data import (
    BackgroundsChallengeDataset,
    CorruptFileError,
    ImageFolderDataset,
    WaterbirdsDataset,
    build_train_transform,
    read_image,
)
from robusttrain.data.waterbirds import write_view


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array).save(path)


def _object_image(size: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    top, left = rng.integers(2, size // 2, size=2)
    mask[top : top + 8, left : left + 8] = 255
    image = rng.integers(0, 100, (size, size, 3)).astype(np.uint8)
    image[mask > 0] = 250
    return image, mask


def test_waterbirds_layout_yields_the_sample_contract(tiny_benchmark: Path) -> None:
    train = WaterbirdsDataset(tiny_benchmark, "train")
    test = WaterbirdsDataset(tiny_benchmark, 2)
    assert len(train) == 160 and len(test) == 48 and train.has_masks
    assert train.num_groups == 4 and train.group_names[3] == "ring/sky"
    item = train[0]
    assert set(item) == {"image", "target", "index", "group", "mask"}
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 32, 32) and 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["group"] == item["target"] * 2 + train.places[0]
    assert len({train[i]["index"] for i in range(len(train))} | {test[i]["index"] for i in range(len(test))}) == 208
    batch = next(iter(DataLoader(test, batch_size=8)))
    assert batch["mask"].shape == (8, 1, 32, 32)
    assert np.bincount(test.groups).tolist() == [12, 12, 12, 12]


def test_real_waterbirds_layout_with_a_segmentation_tree(tmp_path: Path) -> None:
    root, segs = tmp_path / "waterbirds", tmp_path / "segmentations"
    rows = []
    for i in range(4):
        image, mask = _object_image(seed=i)
        name = f"{1 + i % 2:03d}.Bird/img_{i}.jpg"
        _save(root / name, image)
        _save((segs / name).with_suffix(".png"), mask)
        rows.append({"img_id": i, "img_filename": name, "y": i % 2, "split": 0, "place": i // 2,
                     "place_filename": "/x/y.jpg"})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    dataset = WaterbirdsDataset(root, "train", masks_dir=segs)
    assert dataset.class_names == ["landbird", "waterbird"] and dataset.has_masks
    assert [dataset[i]["group"] for i in range(4)] == [0, 2, 1, 3]
    assert not WaterbirdsDataset(root, "train").has_masks


def test_imagefolder_with_parallel_masks(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        for i in range(3):
            image, mask = _object_image(seed=i)
            _save(tmp_path / "images" / cls / f"{i}.png", image)
            _save(tmp_path / "masks" / cls / f"{i}.png", mask)
    dataset = ImageFolderDataset(tmp_path / "images", tmp_path / "masks")
    assert dataset.class_names == ["cat", "dog"] and len(dataset) == 6
    item = dataset[4]
    assert item["target"] == 1 and item["group"] == 1 and item["index"] == 4
    # The mask marks the bright object pixels.
    bright = item["image"].mean(0) > 0.9
    assert torch.equal(bright, item["mask"][0] > 0.5)
    (tmp_path / "masks" / "dog" / "2.png").unlink()
    with pytest.raises(FileNotFoundError, match="no mask for image dog/2.png"):
        ImageFolderDataset(tmp_path / "images", tmp_path / "masks")


def test_backgrounds_challenge_layout(tmp_path: Path) -> None:
    for variant in ("original", "mixed_rand"):
        for cls in ("00_dog", "01_bird"):
            for i in range(2):
                image, mask = _object_image(seed=i)
                _save(tmp_path / variant / "val" / cls / f"n0_{i}.JPEG", image)
                if variant == "original":
                    _save(tmp_path / "fg_mask" / "val" / cls / f"n0_{i}.npy", (mask > 0).astype(np.uint8))
    original = BackgroundsChallengeDataset(tmp_path, "original")
    assert original.has_masks and original.class_names == ["00_dog", "01_bird"]
    assert original[0]["mask"].sum() == 64
    assert not BackgroundsChallengeDataset(tmp_path, "mixed_rand").has_masks
    with pytest.raises(ValueError, match="unknown IN-9 variant 'mixed_random'"):
        BackgroundsChallengeDataset(tmp_path, "mixed_random")
    with pytest.raises(FileNotFoundError, match="only_fg"):
        BackgroundsChallengeDataset(tmp_path, "only_fg")


def test_missing_and_corrupt_files_name_the_file(tmp_path: Path, tiny_benchmark: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_benchmark, root)
    dataset = WaterbirdsDataset(root, "val")
    victim = dataset.records[1]
    victim.image.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(CorruptFileError, match=str(victim.image.name)):
        dataset[1]
    victim.image.unlink()
    with pytest.raises(FileNotFoundError, match=str(victim.image.name)):
        dataset[1]
    with pytest.raises(FileNotFoundError, match="no metadata.csv"):
        WaterbirdsDataset(tmp_path, "train")
    with pytest.raises(ValueError, match="unknown split"):
        WaterbirdsDataset(root, "training")


def test_mask_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    image, _ = _object_image()
    _save(tmp_path / "images" / "a" / "0.png", image)
    _save(tmp_path / "masks" / "a" / "0.png", np.zeros((10, 12), np.uint8))
    dataset = ImageFolderDataset(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(ValueError, match=r"mask .*0.png is 12x10 \(WxH\) but its image is 24x24"):
        dataset[0]


def test_greyscale_and_rgba_images_become_rgb(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 6), 77, np.uint8)).save(grey)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.full((5, 6, 4), 9, np.uint8)).save(rgba)
    assert read_image(grey).shape == (5, 6, 3) and read_image(grey)[0, 0].tolist() == [77, 77, 77]
    assert read_image(rgba).shape == (5, 6, 3)


def test_augmentation_keeps_masks_aligned_with_images(tiny_benchmark: Path) -> None:
    dataset = WaterbirdsDataset(tiny_benchmark, "train", build_train_transform(32, seed=3, crop_scale=(0.3, 1.0)))
    # Replace every image by its own mask: after augmentation, image and mask must still coincide.
    dataset.records = [r.__class__(r.mask, r.target, r.group, r.sample_id, r.mask) for r in dataset.records]
    for i in range(20):
        item = dataset[i]
        assert torch.allclose(item["image"][0], item["mask"][0], atol=2 / 255)
    a = dataset[5]["image"]
    assert torch.equal(a, dataset[5]["image"])
    dataset.set_epoch(1)
    assert not torch.equal(a, dataset[5]["image"])


def test_a_non_numeric_label_names_its_metadata_row(tmp_path: Path) -> None:
    root = tmp_path / "wb"
    root.mkdir()
    (root / "metadata.csv").write_text("img_id,img_filename,y,split,place\n0,a.png,0,0,0\n1,b.png,bird,0,1\n")
    with pytest.raises(ValueError, match=r"metadata.csv row 3 is malformed .*'y': 'bird'"):
        WaterbirdsDataset(root, "train")


def test_a_view_changes_only_the_metadata_and_loads(tiny_benchmark: Path, tmp_path: Path) -> None:
    original = WaterbirdsDataset(tiny_benchmark, "train")
    without_masks = WaterbirdsDataset(write_view(tiny_benchmark, tmp_path / "plain"), "train")
    assert [r.image.name for r in without_masks.records] == [r.image.name for r in original.records]
    assert all(r.mask is None for r in without_masks.records) and original.records[0].mask is not None
    assert without_masks.class_names == original.class_names  # benchmark.json kept
    hidden = WaterbirdsDataset(write_view(tiny_benchmark, tmp_path / "hidden", set_columns={"place": "0"},
                                          keep_manifest=False), "train")
    assert hidden.num_places == 1 and len(hidden) == len(original)
    assert not (tmp_path / "hidden" / "masks").exists() and (tiny_benchmark / "masks").is_dir()
