"""The DropKey paper's noise-robustness protocol: baseline vs Dropout vs DropKey attention pooling.

Three models with the same body, data and budget are trained on the group-balanced built-in benchmark
(so the object is what predicts the label): global average pooling (baseline), attention pooling with
Dropout on the attention weights, and attention pooling with DropKey. Gaussian noise of each variance is
added to the test images (in [0, 1]) and clipped back to [0, 1]; per variance the table and plots give
accuracy, the mean softmax confidence of the true class, and the Grad-CAM energy (final feature map, the
features that get pooled) inside the object's mask.

Example:
    python recipes/noise_robustness.py --output-dir reports/noise_robustness
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from robusttrain.config import load_config
from robusttrain.data import WaterbirdsDataset, build_eval_transform
from robusttrain.eval import add_noise, energy_in_mask, write_tables_csv
from robusttrain.experiments import train_argv
from robusttrain.maps import create_map_method
from robusttrain.models import ModelConfig
from robusttrain.training import OneLineParser, TrainOptions
from robusttrain.training.cli import refusing

ROOT = Path(__file__).resolve().parents[1]
# The paper's variances (0.1-2.0 and its 0.3-0.9 sweep), applied to images in [0, 1], plus a finer low range:
# at the paper's values every model here is already at chance, so the low range is where models differ.
VARIANCES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 0.6, 0.7, 0.9, 1.0, 1.5, 2.0)
POOLINGS = {"baseline": [], "dropout": ["--attention-pool", "dropout"], "dropkey": ["--attention-pool", "dropkey"]}


def evaluate(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor,
             variances: Sequence[float], batch: int = 128) -> list[dict[str, float]]:
    # Grad-CAM of the final feature map (the features that get pooled) for every model, so they are comparable.
    gradcam = create_map_method("gradcam", model, min_grid=1)
    rows = []
    for i, variance in enumerate(variances):
        hits, confidence, energy = [], [], []
        for start in range(0, len(images), batch):
            chunk = slice(start, start + batch)
            noisy = add_noise(images[chunk], variance, seed=1000 + i * 7919 + start)
            with torch.no_grad():
                probs = model(noisy).softmax(dim=1)
            hits.append(probs.argmax(1) == targets[chunk])
            confidence.append(probs.gather(1, targets[chunk, None])[:, 0])
            energy.append(energy_in_mask(gradcam(noisy, targets[chunk]), masks[chunk]))
        rows.append({"variance": variance, "accuracy": float(torch.cat(hits).float().mean()),
                     "confidence": float(torch.cat(confidence).mean()),
                     "gradcam_energy_in_mask": float(torch.cat(energy).mean())})
    return rows


def plot(results: dict[str, list[dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("accuracy", "confidence", "gradcam_energy_in_mask")
    figure, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4))
    for axis, key in zip(axes, keys, strict=True):
        for name, rows in results.items():
            axis.plot([r["variance"] for r in rows], [r[key] for r in rows], marker="o", label=name)
        axis.set_xlabel("noise variance")
        axis.set_title(key.replace("_", " "))
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: dict[str, list[dict[str, float]]]) -> str:
    variances = [r["variance"] for r in next(iter(results.values()))]
    lines = []
    for key in ("accuracy", "confidence", "gradcam_energy_in_mask"):
        lines += [f"**{key.replace('_', ' ')}**", "", "| model | " + " | ".join(f"{v:g}" for v in variances) + " |",
                  "|---" * (len(variances) + 1) + "|"]
        for name, rows in results.items():
            lines.append(f"| {name} | " + " | ".join(f"{r[key]:.3f}" for r in rows) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="reports/noise_robustness")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "noise_robustness.yaml"))
    parser.add_argument("--images", type=int, default=1024, help="test images evaluated per variance")
    parser.add_argument("--variances", nargs="+", type=float, default=list(VARIANCES))
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags passed on to robusttrain train")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    results: dict[str, Any] = {}
    for name, pooling in POOLINGS.items():
        run = out / name
        train_argv(["-c", args.config, "--output-dir", str(run), "--no-progress", *pooling, *args.extra])
        options, _ = TrainOptions.from_argv(["-c", str(run / "config.yaml")])
        test = WaterbirdsDataset(options.data_dir, "test", build_eval_transform(options.image_size))
        model = ModelConfig.load(run).build(checkpoint=run / "model.pt")
        device = torch.device("cuda" if torch.cuda.is_available() and not options.cpu else "cpu")
        model.to(device).eval()
        picks = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: args.images].tolist()
        items = [test[i] for i in picks]
        images = torch.stack([it["image"] for it in items]).to(device)
        masks = torch.stack([it["mask"] for it in items]).to(device)
        targets = torch.tensor([it["target"] for it in items], device=device)
        results[name] = evaluate(model, images, masks, targets, args.variances)
    table = markdown(results)
    (out / "noise_robustness.json").write_text(json.dumps(results, indent=2))
    (out / "noise_robustness.md").write_text(table + "\n")
    if args.csv:
        write_tables_csv(table, args.csv)
    plot(results, out / "noise_robustness.png")
    print(f"config: {load_config(args.config)}\n\n{table}\nplot: {out / 'noise_robustness.png'}")
    return 0


if __name__ == "__main__":  # bad input: one line, exit 2; Ctrl-C: one line, exit 130
    sys.exit(refusing("recipes/noise_robustness.py", main))
