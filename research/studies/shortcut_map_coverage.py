"""Can the minority estimate's own net say where the object is? (#28 item 2: map-driven counterfactuals.)

A label-free counterfactual (DaC, MaskTune) needs the object's region: compose it with another class's
background. The estimate's small CNN (:mod:`robusttrain.estimate.network`) learns the shortcut first, so the
region its Grad-CAM marks for its own prediction should be the shortcut and the rest the object. This fits that
net on a dataset's training split (thumbnails, as the estimate does), takes Grad-CAM at one of its conv blocks for
the class it predicts, and measures, against the true masks, how much of the object the region left *outside* the
map keeps (``object kept``; ``whole object``: > 90% kept), how much of the image it takes and how much of it is
object (``precision``). A composite is only a counterfactual when the kept region holds the object and little of
its own background.

Example:
    python research/studies/shortcut_map_coverage.py \
        --data data/suite_v3/dev_cross_ring data/suite_v3/dev_texture_tee_triangle \
        --output reports/shortcut_map_coverage.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from robusttrain.data.waterbirds import WaterbirdsDataset
from robusttrain.estimate.network import ShortcutNet, as_input, fit_shortcut_net, thumbnails
from robusttrain.maps import create_map_method
from robusttrain.transforms import region_from_maps


def kept_region_rows(net: ShortcutNet, inputs: torch.Tensor, masks: torch.Tensor, block: int,
                     thresholds: list[float]) -> list[tuple[float, float, float, float, float]]:
    """(threshold, object kept, whole object, image share kept, precision) of the region outside the map of
    ``net`` (fitted on the thumbnails ``inputs``) at conv block ``block``, for the class it predicts."""
    with torch.no_grad():
        predicted = net(inputs).argmax(1)
    layer = f"features.{4 * block - 1}"  # the pooled output of conv block `block`
    maps = create_map_method("gradcam", net, target_layers=layer)(inputs, predicted)
    maps = F.interpolate(maps, size=masks.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
    objects = (masks > 0.5).float()
    rows = []
    for threshold in thresholds:
        kept = 1 - region_from_maps(maps, threshold)
        inside = (kept * objects).sum((1, 2, 3)) / objects.sum((1, 2, 3)).clamp_min(1)
        precision = (kept * objects).sum((1, 2, 3)) / kept.sum((1, 2, 3)).clamp_min(1)
        rows.append((threshold, float(inside.mean()), float((inside > 0.9).float().mean()), float(kept.mean()),
                     float(precision.mean())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="Waterbirds-layout datasets with masks")
    parser.add_argument("--blocks", nargs="+", type=int, default=[1, 2], choices=[1, 2, 3],
                        help="conv blocks of the net to take Grad-CAM at (1: finest grid)")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.1, 0.3, 0.5])
    parser.add_argument("--output", default="reports/shortcut_map_coverage.md", help="the table (markdown)")
    args = parser.parse_args()
    lines = ["| dataset | block (grid at 32 px) | threshold | object kept | whole object | image share kept | "
             "object share of the image | precision |", "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for root in args.data:
        dataset = WaterbirdsDataset(root, split="train")
        items = [dataset[i] for i in range(len(dataset))]
        images = torch.stack([item["image"] for item in items])
        labels = torch.tensor([item["target"] for item in items])
        masks = torch.stack([item["mask"] for item in items])
        share = float((masks > 0.5).float().mean())
        small = thumbnails(images)
        net = fit_shortcut_net(small, labels, int(labels.max()) + 1)  # once per dataset, for every block
        inputs = as_input(small)
        for block in args.blocks:
            for threshold, inside, whole, kept, precision in kept_region_rows(net, inputs, masks, block,
                                                                              args.thresholds):
                lines.append(f"| {Path(root).name} | {block} ({32 >> block} px) | {threshold} | {inside:.3f} | "
                             f"{whole:.3f} | {kept:.3f} | {share:.3f} | {precision:.3f} |")
                print(lines[-1], flush=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
