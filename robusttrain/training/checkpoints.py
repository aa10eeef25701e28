"""Checkpoints of a training run: ``<run>/checkpoints/step_NNNNNNNN/``, each accelerate's state (model, optimizer,
scheduler, RNG) plus one ``process_N.pt`` per process (callback state and the model's buffers) and, written last,
``progress.json`` (loop position, history, and a SHA-256 of every other file). A folder without ``progress.json``
is an interrupted save; one whose files do not match their hashes is damaged: neither is resumed. Every file is
loaded as data (``weights_only=True``), so a crafted checkpoint cannot run code.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from ..callbacks import CallbackList
from ..data.io import file_sha256

PROGRESS_FILE = "progress.json"
PROCESS_STATE = "process_{}.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed (damaged, of another process count, not a checkpoint)."""


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
    """What is wrong with a complete checkpoint folder's files (missing, changed or truncated), or ``None``."""
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
    accelerator.save_state(str(folder))
    # Every process saves what is its own: callback state (map caches and records of its shard) and the model's
    # buffers (BatchNorm statistics differ between processes until the next forward broadcasts rank 0's).
    folder.mkdir(parents=True, exist_ok=True)
    own = {"callbacks": callbacks.state_dict(), "buffers": dict(accelerator.unwrap_model(model).named_buffers())}
    torch.save(own, folder / PROCESS_STATE.format(accelerator.process_index))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        files = {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name != PROGRESS_FILE}
        # NOTE: progress.json is written last: a folder without it is an interrupted save and is never resumed.
        (folder / PROGRESS_FILE).write_text(json.dumps({**progress, "files": files}))
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
