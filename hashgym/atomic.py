"""Safe file writes: atomic replacement, and output paths that cannot destroy other files.

Every file hashgym writes that a later run reads back (banks, codes, checkpoints, results)
goes through :func:`atomic_write` (a temporary file in the target's folder, fsync, then
``os.replace``), so a process killed half way leaves either the old file or nothing at the
target path, never a truncated file that later loads. The commands that take an output file
(``--out``, ``hashgym eval --json``) check it first with :func:`check_output`, so a slip of the
shell (``--out`` naming the model or the bank just read) is an error, not a lost file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from glob import escape as glob_escape
from pathlib import Path
from typing import BinaryIO

from hashgym.errors import SetupError
from hashgym.owners import process_running

__all__ = ["OutputPathError", "atomic_write", "check_output"]


#: This module's name for :class:`~hashgym.errors.SetupError` (an alias).
OutputPathError = SetupError


def _npz_names(path: Path) -> set[str] | None:
    """The array names of an ``.npz`` file (from its zip directory: nothing is unpickled), or
    ``None`` when the file is not a zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {name.removesuffix(".npy") for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError):
        return None


#: Outputs known by their first bytes instead of their keys: FAISS's binary index files, PNG
#: figures.
_MAGIC = {".faiss": b"IB", ".png": b"\x89PNG\r\n\x1a\n"}


def _magic_names(path: Path, magic: bytes) -> set[str] | None:
    """``set()`` when ``path`` starts with ``magic`` (a file of that kind), ``None`` otherwise."""
    try:
        with open(path, "rb") as handle:
            return set() if handle.read(len(magic)) == magic else None
    except OSError:
        return None


def _torch_names(path: Path) -> set[str] | None:
    """``set()`` when ``path`` is a file ``torch.save`` wrote (a zip archive with a
    ``<folder>/data.pkl`` member; read from the zip directory, nothing is unpickled), ``None``
    otherwise. An SB3 model file is a zip too, but its members sit at the top level."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    return set() if any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names) else None


def _text_names(path: Path) -> set[str] | None:
    """``set()`` when ``path`` holds UTF-8 text (a report), ``None`` otherwise."""
    try:
        data = path.read_bytes()
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return None if b"\0" in data else set()


def _names(path: Path, suffix: str) -> set[str] | None:
    """The keys of an existing output file of the kind ``suffix`` names (see
    :func:`check_output`), or ``None`` when it is not a file of that kind."""
    if suffix in _MAGIC:
        return _magic_names(path, _MAGIC[suffix])
    if suffix in (".pt", ".pth"):
        return _torch_names(path)
    if suffix == ".txt":
        return _text_names(path)
    return _json_names(path) if suffix == ".json" else _npz_names(path)


def _json_names(path: Path) -> set[str] | None:
    """The top-level keys of a ``.json`` file holding an object, or ``None`` when it holds
    something else or is not JSON."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return set(data) if isinstance(data, dict) else None


def check_output(
    out: str | os.PathLike[str],
    *,
    suffix: str | tuple[str, ...],
    kind: str,
    keys: Iterable[str],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
    flag: str = "--out",
) -> Path:
    """Check an output path before anything is computed, and refuse it where writing would lose
    data.

    :param out: the path the command will write.
    :param suffix: the extension it must have, or a tuple of those it may have: ``".npz"``
        (its arrays are its keys), ``".json"`` (a JSON object: its top-level keys are),
        ``".faiss"`` (FAISS's binary index file) or ``".png"`` (a figure), both known by their
        first bytes, ``".pt"`` / ``".pth"`` (a ``torch.save`` file, known by its zip layout) or
        ``".txt"`` (a text report: any UTF-8 text); ``keys`` is empty for these last kinds.
    :param kind: the kind of file the command writes, for messages (``"codes"``, ``"bank"``).
    :param keys: the arrays (or JSON keys) every file of that kind holds; an existing ``out``
        holding them all is a previous result of the same kind and is replaced.
    :param inputs: the command's input paths (``None`` and names that are not files, such as
        preset names, are skipped); ``out`` may never be one of them, ``force`` or not.
    :param force: replace an existing file of another kind too.
    :param flag: the command's option that names ``out``, for messages (``"--json"``).
    :raises OutputPathError: ``out`` is an input, a folder, has another extension, or is an
        existing file of another kind (without ``force``).
    :return: ``out`` as a :class:`~pathlib.Path`.
    """
    path = Path(out)
    suffixes = (suffix,) if isinstance(suffix, str) else tuple(suffix)
    either = " or ".join(suffixes)
    if path.is_dir():
        raise OutputPathError(f"{flag} {path} is a folder; give a {either} file path")
    if path.suffix not in suffixes:
        raise OutputPathError(f"{flag} {path}: {kind} files are {either} files; give a path "
                              f"ending in {either}")
    for given in inputs:
        if given is None or not Path(given).is_file() or not path.exists():
            continue
        if os.path.samefile(path, given):
            raise OutputPathError(f"{flag} {path} is the input {given}: writing the {kind} file "
                                  f"there would destroy it; choose another path")
    if path.exists() and not force:
        names = _names(path, path.suffix)
        missing = set(keys) - (names or set())
        if names is None or missing:
            lacks = f" (it lacks {', '.join(sorted(missing))})" if missing else ""
            raise OutputPathError(f"{flag} {path} exists and is not a {kind} file{lacks}; choose "
                                  f"another path, or pass --force to replace it")
    return path


def _umask() -> int:
    """The process's file-creation mask: from ``/proc`` where there is one (no change to the
    process), otherwise by setting it and putting it back."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stale_temps(target: Path) -> None:
    """Delete the temporary files earlier writes to ``target`` left when their process was killed
    (``.<name>.<pid>.<random>.tmp`` whose process no longer runs); live writers' files stay."""
    for tmp in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
        pid = tmp.name[len(target.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_running(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it onto ``path`` on success.

    The temporary file (``.<name>.<pid>.<random>.tmp``) lives in the same folder, so the rename
    is atomic on POSIX and Windows, and is removed if the body raises; one left by a killed
    process is removed by the next write to the same path. Parent folders are created. The file
    gets the permissions of any new file (``0o666`` less the umask), not the private ``0o600``
    of a temporary file, so results can be shared.

    :param path: final destination.
    :return: a context manager yielding the open temporary file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp",
                                    dir=target.parent)
    with contextlib.suppress(OSError):  # e.g. file systems without modes
        os.chmod(tmp_name, 0o666 & ~_umask())
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
