from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robusttrain.maps import MapCache


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
