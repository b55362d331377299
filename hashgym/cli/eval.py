"""``hashgym eval QUERY DB``: score two code files on hashgym's exact metrics.

The files may be what ``hashgym encode`` wrote (codes with their bank rows and labels), or codes
from any other tool: a ``.npy`` array, or an ``.npz`` holding one array (or a ``codes`` array),
of 0/1, ±1 or bool values, one row per image. Their labels then come from ``--bank`` (the rows of
a split, or of ``--query-rows`` / ``--db-rows`` files) or from ``--query-labels`` /
``--db-labels`` files. Nothing is unpickled. ``--json FILE`` also writes the scores; like every
output path it is checked first (:func:`hashgym.atomic.check_output`): never one of the inputs,
a folder or a file that is not ``.json``, and an existing file that is not a scores file only
with ``--force``. ``--class-codes`` also prints (and writes to the ``--json`` file) where each
class's codes sit: :func:`hashgym.class_codes.class_code_report`. ``--prefixes 12,24,32,48``
also scores the first 12, 24, ... bits of the codes (nested codes of an agent that emits its
code in order, as ``hashgym encode --bits`` writes them; the ``--json`` file gets them under
``prefixes``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.atomic import atomic_write, check_output
from hashgym.class_codes import class_code_report
from hashgym.codefile import check_overlap, load_array, load_code_file
from hashgym.errors import HashgymError
from hashgym.metrics import evaluate
from hashgym.protocols import resolve_bank

__all__ = ["EvalInputError", "add_arguments", "prefix_lengths", "run_from_args"]

#: What ``hashgym eval`` prints when ``--metrics`` is not given.
DEFAULT_METRICS = "mAP@all,P@r<=2,NDCG@20"
#: The keys of every ``--json`` file ``hashgym eval`` writes (an existing one is replaced).
_SCORES_KEYS = ("query", "database", "relevance", "scores")


class EvalInputError(HashgymError):
    """Labels, rows or options ``hashgym eval`` cannot use with the given codes, named with the
    problem (an unreadable file is a :class:`~hashgym.codefile.CodeFileError`)."""


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
    parser.add_argument("--prefixes", default=None,
                        help="also score the first K bits of the codes for each K of this "
                             "comma-separated list (e.g. 12,24,32,48): the nested codes of one "
                             "agent that emits its code in order (see hashgym encode --bits)")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="score query codes against a database that holds the same images "
                             "(refused by default: one file given twice, shared bank rows or "
                             "identical arrays make every such query find itself)")
    parser.add_argument("--class-codes", action="store_true",
                        help="also report each class's most common database code, how far apart "
                             "sibling and other classes' codes are, and which class's code each "
                             "query lands nearest (class labels only, not multi-hot)")


def _labels(args: argparse.Namespace, side: str, n: int, bank: Any
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """The labels of the ``side`` ("query" or "db") codes of a raw file, from a labels file or
    from the bank's rows; and those bank rows (``None`` for a labels file)."""
    labels_file = getattr(args, f"{side}_labels")
    if labels_file is not None:
        return load_array(Path(labels_file), f"{side} labels", prefer=("labels",)), None
    if bank is None:
        raise EvalInputError(f"the {side} codes carry no labels: give --bank (or "
                             f"--{side}-labels FILE)")
    rows_file = getattr(args, f"{side}_rows")
    if rows_file is not None:
        rows = load_array(Path(rows_file), f"{side} rows", prefer=("rows",))
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
        return bank.multi_hot[rows], rows
    return bank.labels[rows], rows


def prefix_lengths(text: str, n_bits: int) -> list[int]:
    """The prefix lengths of ``--prefixes`` (comma-separated, each in ``1..n_bits``), in order.

    :raises EvalInputError: for an entry that is not a whole number in that range, or none.
    """
    lengths = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry.isdigit() or not 0 < int(entry) <= n_bits:
            raise EvalInputError(f"--prefixes: {entry!r} is not a prefix length of "
                                 f"{n_bits}-bit codes (a whole number from 1 to {n_bits})")
        lengths.append(int(entry))
    return lengths


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym eval``; returns the exit status."""
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
    query_rows = db_rows = None
    if args.query_labels is not None or query_labels is None:
        query_labels, query_rows = _labels(args, "query", len(query), bank)
    if args.db_labels is not None or db_labels is None:
        db_labels, db_rows = _labels(args, "db", len(database), bank)
    if not args.allow_overlap:
        check_overlap(args.query, args.database, query, database, query_rows, db_rows)
    relevance = args.relevance
    if relevance is None and args.query_labels is None and args.db_labels is None and (
            np.ndim(query_labels) == 2):
        relevance = "hierarchy"  # a bank's label rows (levels), from the bank or encode
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    scores = evaluate(query, database, query_labels, db_labels, metrics,
                      relevance=relevance)
    prefixes = {}
    if args.prefixes is not None:
        if np.ndim(query) != 2:
            raise EvalInputError("--prefixes needs codes with one row of bits per image")
        prefixes = {k: evaluate(query[:, :k], database[:, :k], query_labels, db_labels,
                                metrics, relevance=relevance)
                    for k in prefix_lengths(args.prefixes, np.shape(query)[1])}
    report = None
    if args.class_codes:
        if relevance == "multilabel":
            raise EvalInputError("--class-codes needs class labels; multi-hot labels give "
                                 "an image no single class")
        report = class_code_report(database, db_labels, query, query_labels)
    if out is not None:
        record = {"query": str(args.query), "database": str(args.database),
                  "relevance": relevance, "scores": scores}
        if prefixes:
            record["prefixes"] = {str(k): value for k, value in prefixes.items()}
        if report is not None:
            record["class_codes"] = asdict(report)
        with atomic_write(out) as handle:
            handle.write(json.dumps(record, indent=2).encode())
    print(f"{len(query):,} queries against {len(database):,} database codes, "
          f"{np.asarray(query).shape[-1]} bits")
    width = max(len(name) for name in scores)
    for name, value in scores.items():
        print(f"{name:<{width}}  {value:.4f}")
    if prefixes:
        print("\nfirst K bits  " + "  ".join(f"{name:>{max(len(name), 6)}}" for name in scores))
        for k, values in prefixes.items():
            print(f"{k:>12}  " + "  ".join(f"{values[name]:>{max(len(name), 6)}.4f}"
                                           for name in scores))
    if report is not None:
        print("\n".join(report.lines()))
    return 0
