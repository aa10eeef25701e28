from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from robusttrain.models import create_model


def test_model_takes_unit_range_images_and_checks_them() -> None:
    model = create_model("test_resnet", num_classes=3)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match="3-channel images, got 1 channels"):
        model(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_unknown_names_and_two_weight_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown timm model 'resnet_nonexistent'"):
        create_model("resnet_nonexistent", 2)
    two_sources = {"pretrained": True, "checkpoint": tmp_path / "w.pt"}
    with pytest.raises(ValueError, match="one source of initial weights"):
        create_model("test_resnet", 2, **two_sources)


def test_pretrained_weights_from_a_local_timm_file_fine_tune_with_a_new_head(tmp_path: Path) -> None:
    """timm's own path (``pretrained_cfg_overlay=dict(file=...)``): the backbone loads, the classifier is re-made
    for the new class count by timm, as it is with the hub's weights."""
    source = timm.create_model("test_resnet", num_classes=1000)
    for path in (tmp_path / "weights.pth", tmp_path / "weights.safetensors"):
        if path.suffix == ".safetensors":
            save_file(source.state_dict(), str(path))
        else:
            torch.save(source.state_dict(), path)
        model = create_model("test_resnet", num_classes=2, pretrained_file=path)
        assert torch.equal(model.backbone.conv1[0].weight, source.conv1[0].weight)
        assert model.backbone.fc.out_features == 2
    with pytest.raises(FileNotFoundError, match="pretrained weights file not found"):
        create_model("test_resnet", 2, pretrained_file=tmp_path / "missing.pth")
    torch.save(timm.create_model("test_vit").state_dict(), tmp_path / "vit.pth")
    with pytest.raises(ValueError, match=r"could not load pretrained weights of test_resnet from file .*vit\.pth"):
        create_model("test_resnet", 2, pretrained_file=tmp_path / "vit.pth")


def test_local_checkpoint_with_another_head_is_fine_tuned(tmp_path: Path) -> None:
    source = create_model("test_resnet", num_classes=5)
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": source.backbone.state_dict()}, path)
    model = create_model("test_resnet", num_classes=2, checkpoint=path)
    stem = "backbone.conv1.0.weight"
    assert torch.equal(model.state_dict()[stem], source.state_dict()[stem])
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        create_model("test_resnet", 2, checkpoint=tmp_path / "missing.pt")
    torch.save(create_model("test_vit", 2).state_dict(), path)
    with pytest.raises(ValueError, match="does not fit this model"):
        create_model("test_resnet", 2, checkpoint=path)
