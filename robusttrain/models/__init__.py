"""Model creation: timm backbones wrapped to take [0, 1] images, local checkpoints only."""

from .attention_pool import AttentionPool, AttentionPoolNet
from .factory import ImageModel, create_model, load_weights

__all__ = ["AttentionPool", "AttentionPoolNet", "ImageModel", "create_model", "load_weights"]
