"""Checkpoints of a training run: ``<run>/checkpoints/step_NNNNNNNN/``, each accelerate's state (model, optimizer,
scheduler, RNG) plus one ``process_N.pt`` per process (callback state and the model's buffers) and, written last,
``progress.json`` (loop position, history, and a SHA-256 of every other file). A folder without ``progress.json``
is an interrupted save; one whose files do not match their hashes is damaged: neither is resumed. Every file is
loaded as data (``weights_only=True``), so a crafted checkpoint cannot run code.
"""

from __future__ import annotations

import errno
import json
import pickle
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils.other import load as accelerate_load
from safetensors import safe_open

from ..callbacks import CallbackList
from ..data.io import file_sha256

PROGRESS_FILE = "progress.json"
PROCESS_STATE = "process_{}.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed (damaged, of another process count, not a checkpoint)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with where it stopped and how to continue (the command line says both in one line)."""

    def __init__(self, where: str, continue_with: str) -> None:
        super().__init__(where)
        self.where, self.continue_with = where, continue_with


class DiskFullError(OSError):
    """The disk filled up while the run wrote a file; the message names the file and what is intact."""


def disk_full(error: BaseException, near: Path) -> bool:
    """Whether ``error`` (raised while writing under ``near``) is the disk running full: ``ENOSPC``, or a writer
    (torch's zip writer, safetensors) that failed while no space is left there."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    folder = near if near.is_dir() else near.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return "No space left" in str(error) or shutil.disk_usage(folder).free < FULL_BELOW


FULL_BELOW = 1 << 20  # free bytes under which a failed write is taken for a full disk


@contextmanager
def writing(path: Path, intact: str) -> Iterator[None]:
    """Write under ``path``: a full disk becomes :class:`DiskFullError` naming ``path`` and what is ``intact``."""
    try:
        yield
    except Exception as error:
        if disk_full(error, path):
            raise DiskFullError(errno.ENOSPC, f"no space left on device writing {path}; {intact}") from None
        raise


def checkpoint_folders(output_dir: Path) -> list[Path]:
    """The run's complete checkpoint folders (with ``progress.json``), oldest first."""
    return [p for p in sorted((output_dir / "checkpoints").glob("step_*")) if (p / PROGRESS_FILE).is_file()]


def choose_checkpoint(output_dir: Path, resume: str) -> tuple[Path | None, list[str]]:
    """The checkpoint to resume from and a line for each damaged newer one that was passed over.

    ``resume`` is a checkpoint folder or ``auto`` (the newest intact one under ``output_dir/checkpoints``;
    ``None`` when there is none, so the run starts from scratch).

    Raises:
        CheckpointError: a named folder that is not a checkpoint or is damaged, or ``auto`` where every
            checkpoint is damaged (naming the first damaged file).
    """
    if resume != "auto":
        path = Path(resume)
        if not (path / PROGRESS_FILE).is_file():
            raise CheckpointError(f"--resume {path} is not a checkpoint folder of robusttrain train "
                                  f"(no {PROGRESS_FILE})")
        problem = damage(path)
        if problem:
            raise CheckpointError(f"--resume {path}: {problem}")
        return path, []
    damaged: list[tuple[Path, str]] = []
    for folder in reversed(checkpoint_folders(output_dir)):
        problem = damage(folder)
        if problem is None:
            return folder, [f"checkpoint {bad} is damaged ({why}); resuming from {folder}" for bad, why in damaged]
        damaged.append((folder, problem))
    if damaged:
        raise CheckpointError(f"no intact checkpoint in {output_dir / 'checkpoints'} (newest: {damaged[0][1]})")
    return None, []


def damage(folder: Path) -> str | None:
    """What is wrong with a complete checkpoint folder's files (missing, changed, truncated, not plain data, or a
    file robusttrain does not write), or ``None``. Every file is read as data here, before accelerate sees it."""
    try:
        progress = read_progress(folder)
    except CheckpointError as error:
        return str(error)
    hashes = progress.get("files")
    if not isinstance(hashes, dict) or not hashes:
        return f"{folder / PROGRESS_FILE} lists no file hashes (written by an older version)"
    for name, expected in sorted(hashes.items()):
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            return f"{folder / PROGRESS_FILE} names a file outside the checkpoint: {name!r}"
        if not path.is_file():
            return f"{path} is missing"
        if file_sha256(path) != expected:
            return f"{path} does not match the hash saved with it (truncated or changed)"
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != PROGRESS_FILE):
        problem = content_problem(path)
        if problem:
            return problem
    return None


