"""Training-time callbacks that use attention maps to reweight, background-randomize or audit batches."""

from .audit import AuditCallback
from .background import BackgroundRandomizationCallback
from .base import Callback, CallbackError, CallbackList
from .consumer import MapConsumer
from .group_dro import GroupDROCallback
from .joint_attention import JointAttentionCallback
from .minority_resampling import MinorityResamplingCallback, ProbeWeightCallback
from .registry import CALLBACKS, build_callbacks, create_callback, list_callbacks
from .reweight import ReweightCallback
from .start import StartPoint

__all__ = [
    "CALLBACKS",
    "AuditCallback",
    "BackgroundRandomizationCallback",
    "Callback",
    "CallbackError",
    "CallbackList",
    "GroupDROCallback",
    "JointAttentionCallback",
    "MapConsumer",
    "MinorityResamplingCallback",
    "ProbeWeightCallback",
    "ReweightCallback",
    "StartPoint",
    "build_callbacks",
    "create_callback",
    "list_callbacks",
]
