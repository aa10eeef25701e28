"""The network estimate: what a small CNN learns *first* from the whole image, out of fold.

A shortcut (background colour, texture, layout, a small mark, context next to the object) is what a network picks
up in its first pass over the data, well before the object (JTT's and LfF's premise). A small CNN is trained
briefly, out of fold, with the generalised cross-entropy that LfF uses to amplify what is easy. Where a shortcut
exists it predicts most samples right and the samples that conflict with the shortcut *confidently* wrong; where
none exists its mistakes are hesitant. So a split counts as biased when the net clears chance by the margin and
enough of its mistakes are sure ones; the flags are its near-certain mistakes.

The net is the estimate's own, on thumbnails of at most 64 px (small marks and context strips survive there), so
its cost does not grow with the user's model. One setting, :data:`ESTIMATE`, serves the callbacks and the dataset
audit, so both give one answer about one dataset: two runs averaged, because one run's verdict and flags depend on
its seed. Figures: BENCHMARKS.md; the choice: research/results.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .base import MinorityEstimate, judge, label_probability

LOOKS_AT_NETWORK = "a small CNN trained briefly out of fold on the whole images"
THUMBNAIL_SIDE = 32  # images are shrunk to at most this side for the net (a cost cap, not a dataset unit)
FOLDS = 2
EPOCHS = 4  # passes of each fold's net over its training part ...
MIN_STEPS = 100  # ... but at least this many updates, so a small set still trains the net
BATCH_SIZE = 64
WIDTH = 16  # channels of the net's first block (doubled in each of the next two)
GCE_Q = 0.7  # generalised cross-entropy exponent (LfF): larger = more weight on what the net already gets right
SURE_SHARE = 0.5  # a shortcut: at least this share of the net's mistakes are sure ones ...
SURE_PROBABILITY = 0.4  # ... giving the true label less than this over K


@dataclass(frozen=True)
class NetworkSettings:
    """How the estimate's net looks and judges: thumbnail ``side`` and the net's ``width`` (channels of its first
    block); ``runs`` independent out-of-fold runs (each its own fold split and initialisation) whose probabilities
    are averaged geometrically; biased when at least ``sure_share`` of the mistakes give the true label under
    ``sure_probability`` / K; flags the mistakes giving it under ``flag_probability`` / K (None: every mistake)."""

    side: int = THUMBNAIL_SIDE
    width: int = WIDTH
    runs: int = 1
    sure_share: float = SURE_SHARE
    sure_probability: float = SURE_PROBABILITY
    flag_probability: float | None = None


# The callbacks' and the audit's: a half-width net, two runs averaged; biased when at least 15% of the mistakes give
# the true label under 0.1 / K, flagging the mistakes under 0.2 / K.
ESTIMATE = NetworkSettings(side=2 * THUMBNAIL_SIDE, width=WIDTH // 2, runs=2, sure_share=0.15, sure_probability=0.1,
                           flag_probability=0.2)


class ShortcutNet(nn.Module):
    """Three conv blocks, then average and max pooling (a texture everywhere and a mark somewhere both count).

    Each block pools before its ReLU: the same values and gradients as ReLU then pooling (both keep the order of
    their inputs), on a quarter of the elements."""

    def __init__(self, num_classes: int, width: int = WIDTH) -> None:
        super().__init__()
        blocks, channels = [], 3
        for out in (width, 2 * width, 4 * width):
            blocks += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.MaxPool2d(2),
                       nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(2 * channels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.features(images)
        return self.head(torch.cat([maps.mean((2, 3)), maps.amax((2, 3))], dim=1))


def thumbnails(images: torch.Tensor, side: int = THUMBNAIL_SIDE) -> torch.Tensor:
    """``(B, 3, s, s)`` uint8 copies of images in [0, 1], shrunk so the longer side is at most ``side``."""
    height, width = images.shape[-2:]
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        size = (max(8, round(height * scale)), max(8, round(width * scale)))
        images = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def as_input(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """:func:`thumbnails` as the net reads them: float in [0, 1] on ``device``, channels last (the layout in which
    convolutions with a few channels run fastest)."""
    return images.to(device).float().div_(255).contiguous(memory_format=torch.channels_last)


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Global RNG seeded for the net's initialisation and restored afterwards; yields the shuffles' generator."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def generalised_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, q: float = GCE_Q) -> torch.Tensor:
    """``(1 - p_y^q) / q``, averaged: cross-entropy's gradient scaled by ``p_y^q`` (easy samples dominate)."""
    probability = logits.softmax(1).gather(1, labels[:, None]).squeeze(1).clamp_min(1e-6)
    return ((1 - probability**q) / q).mean()


