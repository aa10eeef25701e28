"""Per-feature attention masks on multi-attribute data, with and without the intentional mask transformation.

Rows, same data, body, budget and seeds: ``plain`` (global pooling); ``single_mask`` (one mask per attribute, the
attention-branch baseline); ``multi_channel`` (a mask per feature and per attribute); ``intentional``
(multi_channel with its masks transformed from ``--transform-start`` on); ``multi_channel + inference transform``
(the transformation at test time only). Data: the built-in benchmark's attributes, the class ``y`` correlated with
the background ``place`` in training (``--resample-on y`` resamples ``y``'s estimated minority, as the default
does). On the group-balanced test split: per-attribute accuracy clean, under noise and on Mixed-Rand, the class's
worst group, the masks' correlations and each attribute's map energy on the region that carries it.

Example:
    python recipes/feature_masks.py -c configs/feature_masks.yaml --output-dir reports/feature_masks --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from robusttrain.callbacks import CallbackList, MinorityResamplingCallback, build_callbacks
from robusttrain.config import parse_with_config
from robusttrain.data import (
    AdaptiveEpochSampler,
    BenchmarkConfig,
    WaterbirdsDataset,
    build_eval_transform,
    build_train_transform,
    generate_benchmark,
)
from robusttrain.eval import add_noise, energy_in_mask, write_tables_csv
from robusttrain.feature_masks import (
    BACKGROUND_ATTRIBUTES,
    MAP_WEIGHTINGS,
    MaskTransform,
    feature_importance,
    find_feature_masks,
    importance_images,
    importance_overlap,
    mask_correlations,
    per_feature_maps,
    study_test_data,
    top_features,
)
from robusttrain.maps import create_map_method
from robusttrain.models import ModelConfig
from robusttrain.training import OneLineParser
from robusttrain.training.cli import refusing
from robusttrain.types import Batch, TrainState

VARIANTS = ("plain", "single_mask", "multi_channel", "intentional")
INFERENCE_ROW = "multi_channel + inference transform"
# Options that do not change what a run computes (where they came from, how runs are scheduled, how the data is
# rendered): the rest is saved with each run, and a finished run is reused only under the same options.
NOT_RUN_OPTIONS = ("config", "output_dir", "jobs", "threads", "run", "seeds", "variants", "generate",
                   "benchmark_fraction", "correlation")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="reports/feature_masks")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    parser.add_argument("--data-dir", default="data/synth_waterbirds")
    parser.add_argument("--generate", action=argparse.BooleanOptionalAction, default=True,
                        help="render the built-in benchmark into --data-dir first (reused when it exists)")
    parser.add_argument("--benchmark-fraction", type=float, default=1.0, help="split sizes relative to Waterbirds'")
    parser.add_argument("--correlation", type=float, default=0.95, help="P(place == y) in the training split")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--attributes", nargs="+",
                        default=["y", "place", "patterned", "warm_colour", "large_object"],
                        help="binary metadata columns, one output each")
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--output-stride", type=int, default=8, choices=[8, 16, 32])
    parser.add_argument("--mask-width", type=int, default=64)
    parser.add_argument("--mask-residual", action=argparse.BooleanOptionalAction, default=False,
                        help="mask models' classifiers see F * (1 + M) instead of F * M")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--eval-images", type=int, default=2048, help="test images evaluated (a fixed subset)")
    parser.add_argument("--noise-variances", nargs="+", type=float, default=[0.003, 0.01, 0.03, 0.1])
    parser.add_argument("--transform-start", type=float, default=0.8, help="fraction of training")
    parser.add_argument("--transform-window", type=float, default=0.1, help="fraction of training")
    parser.add_argument("--transform-importance", default="weights", choices=["weights", "gradient"])
    parser.add_argument("--transform-top-fraction", type=float, default=0.1)
    parser.add_argument("--transform-mode", default="scale", choices=["scale", "sharpen", "binarise"])
    parser.add_argument("--transform-emphasis", type=float, default=2.0)
    parser.add_argument("--transform-damp", type=float, default=0.5)
    parser.add_argument("--resample-on", default=None,
                        help="an attribute whose estimated minority is drawn as often as its majority (the default "
                             "callback minority_resampling on that column: the label-free estimate, no group labels); "
                             "'none' (or omitted): a plain shuffle")
    parser.add_argument("--mask-area-weight", type=float, default=0.0,
                        help="weight of an area prior on the mask models' masks (0: none)")
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)  # VARIANT:SEED, one run in this process
    return parser


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be positive integers")
    if not 0 < args.benchmark_fraction <= 1:
        parser.error(f"--benchmark-fraction must be in (0, 1], got {args.benchmark_fraction}")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps must be a positive integer, got {args.max_steps}")
    if args.eval_images < 1:
        parser.error(f"--eval-images must be a positive integer, got {args.eval_images}")
    bad_variances = [v for v in args.noise_variances if not math.isfinite(v) or v < 0]
    if bad_variances:
        parser.error(f"--noise-variances must be finite numbers >= 0, got {bad_variances}")
    if not math.isfinite(args.mask_area_weight) or args.mask_area_weight < 0:
        parser.error(f"--mask-area-weight must be a finite number >= 0, got {args.mask_area_weight}")
    if "y" not in args.attributes or "place" not in args.attributes:
        parser.error("--attributes must include the spurious pair 'y' and 'place'")
    if args.resample_on == "none":
        args.resample_on = None
    if args.resample_on is not None and args.resample_on not in args.attributes:
        parser.error(f"--resample-on must be one of --attributes {args.attributes}, got {args.resample_on!r}")
    try:
        transform(args)
    except ValueError as error:
        parser.error(str(error))


def transform(args: argparse.Namespace) -> MaskTransform:
    return MaskTransform(args.transform_top_fraction, args.transform_mode, args.transform_emphasis,
                         damp=args.transform_damp)


def model_config(args: argparse.Namespace, variant: str) -> ModelConfig:
    masks = variant != "plain"
    return ModelConfig(name=args.model, num_classes=len(args.attributes), attributes=tuple(args.attributes),
                       output_stride=args.output_stride, feature_masks=masks, mask_width=args.mask_width,
                       mask_residual=masks and args.mask_residual, single_mask=variant == "single_mask")


def training_callbacks(args: argparse.Namespace, variant: str) -> CallbackList:
    """The run's callbacks: ``minority_resampling`` on ``--resample-on``'s column, the transformation for
    ``intentional``."""
    specs: list[dict[str, Any]] = []
    if args.resample_on is not None:
        specs.append({"name": "minority_resampling", "attribute": args.attributes.index(args.resample_on)})
    if variant == "intentional":
        t = transform(args)
        specs.append({"name": "intentional_masks", "start": args.transform_start, "window": args.transform_window,
                      "importance": args.transform_importance, "top_fraction": t.top_fraction, "mode": t.mode,
                      "emphasis": t.emphasis, "damp": t.damp})
    return build_callbacks(specs) if specs else CallbackList()


def train(args: argparse.Namespace, variant: str, seed: int, run_dir: Path) -> torch.nn.Module:
    torch.manual_seed(seed)
    dataset = WaterbirdsDataset(args.data_dir, "train", build_train_transform(args.image_size, seed=seed),
                                attributes=args.attributes)
    sampler = AdaptiveEpochSampler(len(dataset), seed)
    loader = DataLoader(dataset, args.batch_size, sampler=sampler, drop_last=True)
    total = args.epochs * len(loader) if args.max_steps is None else min(args.max_steps, args.epochs * len(loader))
    config = model_config(args, variant)
    config.save(run_dir)
    model = config.build()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    callbacks = training_callbacks(args, variant)
    area_prior_on = find_feature_masks(model) if args.mask_area_weight and variant != "plain" else None
    state = TrainState(model=model, optimizer=optimizer, total_steps=total)
    callbacks.setup(state)
    if callbacks.wants_data_pass(state):  # minority_resampling: the un-augmented training set, once before training
        unaugmented = WaterbirdsDataset(args.data_dir, "train", build_eval_transform(args.image_size),
                                        attributes=args.attributes)
        # NOTE: the pass's own generator keeps it from consuming the global RNG the training steps draw from
        passes = DataLoader(unaugmented, 256, generator=torch.Generator())
        callbacks.observe_data(state, (Batch(images=items["image"], targets=items["attributes"],
                                             indices=items["index"]) for items in passes))
    sample_ids = [record.sample_id for record in dataset.records]
    model.train()
    while state.global_step < total:
        sampler.set_epoch(state.epoch)
        sampler.set_weights(callbacks.sampling_weights(state, sample_ids))
        dataset.set_epoch(state.epoch)
        for items in loader:
            batch = callbacks.on_batch_start(state, Batch(images=items["image"], targets=items["attributes"],
                                                          indices=items["index"], groups=items["group"]))
            outputs = model(batch.images)
            losses = F.binary_cross_entropy_with_logits(outputs, batch.targets, reduction="none").mean(dim=1)
            losses = callbacks.on_loss(state, batch, outputs, losses)
            loss = losses.mean()
            if area_prior_on is not None:
                loss = loss + args.mask_area_weight * area_prior_on.mask_area().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            state.global_step += 1
            callbacks.on_step_end(state)
            if state.global_step >= total:
                break
        state.epoch += 1
    callbacks.teardown(state)
    torch.save(model.state_dict(), run_dir / "model.pt")
    for probe in (cb for cb in callbacks.callbacks if isinstance(cb, MinorityResamplingCallback)):
        (run_dir / "probe.json").write_text(json.dumps(probe.summary, indent=2))
    return model.eval()


def test_data(args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """The fixed test subset of the study (:func:`robusttrain.feature_masks.study_test_data`)."""
    return study_test_data(args.data_dir, args.image_size, args.attributes, args.eval_images)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([(model(images[i:i + batch]) > 0).long() for i in range(0, len(images), batch)])


def accuracies(args: argparse.Namespace, model: torch.nn.Module, data: dict[str, torch.Tensor]) -> dict[str, Any]:
    truth = data["attributes"].long()
    clean = predict(model, data["images"])
    per_attribute = (clean == truth).float().mean(dim=0)
    y = args.attributes.index("y")
    groups = data["targets"] * 2 + data["places"]
    correct = (clean[:, y] == truth[:, y]).float()
    group_acc = [float(correct[groups == g].mean()) for g in groups.unique()]
    noise = {}
    for i, variance in enumerate(args.noise_variances):
        noisy = add_noise(data["images"], variance, seed=1000 + i)
        noise[f"{variance:g}"] = ((predict(model, noisy) == truth).float().mean(dim=0)).tolist()
    object_attributes = [i for i, a in enumerate(args.attributes) if a not in BACKGROUND_ATTRIBUTES]
    mixed = (predict(model, data["mixed_rand"]) == truth).float().mean(dim=0)
    return {"clean": dict(zip(args.attributes, per_attribute.tolist(), strict=True)),
            "mean_clean": float(per_attribute.mean()),
            "worst_group_y": min(group_acc),
            "noise": {v: dict(zip(args.attributes, accs, strict=True)) for v, accs in noise.items()},
            "mean_noise": {v: float(np.mean(accs)) for v, accs in noise.items()},
            "mixed_rand": {args.attributes[i]: float(mixed[i]) for i in object_attributes},
            "mean_mixed_rand": float(mixed[object_attributes].mean())}


def mask_study(args: argparse.Namespace, model: torch.nn.Module, data: dict[str, torch.Tensor],
               train_images: torch.Tensor) -> dict[str, Any]:
    """Mask correlations, importances and their overlap, and each attribute map's energy on its region."""
    net = find_feature_masks(model)
    with torch.no_grad():
        masks = net.masks(model.forward_features(data["images"][:256]), transformed=False)
    batches = train_images.split(128)
    importance = {m: feature_importance(model, batches, m) for m in ("weights", "gradient")}
    study: dict[str, Any] = {"mask_correlation": mask_correlations(masks)}
    study["importance"] = {m: v.tolist() for m, v in importance.items()}
    study["top_features"] = dict(zip(args.attributes, top_features(importance["weights"], 0.05), strict=True))
    study["top_overlap"] = importance_overlap(importance["weights"], 0.1).tolist()
    study["top_overlap_methods"] = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in
                                    zip(top_features(importance["weights"]), top_features(importance["gradient"]),
                                        strict=True)]
    if net.transform is None:  # a model trained with the transformation keeps the importances it selected with
        net.set_transform(None, importance["weights"])
    images, object_masks = data["images"][:512], data["masks"][:512]
    study["energy_over_uniform"] = {}
    for weighting in MAP_WEIGHTINGS:
        energy = study["energy_over_uniform"][weighting] = {}
        for a, name in enumerate(args.attributes):
            maps = create_map_method("feature_masks", model, attribute=a, weighting=weighting)(images)
            region = 1 - object_masks if name in BACKGROUND_ATTRIBUTES else object_masks
            energy[name] = float(energy_in_mask(maps, region).mean() / region.mean())
    return study


