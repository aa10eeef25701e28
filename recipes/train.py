"""Train a timm classifier on a background-bias dataset and evaluate its robustness, with accelerate.

Runs unchanged on CPU, one GPU or many (``accelerate launch recipes/train.py -c configs/erm.yaml``).
Options come from a YAML file (``-c``) overridden by command-line flags. Checkpoints hold the model,
optimizer, scheduler, RNG states and loop position, so ``--resume auto`` continues a killed run exactly
where it stopped (mid-epoch included). Metrics are written to ``<output-dir>/metrics.json``.

Example:
    python recipes/train.py -c configs/erm.yaml --epochs 2 --output-dir outputs/erm
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from robusttrain.callbacks import CallbackList, build_callbacks
from robusttrain.config import parse_with_config, save_config
from robusttrain.data import (
    AdaptiveEpochSampler,
    BenchmarkConfig,
    ImageFolderDataset,
    MaskedImageDataset,
    WaterbirdsDataset,
    build_eval_transform,
    build_train_transform,
    generate_benchmark,
    read_sample_weights,
)
from robusttrain.eval import evaluate_groups, evaluate_in9_folders, evaluate_variants
from robusttrain.models import ModelConfig
from robusttrain.models.config import MODEL_FILE
from robusttrain.types import Batch, TrainState

PROGRESS_FILE = "progress.json"
PROCESS_STATE = "process_{}.pt"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", action="append",
                        help="YAML file of option defaults; repeat to layer files (flags override them)")
    data = parser.add_argument_group("Data")
    data.add_argument("--data-dir", default="data/synth_waterbirds", help="dataset root")
    data.add_argument("--dataset", default="waterbirds", choices=["waterbirds", "imagefolder"],
                      help="layout: Waterbirds metadata.csv, or ImageFolder with train/val/test sub-folders")
    data.add_argument("--masks-dir", default=None, help="mask tree (CUB segmentations, or ImageFolder masks root)")
    data.add_argument("--generate", action=argparse.BooleanOptionalAction, default=False,
                      help="render the built-in benchmark into --data-dir first (reused if already there)")
    data.add_argument("--benchmark-fraction", type=float, default=1.0, help="split sizes relative to Waterbirds")
    data.add_argument("--benchmark-classes", type=int, default=2)
    data.add_argument("--benchmark-correlation", type=float, default=0.95)
    data.add_argument("--benchmark-seed", type=int, default=0)
    data.add_argument("--image-size", type=int, default=64)
    data.add_argument("--in9-dir", default=None, help="also evaluate on a Backgrounds Challenge tree")
    data.add_argument("--num-workers", type=int, default=0)
    data.add_argument("--sample-weights", default=None,
                      help="CSV with id,weight per training sample (robusttrain audit's weights.csv): draw the "
                           "training batches with these weights instead of shuffling")
    model = parser.add_argument_group("Model")
    model.add_argument("--model", default="resnet18", help="timm model name")
    model.add_argument("--checkpoint", default=None, help="local initial weights (no hub downloads)")
    model.add_argument("--drop-rate", type=float, default=0.0)
    model.add_argument("--attention-pool", default=None, choices=["dropkey", "dropout", "none"],
                       help="replace global pooling by attention pooling in this mode (CNNs)")
    model.add_argument("--mask-ratio", type=float, default=0.1, help="DropKey / Dropout ratio of --attention-pool")
    model.add_argument("--attention-head", action="store_true",
                       help="add a jointly trained attention head (train it with the joint_attention callback)")
    model.add_argument("--head-width", type=int, default=32, help="channels of --attention-head")
    model.add_argument("--head-max-size", type=int, default=None,
                       help="run --attention-head on images resized to at most this side (cost bound)")
    model.add_argument("--output-stride", type=int, default=None, help="timm CNN output stride (8, 16 or 32)")
    optim = parser.add_argument_group("Optimisation")
    optim.add_argument("--epochs", type=int, default=10)
    optim.add_argument("--batch-size", type=int, default=64, help="per process")
    optim.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    optim.add_argument("--lr", type=float, default=0.05)
    optim.add_argument("--momentum", type=float, default=0.9)
    optim.add_argument("--weight-decay", type=float, default=5e-4)
    optim.add_argument("--scheduler", default="cosine", choices=["cosine", "constant"])
    optim.add_argument("--max-steps", type=int, default=0, help="stop after this many optimizer steps (0 = all)")
    optim.add_argument("--seed", type=int, default=0)
    optim.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    optim.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is present")
    robust = parser.add_argument_group("Robustness")
    robust.add_argument("--maps", type=parse_maps, default={},
                        help="map sources as YAML/JSON, e.g. '{gradcam: {method: gradcam, from_training_pass: true}}' "
                             "(usually in -c); a callback's source that is a map method's name needs no entry")
    robust.add_argument("--callbacks", type=parse_callbacks, default=[],
                        help="callback entries as YAML/JSON, e.g. '[{name: reweight, alpha: 4}]' (usually in -c)")
    run = parser.add_argument_group("Checkpointing and output")
    run.add_argument("--output-dir", default="outputs/run")
    run.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps (0 = per epoch)")
    run.add_argument("--keep-checkpoints", type=int, default=2)
    run.add_argument("--resume", default=None, help="checkpoint folder, or 'auto' for the newest in --output-dir")
    run.add_argument("--overwrite", action="store_true", help="train into a folder that holds a finished run")
    run.add_argument("--eval-batch-size", type=int, default=256)
    run.add_argument("--variant-pool-size", type=int, default=2000,
                     help="training images whose backgrounds feed the Mixed-* variants")
    run.add_argument("--no-progress", action="store_true")
    return parser


def parse_callbacks(text: str | list) -> list[dict[str, Any]]:
    """Callback entries from a YAML/JSON string (the config file gives a list directly)."""
    entries = yaml.safe_load(text) if isinstance(text, str) else text
    if not isinstance(entries, list):
        raise argparse.ArgumentTypeError(f"--callbacks must be a list of entries, got {entries!r}")
    return entries


def parse_maps(text: str | dict) -> dict[str, Any]:
    """Map sources from a YAML/JSON string (the config file gives a mapping directly)."""
    sources = yaml.safe_load(text) if isinstance(text, str) else text
    if not isinstance(sources, dict):
        raise argparse.ArgumentTypeError(f"--maps must be a mapping of source name -> options, got {sources!r}")
    return sources


def build_datasets(args: argparse.Namespace) -> dict[str, MaskedImageDataset]:
    """Train / val / test splits plus an un-augmented train view (the background pool of the IN-9 variants)."""
    root = Path(args.data_dir)
    train_tf = build_train_transform(args.image_size, seed=args.seed)
    if args.dataset == "waterbirds":
        splits = {name: WaterbirdsDataset(root, name, build_eval_transform(args.image_size), args.masks_dir)
                  for name in ("train", "val", "test")}
        splits["train_eval"] = splits["train"]
        splits["train"] = WaterbirdsDataset(root, "train", train_tf, args.masks_dir)
        return splits
    masks = Path(args.masks_dir) if args.masks_dir else None
    splits = {"train": ImageFolderDataset(root / "train", masks and masks / "train", train_tf)}
    classes = splits["train"].class_names
    splits["train_eval"] = ImageFolderDataset(root / "train", masks and masks / "train",
                                              build_eval_transform(args.image_size), classes)
    for name in ("val", "test"):
        if (root / name).is_dir():
            splits[name] = ImageFolderDataset(root / name, masks and masks / name,
                                              build_eval_transform(args.image_size), classes)
    return splits


def model_config(args: argparse.Namespace, num_classes: int) -> ModelConfig:
    """The typed model config the options describe (saved as ``model.json`` to rebuild the network later)."""
    return ModelConfig(name=args.model, num_classes=num_classes, drop_rate=args.drop_rate,
                       attention_pool=args.attention_pool, mask_ratio=args.mask_ratio,
                       attention_head=args.attention_head, head_width=args.head_width,
                       head_max_size=args.head_max_size, output_stride=args.output_stride)


def find_checkpoint(output_dir: Path, resume: str) -> Path | None:
    """The checkpoint folder to resume from (``auto`` = newest under ``output_dir/checkpoints``)."""
    if resume != "auto":
        path = Path(resume)
        if not (path / PROGRESS_FILE).is_file():
            raise FileNotFoundError(f"{path} is not a checkpoint folder of this recipe (no {PROGRESS_FILE})")
        return path
    found = sorted((output_dir / "checkpoints").glob("step_*"))
    complete = [p for p in found if (p / PROGRESS_FILE).is_file()]
    return complete[-1] if complete else None


def save_checkpoint(accelerator: Accelerator, output_dir: Path, progress: dict[str, Any], keep: int,
                    model: torch.nn.Module, callbacks: CallbackList) -> None:
    folder = output_dir / "checkpoints" / f"step_{progress['global_step']:08d}"
    accelerator.save_state(str(folder))
    # Every process saves what is its own: callback state (map caches and records of its shard) and the model's
    # buffers (BatchNorm statistics differ between processes until the next forward broadcasts rank 0's).
    folder.mkdir(parents=True, exist_ok=True)
    own = {"callbacks": callbacks.state_dict(), "buffers": dict(accelerator.unwrap_model(model).named_buffers())}
    torch.save(own, folder / PROCESS_STATE.format(accelerator.process_index))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        # NOTE: progress.json is written last: a folder without it is an interrupted save and is never resumed.
        (folder / PROGRESS_FILE).write_text(json.dumps(progress))
        for old in sorted((output_dir / "checkpoints").glob("step_*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_process_state(accelerator: Accelerator, folder: Path, model: torch.nn.Module,
                       callbacks: CallbackList) -> None:
    """Restore this process's callback state and buffers; a checkpoint of another process count is refused."""
    saved = len(list(folder.glob(PROCESS_STATE.format("*"))))
    if saved == 0:
        raise ValueError(f"checkpoint {folder} has no per-process state ({PROCESS_STATE.format('N')}); it was not "
                         "written by this version of recipes/train.py")
    if saved != accelerator.num_processes:
        raise ValueError(f"checkpoint {folder} was written by {saved} processes; resume it with "
                         f"{saved} processes, not {accelerator.num_processes}")
    own = torch.load(folder / PROCESS_STATE.format(accelerator.process_index), map_location="cpu", weights_only=False)
    callbacks.load_state_dict(own["callbacks"])
    buffers = dict(accelerator.unwrap_model(model).named_buffers())
    with torch.no_grad():
        for name, value in own["buffers"].items():
            buffers[name].copy_(value)


