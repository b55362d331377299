"""Atomic file writes: a temporary file in the target's folder, fsync, then ``os.replace``.

Every file hashgym writes that a later run reads back (banks, codes, checkpoints, results)
goes through :func:`atomic_write`, so a process killed half way leaves either the old file or
nothing at the target path, never a truncated file that later loads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it onto ``path`` on success.

    The temporary file lives in the same folder (so the rename is atomic on POSIX and Windows)
    and is removed if the body raises. Parent folders are created.

    :param path: final destination.
    :return: a context manager yielding the open temporary file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
