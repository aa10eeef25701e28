"""Model creation: timm backbones wrapped to take [0, 1] images, local checkpoints only."""

from .attention_head import AttentionHead, JointAttentionModel, find_attention_head
from .attention_pool import AttentionPool, AttentionPoolNet
from .factory import ImageModel, create_model, load_weights, model_from_options

__all__ = [
    "AttentionHead",
    "AttentionPool",
    "AttentionPoolNet",
    "ImageModel",
    "JointAttentionModel",
    "create_model",
    "find_attention_head",
    "load_weights",
    "model_from_options",
]
