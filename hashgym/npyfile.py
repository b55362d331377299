"""Sizes that ``.npy`` and ``.npz`` files declare, checked against the bytes they hold.

An ``.npy`` array starts with a header giving its shape and dtype; numpy's reader allocates
that many bytes before it reads them. A file of a few bytes that declares a 364 TiB matrix
therefore ends in ``MemoryError`` (or, with memory overcommit, in a process killed later)
instead of a message. Every reader of banks, code files and index files calls
:func:`check_declared_sizes` first: each array's declared size must fit in the bytes its file
or zip member holds, and a compressed member may not declare more bytes than deflate can
produce from its compressed ones. Nothing is allocated or unpickled here.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hashgym.validation import format_bytes

__all__ = ["MAX_DEFLATE_RATIO", "check_declared_sizes", "npy_header"]

#: Deflate's largest expansion (about 1032:1): a compressed member that declares more
#: uncompressed bytes than this ratio allows is not a real deflate stream.
MAX_DEFLATE_RATIO = 1032


def npy_header(fh: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype of the ``.npy`` stream ``fh``, read from its start;
    ``fh`` is left at the first byte of the data.

    :raises ValueError: for a stream that is not ``.npy`` (numpy's own message).
    """
    version = np.lib.format.read_magic(fh)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    return read_header(fh)


def _declared_bytes(fh: Any, held: int, name: str) -> str | None:
    """Why the ``.npy`` stream ``fh`` of ``held`` bytes cannot hold the array its header
    declares (``None``: it can, or it holds objects, which the reader refuses anyway)."""
    shape, _, dtype = npy_header(fh)
    if dtype.hasobject:
        return None
    declared = math.prod(shape) * dtype.itemsize
    data = held - fh.tell()
    if declared <= data:
        return None
    return (f"{name} declares a {dtype} array of shape {shape} ({format_bytes(declared)}) but "
            f"holds {format_bytes(max(0, data))}: the file is truncated, corrupted or crafted")


def check_declared_sizes(path: str | os.PathLike[str], error: type[Exception],
                         what: str) -> None:
    """Refuse an ``.npy`` file, or an ``.npz`` archive's ``.npy`` member, whose header declares
    more bytes than the file or member holds (module docstring).

    :param path: an ``.npy`` or ``.npz`` file (anything else passes: the reader names it).
    :param error: the caller's error class.
    :param what: what the file should be, for the message (``"bank"``, ``"codes file"``).
    :raises error: ``"cannot read WHAT PATH: MEMBER declares … but holds …"``, or for a
        member whose compressed stream is damaged.
    :raises ValueError: for a member whose header is not ``.npy`` (numpy's message; the
        caller's reader reports it as damaged).
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                if (info.compress_type != zipfile.ZIP_STORED
                        and info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024):
                    raise error(
                        f"cannot read {what} {path}: {info.filename} declares "
                        f"{format_bytes(info.file_size)} uncompressed from "
                        f"{format_bytes(info.compress_size)} compressed, more than deflate can "
                        f"produce: the file is corrupted or crafted")
                try:
                    with archive.open(info) as fh:
                        reason = _declared_bytes(fh, info.file_size, info.filename)
                except (zlib.error, zipfile.BadZipFile, EOFError) as exc:
                    raise error(f"cannot read {what} {path}: the file is truncated or corrupted "
                                f"({info.filename}: {exc})") from exc
                if reason is not None:
                    raise error(f"cannot read {what} {path}: {reason}")
        return
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":
            return
        fh.seek(0)
        reason = _declared_bytes(fh, path.stat().st_size, "it")
    if reason is not None:
        raise error(f"cannot read {what} {path}: {reason}")
