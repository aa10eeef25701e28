"""The default configuration is scale-free: no option in steps or pixels, the same meaning on any dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from robusttrain.callbacks import build_callbacks
from robusttrain.models import create_model
from robusttrain.types import Batch, TrainState

CALLBACK_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "callbacks"
DEFAULT = CALLBACK_CONFIGS / "default.yaml"
WITH_SWAP = CALLBACK_CONFIGS / "default_swap.yaml"
WITH_BLENDS = CALLBACK_CONFIGS / "minority_blends.yaml"
DATASET_UNITS = {"start_step", "every", "dilate", "blur_radius", "head_max_size", "cache_resolution"}


def _numbers(node: object, key: str = "") -> list[tuple[str, float]]:
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _numbers(v, k)]
    if isinstance(node, list):
        return [pair for v in node for pair in _numbers(v, key)]
    return [(key, node)] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


@pytest.mark.parametrize("path", [DEFAULT, WITH_SWAP, WITH_BLENDS], ids=lambda p: p.stem)
def test_the_default_and_its_variants_have_no_option_in_steps_or_pixels(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    numbers = _numbers(config)
    assert not {key for key, _ in numbers} & DATASET_UNITS
    assert all(0 <= value <= 1 for key, value in numbers if key != "alpha"), numbers  # shares of training/image


@pytest.mark.parametrize(("size", "total_steps"), [(32, 4), (96, 8)])
def test_the_swap_config_swaps_from_half_of_any_run_with_maps_of_the_swapped_rows(size: int, total_steps: int) -> None:
    config = yaml.safe_load(WITH_SWAP.read_text())
    torch.manual_seed(0)
    model = create_model("test_resnet", 2)
    callbacks = build_callbacks(config["callbacks"], config["maps"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    state = TrainState(model=model, optimizer=optimizer, total_steps=total_steps)
    swapped = []
    for _ in range(total_steps):
        batch = Batch(images=torch.rand(8, 3, size, size), targets=torch.randint(0, 2, (8,)), indices=torch.arange(8))
        batch = callbacks.on_batch_start(state, batch)
        outputs = model(batch.images)
        losses = callbacks.on_loss(state, batch, outputs, F.cross_entropy(outputs, batch.targets, reduction="none"))
        optimizer.zero_grad()
        losses.mean().backward()
        optimizer.step()
        state.global_step += 1
        callbacks.on_step_end(state)
        swapped.append(0 if batch.randomized is None else int(batch.randomized.sum()))
    half = total_steps // 2
    assert not any(s for s in swapped[:half]) and any(swapped[half:])
    gradcam = callbacks.maps.sources["gradcam"]
    assert gradcam.calls == sum(1 for s in swapped if s)  # one Grad-CAM per step that swaps, none before
    assert gradcam.computed == sum(swapped)  # and only for the rows the swap changes
