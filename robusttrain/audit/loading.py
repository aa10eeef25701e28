"""Open any supported dataset layout and a model to audit; read batches that skip unreadable files."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data import BackgroundsChallengeDataset, ImageFolderDataset, MaskedImageDataset, WaterbirdsDataset
from ..data.imagefolder import class_folders
from ..data.io import file_sha256
from ..data.transforms import build_eval_transform
from ..models import ModelConfig, create_model, load_weights


class NoReadableImages(ValueError):
    """Not one image of the audited split could be read."""


@dataclass(frozen=True)
class Skipped:
    """A sample that could not be read, and why."""

    index: int
    path: str
    error: str


def open_dataset(path: str | Path, split: str = "train", image_size: int | None = 64,
                 masks_dir: str | Path | None = None) -> MaskedImageDataset:
    """The dataset at ``path``, whatever its layout.

    * Waterbirds layout (``metadata.csv``): the rows of ``split``;
    * Backgrounds Challenge (``original/`` with class folders): the ``original`` variant of ``split``;
    * class folders, directly or under ``path/<split>/``, with masks from ``masks_dir`` when given.

    Raises:
        FileNotFoundError: ``path`` does not exist; ValueError: no layout recognised (names what was looked for), or
            an ImageFolder tree with split folders that lacks ``split``.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    transform = build_eval_transform(image_size)
    if (root / "metadata.csv").is_file():
        return WaterbirdsDataset(root, split, transform, masks_dir)
    if (root / "original").is_dir():
        return BackgroundsChallengeDataset(root, "original", split, transform)
    present = [name for name in ("train", "val", "test") if (root / name).is_dir()]
    if present and split not in present:
        raise ValueError(f"{root} has split folders {present} but no {split}/: choose --split from them")
    folder = root / split if split in present else root
    masks = Path(masks_dir) / split if masks_dir and (Path(masks_dir) / split).is_dir() else masks_dir
    if not class_folders(folder):
        raise ValueError(f"no dataset layout recognised at {root}: expected metadata.csv (Waterbirds), "
                         f"original/ (Backgrounds Challenge) or class folders (ImageFolder, optionally under {split}/)")
    return ImageFolderDataset(folder, masks, transform)


def read_batches(dataset: MaskedImageDataset, batch_size: int, skip_ids: Sequence[int] = (),
                 skipped: list[Skipped] | None = None) -> Iterator[dict[str, torch.Tensor | list[str]]]:
    """Batches of readable samples (``image``, ``target``, ``index``, ``path``, ``mask`` when every sample has one).

    Unreadable or corrupt files are appended to ``skipped`` and left out; samples whose id is in ``skip_ids``
    (already audited, when resuming) are not read at all.
    """
    done = set(skip_ids)
    pending: list[dict] = []
    for position, record in enumerate(dataset.records):
        if record.sample_id in done:
            continue
        try:
            item = dataset[position]
        except (OSError, ValueError) as error:  # CorruptFileError is a ValueError; missing files are OSErrors
            if skipped is not None:
                skipped.append(Skipped(record.sample_id, str(record.image), str(error)))
            continue
        pending.append({**item, "path": str(record.image)})
        if len(pending) == batch_size:
            yield _collate(pending)
            pending = []
    if pending:
        yield _collate(pending)


def _collate(items: list[dict]) -> dict[str, torch.Tensor | list[str]]:
    batch: dict[str, torch.Tensor | list[str]] = {
        "image": torch.stack([i["image"] for i in items]),
        "target": torch.tensor([i["target"] for i in items]),
        "index": torch.tensor([i["index"] for i in items]),
        "path": [i["path"] for i in items],
    }
    if all("mask" in i for i in items):
        batch["mask"] = torch.stack([i["mask"] for i in items])
    return batch


def model_fingerprint(spec: str) -> str:
    """SHA-256 of the weights ``--model`` names (a run folder's ``model.pt`` or a weights file), or the timm name:
    a resumed audit whose weights were replaced at the same path must not mix two models' records."""
    path = Path(spec)
    weights = path / "model.pt" if path.is_dir() else path
    if not weights.is_file():
        return spec
    return file_sha256(weights)


def load_audit_model(spec: str, num_classes: int, arch: str | None = None) -> nn.Module:
    """A model from a training run folder (``model.json`` + ``model.pt`` of ``recipes/train.py``), a weights
    file (with ``arch``, the timm name), or a bare timm name (random weights: only useful as a control).

    Raises:
        ValueError: a weights file without ``arch``; FileNotFoundError / ValueError from loading.
    """
    path = Path(spec)
    if path.is_dir():
        weights = path / "model.pt"
        if not weights.is_file():
            raise FileNotFoundError(f"{path} is not a finished training run folder (no model.pt)")
        config = ModelConfig.load(path)
        if arch is not None and arch != config.name:
            raise ValueError(f"--arch {arch} applies to a weights file: {path} is a run folder, whose model.json "
                             f"says the network is {config.name} (leave --arch out)")
        if config.num_classes != num_classes:
            raise ValueError(f"the model in {path} has {config.num_classes} classes but the data has {num_classes}: "
                             "audit it on data with the classes it was trained on")
        model = config.build()
        load_weights(model, weights)
        return model
    if path.suffix in (".pt", ".pth", ".bin", ".safetensors") or path.is_file():
        if arch is None:
            raise ValueError(f"{path} holds weights only: pass --arch <timm model name> to say which network")
        model = create_model(arch, num_classes)
        unfit = load_weights(model, path)
        if unfit:  # fine for fine-tuning, wrong for an audit: its classifier would be random
            raise ValueError(f"the weights in {path} do not fit {arch} with the data's {num_classes} classes "
                             f"(shapes differ for {unfit[:3]}): audit it on data with the classes it was trained on")
        return model
    return create_model(spec, num_classes)
