"""The typed model config a run saves: validated, round-tripped, and what the audit rebuilds the model from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robusttrain.audit import load_audit_model
from robusttrain.models import ModelConfig


def test_a_saved_config_rebuilds_the_same_network(tmp_path: Path) -> None:
    config = ModelConfig("test_resnet", 3, attention_pool="dropkey", mask_ratio=0.2, output_stride=16)
    torch.manual_seed(0)
    model = config.build()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    config.save(tmp_path)
    assert ModelConfig.load(tmp_path) == config
    rebuilt = load_audit_model(str(tmp_path), num_classes=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values(),
                                                 strict=True))
    with pytest.raises(ValueError, match="has 3 classes but the data has 2"):
        load_audit_model(str(tmp_path), num_classes=2)


def test_bad_values_and_keys_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="attention_head must be true or false, got 'false'"):
        ModelConfig("test_resnet", 2, attention_head="false")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1, got 1.5"):
        ModelConfig("test_resnet", 1.5)
    with pytest.raises(ValueError, match="attention_pool must be one of"):
        ModelConfig("test_resnet", 2, attention_pool="dropkeys")
    with pytest.raises(ValueError, match=r"unknown keys \['head_widht'\]"):
        ModelConfig.from_dict({"name": "test_resnet", "num_classes": 2, "head_widht": 8})
    (tmp_path / "model.json").write_text(json.dumps(["not", "a", "mapping"]))
    with pytest.raises(ValueError, match="must hold a JSON object"):
        ModelConfig.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="has no model.json"):
        ModelConfig.load(tmp_path / "missing")


def test_a_file_that_is_not_weights_is_named(tmp_path: Path) -> None:
    from robusttrain.models import create_model

    (tmp_path / "notes.pt").write_text("hello world\n")
    with pytest.raises(ValueError, match="notes.pt is not a PyTorch weights file"):
        create_model("test_resnet", 2, checkpoint=tmp_path / "notes.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        create_model("test_resnet", 2, checkpoint=tmp_path / "list.pt")
