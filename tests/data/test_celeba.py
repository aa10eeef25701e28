"""The CelebA-layout loader on a tiny generated tree in that layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from robusttrain.data import CelebADataset

NAMES = ["5_o_Clock_Shadow", "Blond_Hair", "Eyeglasses", "Male", "Smiling"]


def _tree(root: Path, rows: int = 12) -> Path:
    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    values = rng.choice([-1, 1], size=(rows, len(NAMES)))
    lines, partition = [str(rows), " ".join(NAMES)], []
    for i in range(rows):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (20, 16, 3), dtype=np.uint8)).save(root / "img_align_celeba" / name)
        lines.append(name + "  " + " ".join(f"{v:2d}" for v in values[i]))
        partition.append(f"{name} {i % 3}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    np.save(root / "values.npy", values)
    return root


def test_celeba_layout_gives_targets_groups_and_attributes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "celeba")
    values = (np.load(root / "values.npy") == 1).astype(int)
    train = CelebADataset(root, "train")
    rows = [i for i in range(12) if i % 3 == 0]
    assert len(train) == len(rows) and train.attribute_names == NAMES
    assert train.targets.tolist() == values[rows, 1].tolist()
    assert train.places == values[rows, 3].tolist()
    assert train.groups.tolist() == (values[rows, 1] * 2 + values[rows, 3]).tolist()
    assert train.group_names == ["not Blond_Hair/not Male", "not Blond_Hair/Male", "Blond_Hair/not Male",
                                 "Blond_Hair/Male"]
    batch = next(iter(DataLoader(train, batch_size=4)))
    assert batch["image"].shape == (4, 3, 20, 16) and batch["attributes"].shape == (4, len(NAMES))
    assert batch["attributes"].tolist() == values[rows].astype(float).tolist()
    picked = CelebADataset(root, "test", target="Smiling", spurious="Eyeglasses", attributes=["Male", "Smiling"])
    assert picked.attributes.tolist() == values[[2, 5, 8, 11]][:, [3, 4]].tolist()


def test_celeba_errors_name_what_is_wrong(tmp_path: Path) -> None:
    root = _tree(tmp_path / "celeba")
    with pytest.raises(ValueError, match=r"unknown CelebA attributes \['Blond'\]"):
        CelebADataset(root, target="Blond")
    with pytest.raises(ValueError, match="unknown split"):
        CelebADataset(root, "holdout")
    text = (root / "list_attr_celeba.txt").read_text().splitlines()
    text[4] = text[4].replace("-1", " 0", 1) if "-1" in text[4] else text[4].replace(" 1", " 0", 1)
    (root / "list_attr_celeba.txt").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match="line 5: attribute values must be -1 or 1"):
        CelebADataset(root)
    other = _tree(tmp_path / "other")
    with open(other / "list_eval_partition.txt", "a") as handle:
        handle.write("999999.jpg 0\n")
    with pytest.raises(ValueError, match="1 images are in only one of .*999999.jpg"):
        CelebADataset(other)
    with pytest.raises(FileNotFoundError, match="no list_attr_celeba.txt"):
        CelebADataset(tmp_path)
