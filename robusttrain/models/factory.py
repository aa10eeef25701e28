"""Create timm models that take images in [0, 1] (normalisation lives inside the model), pretrained as in timm.

Keeping normalisation inside the model means every tool of this library (background composites, map
methods, IN-9 variants) works on plain ``[0, 1]`` images, whatever statistics the backbone expects.
"""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from ..feature_masks.net import FeatureMaskNet
from .attention_head import AttentionHead, JointAttentionModel
from .attention_pool import AttentionPool, AttentionPoolNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageModel(nn.Module):
    """``backbone((images - mean) / std)`` with input checks that name what is wrong.

    Shape:
        images ``(B, 3, H, W)`` float in [0, 1] -> backbone output (logits ``(B, K)`` for classifiers).
    """

    def __init__(
        self, backbone: nn.Module, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def in_chans(self) -> int:
        return self.mean.shape[1]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Check ``images`` and map them from [0, 1] to the backbone's input statistics."""
        if images.ndim != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
        if images.shape[1] != self.in_chans:
            raise ValueError(f"model expects {self.in_chans}-channel images, got {images.shape[1]} channels "
                             f"(convert greyscale/RGBA to RGB first)")
        if not images.is_floating_point():
            raise TypeError(f"images must be floating point in [0, 1], got {images.dtype}")
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(images))

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map ``(B, C, h, w)`` or tokens ``(B, N, C)`` (timm ``forward_features``)."""
        return self.backbone.forward_features(self.normalize(images))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(features)


def create_model(
    name: str,
    num_classes: int,
    checkpoint: str | Path | None = None,
    pretrained: bool = False,
    pretrained_file: str | Path | None = None,
    attention_pool: str | None = None,
    mask_ratio: float = 0.1,
    pool_heads: int = 4,
    attention_head: bool = False,
    head_width: int = 32,
    head_max_size: int | None = None,
    feature_masks: bool = False,
    attributes: int | None = None,
    mask_width: int = 64,
    mask_residual: bool = False,
    single_mask: bool = False,
    **kwargs: Any,
) -> ImageModel | JointAttentionModel:
    """A timm model by name wrapped in :class:`ImageModel`.

    Args:
        name: any ``timm.list_models()`` name.
        num_classes: output size (1 for scalar regression).
        checkpoint: local weights file (a state dict of the backbone or of an ``ImageModel``; a ``"model"`` or
            ``"state_dict"`` entry is unwrapped). Classifier weights whose shape does not fit ``num_classes``
            are skipped, so ImageNet checkpoints can be fine-tuned.
        pretrained: start from timm's pretrained weights for ``name`` (fetched from the hub, as
            ``timm.create_model(name, pretrained=True)``; the classifier is re-initialised for ``num_classes``).
        pretrained_file: the same from a local weights file (timm's ``pretrained_cfg_overlay=dict(file=...)``):
            works offline.
        attention_pool: replace the CNN's global pooling by :class:`AttentionPool` in this mode
            (``dropkey``, ``dropout`` or ``none``), with ``mask_ratio`` and ``pool_heads``.
        attention_head: return a :class:`JointAttentionModel`: the model plus an :class:`AttentionHead` of
            ``head_width`` channels (run at most at ``head_max_size`` pixels), trained with the
            ``joint_attention`` callback.
        feature_masks: replace global pooling by a :class:`~robusttrain.feature_masks.FeatureMaskNet`
            (a mask per feature and per attribute, ``mask_width`` trunk channels, ``mask_residual`` form,
            ``single_mask`` for the attention-branch baseline).
        attributes: number of binary attributes of a multi-label model (``num_classes`` must equal it): with
            ``feature_masks`` each attribute gets its own masks and classifier; outputs are one logit each.
        **kwargs: passed to ``timm.create_model`` (e.g. ``drop_rate``, ``output_stride``).

    Raises:
        ValueError: unknown model name, weights that do not fit it or cannot be fetched, or two weight sources.
        FileNotFoundError: the checkpoint or pretrained file does not exist.
    """
    if sum(bool(source) for source in (checkpoint, pretrained, pretrained_file)) > 1:
        raise ValueError("give one source of initial weights: checkpoint, pretrained or pretrained_file")
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:10]
        raise ValueError(f"unknown timm model {name!r}; similar names: {close}")
    if attributes is not None and attributes != num_classes:
        raise ValueError(f"a multi-label model has one output per attribute: num_classes={num_classes} but "
                         f"{attributes} attributes")
    if attention_pool is not None and feature_masks:
        raise ValueError("attention_pool and feature_masks both replace the pooling; choose one")
    if pretrained_file is not None:
        if not Path(pretrained_file).is_file():
            raise FileNotFoundError(f"pretrained weights file not found: {pretrained_file}")
        kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
    kwargs["pretrained"] = bool(pretrained or pretrained_file)
    try:
        model = _build(name, num_classes, attention_pool, mask_ratio, pool_heads, feature_masks, attributes,
                       mask_width, mask_residual, single_mask, kwargs)
    except Exception as error:  # a fetch or load failure of the weights, named in one line
        if not kwargs["pretrained"]:
            raise
        where = f"file {pretrained_file}" if pretrained_file else "the hub (offline? use pretrained_file)"
        raise ValueError(f"could not load pretrained weights of {name} from {where}: "
                         f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    if attention_head:
        model = JointAttentionModel(model, AttentionHead(model.in_chans, head_width, max_size=head_max_size))
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model


def _build(name: str, num_classes: int, attention_pool: str | None, mask_ratio: float, pool_heads: int,
           feature_masks: bool, attributes: int | None, mask_width: int, mask_residual: bool, single_mask: bool,
           kwargs: dict[str, Any]) -> ImageModel:
    """The timm backbone (with its pooling replaced where asked) wrapped in :class:`ImageModel`."""
    if feature_masks:
        body = _timm(name, num_classes=0, global_pool="", **kwargs)
        per_attribute = (attributes, 1) if attributes else (1, num_classes)
        backbone = FeatureMaskNet(body, *per_attribute, width=mask_width, residual=mask_residual,
                                  single_mask=single_mask)
    elif attention_pool is None:
        backbone = _timm(name, num_classes=num_classes, **kwargs)
    else:
        body = _timm(name, num_classes=0, global_pool="", **kwargs)
        pool = AttentionPool(body.num_features, pool_heads, attention_pool, mask_ratio)
        backbone = AttentionPoolNet(body, num_classes, pool)
    config = backbone.pretrained_cfg or {}
    return ImageModel(backbone, tuple(config.get("mean", IMAGENET_MEAN)), tuple(config.get("std", IMAGENET_STD)))


class _MissingKeys(logging.Handler):
    """Collects the keys timm reports missing while it loads pretrained weights (it loads non-strictly whenever the
    class count changes, so weights of another network would otherwise load nothing, silently)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.match(r"Missing keys \((.*)\) discovered while loading pretrained", record.getMessage())
        if found:
            self.keys += [key.strip() for key in found.group(1).split(",")]


def _timm(name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model``; with pretrained weights, refused when any weight but the classifier's did not load."""
    if not kwargs.get("pretrained"):
        return timm.create_model(name, **kwargs)
    report, logger = _MissingKeys(), logging.getLogger("timm.models._builder")
    level = logger.level
    logger.addHandler(report)
    logger.setLevel(logging.INFO)  # timm reports missing keys at INFO
    try:
        net = timm.create_model(name, **kwargs)
    finally:
        logger.removeHandler(report)
        logger.setLevel(level)
    classifier = net.pretrained_cfg.get("classifier") or ()
    prefixes = tuple(f"{c}." for c in ((classifier,) if isinstance(classifier, str) else classifier))
    missing = [key for key in report.keys if not key.startswith(prefixes)]
    if missing:
        raise RuntimeError(f"{len(missing)} of its weights are not in the file (first: {', '.join(missing[:3])}): "
                           "weights of another network?")
    return net


def load_weights(model: ImageModel | JointAttentionModel, checkpoint: str | Path) -> list[str]:
    """Load a local checkpoint into ``model``; returns the names of skipped (shape-mismatched) tensors.

    A :class:`JointAttentionModel` takes a checkpoint of itself, or of a plain model (its head stays as built).
    """
    path = Path(checkpoint)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder: give a weights file (a run folder's model.pt)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (KeyError, EOFError, RuntimeError, pickle.UnpicklingError) as error:
            raise ValueError(f"{path} is not a PyTorch weights file ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of weights")
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if isinstance(model, JointAttentionModel):
        if any(k.startswith("task_model.") for k in state):
            return _load_matching(model, state, path)
        return _load_plain(model.task_model, state, path)
    return _load_plain(model, state, path)


def _load_plain(model: ImageModel, state: dict[str, torch.Tensor], path: Path) -> list[str]:
    if not any(k.startswith("backbone.") for k in state):
        state = {f"backbone.{k}": v for k, v in state.items()}
    return _load_matching(model, state, path)


def _load_matching(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> list[str]:
    own = model.state_dict()
    skipped = [k for k, v in state.items() if k in own and isinstance(v, torch.Tensor) and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in skipped]
    if unexpected or missing:
        raise ValueError(f"checkpoint {path} does not fit this model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return skipped
