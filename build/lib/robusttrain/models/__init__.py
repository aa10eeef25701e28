"""Model creation: timm backbones wrapped to take [0, 1] images, local checkpoints only."""

from .attention_head import AttentionHead, JointAttentionModel, find_attention_head
from .attention_pool import AttentionPool, AttentionPoolNet
from .config import ModelConfig
from .factory import ImageModel, create_model, load_weights
from .feature_masks import FeatureMaskNet, MaskTransform, find_feature_masks

__all__ = [
    "AttentionHead",
    "AttentionPool",
    "AttentionPoolNet",
    "FeatureMaskNet",
    "ImageModel",
    "JointAttentionModel",
    "MaskTransform",
    "ModelConfig",
    "create_model",
    "find_attention_head",
    "find_feature_masks",
    "load_weights",
]