def _batches_per_pass(count: int) -> int:
    """Updates in one pass over ``count`` samples (the last, partial batch is dropped)."""
    return max(1, count // BATCH_SIZE)


@dataclass
class _Fold:
    """One net to train: its initialised net, its training part and the sample order of each pass."""

    net: ShortcutNet
    images: torch.Tensor
    labels: torch.Tensor
    orders: list[torch.Tensor]


def _fold(images: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator,
          device: torch.device, width: int = WIDTH) -> _Fold:
    """A fresh net (from the global RNG) and its passes' orders (from ``generator``), drawn before any training so
    that folds can train side by side with the draws of a one-by-one run."""
    net = ShortcutNet(num_classes, width).to(device, memory_format=torch.channels_last)
    passes = max(EPOCHS, math.ceil(MIN_STEPS / _batches_per_pass(len(labels))))
    return _Fold(net, images, labels, [torch.randperm(len(labels), generator=generator) for _ in range(passes)])


def _train(fold: _Fold, device: torch.device, threads: int | None = None) -> ShortcutNet:
    """Train ``fold``'s net (on ``threads`` CPU threads of its own when given) and return it in eval mode."""
    if threads is not None:
        torch.set_num_threads(threads)  # this worker thread's own setting
    net, optimizer = fold.net, torch.optim.Adam(fold.net.parameters(), lr=2e-3)
    net.train()
    for order in fold.orders:
        for start in range(0, _batches_per_pass(len(fold.labels)) * BATCH_SIZE, BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            loss = generalised_cross_entropy(net(as_input(fold.images[rows], device)), fold.labels[rows].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


def _train_all(folds: list[_Fold], device: torch.device) -> list[ShortcutNet]:
    """Train every fold's net. On a CPU with at least one thread per fold they train side by side, each on its
    share of the threads (small convolutions use two threads poorly); the caller's thread setting is restored
    afterwards."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or len(folds) < 2 or threads < len(folds):
        return [_train(fold, device) for fold in folds]
    try:
        with ThreadPoolExecutor(len(folds)) as pool:
            return list(pool.map(lambda fold: _train(fold, device, threads // len(folds)), folds))
    finally:
        torch.set_num_threads(threads)


def fit_shortcut_net(images: torch.Tensor, labels: torch.Tensor, num_classes: int, seed: int = 0,
                     device: torch.device | str = "cpu") -> ShortcutNet:
    """One :class:`ShortcutNet` trained briefly on all of ``images`` (uint8 thumbnails), in eval mode: what a
    network learns first from this split, to apply to another split. The global RNG is untouched."""
    device = torch.device(device)
    with _seeded(seed, device) as generator:
        return _train(_fold(images, labels, num_classes, generator, device), device)


def network_out_of_fold(images: torch.Tensor, labels: torch.Tensor, num_classes: int, seed: int = 0,
                        device: torch.device | str = "cpu", width: int = WIDTH,
                        nets: list[ShortcutNet] | None = None) -> torch.Tensor:
    """Class probabilities ``(N, K)`` of :class:`ShortcutNet` for ``images`` (uint8 ``(N, 3, s, s)`` from
    :func:`thumbnails`), each row from the fold's net that did not train on it; the trained nets are appended to
    ``nets`` when given. The global RNG is untouched."""
    device = torch.device(device)
    probabilities = torch.zeros(len(labels), num_classes)
    with _seeded(seed, device) as generator:
        order = torch.randperm(len(labels), generator=generator)
        held = [order[fold::FOLDS] for fold in range(FOLDS)]
        folds = []
        for fold in range(FOLDS):
            kept = torch.cat(held[:fold] + held[fold + 1 :])
            folds.append(_fold(images[kept], labels[kept], num_classes, generator, device, width))
    trained = _train_all(folds, device)
    if nets is not None:
        nets += trained
    for rows_held, net in zip(held, trained, strict=True):
        with torch.no_grad():
            for start in range(0, len(rows_held), 256):
                rows = rows_held[start : start + 256]
                probabilities[rows] = net(as_input(images[rows], device)).softmax(1).cpu()
    return probabilities


def sure_mistakes(out_of_fold: torch.Tensor, labels: torch.Tensor, below: float = SURE_PROBABILITY) -> float:
    """The share of the net's mistakes that are sure ones (true label's probability under ``below`` / K); nan
    without mistakes."""
    wrong = out_of_fold.argmax(1) != labels
    if not wrong.any():
        return math.nan
    truth = label_probability(out_of_fold, labels)
    return float((truth[wrong] < below / out_of_fold.shape[1]).float().mean())


def averaged_out_of_fold(images: torch.Tensor, labels: torch.Tensor, num_classes: int, seed: int = 0,
                         device: torch.device | str = "cpu", width: int = WIDTH, runs: int = 1,
                         nets: list[ShortcutNet] | None = None) -> torch.Tensor:
    """:func:`network_out_of_fold` from ``runs`` seeds (``seed``, ``seed + 1``, ...), their probabilities averaged
    geometrically (renormalised); one run's probabilities as they are. The first run's nets go to ``nets``."""
    if runs == 1:
        return network_out_of_fold(images, labels, num_classes, seed, device, width, nets)
    logs = [network_out_of_fold(images, labels, num_classes, seed + run, device, width,
                                nets if run == 0 else None).clamp_min(1e-6).log()
            for run in range(runs)]
    return torch.stack(logs).mean(0).softmax(1)


def looked_at(settings: NetworkSettings) -> str:
    """What the network estimate with ``settings`` looked at, in words."""
    return LOOKS_AT_NETWORK if settings.runs == 1 else f"{LOOKS_AT_NETWORK} ({settings.runs} runs averaged)"


def estimate_minority_network(images: torch.Tensor, labels: torch.Tensor, num_classes: int, seed: int = 0,
                              device: torch.device | str = "cpu",
                              settings: NetworkSettings = ESTIMATE) -> MinorityEstimate:
    """:func:`averaged_out_of_fold` on ``images`` (uint8 thumbnails at ``settings.side``), judged by
    :func:`~.base.judge` and biased only where enough mistakes are sure ones (:func:`sure_mistakes`): then the
    samples the nets get wrong (or only those under ``settings.flag_probability`` / K) are the estimated minority.
    ``net`` is one of the first run's nets, for maps of what the estimate reads."""
    trained: list[ShortcutNet] = []
    estimate = judge(looked_at(settings), labels, num_classes,
                     lambda: averaged_out_of_fold(images, labels, num_classes, seed, device, settings.width,
                                                  settings.runs, trained))
    estimate = replace(estimate, net=trained[0] if trained else None)
    sure = sure_mistakes(estimate.out_of_fold, labels, settings.sure_probability)
    if math.isnan(sure):  # no mistakes: nothing to flag
        return replace(estimate, biased=False)
    flag_below = None if settings.flag_probability is None else settings.flag_probability / num_classes
    return replace(estimate, sure_mistakes=sure, biased=estimate.biased and sure >= settings.sure_share,
                   flag_below=flag_below)
