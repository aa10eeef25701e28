"""The training options: one typed dataclass that is also the flag table of ``robusttrain train``.

Every field is one flag (``data_dir`` is ``--data-dir``) and one key of a ``-c`` YAML file; the parser is built
from the fields, so flags, config keys and the object a Python caller builds cannot drift apart. Values are
checked once, in :meth:`TrainOptions.__post_init__`, whichever way they came in.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..config import parse_with_config, read_yaml


class OptionError(ValueError):
    """An option value that cannot be trained with; the message names the flag."""


def parse_callbacks(text: str | list) -> list[dict[str, Any]]:
    """Callback entries from a YAML/JSON string (the config file gives a list directly)."""
    entries = _yaml_value(text, "--callbacks") if isinstance(text, str) else text
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise argparse.ArgumentTypeError("--callbacks must be a list of entries such as "
                                         f"'[{{name: minority_resampling}}]', got {entries!r}")
    return entries


def parse_maps(text: str | dict) -> dict[str, Any]:
    """Map sources from a YAML/JSON string (the config file gives a mapping directly)."""
    sources = _yaml_value(text, "--maps") if isinstance(text, str) else text
    if not isinstance(sources, dict):
        raise argparse.ArgumentTypeError(f"--maps must be a mapping of source name -> options, got {sources!r}")
    return sources


def _yaml_value(text: str, flag: str) -> Any:
    try:
        return read_yaml(text, flag)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _option(default: Any, help: str, group: str, *, type: Callable[[str], Any] | None = None,
            choices: Sequence[str] | None = None, action: str | None = None, minimum: float | None = None) -> Any:
    """A field that is also a flag: ``type`` converts the flag's text, ``action`` is a boolean flag's kind
    (``store_true`` or ``optional`` for ``--x/--no-x``), ``minimum`` the smallest allowed value."""
    metadata = {"help": help, "group": group, "type": type, "choices": choices, "action": action, "minimum": minimum}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


DATA, MODEL, OPTIM, ROBUST, RUN = "Data", "Model", "Optimisation", "Robustness", "Checkpointing and output"


@dataclass
class TrainOptions:
    """Everything ``robusttrain train`` (``recipes/train.py``) takes; build it in Python or from flags and YAML
    (:meth:`from_argv`). Raises :class:`OptionError` naming the flag of the first value out of range."""

    # Data
    data_dir: str = _option("data/synth_waterbirds", "dataset root", DATA)
    dataset: str = _option("waterbirds", "layout: Waterbirds metadata.csv, or ImageFolder with train/val/test "
                           "sub-folders", DATA, choices=("waterbirds", "imagefolder"))
    masks_dir: str | None = _option(None, "mask tree (CUB segmentations, or ImageFolder masks root)", DATA)
    generate: bool = _option(False, "render the built-in benchmark into --data-dir first (reused if already there)",
                             DATA, action="optional")
    benchmark_fraction: float = _option(1.0, "split sizes relative to Waterbirds", DATA, type=float)
    benchmark_classes: int = _option(2, "classes of the built-in benchmark", DATA, type=int, minimum=2)
    benchmark_correlation: float = _option(0.95, "train correlation of class and background domain", DATA, type=float)
    benchmark_seed: int = _option(0, "seed of the built-in benchmark's rendering", DATA, type=int)
    image_size: int = _option(64, "side of the training images (pixels)", DATA, type=int, minimum=8)
    in9_dir: str | None = _option(None, "also evaluate on a Backgrounds Challenge tree", DATA)
    num_workers: int = _option(0, "data loader worker processes", DATA, type=int, minimum=0)
    sample_weights: str | None = _option(None, "CSV with id,weight per training sample (robusttrain audit's "
                                         "weights.csv): draw the training batches with these weights instead of "
                                         "shuffling", DATA)
    # Model
    model: str = _option("resnet18", "timm model name", MODEL)
    checkpoint: str | None = _option(None, "local initial weights of this model (a state dict: model.pt, or the "
                                     "backbone's)", MODEL)
    pretrained: bool = _option(False, "start from timm's pretrained weights for --model (fetched from the hub, "
                               "as timm.create_model(pretrained=True))", MODEL, action="store_true")
    pretrained_file: str | None = _option(None, "the same from a local timm weights file (works offline)", MODEL)
    drop_rate: float = _option(0.0, "dropout before the classifier", MODEL, type=float, minimum=0.0)
    attention_pool: str | None = _option(None, "replace global pooling by attention pooling in this mode (CNNs)",
                                         MODEL, choices=("dropkey", "dropout", "none"))
    mask_ratio: float = _option(0.1, "DropKey / Dropout ratio of --attention-pool", MODEL, type=float, minimum=0.0)
    attention_head: bool = _option(False, "add a jointly trained attention head (train it with the joint_attention "
                                   "callback)", MODEL, action="store_true")
    head_width: int = _option(32, "channels of --attention-head", MODEL, type=int, minimum=1)
    head_max_size: int | None = _option(None, "run --attention-head on images resized to at most this side "
                                        "(cost bound)", MODEL, type=int, minimum=1)
    output_stride: int | None = _option(None, "timm CNN output stride (8, 16 or 32)", MODEL, type=int, minimum=1)
    # Optimisation
    epochs: int = _option(10, "passes over the training set", OPTIM, type=int, minimum=1)
    batch_size: int = _option(64, "per process", OPTIM, type=int, minimum=1)
    optimizer: str = _option("sgd", "optimizer", OPTIM, choices=("sgd", "adamw"))
    lr: float = _option(0.05, "learning rate (positive)", OPTIM, type=float)
    momentum: float = _option(0.9, "SGD momentum", OPTIM, type=float, minimum=0.0)
    weight_decay: float = _option(5e-4, "weight decay", OPTIM, type=float, minimum=0.0)
    scheduler: str = _option("cosine", "learning-rate schedule", OPTIM, choices=("cosine", "constant"))
    max_steps: int = _option(0, "stop after this many optimizer steps (0 = all)", OPTIM, type=int, minimum=0)
    seed: int = _option(0, "seed of the model, the sampler and the augmentation", OPTIM, type=int)
    mixed_precision: str = _option("no", "mixed precision", OPTIM, choices=("no", "fp16", "bf16"))
    cpu: bool = _option(False, "force CPU even when a GPU is present", OPTIM, action="store_true")
    # Robustness
    maps: dict[str, Any] = _option({}, "map sources as YAML/JSON, e.g. '{gradcam: {method: gradcam, "
                                   "from_training_pass: true}}' (usually in -c); a callback's source that is a map "
                                   "method's name needs no entry", ROBUST, type=parse_maps)
    callbacks: list[dict[str, Any]] = _option([], "callback entries as YAML/JSON, e.g. '[{name: reweight, alpha: 4}]'"
                                              " (usually in -c)", ROBUST, type=parse_callbacks)
    # Checkpointing and output
    output_dir: str = _option("outputs/run", "run folder (config.yaml, checkpoints/, metrics.json, model.pt)", RUN)
    checkpoint_every: int = _option(0, "also checkpoint every N steps (0 = per epoch)", RUN, type=int, minimum=0)
    keep_checkpoints: int = _option(2, "checkpoints kept in --output-dir", RUN, type=int, minimum=1)
    resume: str | None = _option(None, "checkpoint folder, or 'auto' for the newest in --output-dir", RUN)
    overwrite: bool = _option(False, "train into a folder that holds a finished run (replaced only once the new "
                              "run starts)", RUN, action="store_true")
    eval_batch_size: int = _option(256, "batch size of evaluation and the data pass", RUN, type=int, minimum=1)
    variant_pool_size: int = _option(2000, "training images whose backgrounds feed the Mixed-* variants", RUN,
                                     type=int, minimum=1)
    no_progress: bool = _option(False, "no progress bars", RUN, action="store_true")

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            _check(spec, getattr(self, spec.name))
        if not self.lr > 0:
            raise OptionError(f"--lr must be a positive number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise OptionError(f"--momentum must be in [0, 1), got {self.momentum}")
        if not 0 < self.benchmark_fraction <= 1:
            raise OptionError(f"--benchmark-fraction must be in (0, 1], got {self.benchmark_fraction}")
        if not 0 <= self.benchmark_correlation <= 1:
            raise OptionError(f"--benchmark-correlation must be in [0, 1], got {self.benchmark_correlation}")
        if self.resume == "":
            raise OptionError("--resume must name a checkpoint folder or 'auto', got ''")
        sources = [flag(name) for name in ("checkpoint", "pretrained", "pretrained_file") if getattr(self, name)]
        if len(sources) > 1:
            raise OptionError(f"give one source of initial weights, not {' and '.join(sources)}")

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None, prog: str | None = None) -> tuple[TrainOptions, list[str]]:
        """Options from ``-c`` YAML files (layered) and flags; returns them and the config files read.

        Raises:
            ValueError: a config file or a value that the flag would refuse (named).
        """
        args = parse_with_config(build_parser(prog), argv)
        files = list(args.config)
        return cls(**{k: v for k, v in vars(args).items() if k != "config"}), files

    def to_dict(self) -> dict[str, Any]:
        """The options as plain YAML-able values (``config.yaml``)."""
        return dataclasses.asdict(self)


def flag(name: str) -> str:
    """The command-line flag of option ``name``."""
    return "--" + name.replace("_", "-")


def _check(spec: dataclasses.Field, value: Any) -> None:
    meta, name = spec.metadata, flag(spec.name)
    if value is None and spec.default is None:
        return
    if meta["action"]:
        if not isinstance(value, bool):
            raise OptionError(f"{name} must be true or false, got {value!r}")
        return
    kind = meta["type"]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise OptionError(f"{name} must be an integer, got {value!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise OptionError(f"{name} must be a finite number, got {value!r}")
    if kind is None and not isinstance(value, str):
        raise OptionError(f"{name} must be a string, got {value!r}")
    if kind in (parse_maps, parse_callbacks):
        try:
            kind(value)
        except argparse.ArgumentTypeError as error:
            raise OptionError(str(error)) from None
    if meta["choices"] is not None and value not in meta["choices"]:
        raise OptionError(f"{name} must be one of {list(meta['choices'])}, got {value!r}")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise OptionError(f"{name} must be >= {meta['minimum']}, got {value}")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line (``prog: error: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The flag parser of :class:`TrainOptions` (``-c FILE`` is read by :meth:`TrainOptions.from_argv`)."""
    parser = OneLineParser(prog=prog, description=TRAIN_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", action="append",
                        help="YAML file of option defaults; repeat to layer files (flags override them)")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for spec in dataclasses.fields(TrainOptions):
        meta = spec.metadata
        group = groups.get(meta["group"]) or groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default
        if meta["action"] == "store_true":
            group.add_argument(flag(spec.name), action="store_true", default=default, help=meta["help"])
        elif meta["action"] == "optional":
            group.add_argument(flag(spec.name), action=argparse.BooleanOptionalAction, default=default,
                               help=meta["help"])
        else:
            group.add_argument(flag(spec.name), type=meta["type"], choices=meta["choices"], default=default,
                               help=meta["help"])
    return parser


TRAIN_DESCRIPTION = """\
Train a timm classifier on a background-bias dataset and evaluate its robustness, with accelerate.

Runs unchanged on CPU, one GPU or many (accelerate launch). Options come from YAML files (-c, layered) overridden
by flags. Checkpoints hold the model, optimizer, scheduler, RNG states and loop position, so --resume auto
continues a killed run exactly where it stopped; a resume is the same run (options that change what is trained
are refused). Metrics are written to <output-dir>/metrics.json.

Example:
    robusttrain train -c configs/erm.yaml -c configs/callbacks/default.yaml --epochs 2 --output-dir outputs/run
"""
