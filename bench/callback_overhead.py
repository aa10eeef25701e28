"""Training-step time with each callback configuration divided by the plain step time, over a whole run.

Each configuration trains the same model on the same real batches of the built-in benchmark (rendered in
memory, no disk reads), so only the callbacks' own work differs. The run is ``--steps`` optimizer steps long
(``TrainState.total_steps``), so options in fractions of training take effect as in a real run (the default's
background swap starts halfway); every step after ``--warmup`` is timed and the figure is the mean step time
over the whole run, with the mean over the second half (swap active) beside it. Configurations are interleaved
round-robin so that drifts of the machine's speed hit all of them alike. The ``--batches`` distinct batches
make one epoch (``on_epoch_start`` / ``on_epoch_end`` are called around each), so epoch-level work is timed too,
within the step that ends the epoch. The pass over the data before training (``CallbackList.observe_data``: the
``minority_resampling`` fit) is made as ``recipes/train.py`` makes it, over the same batches, and timed apart.

Example:
    python bench/callback_overhead.py --model test_resnet --batch 64 --steps 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from robusttrain.callbacks import build_callbacks
from robusttrain.data.benchmark import BenchmarkConfig, render_sample, split_plan
from robusttrain.eval import write_tables_csv
from robusttrain.models import create_model
from robusttrain.types import Batch, TrainState

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = ["callbacks/default", "callbacks/default_swap", "callbacks/reweight_gradcam",
                   "callbacks/reweight_degradation", "callbacks/reweight_degradation_scheduled",
                   "callbacks/background_swap_pool_attention", "callbacks/oracle_swap", "callbacks/audit"]
# Config keys that change the model itself.
MODEL_OPTIONS = ("attention_pool", "attention_head", "head_width", "head_max_size")


def batches(size: int, count: int, batch: int) -> list[Batch]:
    config = BenchmarkConfig(image_size=size)
    plan = split_plan(config, "train")
    out = []
    for b in range(count):
        rows = range(b * batch, (b + 1) * batch)
        samples = [render_sample(config, "train", i, *plan[i]) for i in rows]
        images = torch.stack([torch.from_numpy(img).permute(2, 0, 1).float() / 255 for img, _ in samples])
        masks = torch.stack([torch.from_numpy(mask)[None] for _, mask in samples])
        targets = torch.tensor([plan[i][0] for i in rows])
        out.append(Batch(images=images, targets=targets, indices=torch.tensor(list(rows)), masks=masks))
    return out


class Run:
    """One configuration's model, optimizer, callbacks and step times."""

    def __init__(self, name: str, config: dict, model_name: str, total_steps: int, data: list[Batch],
                 baseline: Run | None = None, **model_options: object) -> None:
        torch.manual_seed(0)
        self.name, self.sample_ids = name, range(sum(len(b) for b in data))
        self.baseline = baseline or self  # plain training of the same model
        self.model = create_model(model_name, num_classes=2, **model_options)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.callbacks = build_callbacks(config.get("callbacks", []), config.get("maps"))
        self.state = TrainState(model=self.model, optimizer=self.optimizer, output_dir="/tmp/robusttrain_bench",
                                total_steps=total_steps)
        self.callbacks.setup(self.state)
        start = time.perf_counter()
        self.callbacks.observe_data(self.state, iter(data))
        self.pass_seconds = time.perf_counter() - start
        self.callbacks.on_epoch_start(self.state)
        self.callbacks.sampling_weights(self.state, self.sample_ids)  # the first epoch's draws
        self.times: list[float] = []

    def step(self, batch: Batch, record: bool, epoch_end: bool) -> None:
        start = time.perf_counter()
        batch = self.callbacks.on_batch_start(self.state, batch)
        logits = self.model(batch.images)
        losses = F.cross_entropy(logits, batch.targets, reduction="none")
        loss = self.callbacks.on_loss(self.state, batch, logits, losses).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.state.global_step += 1
        self.callbacks.on_step_end(self.state)
        if epoch_end:
            self.callbacks.on_epoch_end(self.state)
            self.state.epoch += 1
            self.callbacks.on_epoch_start(self.state)
            self.callbacks.sampling_weights(self.state, self.sample_ids)  # what a loop hands its sampler
        if record:
            self.times.append((self.state.global_step, time.perf_counter() - start))

    def mean(self, from_step: int = 0) -> float:
        return statistics.mean(t for step, t in self.times if step > from_step)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="length of the run (total_steps)")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the means")
    parser.add_argument("--configs", nargs="*", default=DEFAULT_CONFIGS,
                        help="under configs/ or the repository (research/configs/x), no .yaml")
    parser.add_argument("--batches", type=int, default=4, help="distinct batches: one epoch")
    parser.add_argument("--output", help="also write the table (markdown) here")
    parser.add_argument("--csv", help="also write the tables as CSV here (results/...)")
    args = parser.parse_args(argv)
    data = batches(args.size, args.batches, args.batch)
    # Each configuration is compared with plain training of the same model (a DropKey pooling head or an
    # attention head changes the model, so its plain step is the baseline).
    runs = [Run("plain", {}, args.model, args.steps, data)]
    baseline = {"plain": runs[0]}
    for name in args.configs:
        found = ROOT / "configs" / f"{name}.yaml"
        config = yaml.safe_load((found if found.is_file() else ROOT / f"{name}.yaml").read_text())
        options = {k: config[k] for k in MODEL_OPTIONS if config.get(k)}
        key = "plain" + "".join(f", {k}={v}" for k, v in options.items())
        if key not in baseline:
            baseline[key] = Run(key, {}, args.model, args.steps, data, **options)
            runs.append(baseline[key])
        runs.append(Run(name, config, args.model, args.steps, data, baseline[key], **options))
    for step in range(args.steps):
        for run in runs:
            run.step(data[step % len(data)], record=step >= args.warmup, epoch_end=(step + 1) % len(data) == 0)
    half = args.steps // 2
    lines = [f"model={args.model} batch={args.batch} size={args.size} steps={args.steps} "
             f"threads={torch.get_num_threads()}",
             "| configuration | mean step, whole run (s) | ratio to plain, whole run | ratio, second half | "
             "pass before training (s) | pass / plain epoch |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        whole, late = run.mean() / run.baseline.mean(), run.mean(half) / run.baseline.mean(half)
        epochs = run.pass_seconds / (run.baseline.mean() * len(data))
        lines.append(f"| {run.name} | {run.mean():.3f} | {whole:.2f} | {late:.2f} | {run.pass_seconds:.3f} | "
                     f"{epochs:.2f} |")
    print("\n".join(lines))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text("\n".join(lines) + "\n")
    if args.csv:
        write_tables_csv("\n".join(lines), args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
