"""Per-feature attention masks for each attribute (intentional attention mask transformation paper).

A multi-channel attention sub-network gives, on a CNN's last feature map F ``(B, C, h, w)``, one spatial mask per
feature channel and per attribute, M ``(B, A, C, h, w)`` in [0, 1]; attribute ``a``'s classifier sees the pooled
``F * M_a`` (or ``F * (1 + M_a)``, the residual form of attention branch networks). Which features matter for
which attribute (:func:`~robusttrain.feature_masks.maps.feature_importance`) then suggests an *intentional
transformation* of the masks: emphasise the important features' masks, damp the others (:class:`MaskTransform`).

Where the abstract is silent: one shared trunk (3x3 conv, BN, ReLU) and one 1x1 conv giving ``A * C`` mask
channels keep the mask network small; sigmoid masks and mean pooling make importance ``|weight| x mean masked
activation``; each attribute has its own classifier; ``single_mask=True`` shares one mask per attribute across
features (the attention-branch baseline).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

TRANSFORM_MODES = ("scale", "sharpen", "binarise")


@dataclass(frozen=True)
class MaskTransform:
    """How masks are transformed: the top ``top_fraction`` of features per attribute (by importance) are
    emphasised, the others multiplied by ``damp``.

    Modes of emphasis: ``scale`` multiplies the mask by ``emphasis`` (a gain on the feature, may exceed 1);
    ``sharpen`` pushes it towards 0/1 (``m^s / (m^s + (1 - m)^s)`` with ``s = sharpness``); ``binarise``
    thresholds it at 0.5 (straight-through gradient for fine-tuning).

    Raises:
        ValueError: an unknown mode or a value out of range, naming the option.
    """

    top_fraction: float = 0.1
    mode: str = "scale"
    emphasis: float = 2.0
    sharpness: float = 4.0
    damp: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in TRANSFORM_MODES:
            raise ValueError(f"mask transform mode must be one of {list(TRANSFORM_MODES)}, got {self.mode!r}")
        checks = {"top_fraction": (0.0, 1.0, self.top_fraction), "damp": (0.0, 1.0, self.damp)}
        for name, (low, high, value) in checks.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
                raise ValueError(f"{name} must be a number in ({low}, {high}], got {value!r}")
        for name in ("emphasis", "sharpness"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1.0 <= value <= 100.0:
                raise ValueError(f"{name} must be a number in [1, 100], got {value!r}")

    def selection(self, importance: torch.Tensor) -> torch.Tensor:
        """``(A, C)`` bool: the top ``top_fraction`` of each attribute's features by ``importance`` ``(A, C)``."""
        k = max(1, math.ceil(self.top_fraction * importance.shape[1]))
        top = importance.topk(k, dim=1).indices
        return torch.zeros_like(importance, dtype=torch.bool).scatter_(1, top, True)

    def apply(self, masks: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        """Transformed masks ``(B, A, C, h, w)`` given ``selected`` ``(A, C)`` bool."""
        if self.mode == "scale":
            emphasised = masks * self.emphasis
        elif self.mode == "sharpen":
            powered = masks.clamp(1e-6, 1 - 1e-6) ** self.sharpness
            emphasised = powered / (powered + (1 - masks).clamp(1e-6, 1) ** self.sharpness)
        else:
            emphasised = masks + ((masks > 0.5).to(masks.dtype) - masks).detach()
        chosen = selected[None, :, :, None, None]
        return torch.where(chosen, emphasised, masks * self.damp)


class FeatureMaskNet(nn.Module):
    """A timm CNN body, a multi-channel attention sub-network and one linear classifier per attribute.

    Args:
        body: timm CNN built with ``num_classes=0, global_pool=""`` (``forward_features`` -> ``(B, C, h, w)``).
        num_attributes: A, attributes with their own masks and classifier (multi-label: one logit each).
        outputs_per_attribute: logits per attribute (1 for binary attributes; K for one K-class label, A = 1).
        width: channels of the mask trunk.
        residual: classifiers see ``F * (1 + M)`` instead of ``F * M``.
        single_mask: one mask per attribute shared by every feature (attention-branch baseline).

    Shape:
        images ``(B, 3, H, W)`` -> logits ``(B, A * outputs_per_attribute)``.
    """

    def __init__(self, body: nn.Module, num_attributes: int, outputs_per_attribute: int = 1, width: int = 64,
                 residual: bool = False, single_mask: bool = False) -> None:
        super().__init__()
        channels = body.num_features
        self.body = body
        self.num_attributes, self.outputs_per_attribute = num_attributes, outputs_per_attribute
        self.residual, self.single_mask = residual, single_mask
        self.mask_trunk = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                        nn.ReLU(inplace=True))
        self.mask_heads = nn.Conv2d(width, num_attributes * (1 if single_mask else channels), 1)
        self.weight = nn.Parameter(torch.empty(num_attributes, outputs_per_attribute, channels))
        self.bias = nn.Parameter(torch.zeros(num_attributes, outputs_per_attribute))
        nn.init.normal_(self.weight, std=channels**-0.5)
        self.register_buffer("importance", torch.zeros(num_attributes, channels))
        self.register_buffer("selected", torch.zeros(num_attributes, channels, dtype=torch.bool))
        self.transform: MaskTransform | None = None
        self.pretrained_cfg = getattr(body, "pretrained_cfg", {})
        self.last_pooled: torch.Tensor | None = None  # (B, A, C) of the last training pass, for importances
        self.last_mask_area: torch.Tensor | None = None  # (A,) mean mask of the last training pass, with its graph

    @property
    def num_features(self) -> int:
        return self.weight.shape[-1]

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body.forward_features(images)

    def masks(self, features: torch.Tensor, transformed: bool = True) -> torch.Tensor:
        """Masks ``(B, A, C, h, w)`` in [0, 1] (above 1 after a ``scale`` transform) for features ``(B, C, h, w)``."""
        batch, channels, height, width = features.shape
        raw = torch.sigmoid(self.mask_heads(self.mask_trunk(features)))
        masks = raw.view(batch, self.num_attributes, -1, height, width).expand(-1, -1, channels, -1, -1)
        if transformed and self.transform is not None:
            masks = self.transform.apply(masks, self.selected)
        return masks

    def pooled(self, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """What each attribute's classifier sees, ``(B, A, C)``."""
        gate = 1 + masks if self.residual else masks
        return (features[:, None] * gate).mean(dim=(-2, -1))

    def contributions(self, pooled: torch.Tensor) -> torch.Tensor:
        """``|pooled| x`` the norm of each attribute's classifier weights per feature, ``(B, A, C)``: what each
        feature brings to each attribute's logits (the ``weights`` feature importance, per sample)."""
        return pooled.abs() * self.weight.detach().norm(dim=1)

    def check_attribute(self, attribute: object) -> int:
        """``attribute`` as an index of this model's attributes; ``ValueError`` naming the valid range otherwise."""
        if isinstance(attribute, bool) or not isinstance(attribute, int) or not 0 <= attribute < self.num_attributes:
            raise ValueError(f"attribute must be an index in [0, {self.num_attributes - 1}], got {attribute!r}")
        return attribute

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = torch.einsum("bac,aoc->bao", pooled, self.weight) + self.bias
        return logits.flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        masks = self.masks(features)
        pooled = self.pooled(features, masks)
        if self.training:
            self.last_pooled = pooled.detach()
            self.last_mask_area = masks.mean(dim=(0, 2, 3, 4))
        return self.classify(pooled)

    def mask_area(self) -> torch.Tensor:
        """Each attribute's mean mask value ``(A,)`` in the last training pass, differentiable: an area prior
        (``loss + weight * mask_area().mean()``, as the joint attention head's) keeps each attribute's masks on the
        positions its classifier needs.

        Raises:
            RuntimeError: no training pass yet.
        """
        if self.last_mask_area is None:
            raise RuntimeError("mask_area() needs a forward pass in training mode first")
        return self.last_mask_area

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))

    def set_transform(self, transform: MaskTransform | None, importance: torch.Tensor | None = None) -> None:
        """Switch the intentional transformation on (with ``importance`` ``(A, C)``, stored) or off (None)."""
        if importance is not None:
            if importance.shape != self.importance.shape:
                raise ValueError(f"importance must be (attributes, features) = {tuple(self.importance.shape)}, "
                                 f"got {tuple(importance.shape)}")
            self.importance.copy_(importance)
        if transform is not None:
            if not self.importance.any():
                raise ValueError("no feature importance yet: pass importance= (see feature_importance)")
            self.selected.copy_(transform.selection(self.importance))
        self.transform = transform

    def get_extra_state(self) -> dict[str, Any]:
        return {"transform": None if self.transform is None else asdict(self.transform)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        options = state.get("transform")
        self.transform = None if options is None else MaskTransform(**options)


def find_feature_masks(model: nn.Module) -> FeatureMaskNet:
    """The model's :class:`FeatureMaskNet` (also through wrappers), or a ``ValueError`` saying how to get one."""
    nets = [m for m in model.modules() if isinstance(m, FeatureMaskNet)]
    if len(nets) != 1:
        raise ValueError("model has no feature masks; create it with create_model(name, num_classes, "
                         "feature_masks=True)" if not nets else f"model has {len(nets)} FeatureMaskNets")
    return nets[0]
