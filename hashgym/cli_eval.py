"""``hashgym eval QUERY DB``: score two code files on hashgym's exact metrics.

The files may be what ``hashgym encode`` wrote (codes with their bank rows and labels), or codes
from any other tool: a ``.npy`` array, or an ``.npz`` holding one array (or a ``codes`` array),
of 0/1, ±1 or bool values, one row per image. Their labels then come from ``--bank`` (the rows of
a split, or of ``--query-rows`` / ``--db-rows`` files) or from ``--query-labels`` /
``--db-labels`` files. Nothing is unpickled. ``--json FILE`` also writes the scores; like every
output path it is checked first (:func:`hashgym.atomic.check_output`): never one of the inputs,
a folder or a file that is not ``.json``, and an existing file that is not a scores file only
with ``--force``. ``--class-codes`` also prints (and writes to the ``--json`` file) where each
class's codes sit: :func:`hashgym.class_codes.class_code_report`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.atomic import OutputPathError, atomic_write, check_output
from hashgym.bank import BankError
from hashgym.class_codes import ClassCodeError, class_code_report
from hashgym.codes import CodeError
from hashgym.errors import HashgymError
from hashgym.metrics import MetricError, evaluate
from hashgym.npyfile import check_declared_sizes
from hashgym.protocols import resolve_bank

__all__ = ["EvalInputError", "add_arguments", "load_code_file", "run_from_args"]

#: What ``hashgym eval`` prints when ``--metrics`` is not given.
DEFAULT_METRICS = "mAP@all,P@r<=2,NDCG@20"
#: The keys of every ``--json`` file ``hashgym eval`` writes (an existing one is replaced).
_SCORES_KEYS = ("query", "database", "relevance", "scores")


class EvalInputError(HashgymError):
    """A code, label or row file ``hashgym eval`` cannot use, named with the problem."""


def _open(path: Path, what: str) -> Any:
    """A ``.npy`` array, or an open ``.npz`` archive (close it), read without unpickling."""
    if not path.is_file():
        raise EvalInputError(f"{what} file {path} does not exist")
    try:
        check_declared_sizes(path, EvalInputError, f"{what} file")
        return np.load(path, allow_pickle=False)
    except EvalInputError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise EvalInputError(f"{path} holds pickled Python objects, which hashgym never "
                                 f"loads; save plain arrays") from exc
        raise EvalInputError(f"cannot read {what} file {path}: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise EvalInputError(f"cannot read {what} file {path}: {exc}") from exc


def _one_array(archive: Any, path: Path, prefer: tuple[str, ...]) -> np.ndarray:
    """The ``prefer`` array of an ``.npz`` archive, or its only one."""
    names = list(archive.files)
    for name in prefer:
        if name in names:
            return archive[name]
    if len(names) != 1:
        raise EvalInputError(f"{path} holds {len(names)} arrays ({', '.join(names)}); give "
                             f"a file with one array, or name it "
                             f"{' or '.join(repr(p) for p in prefer) or 'one array'}")
    return archive[names[0]]


def _load_array(path: Path, what: str, prefer: tuple[str, ...] = ()) -> np.ndarray:
    """One array from a ``.npy`` file, or from an ``.npz`` holding one array (or ``prefer``)."""
    loaded = _open(path, what)
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return _one_array(loaded, path, prefer)


def load_code_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes and, for files ``hashgym encode`` wrote, their labels (``None`` otherwise).

    :param path: a ``.npz`` written by ``hashgym encode``, or a ``.npy`` / ``.npz`` of codes.
    :raises EvalInputError: when the file is missing, unreadable, holds several arrays, or its
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
        raise EvalInputError(f"{path} must hold one code per row, a 2-D [n_codes, n_bits] "
                             f"array; it holds a {codes.ndim}-D array of shape "
                             f"{codes.shape}{hint}")
    return codes, labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym eval``."""
    parser.add_argument("query", help="query codes: hashgym encode's .npz, or a .npy / .npz array")
    parser.add_argument("database", help="database codes, in the same forms")
    parser.add_argument("--metrics", default=DEFAULT_METRICS,
                        help=f"comma-separated metric names (default {DEFAULT_METRICS})")
    parser.add_argument("--relevance", choices=("label", "hierarchy", "multilabel"),
                        default=None,
                        help="how labels make relevance (default: hierarchy for a bank's labels "
                             "or hashgym encode's files; label files must say)")
    parser.add_argument("--bank", default=None,
                        help="labels for raw code arrays: a preset name or bank .npz")
    parser.add_argument("--protocol", default=None, help="a split protocol applied to --bank")
    parser.add_argument("--query-split", default="query",
                        help="--bank split whose rows the query codes are (default query)")
    parser.add_argument("--db-split", default="database",
                        help="--bank split whose rows the database codes are (default database)")
    parser.add_argument("--query-rows", default=None, help="a .npy of the query codes' bank rows")
    parser.add_argument("--db-rows", default=None, help="a .npy of the database codes' bank rows")
    parser.add_argument("--query-labels", default=None,
                        help="a .npy of the query labels (instead of --bank)")
    parser.add_argument("--db-labels", default=None,
                        help="a .npy of the database labels (instead of --bank)")
    parser.add_argument("--json", default=None,
                        help="also write the scores to this .json file (never one of the inputs; "
                             "an existing file that is not a scores file needs --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --json file even if it is not a scores file")
    parser.add_argument("--class-codes", action="store_true",
                        help="also report each class's most common database code, how far apart "
                             "sibling and other classes' codes are, and which class's code each "
                             "query lands nearest (class labels only, not multi-hot)")


