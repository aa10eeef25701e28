"""How much of the true object a thresholded map region keeps, and how much of the image it takes.

The background swap keeps, and the reweighting's background-only view removes, ``region_from_maps(maps,
threshold, grow)``. This measures, for trained models on the built-in benchmark's training split (true masks),
the share of the image the region covers, the share of the object inside it and how often the whole object
(> 95%) is inside, for a grid of thresholds and growths.

Example:
    python research/studies/region_coverage.py --data data/synth_waterbirds --runs reports/demo/ERM/seed_0 \
        reports/demo/reweight_background_swap_Grad-CAM_maps/seed_0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from robusttrain.data.waterbirds import WaterbirdsDataset
from robusttrain.eval.localization import energy_in_mask
from robusttrain.maps import create_map_method
from robusttrain.models import create_model, load_weights
from robusttrain.transforms import region_from_maps


def coverage_rows(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor,
                  thresholds: list[float], growths: list[float]) -> list[tuple[float, float, float, float, float]]:
    """(threshold, grow, region share of the image, object share inside the region, whole-object rate)."""
    maps = create_map_method("gradcam", model)(images, targets)
    objects = (masks > 0.5).float()
    rows = []
    for threshold in thresholds:
        for grow in growths:
            regions = region_from_maps(maps, threshold, grow)
            inside = energy_in_mask(objects, regions)  # share of each object inside its region
            whole = float((inside > 0.95).float().mean())
            rows.append((threshold, grow, float(regions.mean()), float(inside.mean()), whole))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synth_waterbirds")
    parser.add_argument("--runs", nargs="+", required=True, help="training run folders holding model.pt")
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--images", type=int, default=400, help="evenly spaced training images")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.5, 0.3, 0.2])
    parser.add_argument("--grow", nargs="+", type=float, default=[0.0, 0.03, 0.06],
                        help="region growth as a fraction of the image side (0.03 = 2 px at 64 px)")
    args = parser.parse_args()
    dataset = WaterbirdsDataset(args.data, split="train")
    step = max(1, len(dataset) // args.images)
    items = [dataset[i] for i in range(0, len(dataset), step)][: args.images]
    images = torch.stack([item["image"] for item in items])
    targets = torch.tensor([item["target"] for item in items])
    masks = torch.stack([item["mask"] for item in items])
    print(f"{len(items)} training images; objects cover {float((masks > 0.5).float().mean()):.3f} of the image\n")
    print("| run | threshold | grow (image side) | region share | object inside | whole object |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        model = create_model(args.model, num_classes=2)
        load_weights(model, Path(run) / "model.pt")
        model.eval()
        for threshold, grow, share, inside, whole in coverage_rows(model, images, targets, masks,
                                                                   args.thresholds, args.grow):
            print(f"| {Path(run).parent.name} | {threshold} | {grow} | {share:.3f} | {inside:.3f} | {whole:.3f} |")


if __name__ == "__main__":
    main()
