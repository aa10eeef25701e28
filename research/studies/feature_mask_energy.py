"""Energy of an attribute's map on the region that carries it, over a uniform map's, for several ways of
collapsing a feature-mask model's per-feature masks into one map per attribute.

The ``feature_masks`` map source's two weightings: the part of each position's contribution to the attribute's
logit, ``sum_c w_c M_c F_c``, that pushes towards the model's decision (``decision``, the default: a
class-activation map over the masked features), and the importance-weighted masked features (``importance``);
alternatives: the importance-weighted masks alone (``masks``) and the absolute per-position logit contribution
(``abs_logit``). Models are the runs of
``recipes/feature_masks.py``; the data is that recipe's fixed test subset (exact object masks; the background for
the domain attribute); importances as in the recipe's mask study (weight importance on 512 training images).

Example:
    python research/studies/feature_mask_energy.py --runs reports/feature_masks/runs/multi_channel_s0 \
        reports/feature_masks/runs/multi_channel_s1 reports/feature_masks/runs/multi_channel_s2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from robusttrain.eval import energy_in_mask
from robusttrain.feature_masks import (
    BACKGROUND_ATTRIBUTES,
    MAP_WEIGHTINGS,
    attribute_maps,
    feature_importance,
    find_feature_masks,
    importance_images,
    study_test_data,
)
from robusttrain.maps.base import to_unit_maps
from robusttrain.models import ModelConfig, load_weights


def candidate_maps(model: torch.nn.Module, images: torch.Tensor, attribute: int) -> dict[str, torch.Tensor]:
    """Each definition's raw ``(B, 1, h, w)`` map of ``attribute``."""
    net = find_feature_masks(model)
    with torch.no_grad():
        features = model.forward_features(images)
        masks = net.masks(features, transformed=False)[:, attribute]
        importance = net.importance[attribute]
        weight = net.weight[attribute].sum(dim=0)  # one logit per attribute (BCE); a K-class head sums its rows
        logit_map = (masks * features * weight[None, :, None, None]).sum(1, keepdim=True)
        maps = {weighting: attribute_maps(model, images, attribute, weighting) for weighting in MAP_WEIGHTINGS}
        return {**maps, "masks": (masks * importance[None, :, None, None]).sum(1, keepdim=True),
                "abs_logit": logit_map.abs()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run folders with model.json and model.pt")
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args(argv)
    # The data the recipe evaluated the runs on, from the first run's saved options.
    options = json.loads((Path(args.runs[0]) / "options.json").read_text())
    data = study_test_data(options["data_dir"], options["image_size"], options["attributes"], args.images)
    train_images = importance_images(options["data_dir"], options["image_size"])
    images, objects = data["images"][: args.images], data["masks"][: args.images]
    ratios: dict[tuple[str, str], list[float]] = {}
    for run in args.runs:
        model = ModelConfig.load(run).build()
        load_weights(model, Path(run) / "model.pt")
        model.eval()
        net = find_feature_masks(model)
        if not net.importance.any():  # as the recipe's mask study: weight importance on training images
            net.set_transform(None, feature_importance(model, train_images.split(128), "weights"))
        for a, name in enumerate(options["attributes"]):
            region = 1 - objects if name in BACKGROUND_ATTRIBUTES else objects
            for definition, maps in candidate_maps(model, images, a).items():
                share = energy_in_mask(to_unit_maps(maps, images.shape[-2:]), region).mean() / region.mean()
                ratios.setdefault((name, definition), []).append(float(share))
    definitions = (*MAP_WEIGHTINGS, "masks", "abs_logit")
    print(f"{len(args.runs)} runs, {len(images)} test images; energy over uniform, mean (min-max over runs)")
    print("| attribute | " + " | ".join(definitions) + " |")
    print("|---" * (len(definitions) + 1) + "|")
    for name in options["attributes"]:
        cells = [ratios[(name, d)] for d in definitions]
        print(f"| {name} | " + " | ".join(f"{statistics.mean(c):.2f} ({min(c):.2f}-{max(c):.2f})" for c in cells)
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
