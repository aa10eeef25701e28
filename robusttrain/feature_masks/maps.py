"""Maps from per-feature attention masks: per attribute and feature, and one map per attribute.

An attribute's classifier is linear over the mean-pooled masked features, so its logit splits exactly over
positions: ``logit_a = b_a + mean_p sum_c w[a, c] * G[a, c, p] * F[c, p]`` with ``G = M`` (or ``1 + M``, residual).
The ``decision`` map of attribute ``a`` (the default) is the part of that sum at each position that pushes
towards the model's decision: towards 1 or 0 for a binary attribute, towards the predicted (or given) class for
one K-class label; a class-activation map over the masked features. The ``importance`` map is
``sum_c importance[a, c] * M[a, c] * relu(F[c])``: the masked features weighted by each feature's importance to
the attribute; it adds up evidence for and against the decision alike, so only the ``decision`` map shows a
shortcut the attribute was learned from (BENCHMARKS.md, per-feature masks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..maps.base import MapMethod, check_images, target_scores
from ..maps.registry import MAP_METHODS
from ..maps.state import untouched
from .net import FeatureMaskNet, find_feature_masks

IMPORTANCE_METHODS = ("weights", "gradient")
MAP_WEIGHTINGS = ("decision", "importance")


def _parts(model: nn.Module, images: torch.Tensor,
           transformed: bool = True) -> tuple[FeatureMaskNet, torch.Tensor, torch.Tensor]:
    """The model's mask network, its features of ``images`` and their masks."""
    net = find_feature_masks(model)
    features = model.forward_features(images)
    return net, features, net.masks(features, transformed=transformed)


def per_feature_maps(model: nn.Module, images: torch.Tensor, features: Sequence[int] | None = None,
                     transformed: bool = False) -> torch.Tensor:
    """Masks per attribute and feature at image size, ``(B, A, C', H, W)`` in [0, 1] (``C'`` = ``features``, default
    all: mind the memory, ``B * A * C * H * W`` floats). ``transformed`` applies the model's mask transform."""
    check_images(images, model)
    with untouched(model), torch.no_grad():
        masks = _parts(model, images, transformed)[2]
    if features is not None:
        masks = masks[:, :, list(features)]
    batch, attributes, channels, height, width = masks.shape
    upsampled = F.interpolate(masks.reshape(batch, attributes * channels, height, width), size=images.shape[-2:],
                              mode="bilinear", align_corners=False)
    return upsampled.view(batch, attributes, channels, *images.shape[-2:])


def feature_importance(model: nn.Module, batches: Iterable[torch.Tensor], method: str = "weights") -> torch.Tensor:
    """How much each feature matters to each attribute, ``(A, C)`` >= 0, averaged over image ``batches``.

    ``weights``: the norm of the attribute's classifier weights on the feature times its mean masked activation
    (what the feature contributes to the logits). ``gradient``: the mean ``|sum_hw dlogit/dM * M|`` of the
    feature's mask (how much the logit moves if the mask closes). The model is left untouched.

    Raises:
        ValueError: unknown method, no batches, or a model without feature masks.
    """
    if method not in IMPORTANCE_METHODS:
        raise ValueError(f"importance method must be one of {list(IMPORTANCE_METHODS)}, got {method!r}")
    total, count = None, 0
    with untouched(model):
        for images in batches:
            check_images(images, model)
            with torch.enable_grad() if method == "gradient" else torch.no_grad():
                net, features, masks = _parts(model, images)
                if method == "weights":
                    per_sample = net.contributions(net.pooled(features, masks))
                else:
                    masks = masks.detach().requires_grad_(True)
                    logits = net.classify(net.pooled(features.detach(), masks))
                    scores = _attribute_scores(net, logits)
                    (grads,) = torch.autograd.grad(scores.sum(), masks)
                    per_sample = (grads * masks).sum(dim=(-2, -1)).abs()
            batch_sum = per_sample.detach().sum(dim=0)
            total = batch_sum if total is None else total + batch_sum
            count += len(images)
    if total is None:
        raise ValueError("feature_importance needs at least one batch of images")
    return total / count


def _attribute_scores(net: FeatureMaskNet, logits: torch.Tensor) -> torch.Tensor:
    """``(B, A)``: each attribute's logit (multi-label) or the predicted class's logit (one K-class label)."""
    if net.outputs_per_attribute == 1:
        return logits
    return target_scores(logits, None)[0][:, None]


def _check_weighting(weighting: str) -> str:
    if weighting not in MAP_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {list(MAP_WEIGHTINGS)}, got {weighting!r}")
    return weighting


def attribute_maps(model: nn.Module, images: torch.Tensor, attribute: int = 0, weighting: str = "decision",
                   targets: torch.Tensor | None = None) -> torch.Tensor:
    """Raw map of ``attribute``, ``(B, 1, h, w)`` >= 0 at feature resolution (``weighting``: see the module).
    ``targets``: for one K-class label, the class to explain (default: the predicted one); a binary attribute's
    map always follows the model's decision."""
    _check_weighting(weighting)
    net, features, masks = _parts(model, images)
    attribute = net.check_attribute(attribute)
    if weighting == "importance":
        importance = net.importance[attribute]
        if not importance.any():  # no importance computed yet: the classifier's weights alone
            importance = net.weight[attribute].norm(dim=0)
        weighted = masks[:, attribute] * features.clamp_min(0) * importance[None, :, None, None]
        return weighted.sum(dim=1, keepdim=True)
    gated = features * (1 + masks[:, attribute] if net.residual else masks[:, attribute])
    per_position = torch.einsum("bchw,oc->bohw", gated, net.weight[attribute])  # (B, outputs, h, w)
    logits = per_position.mean(dim=(-2, -1)) + net.bias[attribute]
    if net.outputs_per_attribute == 1:
        towards = torch.where(logits > 0, 1.0, -1.0)[:, :, None, None]
        return (towards * per_position).clamp_min(0)
    classes = target_scores(logits, targets)[1]
    return per_position[torch.arange(len(classes)), classes][:, None].clamp_min(0)


@MAP_METHODS.register("feature_masks")
class FeatureMaskMaps(MapMethod):
    """One map per image for ``attribute`` (index), one forward pass: where the attribute's decision comes from
    (``weighting="decision"``) or the importance-weighted masked features (``"importance"``; uses the importances
    stored in the model by ``FeatureMaskNet.set_transform`` / the ``intentional_masks`` callback, else the
    classifier's weight norms). See the module.

    Raises:
        ValueError: the model has no feature masks (``create_model(..., feature_masks=True)``), an attribute out
            of range, an unknown weighting.
    """

    uses_gradients = False

    def __init__(self, model: nn.Module, attribute: int = 0, weighting: str = "decision") -> None:
        super().__init__(model)
        self.weighting = _check_weighting(weighting)
        self.attribute = find_feature_masks(model).check_attribute(attribute)

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            return attribute_maps(self.model, images, self.attribute, self.weighting, targets)
