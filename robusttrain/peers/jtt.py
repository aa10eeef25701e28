"""JTT (Liu et al., 2021): train ERM briefly, then upweight the training samples it gets wrong. The error set is
spuco's ``JTTInference``; the weights go to ``recipes/train.py --sample-weights`` (weighted draws, the same in
expectation as spuco's upsampled index list)."""

from __future__ import annotations

import torch
from torch import nn

from ..data import MaskedImageDataset
from ..eval.evaluate import predict
from ..maps.state import kept_random_state
from .spuco import from_spuco


def jtt_weights(model: nn.Module, dataset: MaskedImageDataset, upweight: float, batch_size: int = 256) -> torch.Tensor:
    """Per sample of ``dataset`` (its record order): ``upweight`` for the samples ``model`` misclassifies, else 1.

    ``dataset`` should be the training split without augmentation.
    """
    if not upweight >= 1:
        raise ValueError(f"upweight must be >= 1, got {upweight}")
    (JTTInference,) = from_spuco("spuco.group_inference", "JTTInference")
    # the data loader draws its seed from the global generator, and spuco's inference reseeds them all
    with kept_random_state():
        result = predict(model, dataset, batch_size)
        partition = JTTInference(result["prediction"].tolist(), result["target"].tolist()).infer_groups()
    weights = torch.ones(len(dataset), dtype=torch.float64)
    weights[partition[(0, 1)]] = float(upweight)  # (0, 1): the misclassified samples
    return weights
