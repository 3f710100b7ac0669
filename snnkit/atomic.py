"""Atomic file writes: the one helper behind checkpoints, metrics logs, plots, run configs and cache metadata.

A reader, or a process killed at any instant, sees either the previous complete file or the new complete one, never
a partial file: the bytes go to a temporary file in the same directory (same filesystem, so the final
``os.replace`` is a rename, atomic on POSIX and Windows), are flushed and fsynced, and the directory is fsynced so
the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating the parent directory if needed."""
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    # The leading dot keeps the temporary out of casual listings and globs such as *.pt.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    # Persist the rename. Not possible on Windows (directories cannot be opened); the rename is still atomic there.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
