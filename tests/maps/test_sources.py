"""Map sources: computed once per step on the dataset's images, shared, cached by id; clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robusttrain.callbacks import BackgroundRandomizationCallback, CallbackList, ReweightCallback, build_callbacks
from robusttrain.maps import MapSource, create_map_method
from robusttrain.models import create_model
from robusttrain.types import Batch, TrainState

from ..maps.models import RedDetector, red_square_scenes


def _batch(n: int = 8, first_id: int = 100) -> Batch:
    images, masks = red_square_scenes(batch=n)
    return Batch(images=images, targets=torch.ones(n, dtype=torch.long), indices=torch.arange(first_id, first_id + n),
                 masks=masks)


def _step(callbacks: CallbackList, state: TrainState, batch: Batch, model: torch.nn.Module) -> Batch:
    """One training step as a loop runs it."""
    batch = callbacks.on_batch_start(state, batch)
    outputs = model(batch.images)
    losses = callbacks.on_loss(state, batch, outputs, F.cross_entropy(outputs, batch.targets, reduction="none"))
    state.optimizer.zero_grad()
    losses.mean().backward()
    state.optimizer.step()
    state.global_step += 1
    callbacks.on_step_end(state)
    return batch


def test_before_step_maps_refresh_a_fraction_every_k_steps_and_serve_the_rest_from_the_cache() -> None:
    model, batch = RedDetector().eval(), _batch()
    source = MapSource("gradcam", every=2, fraction=0.5, serve_cached=True)
    state = TrainState(model=model, global_step=0)
    first = source.before_step(state, batch)
    assert source.computed == 4 and source.calls == 1 and first.available.sum() == 4 and first.fresh.sum() == 4
    state.global_step = 1  # not a refresh step: only cached rows have maps
    cached = source.before_step(state, batch)
    assert source.calls == 1 and torch.equal(first.available, cached.available) and not cached.fresh.any()
    assert (cached.maps[first.available] - first.maps[first.available]).abs().mean() < 0.05  # 16 px cache
    state.global_step = 2
    assert source.before_step(state, batch).available.sum() >= 4 and source.calls == 2


def test_cached_maps_reach_callbacks_only_when_the_source_serves_them() -> None:
    """With random crops and flips a cached map outlines another view of the sample: fresh maps only by default."""
    model, batch = RedDetector().eval(), _batch()
    source = MapSource("gradcam", every=2, fraction=0.5)
    first = source.before_step(TrainState(model=model, global_step=0), batch)
    later = source.before_step(TrainState(model=model, global_step=1), batch)
    assert first.available.sum() == 4 and not later.available.any() and later.maps.abs().sum() == 0
    assert len(source.cache) == 4  # still cached: it warm-starts methods that can use it


def test_degradation_maps_are_warm_started_from_the_cache() -> None:
    model, batch = RedDetector().eval(), _batch(4)
    source = MapSource("degradation", method_options={"steps": 3})
    quality = []
    for step in range(20):
        maps = source.before_step(TrainState(model=model, global_step=step), batch).maps
        if step in (0, 19):
            quality.append(((maps * batch.masks).sum() / maps.sum()).item())
    # 3 optimisation steps per call are nothing on their own; chained through the cache they converge.
    assert quality[1] > quality[0] + 0.3 and quality[1] > 0.5


def test_training_pass_gradcam_is_the_gradcam_of_the_forward_the_loop_runs() -> None:
    torch.manual_seed(0)
    model = create_model("test_resnet", 2).eval()  # eval: no batch statistics, so both maps must agree
    images, targets = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 1, 0])
    batch = Batch(images=images, targets=targets, indices=torch.arange(4))
    source = MapSource("free", method="gradcam", from_training_pass=True)
    state = TrainState(model=model)
    source.arm(state, batch)
    outputs = model(images)
    found = source.after_forward(batch, outputs)
    separately = create_map_method("gradcam", model)(images, targets)
    assert found.fresh.all() and torch.allclose(found.maps, separately, atol=1e-5)
    assert all(p.grad is None for p in model.parameters())  # the maps' gradient never reaches the weights
    outputs.sum().backward()  # the training graph is still there for the loop's own backward
    assert not model._forward_hooks and not any(m._forward_hooks for m in model.modules())
    assert source.calls == 1 and len(source.cache) == 4


def test_one_map_computation_per_source_per_step_shared_by_every_callback() -> None:
    torch.manual_seed(0)
    model = create_model("test_resnet", 2)
    maps = {"before": {"method": "gradcam"},
            "free": {"method": "gradcam", "from_training_pass": True, "serve_cached": True}}
    for source in maps:
        callbacks = build_callbacks([{"name": "reweight", "source": source, "skip_randomized": True},
                                     {"name": "background_randomization", "source": source, "start_step": 2},
                                     {"name": "audit", "source": source, "output_dir": "/tmp/rt_unused"}], maps)
        state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), total_steps=4)
        for step in range(4):
            _step(callbacks, state, _batch(6, first_id=6 * (step % 2)), model)
            assert callbacks.maps.sources[source].calls == step + 1, (source, step)
        assert callbacks.maps.sources["before" if source == "free" else "free"].calls == 0  # nobody reads it


def test_the_cache_holds_maps_of_the_datasets_images_only() -> None:
    torch.manual_seed(0)
    model = create_model("test_resnet", 2)
    swap = BackgroundRandomizationCallback(p=0.5, mode="noise", source="free", seed=1)
    callbacks = CallbackList([swap, ReweightCallback(source="free")],
                             {"free": {"method": "gradcam", "from_training_pass": True, "serve_cached": True}})
    state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
    cache = callbacks.maps.sources["free"].cache
    _step(callbacks, state, _batch(6), model)  # no maps cached yet: nothing is swapped
    before, _ = cache.get(torch.arange(100, 106))
    changed = _step(callbacks, state, _batch(6), model)
    after, _ = cache.get(torch.arange(100, 106))
    assert 0 < int(changed.randomized.sum()) < 6
    assert torch.equal(after[changed.randomized], before[changed.randomized])  # composites' maps never cached


def test_sources_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="map source 'x': unknown map method 'gradcm'"):
        build_callbacks([{"name": "reweight", "source": "x"}], {"x": {"method": "gradcm"}})
    with pytest.raises(ValueError, match=r"map method 'gradcam' has no option\(s\) \['min_grd'\]"):
        build_callbacks([], {"x": {"method": "gradcam", "method_options": {"min_grd": 3}}})
    with pytest.raises(ValueError, match="cannot take maps from the training pass"):
        MapSource("x", method="licnn", from_training_pass=True)
    with pytest.raises(ValueError, match="fraction must be in"):
        MapSource("gradcam", fraction=0.0)
    with pytest.raises(ValueError, match="reads map source 'saliency'"):
        build_callbacks([{"name": "reweight", "source": "saliency"}])
    with pytest.raises(ValueError, match="reserved"):
        build_callbacks([], {"masks": {"method": "gradcam"}})


def test_a_source_needs_indices_and_a_model_and_callbacks_need_a_callback_list() -> None:
    source, batch = MapSource("gradcam"), _batch(2)
    with pytest.raises(ValueError, match="state.model is not set"):
        source.before_step(TrainState(), batch)
    with pytest.raises(ValueError, match="needs batch.indices"):
        source.before_step(TrainState(model=RedDetector()), batch.replace(indices=None))
    with pytest.raises(ValueError, match="run callbacks through a CallbackList"):
        ReweightCallback().on_loss(TrainState(model=RedDetector()), batch, None, torch.ones(2))


def test_free_pool_attention_maps_are_cached_from_the_training_pass() -> None:
    torch.manual_seed(0)
    model = create_model("test_resnet", 2, attention_pool="dropkey", output_stride=16)
    swap = BackgroundRandomizationCallback(p=1.0, mode="swap", source="pool")
    callbacks = CallbackList([swap], {"pool": {"method": "pool_attention", "from_training_pass": True,
                                                   "serve_cached": True}})
    state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
    batch = Batch(images=torch.rand(4, 3, 32, 32), targets=torch.tensor([0, 1, 0, 1]), indices=torch.arange(4))
    first = _step(callbacks, state, batch, model)  # no maps yet: nothing swapped, the pass's attention cached
    assert not first.randomized
    expected = model.backbone.pool.last_training_map
    recorded = callbacks.maps.sources["pool"].cache.get(torch.arange(4))[0]
    assert torch.allclose(recorded, F.interpolate(expected / expected.amax((2, 3), True),
                                                  size=recorded.shape[-2:], mode="bilinear"), atol=0.02)
    second = _step(callbacks, state, batch, model)
    assert second.randomized.all() and swap.changed == 4
    assert callbacks.maps.sources["pool"].calls == 2  # two captures, the method itself never ran
