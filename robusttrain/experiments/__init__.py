"""Side-by-side experiments on the library's training loop: configurations over seeds (``compare``) and
robusttrain against the methods users would otherwise run (``peers``), as the recipes and the suite use them."""

from .compare import run_all, summarise, train_argv
from .peers import LABELS, SELECTION, Peers, peers_table, write_weights

__all__ = ["LABELS", "SELECTION", "Peers", "peers_table", "run_all", "summarise", "train_argv", "write_weights"]
