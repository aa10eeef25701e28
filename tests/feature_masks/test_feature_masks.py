"""Per-feature attention masks: shapes, the intentional transformation, importances, maps that find what they should."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from robusttrain.eval import energy_in_mask
from robusttrain.feature_masks import (
    MaskTransform,
    attribute_maps,
    feature_importance,
    find_feature_masks,
    per_feature_maps,
)
from robusttrain.maps import create_map_method
from robusttrain.models import ModelConfig, create_model, load_weights


def _model(attributes: int = 3, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("test_resnet", attributes, feature_masks=True, attributes=attributes, mask_width=8,
                        output_stride=8, **options)


def test_masks_per_attribute_and_feature_and_the_outputs() -> None:
    model = _model().eval()
    images = torch.rand(2, 3, 32, 32)
    assert model(images).shape == (2, 3)
    net = find_feature_masks(model)
    masks = net.masks(model.forward_features(images))
    assert masks.shape == (2, 3, net.num_features, 4, 4) and 0 <= masks.min() and masks.max() <= 1
    maps = per_feature_maps(model, images, features=[0, 5])
    assert maps.shape == (2, 3, 2, 32, 32)
    single = _model(single_mask=True).eval()
    shared = find_feature_masks(single).masks(single.forward_features(images))
    assert torch.equal(shared[:, :, 0], shared[:, :, -1])  # the attention-branch baseline: one mask for all
    torch.manual_seed(0)
    one_label = create_model("test_resnet", 4, feature_masks=True, mask_width=8)
    assert one_label(images).shape == (2, 4) and find_feature_masks(one_label).num_attributes == 1


def test_bad_model_options_are_named() -> None:
    with pytest.raises(ValueError, match="num_classes=2 but 3 attributes"):
        create_model("test_resnet", 2, feature_masks=True, attributes=3)
    with pytest.raises(ValueError, match="choose one"):
        create_model("test_resnet", 2, feature_masks=True, attention_pool="dropkey")
    with pytest.raises(ValueError, match=r"attributes must be 2 distinct names"):
        ModelConfig(name="test_resnet", num_classes=2, attributes=("a", "a"))
    with pytest.raises(ValueError, match="mask_width must be an integer"):
        ModelConfig(name="test_resnet", num_classes=2, feature_masks=True, mask_width=0)


def test_model_config_round_trip_rebuilds_the_same_network(tmp_path: Path) -> None:
    config = ModelConfig(name="test_resnet", num_classes=2, attributes=["shape", "place"], feature_masks=True,
                         mask_width=8, mask_residual=True)
    config.save(tmp_path)
    again = ModelConfig.load(tmp_path)
    assert again == config and again.attributes == ("shape", "place")
    assert again.build().eval()(torch.rand(1, 3, 32, 32)).shape == (1, 2)


@pytest.mark.parametrize("mode", ["scale", "sharpen", "binarise"])
def test_the_transformation_emphasises_the_top_features_and_damps_the_rest(mode: str) -> None:
    transform = MaskTransform(top_fraction=0.25, mode=mode, damp=0.5)
    importance = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0] * 7 + [1.0]])
    selected = transform.selection(importance)
    assert selected.tolist() == [[True, True] + [False] * 6, [True] + [False] * 6 + [True]] or \
        selected.sum(dim=1).tolist() == [2, 2]
    assert selected[0, :2].all() and selected[1, 7]
    masks = torch.full((1, 2, 8, 1, 1), 0.7)
    out = transform.apply(masks, selected)
    emphasised = {"scale": 1.4, "sharpen": 0.7**4 / (0.7**4 + 0.3**4), "binarise": 1.0}[mode]
    assert torch.allclose(out[0, 0, :2], torch.tensor(emphasised))
    assert torch.allclose(out[0, 0, 2:], torch.tensor(0.35))


@pytest.mark.parametrize("options, message", [({"mode": "boost"}, "mode must be one of"),
                                              ({"top_fraction": 0}, "top_fraction must be"),
                                              ({"damp": 1.5}, "damp must be"),
                                              ({"emphasis": 0.5}, "emphasis must be")])
def test_bad_transform_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MaskTransform(**options)


def test_the_transformation_changes_predictions_and_is_saved_with_the_weights(tmp_path: Path) -> None:
    model = _model().eval()
    net = find_feature_masks(model)
    images = torch.rand(4, 3, 32, 32)
    before = model(images)
    with pytest.raises(ValueError, match="no feature importance yet"):
        net.set_transform(MaskTransform())
    importance = feature_importance(model, [images])
    net.set_transform(MaskTransform(mode="scale", emphasis=3.0), importance)
    after = model(images)
    assert not torch.allclose(before, after)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    fresh = _model().eval()
    load_weights(fresh, tmp_path / "model.pt")
    assert find_feature_masks(fresh).transform == net.transform and torch.allclose(fresh(images), after)
    net.set_transform(None)
    assert torch.allclose(model(images), before)


@pytest.mark.parametrize("method", ["weights", "gradient"])
def test_importance_finds_the_one_feature_an_attribute_reads(method: str) -> None:
    model = _model(attributes=2).eval()
    net = find_feature_masks(model)
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 0, 7] = 1.0
        net.weight[1, 0, 3] = -2.0
    importance = feature_importance(model, [torch.rand(4, 3, 32, 32), torch.rand(2, 3, 32, 32)], method)
    assert importance.shape == (2, net.num_features)
    assert importance[0].argmax() == 7 and importance[1].argmax() == 3
    assert importance[0, 7] > 0 and importance[0].sum() == pytest.approx(float(importance[0, 7]))
    with pytest.raises(ValueError, match="importance method must be one of"):
        feature_importance(model, [torch.rand(1, 3, 32, 32)], "saliency")


def _square_scenes(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A red or blue square (attribute 0: red) on a dark or bright noisy background (attribute 1: bright)."""
    size = 32
    bright = torch.randint(0, 2, (count,), generator=generator)
    red = torch.randint(0, 2, (count,), generator=generator)
    level = 0.2 + 0.5 * bright.float()
    noise = 0.1 * torch.rand(count, 1, size, size, generator=generator)
    images = (level[:, None, None, None] + noise).repeat(1, 3, 1, 1)
    masks = torch.zeros(count, 1, size, size)
    for i in range(count):
        top, left = torch.randint(0, size - 10, (2,), generator=generator).tolist()
        masks[i, 0, top:top + 10, left:left + 10] = 1
        colour = torch.tensor([0.9, 0.1, 0.1]) if red[i] else torch.tensor([0.1, 0.1, 0.9])
        images[i, :, top:top + 10, left:left + 10] = colour[:, None, None]
    return images.clamp(0, 1), masks, torch.stack([red, bright], dim=1).float()


