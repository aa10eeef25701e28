"""Method-specific behaviour: token layouts, lateral inhibition, degradation fidelity and warm start, occlusion's
two modes."""

from __future__ import annotations

import pytest
import torch

from robusttrain.eval import pointing_game
from robusttrain.maps import ControlledDegradation, Occlusion, lateral_inhibition, tokens_to_map
from robusttrain.models import create_model

from .models import RedDetector, red_square_scenes


def test_tokens_to_map_drops_prefix_tokens_and_checks_the_grid() -> None:
    tokens = torch.arange(2 * 7 * 3, dtype=torch.float32).view(2, 7, 3)
    spatial = tokens_to_map(tokens, grid_size=(2, 3), num_prefix_tokens=1)
    assert spatial.shape == (2, 3, 2, 3)
    assert torch.equal(spatial[0, :, 0, 0], tokens[0, 1])
    assert tokens_to_map(tokens[:, 3:]).shape == (2, 3, 2, 2)
    with pytest.raises(ValueError, match="do not form a 2x2 grid"):
        tokens_to_map(tokens, grid_size=(2, 2))


def test_lateral_inhibition_on_flat_and_peaked_maps() -> None:
    flat = torch.full((1, 1, 9, 9), 0.5)
    inhibition = lateral_inhibition(flat)
    # Interior of a flat map: no differential term, average term a * exp(-0.5).
    assert inhibition[0, 0, 4, 4] == pytest.approx(0.1 * torch.exp(torch.tensor(-0.5)).item(), rel=1e-5)
    peak = torch.zeros(1, 1, 9, 9)
    peak[0, 0, 4, 4] = 1.0
    inhibition = lateral_inhibition(peak)
    # The peak inhibits its neighbours (differential term), not itself.
    assert inhibition[0, 0, 4, 5] > inhibition[0, 0, 4, 4]
    with pytest.raises(ValueError, match="odd size"):
        lateral_inhibition(peak, zone=6)


def test_degradation_keeps_the_logits_with_a_small_map() -> None:
    model = RedDetector().eval()
    images, masks = red_square_scenes()
    method = ControlledDegradation(model, resolution=16, steps=60)
    maps = method(images)
    assert method.preserved_fraction() == 1.0
    info = method.last_info
    assert torch.allclose(info["degraded_outputs"], info["reference_outputs"], atol=0.25 * 40 * 0.1)
    assert maps.mean() < 0.35  # most of the image was given up


def test_degradation_warm_start_continues_from_the_given_maps() -> None:
    model = RedDetector().eval()
    images, _ = red_square_scenes()
    converged = ControlledDegradation(model, steps=80)(images)
    one_step = ControlledDegradation(model, steps=1)
    warm = one_step(images, init_maps=converged)
    cold = one_step(images)
    assert (warm - converged).abs().mean() < 0.05
    assert (cold - converged).abs().mean() > 0.2
    with pytest.raises(ValueError, match="init_maps"):
        one_step(images, init_maps=converged[:2])


def test_degradation_works_for_regression_outputs() -> None:
    torch.manual_seed(0)
    model = create_model("test_resnet", num_classes=1).eval()
    maps = ControlledDegradation(model, steps=5)(torch.rand(2, 3, 32, 32))
    assert maps.shape == (2, 1, 32, 32)


class GreenTint(torch.nn.Module):
    """Class 1 = a green-tinted image, read from the mean colour: evidence spread over the whole image."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        green = images[:, 1].mean((1, 2)) - images[:, [0, 2]].mean((1, 2, 3)) - 0.05
        return torch.stack([-green, green], dim=1) * 40


def test_occlusion_finds_a_small_object_by_filling_and_a_spread_colour_by_keeping() -> None:
    images, masks = red_square_scenes()
    ones = torch.ones(len(images), dtype=torch.long)
    for mode in ("fill", "keep"):
        maps = Occlusion(RedDetector().eval(), mode=mode)(images, ones)
        assert pointing_game(maps, masks).all(), mode
    tinted = images.clone()
    tinted[:, 1] += 0.2
    tinted = tinted.clamp(0, 1)
    falls = Occlusion(GreenTint(), scale="probability")(tinted, ones)
    kept = Occlusion(GreenTint(), mode="keep", scale="probability")(tinted, ones)
    assert falls.max() < 0.05  # no single patch removes a colour that covers the image ...
    assert kept.min() > 0.9  # ... and every patch alone keeps it
    with pytest.raises(ValueError, match="mode must be 'fill' or 'keep'"):
        Occlusion(GreenTint(), mode="erase")
    with pytest.raises(ValueError, match="patch must be a fraction"):
        Occlusion(GreenTint(), patch=4)
