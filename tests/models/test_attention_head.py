"""The attention head: W in [0, 1] at the input size, bounded cost on large images, clear errors."""

from __future__ import annotations

import pytest
import torch

from robusttrain.models import AttentionHead, JointAttentionModel, create_model, find_attention_head


def test_head_maps_have_the_input_size_also_when_run_at_a_bounded_size() -> None:
    torch.manual_seed(0)
    images = torch.rand(2, 3, 96, 64)
    full, bounded = AttentionHead(width=8).eval(), AttentionHead(width=8, max_size=32).eval()
    bounded.load_state_dict(full.state_dict())
    for head in (full, bounded):
        maps = head(images)
        assert maps.shape == (2, 1, 96, 64) and 0 <= maps.min() and maps.max() <= 1
    assert not torch.allclose(full(images), bounded(images))  # the bounded head saw a 32 x 21 image


def test_joint_model_is_the_task_model_plus_a_findable_head() -> None:
    model = create_model("test_resnet", 3, attention_head=True, head_width=8, head_max_size=16)
    assert isinstance(model, JointAttentionModel) and model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    assert find_attention_head(model).max_size == 16
    with pytest.raises(ValueError, match="no attention head"):
        find_attention_head(create_model("test_resnet", 3))
    with pytest.raises(ValueError, match=r"expects images \(B, 3, H, W\)"):
        model.attention(torch.rand(2, 1, 32, 32))


def test_checkpoints_of_the_joint_model_and_of_the_plain_model_load(tmp_path) -> None:
    torch.manual_seed(0)
    joint = create_model("test_resnet", 2, attention_head=True, head_width=8)
    torch.save(joint.state_dict(), tmp_path / "joint.pt")
    torch.save(joint.task_model.state_dict(), tmp_path / "plain.pt")
    again = create_model("test_resnet", 2, attention_head=True, head_width=8, checkpoint=tmp_path / "joint.pt")
    for key, value in joint.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    from_plain = create_model("test_resnet", 2, attention_head=True, head_width=8, checkpoint=tmp_path / "plain.pt")
    for key, value in joint.task_model.state_dict().items():
        assert torch.equal(value, from_plain.task_model.state_dict()[key]), key
