from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from robusttrain.data import WaterbirdsDataset
from robusttrain.eval import (
    bounding_boxes,
    composite,
    evaluate_variants,
    make_variants,
    only_bg_black,
    only_bg_tiled,
    only_fg,
)
from robusttrain.eval.variants import pick_backgrounds


def _scene() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.zeros(1, 3, 8, 10)
    image[0, 0] = torch.arange(10.0).repeat(8, 1) / 10  # red ramp left to right
    mask = torch.zeros(1, 1, 8, 10)
    mask[0, 0, 2:5, 1:4] = 1.0  # box rows 2-4, cols 1-3: the right margin (cols 4-9) is the largest strip
    return image, mask


def test_bounding_box_and_only_bg_b() -> None:
    image, mask = _scene()
    assert bounding_boxes(mask).tolist() == [[2, 5, 1, 4]]
    out = only_bg_black(image, mask)
    assert out[0, :, 2:5, 1:4].abs().sum() == 0 and torch.equal(out[0, :, :2], image[0, :, :2])


def test_only_bg_t_tiles_the_largest_margin_strip() -> None:
    image, mask = _scene()
    out = only_bg_tiled(image, mask)
    # Right strip = columns 4..9 tiled from x=0: canvas column c shows image column 4 + c % 6.
    expected = torch.tensor([4 + c % 6 for c in range(1, 4)], dtype=torch.float32) / 10
    assert torch.allclose(out[0, 0, 3, 1:4], expected)
    outside = mask[0, 0] == 0
    assert torch.equal(out[0][:, outside], image[0][:, outside])


def test_only_fg_and_composite_keep_the_object() -> None:
    image, mask = _scene()
    background = torch.full_like(image, 0.5)
    mixed = composite(image, mask, background)
    assert torch.equal(mixed[0][:, mask[0, 0] == 1], image[0][:, mask[0, 0] == 1])
    assert (mixed[0][:, mask[0, 0] == 0] == 0.5).all()
    assert only_fg(image, mask)[0][:, mask[0, 0] == 0].abs().sum() == 0


def test_mixed_variants_pick_backgrounds_of_the_right_class() -> None:
    pool_targets = torch.tensor([0, 1, 2, 0, 1, 2])
    targets = torch.tensor([0, 1, 2, 2])
    picks = pick_backgrounds(targets, torch.arange(4), pool_targets, num_classes=3, seed=0)
    assert pool_targets[picks["mixed_same"]].tolist() == [0, 1, 2, 2]
    assert pool_targets[picks["mixed_next"]].tolist() == [1, 2, 0, 0]
    again = pick_backgrounds(targets, torch.arange(4), pool_targets, num_classes=3, seed=0)
    assert all(torch.equal(picks[k], again[k]) for k in picks)
    with pytest.raises(ValueError, match="no image of class 2"):
        pick_backgrounds(targets, torch.arange(4), torch.tensor([0, 1]), num_classes=3)


def test_size_mismatch_is_named() -> None:
    image, mask = _scene()
    with pytest.raises(ValueError, match="mask/image size mismatch"):
        only_fg(image, mask[..., :9])
    with pytest.raises(ValueError, match=r"masks must be \(B, 1, H, W\)"):
        make_variants(image, mask[0], torch.tensor([0]), torch.tensor([0]), image, torch.tensor([0]), 1)


class BorderColourModel(nn.Module):
    """Predicts the training-majority class of the background from the image border alone."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        border = torch.cat([images[:, :, :2].flatten(2), images[:, :, -2:].flatten(2)], dim=2).mean(2)
        return self.classifier(border)


def test_background_model_shows_a_positive_bg_gap(tiny_benchmark: Path) -> None:
    train = WaterbirdsDataset(tiny_benchmark, "train")
    test = WaterbirdsDataset(tiny_benchmark, "test")
    # Fit a linear classifier of class from border colour on the (0.95 correlated) training split.
    features = torch.stack([train[i]["image"] for i in range(len(train))])
    targets = torch.as_tensor(train.targets)
    model = BorderColourModel(nn.Linear(3, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(features), targets).backward()
        optimizer.step()
    result = evaluate_variants(model, test, pool=train, batch_size=16)
    assert result["mixed_same"] > 0.85
    assert result["mixed_next"] < 0.2
    assert result["bg_gap"] > 0.25
    assert result["bg_gap"] == pytest.approx(result["mixed_same"] - result["mixed_rand"])
    assert result["original"] == pytest.approx(0.5, abs=0.15)  # balanced test: half the groups are misleading
