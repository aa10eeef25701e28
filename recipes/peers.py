"""robusttrain side by side with the methods users would otherwise run: one data set, model, augmentation,
budget (optimizer steps) and set of seeds; one table that says which labels each row uses.

Rows (``--rows``; all by default): ``erm``, ``default``, ``audit_weights`` and ``jtt`` use class labels only;
``group_balanced`` and ``group_dro`` the training groups; ``dfr`` the validation groups; ``oracle`` the true
masks (:mod:`robusttrain.experiments.peers` says how each is made). Runs are kept in
``--output-dir/<row>/seed_<S>``; ``--reuse`` keeps finished ones, so an interrupted invocation resumes.

Example:
    python recipes/peers.py --seeds 0 1 2 --output-dir reports/peers
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from robusttrain.experiments import LABELS, Peers, peers_table
from robusttrain.training import OneLineParser
from robusttrain.training.cli import refusing

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--base", default=str(ROOT / "configs" / "erm.yaml"))
    parser.add_argument("--output-dir", default="reports/peers")
    parser.add_argument("--reuse", action="store_true", help="keep runs whose metrics.json already exists")
    parser.add_argument("--jtt-share", type=float, default=0.2, help="share of the epochs in JTT's first phase")
    parser.add_argument("--jtt-upweight", type=float, default=20.0, help="JTT's weight of the error set")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags passed on to robusttrain train")
    args = parser.parse_args(argv)
    try:
        peers = Peers(args.base, args.extra, Path(args.output_dir), ROOT / "configs" / "callbacks", args.reuse,
                      args.jtt_share, args.jtt_upweight)
    except ValueError as error:
        parser.error(str(error))
    results = {row: [peers.run(row, seed) for seed in args.seeds] for row in args.rows}
    text = peers_table(results)
    (peers.output_dir / "peers.md").write_text(text + "\n")
    print("\n" + text)
    return 0


if __name__ == "__main__":  # bad input: one line, exit 2; Ctrl-C: one line, exit 130
    sys.exit(refusing("recipes/peers.py", main))
