"""The dataset audit shows where the shortcut is: occlusion maps of the estimate's net land on a small mark."""

from __future__ import annotations

import pytest
import torch

from robusttrain.audit import dataset_audit
from robusttrain.estimate import ESTIMATE, thumbnails
from robusttrain.estimate.network import as_input
from robusttrain.eval import energy_in_mask, pointing_game
from robusttrain.maps import Occlusion


def _marked_scenes(count: int = 320, size: int = 32, correlation: float = 0.95) -> tuple[dict, torch.Tensor]:
    """Grey noise with a faint centred disc or square (the label) and, on 95% of label-1 images and 5% of label-0
    ones, a small bright mark somewhere near the border (the shortcut); the marks' masks."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(count) % 2
    images = 0.45 + 0.1 * torch.rand(count, 1, size, size, generator=generator).expand(count, 3, size, size).clone()
    grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")).float() - size / 2
    disc = grid.norm(dim=0) < size / 6
    square = grid.abs().amax(0) < size / 7
    marks = torch.zeros(count, 1, size, size)
    for i, label in enumerate(labels.tolist()):
        images[i, :, disc if label else square] += 0.06
        marked = bool(torch.rand(1, generator=generator) < (correlation if label else 1 - correlation))
        if marked:
            top, left = (torch.randint(0, size // 4 - 3, (2,), generator=generator)
                         + torch.randint(0, 2, (2,), generator=generator) * (3 * size // 4)).tolist()
            images[i, :, top : top + 4, left : left + 4] = torch.tensor([1.0, 0.9, 0.2])[:, None, None]
            marks[i, :, top : top + 4, left : left + 4] = 1
    batch = {"image": images.clamp(0, 1), "target": labels, "index": torch.arange(count),
             "path": [f"scene_{i}.png" for i in range(count)]}
    return batch, marks


@pytest.mark.slow
def test_occlusion_maps_of_the_estimates_net_land_on_the_mark_that_predicts_the_label() -> None:
    batch, marks = _marked_scenes()
    audit = dataset_audit([batch], 2)
    assert audit["biased"], audit["verdict"]
    rows = audit["per_sample"]
    # the report's typical samples of label 1: the net's surest reading of that label, all of them marked
    typical = sorted((r for r in rows if r["label"] == 1 and not r["bias_conflicting"]),
                     key=lambda r: -r["estimate_p_label"])[:8]
    ids = torch.tensor([r["id"] for r in typical])
    assert marks[ids].flatten(1).amax(1).all()
    inputs = as_input(thumbnails(batch["image"][ids], ESTIMATE.side))
    maps = Occlusion(audit["shortcut_net"], scale="probability")(inputs, torch.ones(len(ids), dtype=torch.long))
    assert (maps.flatten(1).amax(1) > 0.05).float().mean() >= 0.75  # filling the mark moves the net's answer
    assert pointing_game(maps, marks[ids]).float().mean() >= 0.75
    assert energy_in_mask(maps, marks[ids]).mean() > 5 * marks[ids].mean()  # far above a uniform map's share
