"""The joint-attention-head paper's ellipse experiments: task error and attention IoU, full loss vs ablation.

For one of the three generated datasets, trains a timm model with an attention head through the
``joint_attention`` callback in a plain PyTorch loop, twice with the same data, seed and budget:
``full`` (task + background-replaced + area terms) and ``no_background_term`` (b = 0, the ablation).
Reports the mean test error in the paper's unit (degrees or pixels) and the IoU of ``W > 0.5`` with the
ellipse masks, writes ``results.json`` and a PNG of test images, W maps and true masks.

Example:
    python recipes/ellipses.py -c configs/ellipses/inclination.yaml --output-dir reports/ellipses/inclination
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from robusttrain.callbacks import JointAttentionCallback
from robusttrain.config import parse_with_config, save_config
from robusttrain.data.ellipses import KINDS, PAPER_SIZES, EllipseDataset, target_errors
from robusttrain.eval import mask_iou, write_tables_csv
from robusttrain.models import create_model
from robusttrain.training import OneLineParser
from robusttrain.training.cli import refusing
from robusttrain.types import Batch, TrainState

UNITS = {"inclination": "degrees", "intersection_points": "pixels", "intersection_objects": "pixels"}
VARIANTS = {"full": {}, "no_background_term": {"background_weight": 0.0}}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=KINDS, default="inclination")
    parser.add_argument("--train-size", type=int, default=None, help="default: the paper's size")
    parser.add_argument("--test-size", type=int, default=None, help="default: the paper's size")
    parser.add_argument("--model", default="test_resnet", help="any timm model name")
    parser.add_argument("--head-width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--task-weight", type=float, default=1.0, help="a")
    parser.add_argument("--background-weight", type=float, default=1.0, help="b")
    parser.add_argument("--area-weight", type=float, default=50.0, help="c")
    parser.add_argument("--background-area", type=float, default=0.92, help="S_R")
    parser.add_argument("--replacement", choices=("noise", "swap", "mean"), default="noise")
    parser.add_argument("--blend", choices=("soft", "sample"), default="sample")
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--start-epoch", type=int, default=3,
                        help="epochs of the task loss alone before the head's terms start")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--output-dir", default="reports/ellipses")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    return parser


def evaluate(model: torch.nn.Module, dataset: EllipseDataset) -> dict[str, float]:
    """Mean and median task error in the paper's unit, mean IoU of ``W > 0.5`` with the ellipse masks."""
    model.eval()
    errors, ious = [], []
    with torch.no_grad():
        for raw in DataLoader(dataset, batch_size=256):
            errors.append(target_errors(dataset.kind, model(raw["image"]), raw["raw_target"]))
            ious.append(mask_iou(model.attention(raw["image"]), raw["mask"], normalize=False))
    error, iou = torch.cat(errors), torch.cat(ious)
    return {"error_mean": float(error.mean()), "error_median": float(error.median()),
            "attention_iou": float(iou.mean()), "unit": UNITS[dataset.kind]}


def train_variant(args: argparse.Namespace, overrides: dict[str, Any], train_set: EllipseDataset,
                  test_set: EllipseDataset) -> tuple[torch.nn.Module, dict[str, float]]:
    torch.manual_seed(args.seed)
    model = create_model(args.model, num_classes=2, attention_head=True, head_width=args.head_width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))
    options = {"task_weight": args.task_weight, "background_weight": args.background_weight,
               "area_weight": args.area_weight, "background_area": args.background_area,
               "replacement": args.replacement, "blend": args.blend, "temperature": args.temperature,
               "start_step": args.start_epoch * len(loader)}
    callback = JointAttentionCallback(**{**options, **overrides})
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.epochs * len(loader))
    state = TrainState(model=model, optimizer=optimizer)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        state.epoch = epoch
        model.train()
        for raw in tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False):
            batch = Batch.from_dict(raw)
            outputs = model(batch.images)
            losses = (outputs - batch.targets).pow(2).mean(dim=1)
            losses = callback.on_loss(state, batch, outputs, losses)
            optimizer.zero_grad(set_to_none=True)
            losses.mean().backward()
            optimizer.step()
            scheduler.step()
            state.global_step += 1
    metrics = evaluate(model, test_set)
    metrics["train_seconds"] = time.perf_counter() - start
    return model, metrics


def save_examples(models: dict[str, torch.nn.Module], dataset: EllipseDataset, path: Path, count: int = 12) -> None:
    """Rows: test images, then each model's W, then the true masks."""
    from PIL import Image

    images = torch.stack([dataset[i]["image"] for i in range(count)])
    rows = [images]
    with torch.no_grad():
        rows += [model.attention(images).repeat(1, 3, 1, 1) for model in models.values()]
    rows.append(dataset.masks[:count].repeat(1, 3, 1, 1))
    grid = torch.cat([torch.cat(list(row.permute(0, 2, 3, 1)), dim=1) for row in rows], dim=0)
    picture = Image.fromarray((grid.numpy() * 255).round().astype(np.uint8))
    picture.resize((picture.width * 4, picture.height * 4), Image.NEAREST).save(path)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_with_config(build_parser(), argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_size, test_size = PAPER_SIZES[args.dataset]
    train_set = EllipseDataset(args.dataset, args.train_size or train_size, args.seed, "train")
    test_set = EllipseDataset(args.dataset, args.test_size or test_size, args.seed, "test")
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    save_config(args, output / "config.yaml")
    models, results = {}, {}
    for name in args.variants:
        models[name], results[name] = train_variant(args, VARIANTS[name], train_set, test_set)
    save_examples(models, test_set, output / "examples.png")
    summary = {"dataset": args.dataset, "train_size": len(train_set), "test_size": len(test_set),
               "results": results}
    (output / "results.json").write_text(json.dumps(summary, indent=2))
    lines = [f"| dataset | variant | error ({UNITS[args.dataset]}) | median | IoU(W>0.5) | train s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {args.dataset} | {name} | {row['error_mean']:.2f} | {row['error_median']:.2f} | "
              f"{row['attention_iou']:.3f} | {row['train_seconds']:.0f} |" for name, row in results.items()]
    print(f"\n{args.dataset}: {len(train_set)} train / {len(test_set)} test\n" + "\n".join(lines))
    if args.csv:
        write_tables_csv("\n".join(lines), args.csv)
    return summary


if __name__ == "__main__":  # bad input: one line, exit 2; Ctrl-C: one line, exit 130
    sys.exit(refusing("recipes/ellipses.py", main))
