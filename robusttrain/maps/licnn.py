"""LICNN: lateral-inhibition attention maps (Cao et al., AAAI-18), as reproduced by Marcinek.

1. Forward, and back-propagate the target class score to every ReLU output.
2. Per ReLU layer: Max-C map of the gradient (max over channels), L2-normalised.
3. Lateral inhibition in a k x k zone (zero padding): ``a * exp(-mean(zone)) + b * sum d e^-d relu(x_n - x)``
   with ``d`` the distance to the centre divided by k; L2-normalised; a location stays open if its Max-C
   value exceeds its inhibition.
4. Forward again with every ReLU output gated (all channels zeroed where closed).
5. Sum-C maps of the gated outputs (sum over channels), L2-normalised, resized to the input, summed over
   layers and L2-normalised. Saliency (``top_k=5``) sums the attention maps of the top-k predicted classes.

Works for any CNN built from ``nn.ReLU`` modules (VGG, ResNet, ...), batched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import MapMethod, target_scores
from .hooks import ActivationCapture
from .registry import MAP_METHODS


def _l2_normalise(maps: torch.Tensor) -> torch.Tensor:
    return maps / maps.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]


def lateral_inhibition(max_c: torch.Tensor, zone: int = 7, a: float = 0.1, b: float = 0.9) -> torch.Tensor:
    """Inhibition strength ``(B, 1, h, w)`` for L2-normalised Max-C maps ``(B, 1, h, w)`` (zero padding)."""
    if zone % 2 != 1:
        raise ValueError(f"the inhibition zone must have odd size, got {zone}")
    pad = zone // 2
    average = F.avg_pool2d(max_c, zone, stride=1, padding=pad, count_include_pad=True)
    height, width = max_c.shape[-2:]
    neighbours = F.unfold(max_c, zone, padding=pad).view(len(max_c), zone * zone, height, width)
    offsets = torch.arange(zone, device=max_c.device, dtype=max_c.dtype) - pad
    distance = torch.sqrt(offsets[:, None] ** 2 + offsets[None, :] ** 2).flatten() / zone
    weight = (distance * torch.exp(-distance)).view(1, -1, 1, 1)
    differential = (weight * F.relu(neighbours - max_c)).sum(dim=1, keepdim=True)
    return a * torch.exp(-average) + b * differential


@MAP_METHODS.register("licnn")
class LICNN(MapMethod):
    """Lateral-inhibition attention (``top_k=1``) or saliency (``top_k=5``) maps.

    Args:
        model: a CNN whose activations are ``nn.ReLU`` modules.
        top_k: explain the top-k predicted classes and sum their maps (ignored when targets are given).
        zone, a, b: lateral inhibition zone size and balance coefficients (paper: 7, 0.1, 0.9).
        score: back-propagate the ``"softmax"`` probability (as the reproduction does) or the ``"logit"``.
    """

    def __init__(
        self, model: nn.Module, top_k: int = 1, zone: int = 7, a: float = 0.1, b: float = 0.9, score: str = "softmax"
    ) -> None:
        super().__init__(model)
        if score not in ("softmax", "logit"):
            raise ValueError(f"score must be 'softmax' or 'logit', got {score!r}")
        self.relus = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
        if not self.relus:
            raise ValueError("LICNN needs a CNN with nn.ReLU activation modules; this model has none "
                             "(use gradcam or degradation for GELU/SiLU models such as ViT)")
        self.top_k, self.zone, self.a, self.b, self.score = top_k, zone, a, b, score

    def _gates(self, images: torch.Tensor, classes: torch.Tensor) -> dict[str, torch.Tensor]:
        with ActivationCapture(self.relus) as capture:
            outputs = self.model(images)
        scores = outputs.softmax(dim=1) if self.score == "softmax" else outputs
        chosen = scores.gather(1, classes[:, None]).sum()
        names = list(capture.outputs)
        grads = torch.autograd.grad(chosen, [capture.outputs[n] for n in names], allow_unused=True)
        gates = {}
        for name, grad in zip(names, grads, strict=True):
            if grad is None or grad.ndim != 4:
                continue
            max_c = _l2_normalise(grad.amax(dim=1, keepdim=True).clamp_min(0))
            inhibition = _l2_normalise(lateral_inhibition(max_c, self.zone, self.a, self.b))
            gates[name] = (max_c > inhibition).to(grad.dtype)
        return gates

    def _attention(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        gates = self._gates(images, classes)
        with torch.no_grad(), ActivationCapture(
            self.relus, transform=lambda name, out: out * gates[name] if name in gates else out
        ) as capture:
            self.model(images)
        total = torch.zeros(len(images), 1, *images.shape[-2:], device=images.device)
        for name in gates:
            sum_c = _l2_normalise(capture.outputs[name].sum(dim=1, keepdim=True))
            total += F.interpolate(sum_c, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return _l2_normalise(total)

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        # NOTE: in-place ReLUs would overwrite the activations autograd needs; switch them off meanwhile.
        inplace = [m.inplace for _, m in self.relus]
        for _, module in self.relus:
            module.inplace = False
        try:
            with torch.no_grad():
                outputs = self.model(images)
            if targets is not None:
                classes = target_scores(outputs, targets)[1][:, None]
            else:
                classes = outputs.topk(min(self.top_k, outputs.shape[1]), dim=1).indices
            maps = sum(self._attention(images, classes[:, j]) for j in range(classes.shape[1]))
            return _l2_normalise(maps)
        finally:
            for (_, module), flag in zip(self.relus, inplace, strict=True):
                module.inplace = flag
