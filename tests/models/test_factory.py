from __future__ import annotations

from pathlib import Path

import pytest
import torch

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


def test_no_hub_downloads_and_unknown_names_are_named() -> None:
    with pytest.raises(ValueError, match="pretrained=True would download"):
        create_model("test_resnet", 2, pretrained=True)
    with pytest.raises(ValueError, match="unknown timm model 'resnet_nonexistent'"):
        create_model("resnet_nonexistent", 2)


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
