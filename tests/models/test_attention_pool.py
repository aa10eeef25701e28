from __future__ import annotations

import pytest
import torch

from robusttrain.maps import create_map_method
from robusttrain.models import AttentionPool, create_model


def _pool(mode: str, ratio: float = 0.3) -> AttentionPool:
    torch.manual_seed(0)
    return AttentionPool(16, num_heads=4, mode=mode, mask_ratio=ratio, grid=(4, 4))


def test_dropkey_masks_logits_only_in_training_and_rows_stay_distributions() -> None:
    pool, features = _pool("dropkey"), torch.randn(2, 16, 4, 4)
    pool.eval()
    clean = pool(features)
    assert torch.equal(clean, pool(features))
    pool.train()
    noisy = [pool(features) for _ in range(3)]
    assert not torch.equal(noisy[0], noisy[1]) and not torch.equal(noisy[0], clean)
    # Dropped before the softmax: every attention row still sums to 1, and some keys got exactly 0.
    rows = pool.last_attention.sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)
    assert (pool.last_attention == 0).float().mean() > 0.15


def test_dropout_variant_rescales_after_the_softmax() -> None:
    pool = _pool("dropout")
    pool.train()
    pool(torch.randn(2, 16, 4, 4))
    rows = pool.last_attention.sum(-1)  # kept before dropout: a distribution
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)
    plain = _pool("none").train()
    assert torch.equal(plain(torch.ones(1, 16, 4, 4)), plain(torch.ones(1, 16, 4, 4)))


def test_extreme_mask_ratio_leaks_no_inf_or_nan() -> None:
    pool = _pool("dropkey", ratio=0.999).train()
    out = pool(torch.randn(4, 16, 4, 4) * 100)
    assert torch.isfinite(out).all() and torch.isfinite(pool.last_attention).all()


def test_token_map_sums_to_one_and_follows_the_feature_size() -> None:
    pool = _pool("dropkey").eval()
    pool(torch.randn(3, 16, 5, 6))  # another grid than the position embedding's: it is resized
    maps = pool.token_map()
    assert maps.shape == (3, 1, 5, 6)
    assert torch.allclose(maps.sum(dim=(1, 2, 3)), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize(("name", "kwargs"), [("test_resnet", {"output_stride": 16}), ("test_efficientnet", {}),
                                              ("test_convnext", {})])
def test_wrapper_fits_several_timm_cnn_families(name: str, kwargs: dict) -> None:
    model = create_model(name, num_classes=3, attention_pool="dropkey", mask_ratio=0.2, **kwargs)
    images = torch.rand(2, 3, 64, 64)
    model.train()
    out = model(images)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert model.backbone.pool.qkv.weight.grad is not None
    maps = create_map_method("pool_attention", model)(images)
    cam = create_map_method("gradcam", model)(images)
    assert maps.shape == cam.shape == (2, 1, 64, 64)


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="unknown attention-pool mode 'dropkeys'"):
        AttentionPool(16, mode="dropkeys")
    with pytest.raises(ValueError, match="must divide the 10 feature channels"):
        AttentionPool(10, num_heads=4)
    with pytest.raises(ValueError, match="pool_attention needs a model with AttentionPool"):
        create_map_method("pool_attention", create_model("test_resnet", 2))
