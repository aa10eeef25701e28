"""The methods users would otherwise run, as thin adapters over spuco (optional extra ``peers``): JTT's error set
and DFR's last-layer retraining. GroupDRO is a callback (``robusttrain.callbacks.GroupDROCallback``); ERM and
group-balanced sampling need no adapter (``recipes/train.py``, ``--sample-weights``). ``recipes/peers.py`` runs
them side by side with robusttrain on one dataset, budget and set of seeds."""

from .dfr import dfr_model
from .jtt import jtt_weights

__all__ = ["dfr_model", "jtt_weights"]
