"""The label-free minority estimate, one module for the callbacks and the audit (callbacks -> estimate <- audit).

Two flavours predict each sample's label out of fold from something other than the object: the network estimate
(what a small CNN learns first from the whole image; :mod:`.network`) and the colour estimate (a linear probe on
the background's colour statistics; :mod:`.colour`). Both return a :class:`MinorityEstimate`; :func:`balanced_weights`
turns its flags into draw weights. :mod:`.model_look` judges the user's own model's early mistakes by the same rule
(the second look, where the estimate before training found nothing).
"""

from .base import BIAS_MARGIN, MinorityEstimate, judge, label_probability
from .colour import (
    HISTOGRAM_BINS,
    LOOKS_AT_COLOUR,
    background_features,
    background_region,
    colour_out_of_fold,
    estimate_minority_colour,
)
from .model_look import ModelLook, judge_model_predictions
from .network import ESTIMATE, LOOKS_AT_NETWORK, NetworkSettings, estimate_minority_network, thumbnails
from .weights import balanced_weights

__all__ = [
    "BIAS_MARGIN",
    "ESTIMATE",
    "HISTOGRAM_BINS",
    "LOOKS_AT_COLOUR",
    "LOOKS_AT_NETWORK",
    "MinorityEstimate",
    "ModelLook",
    "NetworkSettings",
    "background_features",
    "background_region",
    "balanced_weights",
    "colour_out_of_fold",
    "estimate_minority_colour",
    "estimate_minority_network",
    "judge",
    "judge_model_predictions",
    "label_probability",
    "thumbnails",
]
