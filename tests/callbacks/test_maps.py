from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robusttrain.callbacks import MapCache, MapSchedule
from robusttrain.types import Batch, TrainState

from ..attention.models import RedDetector, red_square_scenes


def test_cache_stores_quantised_maps_and_evicts_the_least_recently_used() -> None:
    cache = MapCache(resolution=4, capacity=2)
    maps = torch.rand(3, 1, 8, 8)
    cache.put(torch.tensor([1, 2]), maps[:2])
    cache.get(torch.tensor([1]))  # 1 is now the most recently used
    cache.put(torch.tensor([3]), maps[2:])
    got, found = cache.get(torch.tensor([1, 2, 3]))
    assert found.tolist() == [True, False, True] and len(cache) == 2
    expected = torch.nn.functional.interpolate(maps[[0]], size=(4, 4), mode="area")
    assert torch.allclose(got[0], expected[0], atol=1 / 255)
    assert cache.nbytes() == 2 * 16


def test_cache_state_is_json_and_restores_on_disk(tmp_path: Path) -> None:
    cache = MapCache(resolution=4, capacity=8)
    cache.put(torch.tensor([10, 11]), torch.rand(2, 1, 4, 4))
    state = json.loads(json.dumps(cache.state_dict()))
    on_disk = MapCache(resolution=4, capacity=8, directory=tmp_path)
    on_disk.load_state_dict(state)
    assert (tmp_path / "map_cache.u8").is_file()
    a, _ = cache.get(torch.tensor([10, 11]))
    b, found = on_disk.get(torch.tensor([10, 11]))
    assert found.all() and torch.equal(a, b)
    with pytest.raises(ValueError, match="cached maps are 4px"):
        MapCache(resolution=8).load_state_dict(state)


def test_schedule_refreshes_a_fraction_every_k_steps_and_serves_the_rest_from_cache() -> None:
    model = RedDetector().eval()
    images, _ = red_square_scenes(batch=8)
    batch = Batch(images=images, targets=torch.ones(8, dtype=torch.long), indices=torch.arange(100, 108))
    schedule = MapSchedule("gradcam", every=2, fraction=0.5)
    state = TrainState(model=model, global_step=0)
    maps, available = schedule.maps(state, batch)
    assert schedule.computed == 4 and available.sum() == 4
    state.global_step = 1  # not a refresh step: only cached rows have maps
    maps_next, available_next = schedule.maps(state, batch)
    assert schedule.computed == 4 and torch.equal(available, available_next)
    assert (maps_next[available] - maps[available]).abs().mean() < 0.05  # 16 px cache, upsampled
    state.global_step = 2
    _, available = schedule.maps(state, batch)
    assert schedule.computed == 8 and available.sum() >= 4


def test_schedule_needs_indices_and_a_model() -> None:
    schedule = MapSchedule("gradcam")
    images, _ = red_square_scenes(batch=2)
    with pytest.raises(ValueError, match="state.model is not set"):
        schedule.maps(TrainState(), Batch(images=images, targets=torch.ones(2), indices=torch.arange(2)))
    with pytest.raises(ValueError, match="needs batch.indices"):
        schedule.maps(TrainState(model=RedDetector()), Batch(images=images, targets=torch.ones(2)))
    with pytest.raises(ValueError, match="fraction"):
        MapSchedule(fraction=0.0)


def test_degradation_maps_are_warm_started_from_the_cache() -> None:
    model = RedDetector().eval()
    images, masks = red_square_scenes(batch=4)
    batch = Batch(images=images, targets=torch.ones(4, dtype=torch.long), indices=torch.arange(4))
    schedule = MapSchedule("degradation", method_options={"steps": 3})
    first, _ = schedule.maps(TrainState(model=model, global_step=0), batch)
    quality = [((first * masks).sum() / first.sum()).item()]
    for step in range(1, 20):
        maps, _ = schedule.maps(TrainState(model=model, global_step=step), batch)
    quality.append(((maps * masks).sum() / maps.sum()).item())
    # 3 optimisation steps per call are nothing on their own; chained through the cache they converge.
    assert quality[1] > quality[0] + 0.3 and quality[1] > 0.5


def test_free_maps_are_cached_from_the_training_pass_without_running_the_method() -> None:
    from robusttrain.callbacks import BackgroundRandomizationCallback, CallbackList
    from robusttrain.models import create_model

    torch.manual_seed(0)
    model = create_model("test_resnet", 2, attention_pool="dropkey", output_stride=16)
    callback = BackgroundRandomizationCallback(p=1.0, mode="swap", method="pool_attention", from_training_pass=True)
    callbacks = CallbackList([callback])
    state = TrainState(model=model)
    batch = Batch(images=torch.rand(4, 3, 32, 32), targets=torch.tensor([0, 1, 0, 1]), indices=torch.arange(4))
    for step in range(2):  # step 0: no maps yet; step 1: the cached maps of step 0's training pass
        state.global_step = step
        maps, available = callback.schedule.maps(state, batch)
        assert available.all() == (step == 1) and available.any() == (step == 1)
        changed = callbacks.on_batch_start(state, batch)
        outputs = model(changed.images)
        callbacks.on_loss(state, changed, outputs, torch.zeros(4))
        callbacks.on_step_end(state)
        expected = model.backbone.pool.last_training_map
        recorded = callback.schedule.cache.get(torch.arange(4))[0]
        assert torch.allclose(recorded, torch.nn.functional.interpolate(expected / expected.amax((2, 3), True),
                              size=recorded.shape[-2:], mode="bilinear"), atol=0.02)
    assert callback.schedule.computed == 8  # recorded twice for 4 samples, the method itself never ran
    with pytest.raises(ValueError, match="from_training_pass needs method 'pool_attention'"):
        BackgroundRandomizationCallback(method="gradcam", from_training_pass=True)
