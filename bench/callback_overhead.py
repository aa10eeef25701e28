"""Training-step time with each callback configuration divided by the plain step time, measured in one run.

Each configuration trains the same model on the same real batches of the built-in benchmark (rendered in
memory, no disk reads), so only the callback's own work differs. Steps are timed after ``--warmup`` steps;
the figure is the median step time. Configurations are interleaved round-robin so that drifts of the
machine's speed hit all of them alike.

Example:
    python bench/callback_overhead.py --model test_resnet --batch 64 --steps 20
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
from robusttrain.models import create_model
from robusttrain.types import Batch, TrainState

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = ["reweight_gradcam", "background_swap_gradcam", "reweight_then_swap", "masktune_gradcam",
                   "reweight_degradation", "reweight_degradation_scheduled", "background_swap_pool_attention",
                   "joint_attention_reweight", "oracle_swap", "audit"]
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

    def __init__(self, name: str, entries: list, model_name: str, baseline: Run | None = None,
                 **model_options: object) -> None:
        torch.manual_seed(0)
        self.name = name
        self.baseline = baseline or self  # plain training of the same model
        self.model = create_model(model_name, num_classes=2, **model_options)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.callbacks = build_callbacks(entries)
        self.state = TrainState(model=self.model, optimizer=self.optimizer, output_dir="/tmp/robusttrain_bench")
        self.callbacks.setup(self.state)
        self.times: list[float] = []

    def step(self, batch: Batch, record: bool) -> None:
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
        if record:
            self.times.append(time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--configs", nargs="*", default=DEFAULT_CONFIGS, help="names under configs/callbacks/")
    args = parser.parse_args(argv)
    data = batches(args.size, 4, args.batch)
    # Each configuration is compared with plain training of the same model (a DropKey pooling head or an
    # attention head changes the model, so its plain step is the baseline).
    runs = [Run("plain", [], args.model)]
    baseline = {"plain": runs[0]}
    for name in args.configs:
        config = yaml.safe_load((ROOT / "configs" / "callbacks" / f"{name}.yaml").read_text())
        options = {k: config[k] for k in MODEL_OPTIONS if config.get(k)}
        key = "plain" + "".join(f", {k}={v}" for k, v in options.items())
        if key not in baseline:
            baseline[key] = Run(key, [], args.model, **options)
            runs.append(baseline[key])
        runs.append(Run(name, config["callbacks"], args.model, baseline[key], **options))
    for step in range(args.warmup + args.steps):
        for run in runs:
            run.step(data[step % len(data)], record=step >= args.warmup)
    print(f"model={args.model} batch={args.batch} size={args.size} steps={args.steps} "
          f"threads={torch.get_num_threads()}")
    print("| configuration | median step (s) | ratio to plain (same model) |")
    print("|---|---|---|")
    for run in runs:
        median = statistics.median(run.times)
        base = statistics.median(run.baseline.times)
        print(f"| {run.name} | {median:.3f} | {median / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
