"""A trained model's robustness metrics: group accuracy and, where the data allows, IN-9 variants and BG-Gap."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator

from ..data import MaskedImageDataset
from ..eval import evaluate_groups, evaluate_in9_folders, evaluate_variants
from .options import TrainOptions


def evaluate_run(options: TrainOptions, model: torch.nn.Module, datasets: dict[str, MaskedImageDataset],
                 accelerator: Accelerator | None = None) -> dict[str, Any]:
    """Group accuracy on test (val when there is no test) and, with masks, the IN-9 variants and BG-Gap."""
    split = "test" if "test" in datasets else "val" if "val" in datasets else "train_eval"
    dataset = datasets[split]
    train_counts = torch.bincount(torch.as_tensor(datasets["train_eval"].groups),
                                  minlength=dataset.num_groups).tolist()
    metrics: dict[str, Any] = {"eval_split": split}
    metrics["groups"] = evaluate_groups(model, dataset, train_counts, options.eval_batch_size,
                                        accelerator=accelerator)
    if dataset.has_masks and datasets["train_eval"].has_masks:
        metrics["variants"] = evaluate_variants(model, dataset, pool=datasets["train_eval"],
                                                batch_size=options.eval_batch_size, seed=options.seed,
                                                max_pool=options.variant_pool_size, accelerator=accelerator)
    if options.in9_dir:
        metrics["in9"] = evaluate_in9_folders(model, options.in9_dir, image_size=options.image_size,
                                              batch_size=options.eval_batch_size, accelerator=accelerator)
    return metrics