def _labels(args: argparse.Namespace, side: str, n: int, bank: Any) -> np.ndarray:
    """The labels of the ``side`` ("query" or "db") codes of a raw file, from a labels file or
    from the bank's rows."""
    labels_file = getattr(args, f"{side}_labels")
    if labels_file is not None:
        return _load_array(Path(labels_file), f"{side} labels", prefer=("labels",))
    if bank is None:
        raise EvalInputError(f"the {side} codes carry no labels: give --bank (or "
                             f"--{side}-labels FILE)")
    rows_file = getattr(args, f"{side}_rows")
    if rows_file is not None:
        rows = _load_array(Path(rows_file), f"{side} rows", prefer=("rows",))
        if not np.issubdtype(rows.dtype, np.integer) or rows.ndim != 1:
            raise EvalInputError(f"{rows_file} must hold a 1-D integer array of bank rows")
        if rows.size and (rows.min() < 0 or rows.max() >= bank.n):
            raise EvalInputError(f"{rows_file} holds rows outside the bank's 0..{bank.n - 1}")
    else:
        split = getattr(args, f"{side}_split")
        rows = bank.indices(split)
        if rows.size != n:
            raise EvalInputError(
                f"the {side} codes have {n} rows but the bank's {split!r} split has "
                f"{rows.size}: give --{side}-rows FILE with the bank row of each code")
    if args.relevance == "multilabel":
        if bank.multi_hot is None:
            raise EvalInputError("--relevance multilabel needs a bank with multi-hot labels")
        return bank.multi_hot[rows]
    return bank.labels[rows]


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym eval``; returns the exit status."""
    try:
        out = None if args.json is None else check_output(
            args.json, suffix=".json", kind="scores", keys=_SCORES_KEYS, flag="--json",
            inputs=(args.query, args.database, args.bank, args.query_rows, args.db_rows,
                    args.query_labels, args.db_labels), force=args.force)
        query, query_labels = load_code_file(args.query)
        database, db_labels = load_code_file(args.database)
        if query.ndim == 2 and database.ndim == 2 and query.shape[1] != database.shape[1]:
            raise EvalInputError(f"the query codes have {query.shape[1]} bits and the database "
                                 f"codes {database.shape[1]}: score codes of one length")
        bank = None
        if args.bank is not None:
            bank = resolve_bank(args.bank, protocol=args.protocol)
        # hashgym encode's files carry their labels; raw arrays take them from a file or a bank
        if args.query_labels is not None or query_labels is None:
            query_labels = _labels(args, "query", len(query), bank)
        if args.db_labels is not None or db_labels is None:
            db_labels = _labels(args, "db", len(database), bank)
        relevance = args.relevance
        if relevance is None and args.query_labels is None and args.db_labels is None and (
                np.ndim(query_labels) == 2):
            relevance = "hierarchy"  # a bank's label rows (levels), from the bank or encode
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        scores = evaluate(query, database, query_labels, db_labels, metrics,
                          relevance=relevance)
        report = None
        if args.class_codes:
            if relevance == "multilabel":
                raise EvalInputError("--class-codes needs class labels; multi-hot labels give "
                                     "an image no single class")
            report = class_code_report(database, db_labels, query, query_labels)
        if out is not None:
            record = {"query": str(args.query), "database": str(args.database),
                      "relevance": relevance, "scores": scores}
            if report is not None:
                record["class_codes"] = asdict(report)
            with atomic_write(out) as handle:
                handle.write(json.dumps(record, indent=2).encode())
    except (EvalInputError, BankError, ClassCodeError, CodeError, MetricError,
            OutputPathError) as exc:
        print(f"hashgym eval: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(query):,} queries against {len(database):,} database codes, "
          f"{np.asarray(query).shape[-1]} bits")
    width = max(len(name) for name in scores)
    for name, value in scores.items():
        print(f"{name:<{width}}  {value:.4f}")
    if report is not None:
        print("\n".join(report.lines()))
    return 0
