"""Samplers whose order is a pure function of ``(seed, epoch)``, for exactly resumable training: a shuffle, and
weighted draws once per-sample weights are set (the audit's ``weights.csv``, the ``minority_resampling`` callback)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import Sampler


class _EpochSampler(Sampler[int]):
    """``num_samples`` indices per epoch drawn from a generator seeded by ``(seed, epoch)``; call ``set_epoch``
    every epoch."""

    def __init__(self, num_samples: int, seed: int) -> None:
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_generator(self) -> torch.Generator:
        # NOTE: not `generator`: accelerate treats a sampler attribute of that name as a torch.Generator to sync
        return torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)

    def __len__(self) -> int:
        return self.num_samples


class EpochShuffleSampler(_EpochSampler):
    """Random permutation of ``range(num_samples)`` drawn from ``seed + epoch``; call ``set_epoch`` every epoch."""

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        super().__init__(num_samples, seed)

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.num_samples, generator=self.epoch_generator()).tolist())


class AdaptiveEpochSampler(EpochShuffleSampler):
    """A shuffle (as :class:`EpochShuffleSampler`) until :meth:`set_weights` gives per-sample weights; then
    ``num_samples`` weighted draws with replacement, still a pure function of ``(seed, epoch)`` and the weights.
    Callbacks that resample (``minority_resampling``) hand their weights through ``CallbackList.sampling_weights``."""

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        super().__init__(num_samples, seed)
        self.weights: torch.Tensor | None = None

    def set_weights(self, weights: torch.Tensor | None) -> None:
        """Draw in proportion to ``weights`` ``(num_samples,)`` from now on (None: back to the shuffle)."""
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float64)
            if weights.shape != (self.num_samples,):
                raise ValueError(f"weights must be ({self.num_samples},), got {tuple(weights.shape)}")
            if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("weights must be finite and non-negative with a positive sum")
            if not torch.isfinite(weights.sum()):  # huge weights: their sum overflows, the draws would collapse
                weights = weights / weights.max()
        self.weights = weights

    def __iter__(self) -> Iterator[int]:
        if self.weights is None:
            return super().__iter__()
        draws = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=self.epoch_generator())
        return iter(draws.tolist())


def read_sample_weights(path: str | Path, sample_ids: Sequence[int]) -> torch.Tensor:
    """Per-sample weights for ``sample_ids`` (in that order) from a CSV with ``id`` and ``weight`` columns, such as
    the ``weights.csv`` that ``robusttrain audit`` writes for the split it audited.

    Raises:
        FileNotFoundError: no such file.
        ValueError: missing columns, a weight that is not a finite non-negative number (named by row), an id given
            twice or not in ``sample_ids``, ids of the training data that the file has no weight for, or all zero.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample weights file not found: {path}")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing_columns = {"id", "weight"} - set(reader.fieldnames or ())
        if missing_columns:
            raise ValueError(f"{path} needs columns 'id' and 'weight' (missing {sorted(missing_columns)}); "
                             f"it has {reader.fieldnames}")
        weights: dict[int, float] = {}
        rows: dict[int, int] = {}
        for row_number, row in enumerate(reader, start=2):
            try:
                sample, weight = int(row["id"]), float(row["weight"])
            except (TypeError, ValueError):
                raise ValueError(f"{path} row {row_number}: id and weight must be numbers, got "
                                 f"id={row['id']!r} weight={row['weight']!r}") from None
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"{path} row {row_number}: weight must be finite and non-negative, got {weight}")
            if sample in rows:
                raise ValueError(f"{path} rows {rows[sample]} and {row_number} both give a weight for id {sample}")
            weights[sample], rows[sample] = weight, row_number
    known = set(sample_ids)
    foreign = [sample for sample in weights if sample not in known]
    if foreign:
        raise ValueError(f"{path} row {rows[foreign[0]]}: id {foreign[0]} is not a training sample of this dataset "
                         f"({len(foreign)} such ids; is the file from another dataset or split?)")
    absent = [sample for sample in sample_ids if sample not in weights]
    if absent:
        raise ValueError(f"{path} has no weight for {len(absent)} of the {len(sample_ids)} training samples "
                         f"(ids {absent[:5]}...): audit the training split (robusttrain audit --split train)")
    if not any(weights.values()):
        raise ValueError(f"{path}: every weight is 0, so no sample could be drawn")
    return torch.tensor([weights[sample] for sample in sample_ids], dtype=torch.float64)
