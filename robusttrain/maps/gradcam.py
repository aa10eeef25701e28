"""Grad-CAM (Selvaraju et al.) for CNN feature maps and ViT / MLP-Mixer token layouts.

Default target layer: for timm CNNs the deepest stage (``feature_info``) whose map still has at least
``min_grid`` x ``min_grid`` positions for the given input size (7 x 7 is what ``layer4`` gives at 224 px; on
64 px images ``layer4`` would be 2 x 2 and useless), else the backbone's last feature map; for token models
the input of the last block's attention/mixing (``blocks.<last>.norm1``, as pytorch-grad-cam does for ViT),
because a class-token head sends no gradient to patch tokens at the very end. The token grid and the number
of prefix (class/register) tokens are read from the model, never hard-coded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import MapMethod, TrainingPassCapture, target_scores, to_unit_maps
from .hooks import ActivationCapture, resolve_layers
from .registry import MAP_METHODS
from .reshape import token_layout, tokens_to_map


def _backbone(model: nn.Module) -> nn.Module:
    """The timm network inside ``model`` (through :class:`ImageModel`, a joint-attention wrapper, or any module
    that holds one, such as a LightningModule)."""
    model = getattr(model, "task_model", model)
    if hasattr(model, "backbone"):
        return model.backbone
    if hasattr(model, "forward_features"):
        return model
    inner = next((m for _, m in model.named_modules() if m is not model and hasattr(m, "forward_features")), None)
    return model if inner is None else _backbone(inner)


def _backbone_prefix(model: nn.Module) -> str:
    """``model``'s name for its backbone, as a module-name prefix (``"backbone."``, or ``""`` for a bare network)."""
    backbone = _backbone(model)
    path = next(name for name, module in model.named_modules() if module is backbone)
    return f"{path}." if path else ""


def _stages(backbone: nn.Module) -> list[dict]:
    """The backbone's timm ``feature_info`` stages that name their module (empty for other networks)."""
    return [info for info in getattr(backbone, "feature_info", []) or [] if "module" in info]


def default_target_layers(model: nn.Module, input_size: tuple[int, int], min_grid: int = 7) -> list[str] | None:
    """The layer Grad-CAM explains by default for this input size (``None`` = the last feature map)."""
    backbone, prefix = _backbone(model), _backbone_prefix(model)
    blocks = getattr(backbone, "blocks", None)
    if isinstance(blocks, nn.Sequential) and len(blocks) and hasattr(blocks[-1], "norm1"):
        return [f"{prefix}blocks.{len(blocks) - 1}.norm1"]
    stages = _stages(backbone)
    fitting = [info for info in stages if min(input_size) / info["reduction"] >= min_grid]
    if stages and fitting and fitting[-1] is not stages[-1]:
        return [prefix + fitting[-1]["module"]]
    return None


def _combine(cams: list[torch.Tensor]) -> torch.Tensor:
    """Mean of per-layer CAMs (each scaled to max 1) at the largest layer's resolution."""
    size = max((c.shape[-2:] for c in cams), key=lambda s: s[0] * s[1])
    cams = [F.interpolate(c, size=size, mode="bilinear", align_corners=False) for c in cams]
    return torch.stack([c / c.flatten(1).amax(1).clamp_min(1e-12)[:, None, None, None] for c in cams]).mean(0)


def cam_from(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """ReLU of the gradient-weighted channel sum: ``(B, C, h, w)`` x2 -> ``(B, 1, h, w)``."""
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * activations).sum(dim=1, keepdim=True))


