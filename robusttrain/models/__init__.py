"""Model creation: timm backbones wrapped to take [0, 1] images, local checkpoints only."""

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
