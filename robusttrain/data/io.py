"""Reading images and masks from disk with errors that name the file and what is wrong with it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class CorruptFileError(ValueError):
    """An image or mask file exists but cannot be decoded."""


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 RGB ``(H, W, 3)``.

    Greyscale, palette and RGBA files are converted to RGB (alpha is dropped), since datasets such as
    ImageNet mix modes; 16-bit greyscale is rescaled to 8 bits.

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptFileError: the file cannot be decoded as an image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I"):
                array = np.asarray(image, dtype=np.float32)
                scale = 65535.0 if array.max() > 255 else 255.0
                return np.repeat((array / scale * 255).round().astype(np.uint8)[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CorruptFileError(f"cannot decode image {path}: {error}") from error


def check_image(path: str | Path) -> None:
    """Whether an image file is whole, without decoding it (PIL's ``verify``: headers and chunk checksums), so a
    run can refuse a truncated file before it trains rather than after.

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptFileError: the file is not a whole image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.suffix == ".npy":
        return
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CorruptFileError(f"cannot decode image {path}: {error}") from error


def read_mask(path: str | Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a foreground mask to float32 ``(H, W)`` in [0, 1] (255 or 1 = foreground).

    ``.npy`` files (the Backgrounds Challenge's ``fg_mask`` format) are read with numpy; anything else with PIL.

    Args:
        path: mask file.
        expected_size: ``(H, W)`` of the image it belongs to; a mismatch raises.

    Raises:
        FileNotFoundError, CorruptFileError, ValueError (size mismatch, or values outside the mask range).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False).astype(np.float32)
            if array.ndim == 3:
                array = array.max(axis=2) if array.shape[2] <= 4 else array.max(axis=0)
        else:
            with Image.open(path) as image:
                array = np.asarray(image.convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise CorruptFileError(f"cannot decode mask {path}: {error}") from error
    if array.ndim != 2:
        raise ValueError(f"mask {path} must be 2-D, got shape {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0:
        raise ValueError(f"mask {path} holds negative or non-finite values")
    if array.max() > 1.0:
        array = array / 255.0
    if expected_size is not None and array.shape != tuple(expected_size):
        raise ValueError(f"mask {path} is {array.shape[1]}x{array.shape[0]} (WxH) but its image is "
                         f"{expected_size[1]}x{expected_size[0]}")
    return np.clip(array, 0.0, 1.0)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class UnsafePathError(ValueError):
    """A path from a dataset's own files that is absolute or leads outside the dataset's root."""


def confined(root: Path, relative: str | Path, where: str) -> Path:
    """``root / relative``, refused when ``relative`` is absolute or resolves (through ``..`` or symlinks) outside
    ``root``: a metadata file must not make the tools read other files on the machine.

    Raises:
        UnsafePathError: naming ``where`` (the file and row the path came from) and the path.
    """
    if not str(relative).strip():
        raise UnsafePathError(f"{where}: empty file name")
    if "\x00" in str(relative):
        raise UnsafePathError(f"{where}: the file name holds a null byte, refused")
    if Path(relative).is_absolute():
        raise UnsafePathError(f"{where}: absolute path {str(relative)!r} refused; paths must be relative to {root}")
    path = root / relative
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafePathError(f"{where}: {str(relative)!r} leads outside the dataset root {root}, refused")
    return path


SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def split_code(split: str | int) -> int:
    """The code of a split given by name (``train``, ``val``, ``test``) or by code (0, 1, 2, also as text).

    Raises:
        ValueError: anything else, naming the choices.
    """
    code = SPLIT_CODES.get(split, int(split) if isinstance(split, str) and split.isdigit() else split)
    if isinstance(code, bool) or code not in SPLIT_CODES.values():
        raise ValueError(f"unknown split {split!r}; choose from {list(SPLIT_CODES)} or codes 0, 1, 2")
    return code
