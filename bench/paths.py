"""The default through each place users train: a plain PyTorch loop, Lightning, the Hugging Face Trainer and
``robusttrain train``, each with and without it, on the same data, model, augmentation, optimizer and budget.

Per path and seed the ERM run and the default's run go back to back in one process; their whole-run time is
the process's CPU time (one thread each: what the run computes, whatever else the machine does), the data pass
included, evaluation excluded. The table gives mean +- std over seeds of the
test split's worst-group and average accuracy, and the ratio; ``--output`` is the CSV of every run.

Example:
    python bench/paths.py --data-dir data/synth_waterbirds --seeds 0 1 2 --jobs 2 --output results/paths.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from robusttrain import Robust, TrainOptions, create_model, generate_benchmark, train
from robusttrain.data import BenchmarkConfig, WaterbirdsDataset, build_eval_transform, build_train_transform
from robusttrain.eval import evaluate_groups

PATHS = ("robusttrain train", "plain loop", "Lightning", "HF Trainer")
ROOT = Path(__file__).resolve().parents[1]


def splits(args: argparse.Namespace, seed: int) -> tuple[WaterbirdsDataset, WaterbirdsDataset, WaterbirdsDataset]:
    """The augmented training split (as ``robusttrain train`` augments it), its un-augmented view, the test split."""
    return (WaterbirdsDataset(args.data_dir, "train", build_train_transform(args.image_size, seed=seed)),
            WaterbirdsDataset(args.data_dir, "train", build_eval_transform(args.image_size)),
            WaterbirdsDataset(args.data_dir, "test", build_eval_transform(args.image_size)))


def optimizer_for(model: torch.nn.Module, steps: int, args: argparse.Namespace) -> tuple[Any, Any]:
    """``configs/erm.yaml``'s optimizer and schedule."""
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))


def run_reference(args: argparse.Namespace, seed: int, default: bool, out: Path) -> tuple[torch.nn.Module, float]:
    argv = ["-c", str(ROOT / "configs" / "erm.yaml"), "--data-dir", str(args.data_dir), "--no-generate",
            "--seed", str(seed), "--epochs", str(args.epochs), "--image-size", str(args.image_size), "--lr",
            str(args.lr), "--output-dir", str(out), "--no-progress", "--overwrite", "--variant-pool-size", "64"]
    if default:
        argv += ["-c", str(ROOT / "configs" / "callbacks" / "default.yaml")]
    metrics = train(TrainOptions.from_argv(argv)[0])
    model = create_model("test_resnet", num_classes=2, checkpoint=out / "model.pt")
    return model, metrics["train_cpu_seconds"]