def file_weights(args: argparse.Namespace, train_set: Any) -> torch.Tensor | None:
    """The ``--sample-weights`` file's weights in the training set's order (checked before training), or None."""
    if args.sample_weights is None:
        return None
    try:
        return read_sample_weights(args.sample_weights, [r.sample_id for r in train_set.records])
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"--sample-weights: {error}") from None


def epoch_weights(base: torch.Tensor | None, callbacks: CallbackList, state: TrainState,
                  train_set: Any) -> torch.Tensor | None:
    """This epoch's draw weights: the weights file's times the callbacks' (``probe_weights``); None = shuffle."""
    wanted = callbacks.sampling_weights(state, [r.sample_id for r in train_set.records])
    if wanted is None:
        return base
    return wanted if base is None else base * wanted


def make_optimizer(args: argparse.Namespace, model: torch.nn.Module) -> torch.optim.Optimizer:
    if args.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, evaluate and write ``metrics.json``; returns the metrics."""
    accelerator = Accelerator(cpu=args.cpu, mixed_precision=args.mixed_precision)
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    if args.generate:
        if accelerator.is_main_process:
            config = BenchmarkConfig(num_classes=args.benchmark_classes, image_size=args.image_size,
                                     correlation=args.benchmark_correlation, seed=args.benchmark_seed)
            generate_benchmark(args.data_dir, config.scaled(args.benchmark_fraction))
        accelerator.wait_for_everyone()
    if (output_dir / "metrics.json").is_file() and not args.resume and not args.overwrite:
        raise SystemExit(f"{output_dir} holds a finished run (metrics.json); pass --overwrite to replace it, "
                         "or another --output-dir")

    datasets = build_datasets(args)
    train_set = datasets["train"]
    config = model_config(args, train_set.num_classes)
    saved = ModelConfig.load(output_dir) if args.resume and (output_dir / MODEL_FILE).is_file() else config
    if saved != config:
        raise SystemExit(f"cannot resume {output_dir}: its model is {saved}, these options describe {config} "
                         "(check --model and the other Model options)")
    model = config.build(checkpoint=args.checkpoint)
    base_weights = file_weights(args, train_set)
    sampler = AdaptiveEpochSampler(len(train_set), seed=args.seed)
    # NOTE: the loader's own generator keeps iterator creation from consuming the global RNG (dropout's),
    # so a run resumed mid-epoch draws exactly the random numbers an uninterrupted run would.
    train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler, num_workers=args.num_workers,
                              generator=torch.Generator().manual_seed(args.seed))
    optimizer = make_optimizer(args, model)
    # The scheduler counts single-process steps: accelerate steps it once per process per optimizer step.
    total_steps = args.epochs * len(train_loader)
    if args.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    # NOTE: each process sees its shard of the batches; an epoch ends after this many steps, not the total.
    steps_per_epoch = len(train_loader)
    # robusttrain: callbacks see the unwrapped model and are saved with every checkpoint (one file per process).
    callbacks = build_callbacks(args.callbacks, args.maps)
    state = TrainState(model=accelerator.unwrap_model(model), optimizer=optimizer, output_dir=str(output_dir),
                       is_main_process=accelerator.is_main_process, world_size=accelerator.num_processes,
                       accelerator=accelerator)

    progress: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": []}
    checkpoint = find_checkpoint(output_dir, args.resume) if args.resume else None
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        load_process_state(accelerator, checkpoint, model, callbacks)
        progress = json.loads((checkpoint / PROGRESS_FILE).read_text())
        accelerator.print(f"resumed from {checkpoint} (epoch {progress['epoch']}, step {progress['global_step']})")

    max_steps = args.max_steps or args.epochs * steps_per_epoch
    if progress.setdefault("steps_per_epoch", steps_per_epoch) != steps_per_epoch:
        raise SystemExit(f"cannot resume {output_dir} with {steps_per_epoch} steps per epoch: the run was started "
                         f"with {progress['steps_per_epoch']} (keep --batch-size and the number of processes as they "
                         "were; the checkpoint's step counts are in those units)")
    # The run is known to start: only now are its options written (a refused invocation leaves them as they were).
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(args, output_dir / "config.yaml")
        config.save(output_dir)
    state.global_step, state.total_steps = progress["global_step"], max_steps
    callbacks.setup(state)
    # robusttrain: callbacks that want it (probe_weights) see the un-augmented training set once before training.
    # The loader's own generator keeps the pass from consuming the global RNG (a resumed run makes no pass).
    data_pass = DataLoader(datasets["train_eval"], batch_size=args.eval_batch_size, num_workers=args.num_workers,
                           generator=torch.Generator())
    callbacks.observe_data(state, (Batch.from_dict(raw) for raw in data_pass))
    start = time.perf_counter()
    while progress["epoch"] < args.epochs and progress["global_step"] < max_steps:
        epoch = progress["epoch"]
        train_loader.set_epoch(epoch)
        train_set.set_epoch(epoch)
        model.train()
        state.epoch = epoch
        callbacks.on_epoch_start(state)
        sampler.set_weights(epoch_weights(base_weights, callbacks, state, train_set))  # before the epoch's draws
        loader = accelerator.skip_first_batches(train_loader, progress["step_in_epoch"])
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", initial=progress["step_in_epoch"],
                   total=len(train_loader), disable=args.no_progress or not accelerator.is_local_main_process)
        # Running totals of the epoch, carried through checkpoints so a resumed epoch's record covers all of it.
        totals = progress.get("epoch_totals") if progress["step_in_epoch"] else None
        totals = totals or {"loss_sum": 0.0, "correct": 0, "seen": 0}
        loss_sum = torch.tensor(totals["loss_sum"], device=accelerator.device)
        correct, seen = totals["correct"], totals["seen"]
        step_start = time.perf_counter()
        for raw in bar:
            state.batch_idx = progress["step_in_epoch"]
            batch = callbacks.on_batch_start(state, Batch.from_dict(raw))  # robusttrain
            logits = model(batch.images)
            losses = F.cross_entropy(logits, batch.targets, reduction="none")
            loss = callbacks.on_loss(state, batch, logits, losses).mean()  # robusttrain
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            progress["global_step"] += 1
            progress["step_in_epoch"] += 1
            state.global_step = progress["global_step"]
            callbacks.on_step_end(state)  # robusttrain
            loss_sum += losses.detach().sum()
            correct += int((logits.argmax(1) == batch.targets).sum())
            seen += len(batch)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            progress["step_seconds"] = progress.get("step_seconds", 0.0) + time.perf_counter() - step_start
            if progress["global_step"] >= max_steps or state.should_stop:
                break
            if args.checkpoint_every and progress["global_step"] % args.checkpoint_every == 0:
                progress["epoch_totals"] = {"loss_sum": float(loss_sum), "correct": correct, "seen": seen}
                save_checkpoint(accelerator, output_dir, progress, args.keep_checkpoints, model, callbacks)
            step_start = time.perf_counter()
        bar.close()
        epoch_done = progress["step_in_epoch"] >= steps_per_epoch
        record: dict[str, Any] = {"epoch": epoch, "global_step": progress["global_step"],
                                  "train_loss": float(loss_sum) / max(seen, 1),
                                  "train_accuracy": correct / max(seen, 1)}
        if epoch_done and "val" in datasets:
            val = evaluate_groups(model, datasets["val"], batch_size=args.eval_batch_size, accelerator=accelerator)
            record.update(val_average_accuracy=val["average_accuracy"],
                          val_worst_group_accuracy=val["worst_group_accuracy"])
        accelerator.print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        progress["epoch_totals"] = {"loss_sum": float(loss_sum), "correct": correct, "seen": seen}
        if epoch_done:
            callbacks.on_epoch_end(state)  # robusttrain
            progress.update(epoch=epoch + 1, step_in_epoch=0)
        if progress["history"] and progress["history"][-1]["epoch"] == epoch:
            progress["history"][-1] = record  # an epoch cut short by --max-steps, now resumed: one record for it
        else:
            progress["history"].append(record)
        save_checkpoint(accelerator, output_dir, progress, args.keep_checkpoints, model, callbacks)
        if state.should_stop:
            break
    train_seconds = time.perf_counter() - start
    callbacks.teardown(state)

    metrics = evaluate(args, accelerator, model, datasets)
    metrics.update(history=progress["history"], global_step=progress["global_step"], train_seconds=train_seconds,
                   step_seconds=progress.get("step_seconds", 0.0), callbacks=args.callbacks, maps=args.maps,
                   model=args.model, num_processes=accelerator.num_processes)
    if accelerator.is_main_process:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        torch.save(accelerator.unwrap_model(model).state_dict(), output_dir / "model.pt")
    accelerator.wait_for_everyone()
    return metrics


def evaluate(
    args: argparse.Namespace, accelerator: Accelerator, model: torch.nn.Module, datasets: dict[str, MaskedImageDataset]
) -> dict[str, Any]:
    """Group accuracy on test (val when there is no test) and, with masks, the IN-9 variants and BG-Gap."""
    split = "test" if "test" in datasets else "val" if "val" in datasets else "train_eval"
    dataset = datasets[split]
    train_counts = torch.bincount(torch.as_tensor(datasets["train_eval"].groups),
                                  minlength=dataset.num_groups).tolist()
    metrics: dict[str, Any] = {"eval_split": split}
    metrics["groups"] = evaluate_groups(model, dataset, train_counts, args.eval_batch_size, accelerator=accelerator)
    if dataset.has_masks and datasets["train_eval"].has_masks:
        metrics["variants"] = evaluate_variants(model, dataset, pool=datasets["train_eval"],
                                                batch_size=args.eval_batch_size, seed=args.seed,
                                                max_pool=args.variant_pool_size, accelerator=accelerator)
    if args.in9_dir:
        metrics["in9"] = evaluate_in9_folders(model, args.in9_dir, image_size=args.image_size,
                                              batch_size=args.eval_batch_size, accelerator=accelerator)
    return metrics


# Smallest value each numeric option takes (the flag's name is in the message when it is below).
MINIMUM = {"epochs": 1, "batch_size": 1, "image_size": 8, "eval_batch_size": 1, "max_steps": 0, "num_workers": 0,
           "checkpoint_every": 0, "keep_checkpoints": 1, "variant_pool_size": 1, "benchmark_classes": 2,
           "head_width": 1, "momentum": 0.0, "weight_decay": 0.0, "drop_rate": 0.0, "mask_ratio": 0.0}


def check_ranges(args: argparse.Namespace) -> None:
    """Refuse out-of-range options by flag name (they would otherwise fail deep inside with another message)."""
    for dest, low in MINIMUM.items():
        value = getattr(args, dest)
        if not math.isfinite(value) or value < low:
            raise SystemExit(f"--{dest.replace('_', '-')} must be >= {low}, got {value}")
    if not math.isfinite(args.lr) or args.lr <= 0:
        raise SystemExit(f"--lr must be a positive number, got {args.lr}")
    if not 0 < args.benchmark_fraction <= 1 or not 0 <= args.benchmark_correlation <= 1:
        raise SystemExit(f"--benchmark-fraction must be in (0, 1] and --benchmark-correlation in [0, 1], got "
                         f"{args.benchmark_fraction} and {args.benchmark_correlation}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    check_ranges(args)
    train(args)
    # NOTE: an exiting process whose gloo process group is still alive can abort in the group's threads
    # ("terminate called without an active exception"); destroy it before the interpreter shuts down.
    PartialState().destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
