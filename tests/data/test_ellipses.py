"""The joint-attention-head paper's ellipse datasets: targets agree with the drawn ellipses and their masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.measure import label, regionprops

from robusttrain.data.ellipses import (
    KINDS,
    Ellipse,
    EllipseDataset,
    axes_intersection,
    decode_outputs,
    ellipse_coverage,
    encode_targets,
    render_sample,
    target_errors,
)


def _orientation_and_centre(mask: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Per connected ellipse: inclination in degrees (x towards y, as the generator) and centroid (x, y)."""
    regions = regionprops(label(mask > 0.5))
    # regionprops' orientation is the angle between the row axis and the major axis.
    return [((90 - math.degrees(r.orientation)) % 180, np.array(r.centroid[::-1]) + 0.5) for r in regions]


def test_coverage_area_matches_the_ellipse_formula() -> None:
    ellipse = Ellipse(15.3, 16.7, 8.0, 3.0, 33.0)
    assert ellipse_coverage(ellipse).sum() == pytest.approx(math.pi * 8 * 3, rel=0.02)


def test_axes_intersection_of_known_lines() -> None:
    horizontal = Ellipse(5, 10, 4, 2, 0)
    diagonal = Ellipse(20, 20, 4, 2, 45)
    np.testing.assert_allclose(axes_intersection(horizontal, diagonal), [10, 10], atol=1e-9)
    with pytest.raises(ValueError, match="parallel"):
        axes_intersection(horizontal, Ellipse(5, 20, 4, 2, 180))


@pytest.mark.parametrize("index", range(10))
def test_inclination_target_is_the_orientation_of_the_masked_ellipse(index: int) -> None:
    image, mask, target = render_sample("inclination", 3, index)
    (angle, _), = _orientation_and_centre(mask)
    difference = abs(angle - target[0]) % 180
    assert min(difference, 180 - difference) < 4
    assert image.shape == (32, 32, 3) and 0 <= image.min() and image.max() <= 1
    assert 0.02 < (mask > 0.5).mean() < 0.12


@pytest.mark.parametrize("kind", ["intersection_points", "intersection_objects"])
@pytest.mark.parametrize("index", range(6))
def test_intersection_target_is_where_the_masked_major_axes_cross(kind: str, index: int) -> None:
    _, mask, target = render_sample(kind, 5, index)
    found = _orientation_and_centre(mask)
    assert len(found) == 2, "two separate ellipses"
    ellipses = [Ellipse(*centre, 5, 2, angle) for angle, centre in found]
    assert np.linalg.norm(axes_intersection(*ellipses) - target) < 1.5
    assert 0 <= target.min() and target.max() <= 32


def test_samples_are_deterministic_and_splits_disjoint() -> None:
    first = EllipseDataset("intersection_points", 4, seed=1)
    again = EllipseDataset("intersection_points", 4, seed=1)
    test = EllipseDataset("intersection_points", 4, seed=1, split="test")
    assert torch.equal(first.images, again.images) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.images, test.images)
    item = first[2]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32) and item["target"].shape == (2,)


@pytest.mark.parametrize("kind", KINDS)
def test_encoded_targets_decode_back_with_zero_error(kind: str) -> None:
    raw = EllipseDataset(kind, 8).raw_targets
    encoded = encode_targets(kind, raw)
    assert target_errors(kind, encoded, raw).max() < 1e-3
    np.testing.assert_allclose(decode_outputs(kind, encoded), raw, atol=1e-3)


def test_inclination_error_wraps_around_180_degrees() -> None:
    raw = torch.tensor([[179.0], [1.0]])
    predicted = encode_targets("inclination", torch.tensor([[1.0], [179.0]]))
    torch.testing.assert_close(target_errors("inclination", predicted, raw), torch.tensor([2.0, 2.0]))


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="unknown ellipse dataset 'circles'"):
        render_sample("circles", 0, 0)
    with pytest.raises(ValueError, match=r"outputs of shape \(B, 2\)"):
        decode_outputs("inclination", torch.zeros(3))
    with pytest.raises(ValueError, match="split"):
        EllipseDataset("inclination", 2, split="val")