# What accelerate's save_state and robusttrain write into a checkpoint folder; anything else is refused.
CHECKPOINT_FILES = re.compile(r"(model(_\d+)?\.safetensors|pytorch_model(_\d+)?\.bin|(optimizer|scheduler|sampler)"
                              r"(_\d+)?\.bin|random_states_\d+\.pkl|scaler\.pt|dl_state_dict(_\d+)?\.bin|"
                              r"process_\d+\.pt)")


def content_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as the plain data a checkpoint holds (``None`` when it can): a file name
    robusttrain does not write, a safetensors file that is not one, or a torch file that holds more than data
    (accelerate's own loader would run a pickle's code, or silently skip the RNG file)."""
    if not CHECKPOINT_FILES.fullmatch(path.name):
        return f"{path} is not a file robusttrain writes into a checkpoint"
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        else:
            accelerate_load(path, map_location="cpu")  # weights only, numpy arrays allowed (RNG states)
    except Exception as error:  # noqa: BLE001 - any failure to read it as data refuses it, by name
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{path} is not plain data, refused ({first[:200]})"
    return None


def newest_progress(output_dir: Path) -> dict[str, Any] | None:
    """The loop position of the newest checkpoint whose ``progress.json`` reads (a truncated newest one is passed
    over, as every damaged checkpoint is); ``None`` without one."""
    for folder in reversed(checkpoint_folders(output_dir)):
        try:
            return read_progress(folder)
        except CheckpointError:
            continue
    return None


def read_progress(folder: Path) -> dict[str, Any]:
    """The loop position saved in ``folder/progress.json``.

    Raises:
        CheckpointError: unreadable or not a mapping.
    """
    path = folder / PROGRESS_FILE
    try:
        progress = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(progress, dict) or not isinstance(progress.get("global_step"), int):
        raise CheckpointError(f"{path} is not a progress record of robusttrain train")
    return progress


def save_checkpoint(accelerator: Accelerator, output_dir: Path, progress: dict[str, Any], keep: int,
                    model: torch.nn.Module, callbacks: CallbackList) -> None:
    """Save the run's state into a new step folder and drop all but the newest ``keep`` folders."""
    folder = output_dir / "checkpoints" / f"step_{progress['global_step']:08d}"
    earlier = checkpoint_folders(output_dir)
    intact = f"the earlier checkpoint {earlier[-1]} is intact" if earlier else "no earlier checkpoint was written"
    try:
        with writing(folder, intact):
            accelerator.save_state(str(folder))
            # Every process saves what is its own: callback state (map caches and records of its shard) and the
            # model's buffers (BatchNorm statistics differ between processes until the next forward broadcasts
            # rank 0's).
            folder.mkdir(parents=True, exist_ok=True)
            own = {"callbacks": callbacks.state_dict(),
                   "buffers": dict(accelerator.unwrap_model(model).named_buffers())}
            torch.save(own, folder / PROCESS_STATE.format(accelerator.process_index))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                files = {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*"))
                         if p.is_file() and p.name != PROGRESS_FILE}
                # NOTE: progress.json is written last: a folder without it is an interrupted save, never resumed.
                (folder / PROGRESS_FILE).write_text(json.dumps({**progress, "files": files}))
    except DiskFullError:
        shutil.rmtree(folder, ignore_errors=True)  # the partial save: free what it took
        raise
    if accelerator.is_main_process:
        for old in sorted((output_dir / "checkpoints").glob("step_*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator: Accelerator, folder: Path, model: torch.nn.Module,
                    callbacks: CallbackList) -> dict[str, Any]:
    """Restore everything saved in ``folder`` and return its loop position.

    Raises:
        CheckpointError: written by another number of processes, or a file that is not plain data.
    """
    saved = len(list(folder.glob(PROCESS_STATE.format("*"))))
    if saved != accelerator.num_processes:
        raise CheckpointError(f"checkpoint {folder} was written by {saved} processes; resume it with {saved} "
                              f"processes, not {accelerator.num_processes}")
    own = load_data(folder / PROCESS_STATE.format(accelerator.process_index))
    accelerator.load_state(str(folder))
    callbacks.load_state_dict(own["callbacks"])
    buffers = dict(accelerator.unwrap_model(model).named_buffers())
    with torch.no_grad():
        for name, value in own["buffers"].items():
            buffers[name].copy_(value)
    progress = read_progress(folder)
    progress.pop("files", None)
    return progress


def load_data(path: Path) -> Any:
    """A ``torch.save`` file read as data only: tensors, numbers, strings and containers, never code.

    Raises:
        CheckpointError: the file holds anything else (a pickled callable) or is not a torch file.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a plain-data checkpoint file, refused ({first})") from None