def run_plain(args: argparse.Namespace, seed: int, default: bool, out: Path) -> tuple[torch.nn.Module, float]:
    train_set, data_pass, _ = splits(args, seed)
    torch.manual_seed(seed)
    model = create_model("test_resnet", num_classes=2)
    loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    optimizer, scheduler = optimizer_for(model, args.epochs * len(loader), args)
    start = time.process_time()
    if default:  # robusttrain: the two lines a user adds
        robust = Robust(seed=seed, data_pass=data_pass)
        model, optimizer, loader = robust.prepare(model, optimizer, loader)
    for epoch in range(args.epochs):
        train_set.set_epoch(epoch)
        model.train()
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(model(batch["image"]), batch["target"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model, time.process_time() - start


def run_lightning(args: argparse.Namespace, seed: int, default: bool, out: Path) -> tuple[torch.nn.Module, float]:
    import lightning.pytorch as L

    from robusttrain.integrations.lightning import RobustCallback

    train_set, data_pass, _ = splits(args, seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = create_model("test_resnet", num_classes=2)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.model(images)

        def on_train_epoch_start(self) -> None:
            train_set.set_epoch(self.current_epoch)

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(self(batch["image"]), batch["target"])

        def configure_optimizers(self) -> Any:
            optimizer, scheduler = optimizer_for(self, args.epochs * len(loader), args)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    L.seed_everything(seed, verbose=False)
    module = Module()
    callbacks = [RobustCallback(Robust(seed=seed, data_pass=data_pass))] if default else []
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    start = time.process_time()
    trainer.fit(module, loader)
    return module.model, time.process_time() - start


def run_hf(args: argparse.Namespace, seed: int, default: bool, out: Path) -> tuple[torch.nn.Module, float]:
    import transformers

    from robusttrain.integrations.transformers import RobustTrainer

    train_set, data_pass, _ = splits(args, seed)

    class PixelValues(torch.utils.data.Dataset):
        def __init__(self, inner: WaterbirdsDataset) -> None:
            self.inner = inner

        def __len__(self) -> int:
            return len(self.inner)

        def __getitem__(self, i: int) -> dict:
            item = self.inner[i]
            return {"pixel_values": item["image"], "labels": item["target"]}

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = create_model("test_resnet", num_classes=2)

        def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
            logits = self.model(pixel_values)
            loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
            return transformers.modeling_outputs.ImageClassifierOutput(loss=loss, logits=logits)

    class EpochAugmentation(transformers.TrainerCallback):
        def on_epoch_begin(self, arguments: Any, state: Any, control: Any, **kwargs: Any) -> None:
            train_set.set_epoch(int((state.epoch or 0) + 1e-6))

    torch.manual_seed(seed)
    model = Classifier()
    steps = args.epochs * math.ceil(len(train_set) / 64)
    hf_args = transformers.TrainingArguments(output_dir=str(out), num_train_epochs=args.epochs,
                                             per_device_train_batch_size=64, report_to=[], use_cpu=True,
                                             remove_unused_columns=False, disable_tqdm=True, save_strategy="no",
                                             seed=seed, data_seed=seed, max_grad_norm=0.0)
    kwargs = {"model": model, "args": hf_args, "train_dataset": PixelValues(train_set),
              "optimizers": optimizer_for(model, steps, args), "callbacks": [EpochAugmentation()]}
    trainer = (RobustTrainer(**kwargs, robust=Robust(seed=seed, data_pass=PixelValues(data_pass))) if default
               else transformers.Trainer(**kwargs))
    start = time.process_time()
    trainer.train()
    return model.model, time.process_time() - start


RUNNERS = {"robusttrain train": run_reference, "plain loop": run_plain, "Lightning": run_lightning,
           "HF Trainer": run_hf}


def pair(task: tuple[argparse.Namespace, str, int]) -> list[dict[str, Any]]:
    """ERM then the default through one path for one seed, in one process."""
    args, path, seed = task
    torch.set_num_threads(args.threads)
    rows = []
    for default in (False, True):
        out = Path(args.work_dir) / path.replace(" ", "_") / ("default" if default else "erm") / f"seed_{seed}"
        out.mkdir(parents=True, exist_ok=True)
        model, seconds = RUNNERS[path](args, seed, default, out)
        groups = evaluate_groups(model.eval(), splits(args, seed)[2])
        rows.append({"path": path, "run": "default" if default else "ERM", "seed": seed, "seconds": round(seconds, 2),
                     "worst_group": round(100 * groups["worst_group_accuracy"], 2),
                     "average": round(100 * groups["average_accuracy"], 2)})
        print(rows[-1], flush=True)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Mean +- std per path and run, with the whole-run time over that path's ERM (mean of per-seed ratios)."""
    lines = ["| path | run | labels | worst-group | average | whole-run time / ERM's |", "|---|---|---|---|---|---|"]
    for path in PATHS:
        for run in ("ERM", "default"):
            mine = [r for r in rows if r["path"] == path and r["run"] == run]
            if not mine:
                continue
            erm = {r["seed"]: r["seconds"] for r in rows if r["path"] == path and r["run"] == "ERM"}
            ratio = statistics.mean(r["seconds"] / erm[r["seed"]] for r in mine)

            def cell(key: str, runs: list[dict[str, Any]] = mine) -> str:
                values = [r[key] for r in runs]
                return f"{statistics.mean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0:.1f}"

            lines.append(f"| {path} | {run} | class | {cell('worst_group')} | {cell('average')} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data/synth_waterbirds", help="rendered when missing (built-in)")
    parser.add_argument("--fraction", type=float, default=1.0, help="split sizes relative to Waterbirds'")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--jobs", type=int, default=1, help="(path, seed) pairs side by side")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) // 2))
    parser.add_argument("--work-dir", default="reports/paths")
    parser.add_argument("--output", default="results/paths.csv")
    args = parser.parse_args(argv)
    if not (Path(args.data_dir) / "metadata.csv").is_file():
        generate_benchmark(args.data_dir, BenchmarkConfig().scaled(args.fraction))
    tasks = [(args, path, seed) for path in args.paths for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = [row for rows in pool.map(pair, tasks) for row in rows]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
