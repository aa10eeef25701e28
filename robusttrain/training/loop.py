"""The training loop behind ``robusttrain train``: accelerate, the :class:`~robusttrain.Robust` object, exact
resume, evaluation.

Runs unchanged on CPU, one GPU or many (``accelerate launch``). The callbacks' data pass, sampler weights, sample
ids and per-sample loss come from the same object users add to their own loops. Everything the run reads is
checked before it writes anything; checkpoints hold the model, optimizer, scheduler, RNG states, callback state and
loop position, so a resumed run continues exactly where it stopped (mid-epoch included).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..callbacks import build_callbacks
from ..data import MaskedImageDataset
from ..eval import evaluate_groups
from ..models import ModelConfig
from ..plugin import IndexedDataset, Robust, WithIds
from .checkpoints import (
    Interrupted,
    checkpoint_folders,
    choose_checkpoint,
    load_checkpoint,
    newest_progress,
    read_progress,
    save_checkpoint,
    writing,
)
from .data import build_datasets, check_files, data_fingerprint, file_weights, generate
from .evaluation import evaluate_run
from .options import OptionError, TrainOptions
from .run_folder import (
    METRICS_FILE,
    check_output_dir,
    check_same_run,
    describe,
    make_folder,
    replacing,
    write_config,
)


def model_config(options: TrainOptions, num_classes: int) -> ModelConfig:
    """The typed model config the options describe (saved as ``model.json`` to rebuild the network later)."""
    return ModelConfig(name=options.model, num_classes=num_classes, drop_rate=options.drop_rate,
                       attention_pool=options.attention_pool, mask_ratio=options.mask_ratio,
                       attention_head=options.attention_head, head_width=options.head_width,
                       head_max_size=options.head_max_size, output_stride=options.output_stride)


def train(options: TrainOptions) -> dict[str, Any]:
    """Train, evaluate and write ``metrics.json`` and ``model.pt`` into ``options.output_dir``; returns the metrics.

    A finished run given ``resume`` is left as it is (its metrics are returned).

    Raises:
        OptionError, ValueError, FileNotFoundError: bad options or data (named), before anything is written.
    """
    output_dir = Path(options.output_dir)
    finished = output_dir / METRICS_FILE
    check_output_dir(output_dir)  # first: it names a run an interrupted --overwrite left aside
    if finished.is_file() and options.resume and not extends(output_dir, options):
        metrics = json.loads(finished.read_text())
        print(f"{output_dir} already finished ({describe(metrics)}); nothing to resume, nothing changed")
        return metrics
    if finished.is_file() and not options.resume and not options.overwrite:
        raise OptionError(f"{output_dir} holds a finished run (metrics.json); pass --overwrite to replace it, or "
                          "another --output-dir")
    if checkpoint_folders(output_dir) and not options.resume and not options.overwrite:
        raise OptionError(f"{output_dir} holds an unfinished run (checkpoints/); pass --resume auto to continue it, "
                          "--overwrite to start over, or another --output-dir")
    accelerator = Accelerator(cpu=options.cpu, mixed_precision=options.mixed_precision)
    set_seed(options.seed)
    if options.generate:
        if accelerator.is_main_process:
            generate(options)
        accelerator.wait_for_everyone()
    datasets = build_datasets(options)
    check_files(datasets)
    fingerprint = data_fingerprint(datasets)
    train_set = datasets["train"]
    config = model_config(options, train_set.num_classes)
    model = config.build(checkpoint=options.checkpoint, pretrained=options.pretrained,
                         pretrained_file=options.pretrained_file)
    base_weights = file_weights(options, train_set)
    # robusttrain: the object users add to their own loops draws the samples and runs the callbacks here too.
    robust = Robust(build_callbacks(options.callbacks, options.maps), seed=options.seed)
    # NOTE: the loader's own generator keeps iterator creation from consuming the global RNG (dropout's),
    # so a run resumed mid-epoch draws exactly the random numbers an uninterrupted run would.
    train_loader = DataLoader(IndexedDataset(train_set), batch_size=options.batch_size,
                              sampler=robust.make_sampler(len(train_set)), num_workers=options.num_workers,
                              generator=torch.Generator().manual_seed(options.seed), collate_fn=WithIds())
    optimizer = make_optimizer(options, model)
    # The scheduler counts single-process steps: accelerate steps it once per process per optimizer step.
    total_steps = options.epochs * len(train_loader)
    if options.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    # NOTE: each process sees its shard of the batches; an epoch ends after this many steps, not the total.
    steps_per_epoch = len(train_loader)
    # robusttrain: callbacks see the unwrapped model and are saved with every checkpoint (one file per process).
    robust.attach(accelerator.unwrap_model(model))
    state = robust.state
    state.optimizer, state.output_dir, state.accelerator = optimizer, str(output_dir), accelerator
    state.is_main_process, state.world_size = accelerator.is_main_process, accelerator.num_processes
    robust.check(*next(iter(DataLoader(IndexedDataset(datasets["train_eval"]), batch_size=options.eval_batch_size,
                                       generator=torch.Generator(), collate_fn=WithIds()))))

    progress: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": []}
    checkpoint, notes = choose_checkpoint(output_dir, options.resume) if options.resume else (None, [])
    if checkpoint is not None:
        stop_moved = check_same_run(checkpoint.parents[1], options)
        for note in notes:
            accelerator.print(note)
        check_same_data(checkpoint, read_progress(checkpoint), fingerprint)
        progress = load_checkpoint(accelerator, checkpoint, model, robust.callbacks)
        progress.setdefault("resumes", []).append({"from_step": progress["global_step"], **stop_moved})
        accelerator.print(f"resumed from {checkpoint} (epoch {progress['epoch']}, step {progress['global_step']})")
    progress["data"] = fingerprint
    max_steps = options.max_steps or options.epochs * steps_per_epoch
    if progress.setdefault("steps_per_epoch", steps_per_epoch) != steps_per_epoch:
        raise OptionError(f"cannot resume {output_dir} with {steps_per_epoch} steps per epoch: the run was started "
                          f"with {progress['steps_per_epoch']} (keep the number of processes as it was; the "
                          "checkpoint's step counts are in those units)")
    # The run is known to start: only now is the folder written (a refused invocation leaves it as it was).
    with replacing(output_dir, accelerator.is_main_process and options.overwrite and checkpoint is None):
        if accelerator.is_main_process:
            make_folder(output_dir)
            if checkpoint is None:
                write_config(output_dir, options)
                config.save(output_dir)
        parts = _Run(accelerator, model, optimizer, train_loader, scheduler, base_weights, robust, datasets)
        try:
            metrics = _fit(options, parts, progress, max_steps)
        except KeyboardInterrupt:
            raise Interrupted(f"at step {progress['global_step']}", "continue with --resume auto (from the "
                              "newest checkpoint)") from None
    return metrics


@dataclass
class _Run:
    """What the epochs work with, prepared by :func:`train`."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_loader: DataLoader
    scheduler: Any
    base_weights: torch.Tensor | None
    robust: Robust
    datasets: dict[str, MaskedImageDataset]


