"""Code files: the ``.npz`` files ``hashgym encode`` writes, and codes from any other tool.

:func:`save_codes` writes codes with their bank rows, the split of each row, their labels and a
JSON ``meta`` (the bank's provenance and the model's description), atomically;
:func:`load_codes` reads such a file back whole. :func:`load_code_file` reads the codes (and,
for hashgym's own files, the labels) of any code file: hashgym's ``.npz``, a ``.npy`` array, or
an ``.npz`` holding one array (or a ``codes`` array), one code per row. :func:`load_array` reads
a labels or rows file the same way, and :func:`encoded_rows` the bank rows hashgym's files
record. Every read checks the sizes a file declares before allocating
(:func:`hashgym.npyfile.check_declared_sizes`) and never unpickles.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.atomic import atomic_write
from hashgym.bank import FeatureBank
from hashgym.codes import as_bits
from hashgym.errors import CodesError
from hashgym.npyfile import check_declared_sizes

__all__ = ["CodeFileError", "OverlapError", "check_overlap", "encoded_rows", "load_array", "load_code_file", "load_codes",
           "save_codes"]


#: A code, label or row file hashgym cannot read or write, named with the problem: this
#: module's name for :class:`~hashgym.errors.CodesError`.
CodeFileError = CodesError

#: Query and database codes that share images (one file given twice, the same bank rows on both
#: sides, or identical code arrays): every such query finds itself at distance 0, so the scores
#: come out above the real ones; ``--allow-overlap`` accepts it where it is meant. An alias of
#: :class:`~hashgym.errors.CodesError`.
OverlapError = CodesError


def _open(path: Path, what: str) -> Any:
    """A ``.npy`` array, or an open ``.npz`` archive (close it), read without unpickling."""
    if not path.is_file():
        raise CodeFileError(f"{what} file {path} does not exist")
    try:
        check_declared_sizes(path, CodeFileError, f"{what} file")
        return np.load(path, allow_pickle=False)
    except CodeFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CodeFileError(f"{path} holds pickled Python objects, which hashgym never "
                                f"loads; save plain arrays") from exc
        raise CodeFileError(f"cannot read {what} file {path}: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CodeFileError(f"cannot read {what} file {path}: {exc}") from exc


def _one_array(archive: Any, path: Path, prefer: tuple[str, ...]) -> np.ndarray:
    """The ``prefer`` array of an ``.npz`` archive, or its only one."""
    names = list(archive.files)
    for name in prefer:
        if name in names:
            return archive[name]
    if len(names) != 1:
        raise CodeFileError(f"{path} holds {len(names)} arrays ({', '.join(names)}); give "
                            f"a file with one array, or name it "
                            f"{' or '.join(repr(p) for p in prefer) or 'one array'}")
    return archive[names[0]]


def load_array(path: Path, what: str, prefer: tuple[str, ...] = ()) -> np.ndarray:
    """One array from a ``.npy`` file, or from an ``.npz`` holding one array (or ``prefer``).

    :param path: the file (a labels or rows file beside the codes, say).
    :param what: what the file is, for the messages (``"query labels"``).
    :param prefer: names of the array to take from an ``.npz`` that holds several.
    :raises CodeFileError: when the file is missing, unreadable, pickled, or an ``.npz`` of
        several arrays none of which is named in ``prefer``.
    """
    loaded = _open(path, what)
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return _one_array(loaded, path, prefer)


def load_code_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes and, for files ``hashgym encode`` wrote, their labels (``None`` otherwise).

    :param path: a ``.npz`` written by ``hashgym encode``, or a ``.npy`` / ``.npz`` of codes.
    :raises CodeFileError: when the file is missing, unreadable, holds several arrays, or its
        codes are not a 2-D ``[n_codes, n_bits]`` array.
    """
    path = Path(path)
    loaded = _open(path, "codes")
    if isinstance(loaded, np.ndarray):
        codes, labels = loaded, None
    else:
        with loaded:
            if {"codes", "labels", "rows"} <= set(loaded.files):
                codes, labels = loaded["codes"], loaded["labels"]
            else:
                codes, labels = _one_array(loaded, path, ("codes",)), None
    if codes.ndim != 2:
        hint = (f" (one code of {codes.size} bits? save it with shape (1, {codes.size}))"
                if codes.ndim == 1 else "")
        raise CodeFileError(f"{path} must hold one code per row, a 2-D [n_codes, n_bits] "
                            f"array; it holds a {codes.ndim}-D array of shape "
                            f"{codes.shape}{hint}")
    return codes, labels


