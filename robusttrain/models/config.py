"""The model a run trains, as a typed value saved with the run and read back to rebuild the same network.

``recipes/train.py`` writes ``<run>/model.json``; ``robusttrain audit --model RUN`` and evaluation scripts build
the network from it, never from the recipe's flag names (a renamed flag could otherwise build another model).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from torch import nn

MODEL_FILE = "model.json"
POOL_MODES = ("dropkey", "dropout", "none")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelConfig:
    """What :func:`~robusttrain.models.create_model` needs to rebuild a run's network.

    Args:
        name: timm model name.
        num_classes: output size.
        drop_rate: timm classifier dropout.
        attention_pool: ``dropkey`` / ``dropout`` / ``none`` attention pooling instead of global pooling, or None.
        mask_ratio: DropKey / Dropout ratio of the attention pooling.
        attention_head: add a jointly trained attention head.
        head_width: channels of that head; head_max_size: largest side it runs at (None = the image's).
        output_stride: timm CNN output stride (8, 16, 32) or None for the model's own.
        attributes: names of the binary attributes of a multi-label model (one output each; ``num_classes``
            must equal their number), or None for single-label classification.
        feature_masks: per-feature attention masks for each attribute; mask_width: channels of their trunk;
        mask_residual: classifiers see ``F * (1 + M)``; single_mask: one mask per attribute for all features.

    Raises:
        ValueError: a value of the wrong type or range, naming the field.
    """

    name: str
    num_classes: int
    drop_rate: float = 0.0
    attention_pool: str | None = None
    mask_ratio: float = 0.1
    attention_head: bool = False
    head_width: int = 32
    head_max_size: int | None = None
    output_stride: int | None = None
    attributes: tuple[str, ...] | None = None
    feature_masks: bool = False
    mask_width: int = 64
    mask_residual: bool = False
    single_mask: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.name, str) or not self.name:
            problems.append(f"name must be a timm model name, got {self.name!r}")
        if not _is_int(self.num_classes) or self.num_classes < 1:
            problems.append(f"num_classes must be an integer >= 1, got {self.num_classes!r}")
        for field_name in ("drop_rate", "mask_ratio"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                problems.append(f"{field_name} must be a number in [0, 1), got {value!r}")
        if self.attention_pool is not None and self.attention_pool not in POOL_MODES:
            problems.append(f"attention_pool must be one of {list(POOL_MODES)} or null, got {self.attention_pool!r}")
        if not isinstance(self.attention_head, bool):
            problems.append(f"attention_head must be true or false, got {self.attention_head!r}")
        if not _is_int(self.head_width) or self.head_width < 1:
            problems.append(f"head_width must be an integer >= 1, got {self.head_width!r}")
        if self.head_max_size is not None and (not _is_int(self.head_max_size) or self.head_max_size < 8):
            problems.append(f"head_max_size must be an integer >= 8 or null, got {self.head_max_size!r}")
        if self.output_stride is not None and self.output_stride not in (8, 16, 32):
            problems.append(f"output_stride must be 8, 16, 32 or null, got {self.output_stride!r}")
        if self.attributes is not None:
            if isinstance(self.attributes, str) or not all(isinstance(a, str) and a for a in self.attributes):
                problems.append(f"attributes must be a list of names, got {self.attributes!r}")
            else:
                object.__setattr__(self, "attributes", tuple(self.attributes))
                if len(set(self.attributes)) != len(self.attributes) or len(self.attributes) != self.num_classes:
                    problems.append(f"attributes must be {self.num_classes} distinct names (one per output), "
                                    f"got {list(self.attributes)}")
        for flag in ("feature_masks", "mask_residual", "single_mask"):
            if not isinstance(getattr(self, flag), bool):
                problems.append(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if not _is_int(self.mask_width) or self.mask_width < 1:
            problems.append(f"mask_width must be an integer >= 1, got {self.mask_width!r}")
        if self.feature_masks and self.attention_pool is not None:
            problems.append("feature_masks and attention_pool both replace the pooling; choose one")
        if problems:
            raise ValueError("invalid model config: " + "; ".join(problems))

    def build(self, checkpoint: str | Path | None = None, pretrained: bool = False,
              pretrained_file: str | Path | None = None) -> nn.Module:
        """The network: random weights, ``checkpoint``'s, or timm's pretrained ones (from the hub or a file)."""
        from .factory import create_model

        extra = {"output_stride": self.output_stride} if self.output_stride else {}
        return create_model(self.name, self.num_classes, checkpoint=checkpoint, pretrained=pretrained,
                            pretrained_file=pretrained_file, drop_rate=self.drop_rate,
                            attention_pool=self.attention_pool, mask_ratio=self.mask_ratio,
                            attention_head=self.attention_head, head_width=self.head_width,
                            head_max_size=self.head_max_size, feature_masks=self.feature_masks,
                            attributes=len(self.attributes) if self.attributes else None,
                            mask_width=self.mask_width, mask_residual=self.mask_residual,
                            single_mask=self.single_mask, **extra)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Raises ``ValueError`` for unknown or missing keys, naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"model config has unknown keys {unknown}; valid keys: {sorted(known)}")
        missing = sorted({"name", "num_classes"} - set(values))
        if missing:
            raise ValueError(f"model config lacks {missing}")
        return cls(**values)

    def save(self, run_dir: str | Path) -> Path:
        path = Path(run_dir) / MODEL_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> ModelConfig:
        """The config saved in ``run_dir``.

        Raises:
            FileNotFoundError: no ``model.json`` there; ValueError: not a valid model config.
        """
        path = Path(run_dir) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} has no {MODEL_FILE}: it is not a run folder of recipes/train.py "
                                    "(runs written before model.json existed: pass model.pt with --arch)")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(values).__name__}")
        return cls.from_dict(values)
