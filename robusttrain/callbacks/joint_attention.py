"""The joint-attention-head objective as a callback: the model must give the same output when the background
(``1 - W``) is replaced, and an area prior keeps the attended region small.

Per sample: ``a * task(F(I), y) + b * task(F(I'), y) + c * (mean(1 - W) - S_R)^2`` with
``I' = W * I + (1 - W) * N``. ``N`` is uniform noise (the paper's variant), another image of the batch
(``swap``) or the image's mean colour (``mean``). Gradients reach both the task model and the head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.attention_head import find_attention_head
from ..types import Batch, TrainState
from .base import Callback
from .registry import CALLBACKS
from .start import StartPoint

REPLACEMENTS = ("noise", "swap", "mean")
MATCHES = ("target", "logits")
BLENDS = ("soft", "sample")


def replacement_background(images: torch.Tensor, mode: str) -> torch.Tensor:
    """What replaces the background: ``noise`` (uniform), ``swap`` (next image in the batch), ``mean`` colour."""
    if mode == "noise":
        return torch.rand_like(images)
    if mode == "swap":
        return images.roll(1, dims=0)
    if mode == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    raise ValueError(f"unknown background replacement {mode!r}; choose from {list(REPLACEMENTS)}")


def sample_keep_mask(attention: torch.Tensor, temperature: float) -> torch.Tensor:
    """Relaxed Bernoulli sample of which pixels are kept (probability W), differentiable in W."""
    probs = attention.clamp(1e-4, 1 - 1e-4)
    uniform = torch.rand_like(probs).clamp(1e-6, 1 - 1e-6)
    logits = probs.log() - (-probs).log1p() + uniform.log() - (-uniform).log1p()
    return torch.sigmoid(logits / temperature)


def per_sample_task_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer class targets ``(B,)``, mean squared error per sample otherwise."""
    if not targets.is_floating_point():
        return F.cross_entropy(outputs, targets.long(), reduction="none")
    if outputs.shape != targets.shape:
        targets = targets.reshape(outputs.shape)
    return (outputs - targets).pow(2).flatten(1).mean(dim=1)


@CALLBACKS.register("joint_attention")
class JointAttentionCallback(Callback):
    """Train the model's attention head jointly with it (regression and classification).

    Args:
        task_weight: ``a``, scales the loop's per-sample task loss.
        background_weight: ``b``; 0 turns the background term off (the ablation).
        area_weight: ``c``.
        background_area: ``S_R``, the fraction of the image expected to be background (paper: 0.95).
        replacement: ``noise``, ``swap`` or ``mean``.
        match: ``target`` (I' must predict the label) or ``logits`` (I' must reproduce F(I), classification).
        blend: ``soft`` keeps each pixel in proportion W (the paper); ``sample`` keeps it with probability W
            (relaxed Bernoulli at ``temperature``), so a half-kept object pixel is fully replaced half the
            time, which pushes W towards 0/1 and sharpens the maps.
        start: the task loss alone before this fraction of training, so that the background term first meets a
            model that already reads the object (a head trained against an untrained model tends to fade).
            With several processes the head gets zero gradients meanwhile (DDP needs one for every parameter).
        start_step: the same as an optimizer step.

    Needs ``state.model`` to contain an attention head (``create_model(..., attention_head=True)``).
    """

    order = 25

    def __init__(
        self,
        task_weight: float = 1.0,
        background_weight: float = 1.0,
        area_weight: float = 1.0,
        background_area: float = 0.95,
        replacement: str = "noise",
        match: str = "target",
        blend: str = "soft",
        temperature: float = 0.3,
        start: float = 0.0,
        start_step: int | None = None,
        enabled: bool = True,
        key: str | None = None,
    ) -> None:
        super().__init__(enabled, key)
        if replacement not in REPLACEMENTS:
            raise ValueError(f"unknown background replacement {replacement!r}; choose from {list(REPLACEMENTS)}")
        if match not in MATCHES:
            raise ValueError(f"unknown match {match!r}; choose from {list(MATCHES)}")
        if blend not in BLENDS:
            raise ValueError(f"unknown blend {blend!r}; choose from {list(BLENDS)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 <= background_area <= 1:
            raise ValueError(f"background_area (S_R) must be in [0, 1], got {background_area}")
        if min(task_weight, background_weight, area_weight) < 0:
            raise ValueError("loss weights a, b, c must be >= 0")
        self.task_weight, self.background_weight, self.area_weight = task_weight, background_weight, area_weight
        self.background_area, self.replacement, self.match = background_area, replacement, match
        self.blend, self.temperature, self.start = blend, temperature, StartPoint(start, start_step)

    def check(self, state: TrainState, batch: Batch) -> None:
        if state.model is None:
            raise ValueError("joint_attention needs state.model (the model being trained)")
        find_attention_head(state.model)  # names how to add one

    def on_loss(self, state: TrainState, batch: Batch, outputs: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        if state.model is None:
            raise ValueError("joint_attention needs state.model (the model being trained)")
        warming_up = not self.start.reached(state)
        if warming_up and state.world_size == 1:
            return self.task_weight * losses
        attention = find_attention_head(state.model)(batch.images)
        if warming_up:
            # NOTE: DDP needs a gradient for every parameter in every step: with several processes the head
            # runs during the warm-up too and gets zero gradients.
            return self.task_weight * losses + 0.0 * attention.mean()
        total = self.task_weight * losses
        if self.background_weight > 0:
            keep = attention if self.blend == "soft" else sample_keep_mask(attention, self.temperature)
            replaced = keep * batch.images + (1 - keep) * replacement_background(batch.images, self.replacement)
            replaced_outputs = state.model(replaced)
            if self.match == "logits":
                term = (replaced_outputs - outputs.detach()).pow(2).flatten(1).mean(dim=1)
            else:
                term = per_sample_task_loss(replaced_outputs, batch.targets)
            total = total + self.background_weight * term
        background = (1 - attention).flatten(1).mean(dim=1)
        total = total + self.area_weight * (background - self.background_area).pow(2)
        state.metrics["joint_attention/background_area"] = float(background.detach().mean())
        return total
