"""Every registered map method: output contract, model left untouched, hooks released, clear errors."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from robusttrain.eval import energy_in_mask, pointing_game
from robusttrain.maps import create_map_method, list_map_methods
from robusttrain.models import create_model

from .models import RedDetector, red_square_scenes

FAST = {"degradation": {"steps": 15}}
DEVICE = torch.device(os.environ.get("RT_TEST_DEVICE", "cpu"))  # RT_TEST_DEVICE=cuda runs these on a GPU
# need their own modules, not a hand-built model
TRAINED_WITH_THE_MODEL = ("pool_attention", "attention_head", "feature_masks")
NEEDS_MAPS_FROM_THE_INPUT = [m for m in list_map_methods() if m not in TRAINED_WITH_THE_MODEL]


def _method(name: str, model: nn.Module):
    return create_map_method(name, model, **FAST.get(name, {}))


def _cnn(name: str, num_classes: int, **kwargs) -> nn.Module:
    """A timm CNN; with attention pooling or an attention head for the methods that read them."""
    extra = {"pool_attention": {"attention_pool": "dropkey", "output_stride": 16},
             "attention_head": {"attention_head": True, "head_width": 8},
             "feature_masks": {"feature_masks": True, "mask_width": 8}}.get(name, {})
    return create_model("test_resnet", num_classes=num_classes, **extra, **kwargs)


def _backbone(model: nn.Module) -> nn.Module:
    return getattr(model, "task_model", model).backbone


def test_registry_lists_the_methods_and_names_unknown_ones() -> None:
    assert {"gradcam", "licnn", "degradation"} <= set(list_map_methods())
    with pytest.raises(ValueError, match="unknown map method 'gradcam2'; choose from"):
        create_map_method("gradcam2", RedDetector())


@pytest.mark.parametrize("name", list_map_methods())
def test_output_contract_on_a_timm_cnn(name: str) -> None:
    torch.manual_seed(0)
    model = _cnn(name, num_classes=3).to(DEVICE)
    images = torch.rand(4, 3, 48, 40, device=DEVICE)
    maps = _method(name, model)(images)
    assert maps.shape == (4, 1, 48, 40) and maps.dtype == torch.float32 and maps.device == images.device
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert not maps.requires_grad
    again = _method(name, model)(images)
    # Deterministic on CPU; CUDA backward kernels are not bit-exact, and degradation amplifies that a little.
    assert torch.equal(maps, again) if DEVICE.type == "cpu" else (maps - again).abs().mean() < 2e-2


@pytest.mark.parametrize("name", list_map_methods())
def test_running_a_method_leaves_training_untouched(name: str) -> None:
    torch.manual_seed(0)
    model = _cnn(name, num_classes=2, drop_rate=0.3).to(DEVICE)
    model.train()
    next(iter(_backbone(model).children())).eval()  # a mixed-mode model must keep its mixed modes
    images = torch.rand(4, 3, 32, 32, device=DEVICE)
    model(images).sum().backward()  # gradients from a training step are pending
    _backbone(model).get_submodule("body.layer1" if name in ("pool_attention", "feature_masks") else "layer1")\
        .requires_grad_(False)
    before = {
        "modes": {n: m.training for n, m in model.named_modules()},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "flags": {n: p.requires_grad for n, p in model.named_parameters()},
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
    }
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    _method(name, model)(images)
    after_rng = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, device=DEVICE).cpu())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert after_rng == (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, device=DEVICE).cpu())
    assert {n: m.training for n, m in model.named_modules()} == before["modes"]
    for n, b in model.named_buffers():
        assert torch.equal(b, before["buffers"][n]), n
    for n, p in model.named_parameters():
        assert torch.equal(p, before["params"][n]), n
        assert p.requires_grad == before["flags"][n], n
        assert (p.grad is None) == (before["grads"][n] is None), n
        if p.grad is not None:
            assert torch.equal(p.grad, before["grads"][n]), n
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


@pytest.mark.parametrize("name", NEEDS_MAPS_FROM_THE_INPUT)
def test_maps_land_on_the_object_a_hand_built_detector_looks_at(name: str) -> None:
    model = RedDetector().eval()
    images, masks = red_square_scenes()
    targets = torch.ones(len(images), dtype=torch.long)
    maps = create_map_method(name, model)(images, targets)
    assert energy_in_mask(maps, masks).mean() > 0.7
    assert pointing_game(maps, masks).all()


@pytest.mark.parametrize("name", ["gradcam", "degradation"])
@pytest.mark.parametrize("arch", ["test_vit", "mixer_s32_224"])
def test_token_models_get_maps_on_their_own_grid(name: str, arch: str) -> None:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=2, img_size=(64, 32))
    nn.init.normal_(model.backbone.head.weight, std=0.5)  # timm zero-initialises some heads
    maps = _method(name, model)(torch.rand(2, 3, 64, 32))
    assert maps.shape == (2, 1, 64, 32) and maps.max() > 0


def test_licnn_refuses_models_without_relu() -> None:
    with pytest.raises(ValueError, match="nn.ReLU"):
        create_map_method("licnn", create_model("test_vit", 2))


@pytest.mark.parametrize("name", list_map_methods())
def test_bad_input_gets_a_clear_error(name: str) -> None:
    model = _cnn(name, num_classes=2)
    method = _method(name, model)
    with pytest.raises(ValueError, match="NaN or infinite"):
        method(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="3-channel images, got 1"):
        method(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        method(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="empty batch"):
        method(torch.rand(0, 3, 16, 16))
    with pytest.raises(TypeError, match="floating point"):
        method(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    if name not in ("degradation", *TRAINED_WITH_THE_MODEL):  # these explain all outputs and take no targets
        with pytest.raises(ValueError, match="targets"):
            method(torch.rand(2, 3, 16, 16), torch.tensor([0, 5]))
