"""What a folder holds, as one hash: tests check that a refused command left a run folder byte for byte as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path


def folder_hash(folder: Path) -> str:
    """SHA-256 over every path below ``folder`` and every file's bytes."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
