"""The training loop as library code: ``train(TrainOptions(...))`` in Python, ``robusttrain train`` on the command
line (``recipes/train.py`` is the same command), with the same options, YAML layering and run folders."""

from .checkpoints import CheckpointError
from .cli import main
from .data import build_datasets
from .evaluation import evaluate_run
from .loop import model_config, train
from .options import OneLineParser, OptionError, TrainOptions, build_parser

__all__ = ["CheckpointError", "OneLineParser", "OptionError", "TrainOptions", "build_datasets", "build_parser",
           "evaluate_run", "main", "model_config", "train"]
