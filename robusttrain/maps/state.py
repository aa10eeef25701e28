"""Run a map method without disturbing training: mode, BatchNorm statistics, ``.grad``, flags and RNG are restored."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


@contextmanager
def kept_random_state() -> Iterator[None]:
    """Restore the Python, NumPy, torch CPU and CUDA random states and cuDNN's determinism flags on exit (also
    after an exception), whatever the code inside seeds or draws."""
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
           torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        yield
    finally:
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if rng[3] is not None:
            torch.cuda.set_rng_state_all(rng[3])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


@contextmanager
def untouched(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with frozen parameters for the duration, then restore everything.

    Restored on exit (also after an exception): every module's train/eval flag, every buffer (BatchNorm running
    statistics and counters), every parameter's ``.grad`` and ``requires_grad``, and the random states
    (:func:`kept_random_state`). Freezing parameters means backward passes inside compute no weight gradients,
    which is both faster and guarantees ``.grad`` is never touched.
    """
    modes = {module: module.training for module in model.modules()}
    buffers = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    model.eval()
    for p in params:
        p.requires_grad_(False)
    try:
        with kept_random_state():
            yield model
    finally:
        for module, mode in modes.items():
            module.training = mode
        with torch.no_grad():
            # NOTE: copy only what changed: an in-place write bumps the tensor's version and would break a
            # training backward pass that is still pending (BatchNorm saves its running statistics).
            for name, buffer in model.named_buffers():
                if name in buffers and not torch.equal(buffer, buffers[name]):
                    buffer.copy_(buffers[name])
        for p, flag, grad in zip(params, flags, grads, strict=True):
            p.requires_grad_(flag)
            p.grad = grad
