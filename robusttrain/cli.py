"""Command line: ``robusttrain train -c CONFIG ...`` (the training loop) and ``robusttrain audit --data PATH
[--model RUN|WEIGHTS|timm-name] [--maps gradcam] ...``. Input errors are one line and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from .maps import list_map_methods
from .training.checkpoints import Interrupted
from .training.cli import refusing
from .training.options import OneLineParser


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="robusttrain", description="Background-robust training tools.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    commands.add_parser("train", add_help=False, help="train a model with callbacks (flags: robusttrain train --help)")
    audit = commands.add_parser("audit", help="audit a dataset (and a model) for background bias; HTML report",
                                description="Without --model: the dataset audit (does something a network learns "
                                "first, other than the object, predict the label?). With --model: also the "
                                "per-image model audit.")
    audit.add_argument("--data", required=True,
                       help="dataset folder (Waterbirds, Backgrounds Challenge or class folders)")
    audit.add_argument("--split", default="train")
    audit.add_argument("--masks-dir", default=None, help="parallel mask tree when the layout has none")
    audit.add_argument("--ignore-masks", action="store_true",
                       help="audit as if the data had no masks (border-frame backgrounds, views from the maps)")
    audit.add_argument("--model", default=None, help="training run folder, weights file (with --arch) or timm name")
    audit.add_argument("--arch", default=None, help="timm name of the network in a weights file")
    audit.add_argument("--num-classes", type=positive_int, default=None, help="default: the dataset's class count")
    audit.add_argument("--maps", default="gradcam", choices=list_map_methods())
    audit.add_argument("--image-size", type=positive_int, default=64)
    audit.add_argument("--batch-size", type=positive_int, default=64)
    audit.add_argument("--max-images", type=positive_int, default=None,
                       help="audit an evenly spaced subset of this size")
    audit.add_argument("--blur", action="store_true", help="also run the LICNN background-blur protocol")
    audit.add_argument("--no-dataset-audit", action="store_true")
    audit.add_argument("--examples", type=non_negative_int, default=16, help="heat-map tiles per grid in the report")
    audit.add_argument("--output", default="reports/audit")
    audit.add_argument("--fresh", action="store_true", help="ignore records of an earlier, interrupted run")
    audit.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        from .training.cli import main as train_main

        return train_main(argv[1:], prog="robusttrain train")
    args = build_parser().parse_args(argv)
    torch.set_grad_enabled(True)
    from .audit.run import run_audit  # imported here: `robusttrain --help` stays fast

    def audit() -> None:
        try:
            run_audit(args)
        except KeyboardInterrupt:
            raise Interrupted("", "the same command continues a model audit where it stopped") from None

    return refusing(f"robusttrain {args.command}", audit)


if __name__ == "__main__":
    sys.exit(main())
