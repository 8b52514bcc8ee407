"""Atomic file writes for search directories: a killed process never leaves half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["write_json_atomically", "write_text_atomically"]


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` to a temporary name beside ``path``, then renames it over ``path``."""
    path = Path(path)
    # One temporary name per writer: a chief and its workers may write the same report at once.
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def write_json_atomically(path: str | os.PathLike, payload) -> Path:
    """:func:`write_text_atomically` of ``json.dumps(payload)``."""
    return write_text_atomically(path, json.dumps(payload))
