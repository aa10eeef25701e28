"""Training-time callbacks that compute attention maps and reweight, background-randomize or audit batches."""

from .audit import AuditCallback
from .background import BackgroundRandomizationCallback
from .base import Callback, CallbackError, CallbackList
from .joint_attention import JointAttentionCallback
from .maps import MapCache, MapCallback, MapSchedule
from .registry import CALLBACKS, build_callbacks, create_callback, list_callbacks
from .reweight import ReweightCallback

__all__ = [
    "CALLBACKS",
    "AuditCallback",
    "BackgroundRandomizationCallback",
    "Callback",
    "CallbackError",
    "CallbackList",
    "JointAttentionCallback",
    "MapCache",
    "MapCallback",
    "MapSchedule",
    "ReweightCallback",
    "build_callbacks",
    "create_callback",
    "list_callbacks",
]
