"""Do the map sources find the object? Localisation, faithfulness and sanity of every registered map method.

Trains (or loads) a model on a *group-balanced* version of the built-in benchmark, where the background
carries no label information, so a model that works must use the object. Then, on test images with exact
masks, it reports per method: energy inside the mask, pointing game (exact and 3 px tolerance), IoU at 0.5,
RISE deletion / insertion AUC, against a centred-Gaussian baseline and the uniform map (whose energy equals
the mask's area share); the class-preservation rate of degradation maps; and the cascading
model-parameter randomisation check (Spearman and HOG similarity per randomised layer group).

Example:
    python recipes/map_quality.py --output-dir reports/map_quality
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from robusttrain.data import WaterbirdsDataset, build_eval_transform
from robusttrain.eval import (
    cascading_randomization,
    centre_maps,
    deletion_insertion,
    energy_in_mask,
    mask_iou,
    pointing_game,
    write_tables_csv,
)
from robusttrain.experiments import train_argv
from robusttrain.maps import create_map_method, list_map_methods
from robusttrain.models import create_model, load_weights
from robusttrain.training import OneLineParser
from robusttrain.training.cli import refusing

ROOT = Path(__file__).resolve().parents[1]


def localisation(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, maps: torch.Tensor,
                 steps: int) -> dict[str, float]:
    curves = deletion_insertion(model, images, maps, steps=steps)
    return {
        "energy_in_mask": float(energy_in_mask(maps, masks).mean()),
        "pointing_game": float(pointing_game(maps, masks).float().mean()),
        "pointing_game_3px": float(pointing_game(maps, masks, tolerance=3).float().mean()),
        "iou_at_0.5": float(mask_iou(maps, masks).mean()),
        "deletion_auc": float(curves["deletion"].mean()),
        "insertion_auc": float(curves["insertion"].mean()),
    }


def markdown(results: dict[str, Any]) -> str:
    cols = ["energy_in_mask", "pointing_game", "pointing_game_3px", "iou_at_0.5", "deletion_auc", "insertion_auc"]
    lines = ["| Map | " + " | ".join(cols) + " | class kept |", "|---" * (len(cols) + 2) + "|"]
    for name, row in results["methods"].items():
        kept = row.get("class_preserved")
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in cols)
                     + f" | {'-' if kept is None else f'{100 * kept:.1f}%'} |")
    lines += ["", "Cascading randomisation (Spearman / HOG similarity to the trained model's maps):", "",
              "| Map | " + " | ".join(results["sanity_groups"]) + " |", "|---" * (len(results["sanity_groups"]) + 1)
              + "|"]
    for name, steps in results["sanity"].items():
        lines.append(f"| {name} | " + " | ".join(f"{s['spearman']:.2f} / {s['hog']:.2f}" for s in steps) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="reports/map_quality")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    parser.add_argument("--data-dir", default="data/synth_balanced")
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--weights", default=None, help="trained model.pt to explain (default: train one)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=256, help="test images to explain")
    parser.add_argument("--sanity-images", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16, help="deletion/insertion steps")
    parser.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="flags passed on to robusttrain train (the model's training)")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    weights = args.weights
    if weights is None:
        run = out / "balanced_model"
        train_argv(["-c", str(ROOT / "configs" / "erm.yaml"), "--data-dir", args.data_dir, "--generate",
                           "--benchmark-correlation", "0.5", "--model", args.model, "--epochs", str(args.epochs),
                           "--output-dir", str(run), "--no-progress", *args.extra])
        weights = run / "model.pt"
    test = WaterbirdsDataset(args.data_dir, "test", build_eval_transform())
    model = create_model(args.model, test.num_classes)
    load_weights(model, weights)
    model.eval()
    picks = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: args.images].tolist()
    items = [test[i] for i in picks]
    images = torch.stack([it["image"] for it in items])
    masks = torch.stack([it["mask"] for it in items])
    with torch.no_grad():
        accuracy = float((model(images).argmax(1) == torch.tensor([it["target"] for it in items])).float().mean())

    results: dict[str, Any] = {"model": args.model, "images": len(items), "accuracy": accuracy,
                               "mask_area_share": float((masks > 0.5).float().mean()), "methods": {}, "sanity": {}}
    results["methods"]["centre baseline"] = localisation(model, images, masks, centre_maps(masks), args.steps)
    for name in args.methods or list_map_methods():
        method = create_map_method(name, model)
        chunks, kept = [], []
        for start in range(0, len(images), 64):
            chunks.append(method(images[start : start + 64]))
            if hasattr(method, "preserved_fraction"):
                kept.append(method.preserved_fraction() * len(chunks[-1]))
        maps = torch.cat(chunks)
        row = localisation(model, images, masks, maps, args.steps)
        if kept:
            row["class_preserved"] = sum(kept) / len(images)
        results["methods"][name] = row
        steps = cascading_randomization(model, lambda m, n=name: create_map_method(n, m),
                                        images[: args.sanity_images])
        results["sanity"][name] = steps
        print(f"{name}: {row}", flush=True)
    results["sanity_groups"] = ["trained"] + [s["randomized"][-1] for s in steps[1:]]
    table = markdown(results)
    (out / "map_quality.json").write_text(json.dumps(results, indent=2))
    (out / "map_quality.md").write_text(table + "\n")
    if args.csv:
        write_tables_csv(table, args.csv)
    print(f"\nmodel accuracy on these images: {100 * accuracy:.1f}%; mask area share "
          f"{100 * results['mask_area_share']:.1f}% (= a uniform map's energy in mask)\n\n{table}")
    return 0


if __name__ == "__main__":  # bad input: one line, exit 2; Ctrl-C: one line, exit 130
    sys.exit(refusing("recipes/map_quality.py", main))
