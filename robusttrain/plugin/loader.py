"""The user's loader, re-made so that robusttrain draws its samples: sample ids, the sampler, epochs.

:class:`RobustLoader` iterates like the loader it was made from (same dataset, batch size, workers, collate
function, same batch structure) with two differences: samples are drawn by an
:class:`~robusttrain.data.AdaptiveEpochSampler` whose weights the callbacks set each epoch, and each batch passes
the callbacks' batch hook (a blend, a background swap) before the user sees it. Sample ids are the dataset
positions the loader draws, never read from the user's items.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sized
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, RandomSampler, Sampler, SequentialSampler
from torch.utils.data._utils.collate import default_collate

from ..data import AdaptiveEpochSampler

if TYPE_CHECKING:
    from .robust import Robust

ID_KEY = "robusttrain_ids"  # where dict batches carry their sample ids (Hugging Face Trainer)


class IndexedDataset(Dataset):
    """``dataset[i]`` paired with ``i``: the position is the sample id."""

    def __init__(self, dataset: Any) -> None:
        if isinstance(dataset, IterableDataset) or not isinstance(dataset, Sized):
            raise ValueError(f"robusttrain draws samples by index: it needs a map-style dataset (with len() and "
                             f"indexing), got {type(dataset).__name__}")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.dataset[index], index


class WithIds:
    """A collate function: the user's collate of the items, with their ids beside it (``(batch, ids)``) or, with
    ``key``, inside a dict batch under that key."""

    def __init__(self, collate: Callable[[list[Any]], Any] | None = None, key: str | None = None) -> None:
        self.collate, self.key = collate or default_collate, key

    def __call__(self, pairs: list[tuple[Any, int]]) -> Any:
        batch = self.collate([item for item, _ in pairs])
        ids = torch.tensor([index for _, index in pairs], dtype=torch.long)
        if self.key is None:
            return batch, ids
        if not isinstance(batch, dict):
            raise ValueError(f"the collate function must return a dict of tensors here, got {type(batch).__name__}")
        return {**batch, self.key: ids}


class SkipFirst(Sampler[int]):
    """A sampler's draws after its first ``count`` (a pass resumed mid-epoch)."""

    def __init__(self, sampler: Sampler[int], count: int) -> None:
        self.sampler, self.count = sampler, count

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.count, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.count)


class ShardSampler(Sampler[int]):
    """This process's share (every ``world``-th draw from ``rank``) of an epoch sampler's draws; every process draws
    the same list, so the shares are disjoint and cover it."""

    def __init__(self, sampler: AdaptiveEpochSampler, rank: int, world: int) -> None:
        self.sampler, self.rank, self.world = sampler, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.sampler)[self.rank :: self.world])

    def __len__(self) -> int:
        return len(range(self.rank, len(self.sampler), self.world))

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


def check_plain_sampler(loader: DataLoader) -> None:
    """``ValueError`` when the loader draws with a sampler of its own: robusttrain replaces it, and would otherwise
    drop the user's sampling silently."""
    if isinstance(loader.dataset, IterableDataset):
        raise ValueError("robusttrain draws samples by index: it needs a map-style dataset, got an IterableDataset")
    if loader.batch_sampler is not None and type(loader.batch_sampler).__name__ != "BatchSampler":
        raise ValueError(f"the loader has its own batch sampler ({type(loader.batch_sampler).__name__}); robusttrain "
                         "draws the samples itself: pass a loader with batch_size=... instead")
    if not isinstance(loader.sampler, (RandomSampler, SequentialSampler)):
        raise ValueError(f"the loader has its own sampler ({type(loader.sampler).__name__}); robusttrain draws the "
                         "samples itself (the minority as often as the rest): pass a loader with shuffle=True instead")


def remade(loader: DataLoader, sampler: Sampler[int], collate: WithIds) -> DataLoader:
    """``loader``'s settings over the indexed dataset, drawing with ``sampler`` and collating with ids."""
    options: dict[str, Any] = {"num_workers": loader.num_workers, "pin_memory": loader.pin_memory,
                               "drop_last": loader.drop_last, "timeout": loader.timeout,
                               "worker_init_fn": loader.worker_init_fn, "generator": loader.generator,
                               "multiprocessing_context": loader.multiprocessing_context}
    if loader.num_workers:
        options.update(prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers)
    return DataLoader(IndexedDataset(loader.dataset), batch_size=loader.batch_size, sampler=sampler,
                      collate_fn=collate, **options)


class RobustLoader:
    """Iterate like ``loader``; each full pass is one epoch (see the module docstring).

    Args:
        robust: the :class:`~robusttrain.Robust` whose callbacks and sampler it serves.
        loader: the user's training loader (a map-style dataset, shuffled or not: robusttrain draws the order).
    """

    def __init__(self, robust: Robust, loader: DataLoader) -> None:
        check_plain_sampler(loader)
        self.robust, self.source = robust, loader
        self.sampler = robust.make_sampler(len(loader.dataset))
        rank, world = robust.process()
        self.draw = self.sampler if world == 1 else ShardSampler(self.sampler, rank, world)
        self.loader = remade(loader, self.draw, WithIds(loader.collate_fn))
        self.yielded = 0  # batches of this epoch given out
        self.resume_at: dict[int, int] = {}  # epoch -> batches it had given out before a checkpoint

    @property
    def dataset(self) -> Any:
        return self.source.dataset

    @property
    def batch_size(self) -> int | None:
        return self.source.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next pass draws (the loader counts passes itself; Lightning sets it too)."""
        self.sampler.set_epoch(epoch)

    def data_pass(self) -> Iterator[tuple[Any, torch.Tensor]]:
        """The training set once, in order, as ``(batch, ids)`` (the dataset as the loader reads it, or the
        ``Robust(data_pass=...)`` view)."""
        dataset = self.robust.data_pass if self.robust.data_pass is not None else self.source.dataset
        if len(dataset) != len(self.source.dataset):
            raise ValueError(f"Robust(data_pass=...) has {len(dataset)} samples, the training set "
                             f"{len(self.source.dataset)}: it must be the same samples in the same order")
        yield from DataLoader(IndexedDataset(dataset), batch_size=self.source.batch_size or 1,
                              num_workers=self.source.num_workers, collate_fn=WithIds(self.source.collate_fn))

    def __iter__(self) -> Iterator[Any]:
        robust, epoch = self.robust, self.sampler.epoch
        robust.begin(self.data_pass())
        robust.start_epoch(epoch)
        skip = self.resume_at.get(epoch, 0) if self.resume_at.get(epoch, 0) < len(self) else 0
        self.yielded, self.resume_at = skip, {}
        loader = self.loader if not skip else remade(self.source, SkipFirst(self.draw, skip * self.batch_size),
                                                     WithIds(self.source.collate_fn))
        for raw, ids in loader:
            self.yielded += 1
            yield robust.apply(robust.to_device(raw), ids)
        robust.end_epoch()
        self.sampler.set_epoch(epoch + 1)

    def state_dict(self) -> dict[str, int]:
        """Where the pass stands (epoch, batches given out), so a checkpoint taken mid-epoch resumes exactly."""
        return {"epoch": self.sampler.epoch, "batches": self.yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue that epoch after its given-out batches (a loop that moves on to the next epoch starts it)."""
        self.sampler.set_epoch(int(state["epoch"]))
        self.resume_at = {int(state["epoch"]): int(state["batches"])}
