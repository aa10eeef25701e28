"""Model creation: timm backbones wrapped to take [0, 1] images, local checkpoints only."""

from .factory import ImageModel, create_model, load_weights

__all__ = ["ImageModel", "create_model", "load_weights"]
