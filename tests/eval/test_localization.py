from __future__ import annotations

import pytest
import torch

from robusttrain.eval import (
    cascading_randomization,
    centre_maps,
    deletion_insertion,
    energy_in_mask,
    mask_iou,
    pointing_game,
)
from robusttrain.maps import MapMethod, create_map_method
from robusttrain.models import create_model

from ..maps.models import RedDetector, red_square_scenes


def _mask() -> torch.Tensor:
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1
    return mask


def test_energy_pointing_and_iou_on_hand_made_maps() -> None:
    mask = _mask()
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 0, 0], maps[0, 0, 3, 3] = 3.0, 1.0
    assert energy_in_mask(maps, mask).item() == pytest.approx(0.75)
    assert pointing_game(maps, mask).item()
    assert not pointing_game(maps.flip(-1).flip(-2), mask).item()
    assert pointing_game(maps.flip(-1).flip(-2), mask, tolerance=2).item()
    # Min-max normalised and thresholded at 0.5: only (0, 0) survives -> IoU 1/4.
    assert mask_iou(maps, mask).item() == pytest.approx(0.25)
    assert energy_in_mask(torch.zeros(1, 1, 4, 4), mask).item() == 0.0
    assert energy_in_mask(torch.ones(1, 1, 4, 4), mask).item() == pytest.approx(0.25)  # uniform = area share
    with pytest.raises(ValueError, match="mask/image size mismatch"):
        energy_in_mask(maps, torch.zeros(1, 1, 4, 5))


def test_centre_baseline_peaks_in_the_middle() -> None:
    maps = centre_maps(torch.zeros(2, 1, 9, 9))
    assert maps.shape == (2, 1, 9, 9) and maps[0, 0].argmax() == 40


def test_deletion_and_insertion_reward_the_true_map() -> None:
    model = RedDetector().eval()
    images, masks = red_square_scenes()
    good = deletion_insertion(model, images, masks + 0.01 * torch.rand_like(masks), steps=8)
    bad = deletion_insertion(model, images, 1 - masks + 0.01 * torch.rand_like(masks), steps=8)
    assert (good["deletion"] < bad["deletion"]).all()
    assert (good["insertion"] > bad["insertion"]).all()
    assert ((0 <= good["deletion"]) & (good["deletion"] <= 1)).all()


class ImageEdges(MapMethod):
    """A map that ignores the model: image gradient magnitude (what Guided Backprop degenerates to)."""

    uses_gradients = False

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        grey = images.mean(1, keepdim=True)
        return (grey[..., 1:, 1:] - grey[..., :-1, 1:]).abs() + (grey[..., 1:, 1:] - grey[..., 1:, :-1]).abs()


def test_cascading_randomisation_separates_model_dependent_maps_from_edge_detectors() -> None:
    torch.manual_seed(0)
    model = create_model("test_resnet", num_classes=2)
    images = torch.rand(4, 3, 32, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradcam = cascading_randomization(model, lambda m: create_map_method("gradcam", m), images)
    edges = cascading_randomization(model, ImageEdges, images)
    assert gradcam[0]["spearman"] == pytest.approx(1.0) and gradcam[0]["randomized"] == []
    assert [r["randomized"][-1] for r in gradcam[1:3]] == ["backbone.fc", "backbone.layer4"]
    assert gradcam[-1]["spearman"] < 0.5
    assert all(r["spearman"] == pytest.approx(1.0) and r["hog"] == pytest.approx(1.0) for r in edges)
    # The model itself was not modified (the check works on a copy).
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_mask_iou_can_keep_absolute_map_values() -> None:
    masks = torch.zeros(1, 1, 4, 4)
    masks[..., :2, :] = 1
    faint = masks * 0.4 + 0.05  # right place, but nowhere above 0.5
    assert mask_iou(faint, masks)[0] == 1.0  # normalised: the shape counts
    assert mask_iou(faint, masks, normalize=False)[0] == 0.0  # absolute: nothing is kept
