"""The run folder's rules: what may be written where, when a resume is the same run, and how ``--overwrite``
replaces a finished run without losing it to a run that fails.

A run folder holds ``config.yaml`` (the options, written once when the run starts and never by a resume),
``model.json``, ``checkpoints/``, and at the end ``metrics.json`` and ``model.pt``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from ..config import read_yaml
from .options import OptionError, TrainOptions, flag

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
RUN_FILES = (CONFIG_FILE, "model.json", METRICS_FILE, "model.pt", "checkpoints")
# Options that may differ on a resume: they change where and how visibly a run goes on, never what it trains.
MAY_CHANGE_ON_RESUME = ("resume", "overwrite", "output_dir", "num_workers", "no_progress", "checkpoint_every",
                        "keep_checkpoints", "generate", "max_steps")
# Of those, the ones that move where the run stops: recorded with each resume in ``metrics.json``.
STOP_OPTIONS = ("max_steps",)


def check_output_dir(output_dir: Path) -> None:
    """Refuse an ``--output-dir`` that cannot be a folder of ours: a file, under a file, or not writable.

    Raises:
        OptionError: naming the path and what is wrong.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise OptionError(f"--output-dir {output_dir} is a file, not a folder")
    existing = output_dir
    while not existing.exists():
        if existing.is_symlink():
            raise OptionError(f"--output-dir {output_dir}: {existing} is a dangling link")
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"--output-dir {output_dir} lies under {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK) or _is_pseudo_filesystem(existing):
        raise OptionError(f"--output-dir {output_dir}: cannot write in {existing}")
    aside = set_aside(output_dir)
    if aside.exists():
        raise OptionError(f"{aside} holds the run that an interrupted --overwrite of {output_dir} was replacing: "
                          f"move its files back into {output_dir} to keep that run, or delete {aside}")


def set_aside(output_dir: Path) -> Path:
    """Where ``--overwrite`` keeps the earlier run while the new one trains: ``.<name>.replaced`` beside it."""
    return output_dir.with_name(f".{output_dir.name}.replaced")


def _is_pseudo_filesystem(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved == Path(root) or Path(root) in resolved.parents for root in ("/proc", "/sys", "/dev"))


def make_folder(output_dir: Path) -> None:
    """Create the run folder (and its parents).

    Raises:
        OptionError: the system refuses (named).
    """
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OptionError(f"--output-dir {output_dir}: cannot create it ({error.strerror or error})") from None


def check_same_run(run_dir: Path, options: TrainOptions) -> dict[str, Any]:
    """Refuse a resume whose options would train something else than the run in ``run_dir`` did; returns the
    stop options that moved (``{"max_steps": [old, new]}``) for the run's record.

    Raises:
        OptionError: naming each option that differs (old -> new), or a run folder without its options.
    """
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise OptionError(f"cannot resume from {run_dir}: it has no {CONFIG_FILE}, so the run's options are unknown")
    try:
        saved = read_yaml(path.read_text(), str(path))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise OptionError(f"cannot resume from {run_dir}: {path} is unreadable ({error})") from None
    if not isinstance(saved, dict):
        raise OptionError(f"cannot resume from {run_dir}: {path} is not a mapping of options")
    current = yaml.safe_load(yaml.safe_dump(options.to_dict()))
    defaults = yaml.safe_load(yaml.safe_dump(TrainOptions(data_dir=options.data_dir).to_dict()))
    saved = {**{name: value for name, value in defaults.items() if name not in saved}, **saved}  # options added later
    changed = [f"{flag(name)} {saved.get(name)!r} -> {value!r}" for name, value in current.items()
               if name not in MAY_CHANGE_ON_RESUME and saved.get(name) != value]
    if changed:
        raise OptionError(f"cannot resume {run_dir}: a resume is the same run, and these options change what is "
                          f"trained: {', '.join(changed)} (options that may change on resume: "
                          f"{', '.join(flag(n) for n in MAY_CHANGE_ON_RESUME)})")
    return {name: [saved.get(name), current[name]] for name in STOP_OPTIONS if saved.get(name) != current[name]}


def write_config(output_dir: Path, options: TrainOptions) -> None:
    """The options of the run, written once when it starts (``-c path`` repeats the run)."""
    (output_dir / CONFIG_FILE).write_text(yaml.safe_dump(options.to_dict(), sort_keys=True))


def run_files(output_dir: Path) -> list[Path]:
    """The files and folders of a run that the loop writes (what ``--overwrite`` replaces)."""
    return [output_dir / name for name in RUN_FILES if (output_dir / name).exists()]


@contextmanager
def replacing(output_dir: Path, enabled: bool) -> Iterator[None]:
    """With ``enabled``, move an earlier run's files (:data:`RUN_FILES`) aside while the block runs: a block that
    fails puts them back, one that finishes deletes them. Other files in the folder (inputs such as a weights file,
    outputs of callbacks) stay where they are. The aside folder is ``.<name>.replaced`` next to the run folder."""
    earlier = run_files(output_dir) if enabled else []
    if not earlier:
        yield
        return
    aside = set_aside(output_dir)
    aside.mkdir()  # check_output_dir refused an aside folder left by an interrupted replacement
    for path in earlier:
        path.rename(aside / path.name)
    try:
        yield
    except BaseException:
        for path in run_files(output_dir):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for path in aside.iterdir():
            path.rename(output_dir / path.name)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)


def describe(metrics: dict[str, Any]) -> str:
    """One line of a finished run's headline numbers."""
    groups = metrics.get("groups", {})
    return (f"average {100 * groups.get('average_accuracy', float('nan')):.1f}%, worst group "
            f"{100 * groups.get('worst_group_accuracy', float('nan')):.1f}%")