def test_the_colour_attribute_map_lands_on_the_coloured_square() -> None:
    model = _model(attributes=2)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        images, _, attributes = _square_scenes(32, generator)
        loss = F.binary_cross_entropy_with_logits(model(images), attributes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    images, masks, attributes = _square_scenes(64, generator)
    accuracy = ((model(images) > 0).float() == attributes).float().mean(dim=0)
    assert (accuracy > 0.9).all(), accuracy
    # a uniform map puts masks.mean() of its energy on the squares; the brightness attribute can be read anywhere
    # (the squares' edges too), so only the colour attribute's map has a region to find
    for weighting in ("decision", "importance"):
        colour_maps = create_map_method("feature_masks", model, attribute=0, weighting=weighting)(images)
        assert energy_in_mask(colour_maps, masks).mean() > 1.25 * masks.mean(), weighting
    with pytest.raises(ValueError, match=r"weighting must be one of \['decision', 'importance'\], got 'logit'"):
        create_map_method("feature_masks", model, attribute=0, weighting="logit")
    with pytest.raises(ValueError, match=r"attribute must be an index in \[0, 1\], got 2"):
        create_map_method("feature_masks", model, attribute=2)


def test_the_area_prior_shrinks_the_masks_it_is_put_on() -> None:
    with pytest.raises(RuntimeError, match="training mode first"):
        find_feature_masks(_model()).mask_area()
    images, targets = torch.rand(8, 3, 32, 32), torch.randint(0, 2, (8, 3)).float()
    areas = {}
    for weight in (0.0, 100.0):
        model = _model().train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(10):
            loss = F.binary_cross_entropy_with_logits(model(images), targets)
            loss = loss + weight * find_feature_masks(model).mask_area().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        areas[weight] = find_feature_masks(model).mask_area().detach()
        assert areas[weight].shape == (3,)
    assert (areas[100.0] < areas[0.0] - 0.03).all(), areas


@pytest.mark.parametrize("residual", [False, True])
def test_the_decision_map_splits_the_logit_over_positions(residual: bool) -> None:
    model = _model(mask_residual=residual).eval()
    net = find_feature_masks(model)
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
        bias = net.bias.clone()
        towards = {}
        for side, value in (("one", 100.0), ("zero", -100.0)):  # a bias that decides: the map follows the side
            net.bias.fill_(value)
            towards[side] = attribute_maps(model, images, attribute=1)
        net.bias.copy_(bias)
    per_position = towards["one"] - towards["zero"]  # the signed contribution of each position to the logit
    assert torch.allclose(per_position.mean(dim=(-2, -1))[:, 0] + bias[1, 0], logits[:, 1], atol=1e-4)
    assert (towards["one"] >= 0).all() and (towards["one"] * towards["zero"] == 0).all()


def test_the_decision_map_of_one_class_label_follows_the_class_asked_for() -> None:
    torch.manual_seed(0)
    model = create_model("test_resnet", 4, feature_masks=True, mask_width=8, output_stride=8).eval()
    images = torch.rand(3, 3, 32, 32)
    predicted = model(images).argmax(dim=1)
    by_class = [attribute_maps(model, images, targets=torch.full((3,), k)) for k in range(4)]
    assert torch.equal(attribute_maps(model, images), torch.stack([by_class[k][i] for i, k in
                                                                   enumerate(predicted.tolist())]))
    assert not torch.allclose(by_class[0], by_class[1])