def figure(args: argparse.Namespace, model: torch.nn.Module, image: torch.Tensor, path: Path, k: int = 4) -> None:
    """For one image: each attribute's top-k features' masks (by weight importance), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = find_feature_masks(model)
    tops = net.importance.topk(k, dim=1).indices
    maps = per_feature_maps(model, image[None])[0]  # (A, C, H, W)
    rows = len(args.attributes)
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.6 * (k + 1), 1.6 * rows))
    for a, name in enumerate(args.attributes):
        axes[a, 0].imshow(image.permute(1, 2, 0).numpy())
        axes[a, 0].set_ylabel(name, fontsize=8)
        for j, c in enumerate(tops[a].tolist()):
            axes[a, j + 1].imshow(maps[a, c].numpy(), vmin=0, vmax=1, cmap="magma")
            axes[a, j + 1].set_title(f"feature {c}", fontsize=7)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_path(args: argparse.Namespace, variant: str, seed: int) -> Path:
    """The folder of one run (``runs/<variant>_s<seed>`` under ``--output-dir``)."""
    return Path(args.output_dir) / "runs" / f"{variant}_s{seed}"


def run_options(options: dict[str, Any]) -> dict[str, Any]:
    """Of ``options`` (``vars(args)`` or a saved ``options.json``), those that decide what a run computes."""
    return json.loads(json.dumps({k: v for k, v in options.items() if k not in NOT_RUN_OPTIONS}))


def reuse_problem(args: argparse.Namespace, run_dir: Path) -> str | None:
    """Why the finished run in ``run_dir`` cannot stand for these options (None: it can)."""
    saved_path = run_dir / "options.json"
    if not saved_path.is_file():
        return f"{run_dir} has no options.json (written by an older version of this recipe)"
    saved, current = run_options(json.loads(saved_path.read_text())), run_options(vars(args))
    differing = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
    if differing:
        return f"{run_dir} was run with " + ", ".join(f"{k}={saved.get(k)!r} (now {current.get(k)!r})"
                                                      for k in differing)
    return None


def run_one(args: argparse.Namespace, variant: str, seed: int) -> None:
    torch.set_num_threads(args.threads)
    run_dir = run_path(args, variant, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "options.json").write_text(json.dumps(run_options(vars(args)), indent=2))
    started = time.time()
    model = train(args, variant, seed, run_dir)
    seconds = time.time() - started
    data = test_data(args)
    results = {variant: accuracies(args, model, data)}
    if variant != "plain":
        study = mask_study(args, model, data, importance_images(args.data_dir, args.image_size))
        results[variant]["masks"] = study
        if variant == "multi_channel":
            figure(args, model, data["images"][0], run_dir / "top_feature_masks.png")
            find_feature_masks(model).set_transform(transform(args))
            results[INFERENCE_ROW] = accuracies(args, model, data)
    results[variant]["train_seconds"] = seconds
    partial = run_dir / "result.json.partial"
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(run_dir / "result.json")


def summary(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Mean +- std over seeds per row; the markdown table and the numbers."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for variant in args.variants:
        for seed in args.seeds:
            for row, values in json.loads((run_path(args, variant, seed) / "result.json").read_text()).items():
                rows.setdefault(row, []).append(values)

    def stat(values: list[float]) -> str:
        return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"

    variances = [f"{v:g}" for v in args.noise_variances]
    lines = ["| row | mean attribute acc (clean) | " + " | ".join(f"noise {v}" for v in variances) +
             " | Mixed-Rand (object attributes) | worst group (y x place) |",
             "|---" * (4 + len(variances)) + "|"]
    numbers: dict[str, Any] = {}
    for row, runs in rows.items():
        numbers[row] = {"clean": {a: np.mean([r["clean"][a] for r in runs]) for a in args.attributes}}
        cells = [stat([r["mean_clean"] for r in runs])]
        cells += [stat([r["mean_noise"][v] for r in runs]) for v in variances]
        cells += [stat([r["mean_mixed_rand"] for r in runs]), stat([r["worst_group_y"] for r in runs])]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "Per-attribute clean accuracy (mean over seeds):", "",
              "| row | " + " | ".join(args.attributes) + " |", "|---" * (len(args.attributes) + 1) + "|"]
    for row, runs in rows.items():
        lines.append(f"| {row} | " + " | ".join(stat([r["clean"][a] for r in runs]) for a in args.attributes) + " |")
    masked = {row: runs for row, runs in rows.items() if "masks" in runs[0]}
    if masked:
        lines += ["", "Masks (mean ± std over seeds): correlation between features / attributes; energy of each "
                  "attribute's map (`feature_masks` map source, each weighting) on its region over a uniform map's, "
                  "mean (min-max over seeds):", "",
                  "| row | corr. features | corr. attributes | map | " +
                  " | ".join(f"energy {a}" for a in args.attributes) + " |", "|---" * (4 + len(args.attributes)) + "|"]
        for row, runs in masked.items():
            studies = [r["masks"] for r in runs]
            cells = [f"{np.mean([s['mask_correlation'][k] for s in studies]):.3f} ± "
                     f"{np.std([s['mask_correlation'][k] for s in studies]):.3f}"
                     for k in ("between_features", "between_attributes")]
            for weighting in MAP_WEIGHTINGS:
                ratios = [[s["energy_over_uniform"][weighting][a] for s in studies] for a in args.attributes]
                energies = [f"{np.mean(r):.2f} ({min(r):.2f}-{max(r):.2f})" for r in ratios]
                lines.append(f"| {row} | " + " | ".join([*cells, weighting, *energies]) + " |")
                cells = ["", ""]
            numbers[row]["masks"] = studies
        lines += overlap_lines(args, masked)
    return "\n".join(lines), numbers


def overlap_lines(args: argparse.Namespace, masked: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Top features per attribute (first seed) and the attributes' top-10% overlap (Jaccard, mean over seeds)."""
    lines = ["", "Top features per attribute (weight importance, first seed; 5% of the features, best first) and "
             "the overlap of the attributes' top-10% sets (Jaccard, mean over seeds):", ""]
    for row, runs in masked.items():
        first = runs[0]["masks"]
        tops = "; ".join(f"{a}: {first['top_features'][a]}" for a in args.attributes)
        overlap = np.mean([r["masks"]["top_overlap"] for r in runs], axis=0)
        pairs = [f"{args.attributes[i]}/{args.attributes[j]} {overlap[i][j]:.2f}"
                 for i in range(len(args.attributes)) for j in range(i + 1, len(args.attributes))]
        agree = np.mean([r["masks"]["top_overlap_methods"] for r in runs])
        lines += [f"- {row}: {tops}", f"  - overlap: {', '.join(pairs)}",
                  f"  - weight vs gradient importance, same top-10% features: {agree:.2f} (Jaccard)"]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    check(args, parser)
    if args.run is not None:
        variant, seed = args.run.split(":")
        run_one(args, variant, int(seed))
        return 0
    out = Path(args.output_dir)
    jobs = [(v, s) for s in args.seeds for v in args.variants]
    finished = {job for job in jobs if (run_path(args, *job) / "result.json").is_file()}
    problems = [problem for job in jobs if job in finished
                if (problem := reuse_problem(args, run_path(args, *job))) is not None]
    if problems:
        parser.error("finished runs in --output-dir do not match these options (use another --output-dir, or "
                     "remove those runs):\n  " + "\n  ".join(problems))
    out.mkdir(parents=True, exist_ok=True)
    if args.generate:
        config = BenchmarkConfig(image_size=args.image_size, correlation=args.correlation)
        generate_benchmark(args.data_dir, config.scaled(args.benchmark_fraction))
    todo = [job for job in jobs if job not in finished]

    def launch(job: tuple[str, int]) -> int:
        log_path = run_path(args, *job).with_suffix(".log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log:
            command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]),
                       "--run", f"{job[0]}:{job[1]}", "--no-generate"]
            return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        codes = list(pool.map(launch, todo))
    failed = [f"{v}_s{s}" for (v, s), code in zip(todo, codes, strict=True) if code]
    if failed:
        print(f"runs failed (logs in {out / 'runs'}): {failed}", file=sys.stderr)
        return 1
    table, numbers = summary(args)
    (out / "summary.md").write_text(table + "\n")
    if args.csv:
        write_tables_csv(table, args.csv)
    (out / "summary.json").write_text(json.dumps(numbers, indent=2, default=float))
    print(table)
    return 0


if __name__ == "__main__":  # bad input: one line, exit 2; Ctrl-C: one line, exit 130
    sys.exit(refusing("recipes/feature_masks.py", main))