def encoded_rows(path: Path) -> tuple[np.ndarray, str] | None:
    """The bank rows of a file ``hashgym encode`` wrote and its bank's meta (as JSON text, to
    tell two files of one bank), or ``None`` for other code files."""
    loaded = _open(path, "codes")
    if isinstance(loaded, np.ndarray):
        return None
    with loaded:
        if not {"codes", "rows", "meta"} <= set(loaded.files):
            return None
        try:
            meta = json.loads(str(loaded["meta"]))
        except ValueError:
            return None
        rows = loaded["rows"]
    bank = meta.get("bank") if isinstance(meta, dict) else None
    return rows, json.dumps(bank, sort_keys=True)


def save_codes(
    path: str | os.PathLike[str],
    codes: np.ndarray,
    bank: FeatureBank,
    rows: np.ndarray,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write codes with their bank rows, splits, labels and provenance, atomically (``.npz``).

    :param path: the file to write.
    :param codes: ``[n, n_bits]`` 0/1 codes of ``rows``.
    :param bank: the bank the rows index.
    :param rows: the bank rows coded.
    :param meta: extra JSON provenance (e.g. the model's description); the bank's ``meta`` is
        stored under ``"bank"``.
    """

    codes = as_bits(codes, name="codes")
    rows = np.asarray(rows, dtype=np.int64)
    if codes.shape[0] != rows.shape[0]:
        raise CodeFileError(f"codes has {codes.shape[0]} rows but rows has {rows.shape[0]}")
    arrays: dict[str, np.ndarray] = {
        "codes": codes, "rows": rows, "split": bank.split[rows],
        "labels": bank.labels[rows],
        "meta": np.array(json.dumps({"bank": bank.meta, **(meta or {})}, sort_keys=True,
                                    default=str)),
    }
    if bank.multi_hot is not None:
        arrays["multi_hot"] = bank.multi_hot[rows]
    target = Path(path)
    with atomic_write(target) as handle:
        np.savez(handle, **arrays)
    return target


def load_codes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by :func:`save_codes`: its arrays, and ``meta`` as a dict."""
    path = Path(path)
    if not path.is_file():
        raise CodeFileError(f"codes file {path} does not exist")
    check_declared_sizes(path, CodeFileError, "codes file")
    with np.load(path, allow_pickle=False) as data:
        missing = {"codes", "rows", "meta"} - set(data.files)
        if missing:
            raise CodeFileError(f"{path} is not a hashgym codes file (missing {sorted(missing)})")
        out: dict[str, Any] = {key: data[key] for key in data.files}
    try:
        out["meta"] = json.loads(str(out["meta"]))
    except (ValueError, RecursionError) as exc:
        raise CodeFileError(f"{path}: its meta is not valid JSON ({type(exc).__name__}); the file "
                            f"is damaged or was not written by hashgym") from exc
    return out


def check_overlap(query_file: str | os.PathLike[str], db_file: str | os.PathLike[str],
                  query: np.ndarray, database: np.ndarray, query_rows: np.ndarray | None,
                  db_rows: np.ndarray | None) -> None:
    """Refuse query and database codes of the same images (see :class:`OverlapError`).

    :param query_file: the query codes' file; ``db_file``: the database codes' file.
    :param query: the query codes; ``database``: the database codes.
    :param query_rows: the bank rows of the query codes when known (from ``--bank`` or a rows
        file), else ``None``: the rows files ``hashgym encode`` wrote record are used then;
        ``db_rows`` likewise.
    :raises OverlapError: when the two files are one, share bank rows, or hold identical codes.
    """
    hint = ("a query then retrieves itself and the scores come out above the real ones; pass "
            "--allow-overlap if the database is meant to hold the queries")
    if os.path.samefile(query_file, db_file):
        raise OverlapError(f"the query and database files are one file ({db_file}): {hint}")
    if query_rows is None or db_rows is None:
        encoded = encoded_rows(Path(query_file)), encoded_rows(Path(db_file))
        if None not in encoded and encoded[0][1] == encoded[1][1]:  # type: ignore[index]
            query_rows, db_rows = encoded[0][0], encoded[1][0]  # type: ignore[index]
    if query_rows is not None and db_rows is not None:
        shared = np.intersect1d(query_rows, db_rows).size
        if shared:
            raise OverlapError(f"the query and database codes share {shared:,} of the "
                               f"{np.unique(query_rows).size:,} query images (the same bank "
                               f"rows): {hint}")
    if query.shape == database.shape and np.array_equal(query, database):
        raise OverlapError(f"the query and database codes are identical arrays "
                           f"({query.shape[0]:,} rows): {hint}")
