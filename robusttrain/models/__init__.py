"""Model creation: timm backbones (pretrained through timm, or local weights) wrapped to take [0, 1] images."""

from .._compat import moved
from .attention_head import AttentionHead, JointAttentionModel, find_attention_head
from .attention_pool import AttentionPool, AttentionPoolNet
from .config import ModelConfig
from .factory import ImageModel, create_model, load_weights

__all__ = [
    "AttentionHead",
    "AttentionPool",
    "AttentionPoolNet",
    "ImageModel",
    "JointAttentionModel",
    "ModelConfig",
    "create_model",
    "find_attention_head",
    "load_weights",
]

__getattr__ = moved(__name__, dict.fromkeys(("FeatureMaskNet", "MaskTransform", "find_feature_masks"),
                                            "robusttrain.feature_masks"))