@MAP_METHODS.register("gradcam")
class GradCAM(MapMethod):
    """Grad-CAM maps of the predicted (or given) class.

    Args:
        model: classifier or regressor; timm models (wrapped or not) need no further arguments.
        target_layers: fnmatch patterns of the layers to explain (maps of several layers are averaged).
        grid_size, num_prefix_tokens: override the token layout read from the model.
        min_grid: smallest feature-map side the default layer choice accepts.
    """

    training_pass = True

    def __init__(
        self,
        model: nn.Module,
        target_layers: str | Sequence[str] | None = None,
        grid_size: tuple[int, int] | None = None,
        num_prefix_tokens: int | None = None,
        min_grid: int = 7,
    ) -> None:
        super().__init__(model)
        self.target_layers = target_layers
        self.min_grid = min_grid
        if target_layers is None and not hasattr(_backbone(model), "forward_features"):
            raise ValueError("pass target_layers= for models without a timm network (forward_features) inside")
        grid, prefix = token_layout(_backbone(model))
        self.grid_size = grid_size or grid
        self.num_prefix_tokens = prefix if num_prefix_tokens is None else num_prefix_tokens

    def _spatial(self, activations: torch.Tensor) -> torch.Tensor:
        if activations.ndim == 4:
            return activations
        return tokens_to_map(activations, self.grid_size, self.num_prefix_tokens)

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        layers = self.target_layers or default_target_layers(self.model, images.shape[-2:], self.min_grid)
        if layers is None and not hasattr(self.model, "forward_features"):  # a network inside another module
            layers = [_backbone_prefix(self.model) + _last_feature_layer(_backbone(self.model))]
        if layers is None:
            features = self.model.forward_features(images)
            scores, _ = target_scores(self.model.forward_head(features), targets)
            (grads,) = torch.autograd.grad(scores.sum(), features)
            return cam_from(self._spatial(features), self._spatial(grads))
        with ActivationCapture(resolve_layers(self.model, layers)) as capture:
            scores, _ = target_scores(self.model(images), targets)
        return self._cams(capture.outputs, scores)

    def _cams(self, activations: dict[str, torch.Tensor], scores: torch.Tensor, keep_graph: bool = False
              ) -> torch.Tensor:
        names = list(activations)
        grads = torch.autograd.grad(scores.sum(), [activations[n] for n in names], retain_graph=keep_graph)
        pairs = zip(names, grads, strict=True)
        return _combine([cam_from(self._spatial(activations[n].detach()), self._spatial(g)) for n, g in pairs])

    def capture_training_pass(self, input_size: tuple[int, int]) -> TrainingPassCapture:
        """Grad-CAM of the training forward itself: its activations are hooked, and the gradient of the explained
        scores reaches them through the training graph (kept for the loop's own backward pass).

        The model is in train mode there, so BatchNorm normalises with batch statistics and a sample's map has
        a small dependence on the rest of the batch; parameters' ``.grad`` are never touched (the gradient is
        taken with respect to the activations only).
        """
        return _TrainingPassCAM(self, input_size)


class _TrainingPassCAM:
    """Hooks on the Grad-CAM layers (the last feature map when none is chosen) until the outputs arrive."""

    def __init__(self, method: GradCAM, input_size: tuple[int, int]) -> None:
        self.method, self.input_size = method, input_size
        layers = method.target_layers or default_target_layers(method.model, input_size, method.min_grid)
        if layers is None:
            layers = [_backbone_prefix(method.model) + _last_feature_layer(_backbone(method.model))]
        self.capture = ActivationCapture(resolve_layers(method.model, layers)).__enter__()

    def maps(self, outputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        self.release()
        if not self.capture.outputs:
            raise RuntimeError("no forward pass ran through the model since the training-pass capture was armed")
        if not all(a.requires_grad for a in self.capture.outputs.values()):
            raise RuntimeError("training-pass Grad-CAM needs the training forward to build a graph (it ran "
                               "under torch.no_grad or with frozen parameters)")
        scores, _ = target_scores(outputs, targets)
        cams = self.method._cams(self.capture.outputs, scores, keep_graph=True)
        self.capture.outputs.clear()
        return to_unit_maps(cams.detach(), self.input_size)

    def release(self) -> None:
        self.capture.release()


def _last_feature_layer(backbone: nn.Module) -> str:
    """The module whose output is the backbone's last feature map (timm ``feature_info``)."""
    stages = _stages(backbone)
    if not stages:
        raise ValueError("training-pass Grad-CAM needs target_layers= for a model without timm feature_info")
    return stages[-1]["module"]