def check_same_data(checkpoint: Path, saved: dict[str, Any], fingerprint: dict[str, str]) -> None:
    """Refuse a resume whose data is not the data the run started on (labels, image list or files changed).

    Raises:
        OptionError: naming the splits that changed.
    """
    before = saved.get("data")
    if before is None:  # a checkpoint written before data fingerprints existed
        return
    changed = [split for split in sorted(set(before) | set(fingerprint)) if before.get(split) != fingerprint.get(split)]
    if changed:
        raise OptionError(f"cannot resume {checkpoint.parents[1]}: a resume is the same run, and the data changed "
                          f"since it started ({', '.join(changed)} split: labels, image list or image files differ)")


def extends(output_dir: Path, options: TrainOptions) -> bool:
    """Whether a finished run's newest readable checkpoint stops short of where ``options`` would stop (a larger
    ``--max-steps`` continues a run that an earlier ``--max-steps`` ended)."""
    progress = newest_progress(output_dir)
    if progress is None:
        return False
    steps_per_epoch = progress.get("steps_per_epoch", 0)
    end = options.max_steps or options.epochs * steps_per_epoch
    return progress["global_step"] < end and progress["epoch"] < options.epochs


def _fit(options: TrainOptions, run: _Run, progress: dict[str, Any], max_steps: int) -> dict[str, Any]:
    """The epochs from ``progress`` on, then evaluation and the run's result files."""
    accelerator, model, optimizer, train_loader = run.accelerator, run.model, run.optimizer, run.train_loader
    scheduler, robust, datasets = run.scheduler, run.robust, run.datasets
    state = robust.state
    output_dir = Path(options.output_dir)
    train_set = datasets["train"]
    steps_per_epoch = len(train_loader)
    state.global_step, state.total_steps = progress["global_step"], max_steps
    start = time.perf_counter()  # train_seconds: the whole run (data pass included), summed over resumes
    cpu_start = time.process_time()  # train_cpu_seconds: the same in this process's CPU time (not the wall's)
    seconds_before = progress.get("train_seconds", 0.0)
    cpu_before = progress.get("train_cpu_seconds", 0.0)
    # robusttrain: callbacks that want it (minority_resampling) see the un-augmented training set once before training.
    # The loader's own generator keeps the pass from consuming the global RNG (a resumed run makes no pass).
    robust.begin(DataLoader(IndexedDataset(datasets["train_eval"]), batch_size=options.eval_batch_size,
                            num_workers=options.num_workers, generator=torch.Generator(), collate_fn=WithIds()))
    while progress["epoch"] < options.epochs and progress["global_step"] < max_steps:
        epoch = progress["epoch"]
        train_loader.set_epoch(epoch)
        train_set.set_epoch(epoch)
        model.train()
        robust.start_epoch(epoch, run.base_weights)  # the callbacks' draw weights, before the draws
        loader = accelerator.skip_first_batches(train_loader, progress["step_in_epoch"])
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{options.epochs}", initial=progress["step_in_epoch"],
                   total=len(train_loader), disable=options.no_progress or not accelerator.is_local_main_process)
        # Running totals of the epoch, carried through checkpoints so a resumed epoch's record covers all of it.
        totals = progress.get("epoch_totals") if progress["step_in_epoch"] else None
        totals = totals or {"loss_sum": 0.0, "correct": 0, "seen": 0}
        loss_sum = torch.tensor(totals["loss_sum"], device=accelerator.device)
        correct, seen = totals["correct"], totals["seen"]
        step_start = time.perf_counter()
        for raw, ids in bar:
            state.batch_idx = progress["step_in_epoch"]
            batch = robust.batch_start(robust.read(raw, ids))  # robusttrain
            logits = model(batch.images)
            losses = robust.raw_losses(logits)
            loss = robust.loss_hook(logits, losses).mean()  # robusttrain
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            progress["global_step"] += 1
            progress["step_in_epoch"] += 1
            robust.step_end(progress["global_step"])  # robusttrain
            loss_sum += losses.detach().sum()
            correct += int((logits.argmax(1) == batch.targets).sum())
            seen += len(batch)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            progress["step_seconds"] = progress.get("step_seconds", 0.0) + time.perf_counter() - step_start
            if progress["global_step"] >= max_steps or state.should_stop:
                break
            if options.checkpoint_every and progress["global_step"] % options.checkpoint_every == 0:
                progress["epoch_totals"] = {"loss_sum": float(loss_sum), "correct": correct, "seen": seen}
                progress["train_seconds"] = seconds_before + time.perf_counter() - start
                progress["train_cpu_seconds"] = cpu_before + time.process_time() - cpu_start
                save_checkpoint(accelerator, output_dir, progress, options.keep_checkpoints, model, robust.callbacks)
            step_start = time.perf_counter()
        bar.close()
        epoch_done = progress["step_in_epoch"] >= steps_per_epoch
        record: dict[str, Any] = {"epoch": epoch, "global_step": progress["global_step"],
                                  "train_loss": float(loss_sum) / max(seen, 1),
                                  "train_accuracy": correct / max(seen, 1)}
        if epoch_done and "val" in datasets:
            val = evaluate_groups(model, datasets["val"], batch_size=options.eval_batch_size, accelerator=accelerator)
            record.update(val_average_accuracy=val["average_accuracy"],
                          val_worst_group_accuracy=val["worst_group_accuracy"])
        accelerator.print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        progress["epoch_totals"] = {"loss_sum": float(loss_sum), "correct": correct, "seen": seen}
        if epoch_done:
            robust.end_epoch()  # robusttrain
            progress.update(epoch=epoch + 1, step_in_epoch=0)
        if progress["history"] and progress["history"][-1]["epoch"] == epoch:
            progress["history"][-1] = record  # an epoch cut short by --max-steps, now resumed: one record for it
        else:
            progress["history"].append(record)
        progress["train_seconds"] = seconds_before + time.perf_counter() - start
        progress["train_cpu_seconds"] = cpu_before + time.process_time() - cpu_start
        save_checkpoint(accelerator, output_dir, progress, options.keep_checkpoints, model, robust.callbacks)
        if state.should_stop:
            break
    train_seconds = seconds_before + time.perf_counter() - start
    train_cpu_seconds = cpu_before + time.process_time() - cpu_start
    robust.end()

    metrics = evaluate_run(options, model, datasets, accelerator)
    metrics.update(history=progress["history"], global_step=progress["global_step"], train_seconds=train_seconds,
                   train_cpu_seconds=train_cpu_seconds,
                   step_seconds=progress.get("step_seconds", 0.0), callbacks=options.callbacks, maps=options.maps,
                   model=options.model, num_processes=accelerator.num_processes, resumes=progress.get("resumes", []),
                   decisions=robust.decisions())
    if accelerator.is_main_process:
        intact = "the newest checkpoint is intact: free space and continue with --resume auto"
        with writing(output_dir / "model.pt", intact):
            torch.save(accelerator.unwrap_model(model).state_dict(), output_dir / "model.pt")
        with writing(output_dir / METRICS_FILE, intact):
            (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))  # last: its presence = finished
    accelerator.wait_for_everyone()
    return metrics


def make_optimizer(options: TrainOptions, model: torch.nn.Module) -> torch.optim.Optimizer:
    if options.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=options.lr, momentum=options.momentum,
                               weight_decay=options.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
