"""``hashgym index build`` and ``hashgym search``: serve code files from the shell.

``hashgym index build CODES --out INDEX.npz`` packs any code file that ``hashgym eval`` reads
(``hashgym encode``'s ``.npz``, or a ``.npy`` / ``.npz`` array of 0/1, ±1 or bool codes) into a
:class:`~hashgym.index.CodeIndex` file; ``--out INDEX.faiss`` writes FAISS's own binary index
file instead (an ``IndexBinaryFlat`` that ``faiss.read_index_binary`` reads; codes of a multiple
of 8 bits), and ``hashgym search`` reads either. ``hashgym search INDEX QUERY --k 100`` (or
``--radius 2``) answers every query code with its neighbours, ordered by (Hamming distance,
database position), through FAISS when it is installed and numpy otherwise: the same answers
either way (``--nprobe N``: approximate k-NN through FAISS's IVF instead, hashgym.index).
It prints the first queries' hits and, with ``--out``, writes them all to an
``.npz`` (``hashgym index search`` is the same command). Nothing is unpickled.

Search results (``format`` = ``"hashgym-search/1"``): with ``--k``, ``ids`` and ``distances``
``[n_queries, k]`` (``-1`` where the index holds fewer than ``k`` codes); with ``--radius``,
FAISS's range layout: the hits of query ``i`` are ``ids[lims[i]:lims[i + 1]]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hashgym.atomic import OutputPathError, atomic_write, check_output
from hashgym.cli_eval import EvalInputError, load_code_file
from hashgym.codes import CodeError
from hashgym.index import CodeIndex, CodeIndexError

__all__ = ["RESULTS_FORMAT", "add_arguments", "add_search_arguments", "run_from_args",
           "run_search_from_args"]

#: The ``format`` entry of the result files ``hashgym search --out`` writes.
RESULTS_FORMAT = "hashgym-search/1"
_INDEX_KEYS = ("format", "n_bits", "codes")
_ERRORS = (EvalInputError, CodeIndexError, CodeError, OutputPathError)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym index`` (its subcommands ``build`` and ``search``)."""
    sub = parser.add_subparsers(dest="index_command", required=True)
    build = sub.add_parser("build", help="pack a code file into an index file (.npz or .faiss)")
    build.add_argument("codes", help="database codes: hashgym encode's .npz, or a .npy / .npz "
                                     "array of 0/1 or ±1 codes")
    build.add_argument("--out", required=True,
                       help="the index file to write: .npz (hashgym's), or .faiss (FAISS's "
                            "IndexBinaryFlat file)")
    build.add_argument("--force", action="store_true",
                       help="replace an existing --out file even if it is not an index")
    add_search_arguments(sub.add_parser("search", help="the same as hashgym search"))


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym search``."""
    parser.add_argument("index", help="an index file written by hashgym index build")
    parser.add_argument("query", help="query codes, in any form hashgym eval reads")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--k", type=int, help="the k nearest codes of each query")
    which.add_argument("--radius", type=int,
                       help="every code within this Hamming distance (inclusive)")
    parser.add_argument("--out", default=None, help="write every query's hits to this .npz")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out file even if it is not a search result")
    parser.add_argument("--show", type=int, default=5,
                        help="print the hits of this many queries (default 5; 0: none)")
    parser.add_argument("--backend", choices=("auto", "faiss", "numpy"), default="auto",
                        help="search with FAISS, numpy, or FAISS when installed (default)")
    parser.add_argument("--nprobe", type=int, default=None,
                        help="approximate --k search through FAISS's IVF, scanning this many "
                             "lists per query (default: exact)")


def _codes(path: str) -> np.ndarray:
    codes, _ = load_code_file(path)  # always [n, n_bits]
    return codes


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym index build`` or ``hashgym index search``; returns the exit status."""
    if args.index_command == "search":
        return run_search_from_args(args)
    try:
        faiss_file = Path(args.out).suffix == ".faiss"
        out = check_output(args.out, suffix=".faiss" if faiss_file else ".npz",
                           kind="code index", keys=() if faiss_file else _INDEX_KEYS,
                           inputs=[args.codes], force=args.force)
        codes = _codes(args.codes)
        index = CodeIndex(codes.shape[1], backend="numpy")
        index.add(codes)
        index.save(out, file_format="faiss" if faiss_file else "npz")
    except ImportError as exc:
        print(f"hashgym index build: error: {exc}", file=sys.stderr)
        return 2
    except _ERRORS as exc:
        print(f"hashgym index build: error: {exc}", file=sys.stderr)
        return 2
    print(f"indexed {len(index):,} codes of {index.n_bits} bits: wrote {out}")
    return 0


def run_search_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym search``; returns the exit status."""
    try:
        out = None if args.out is None else check_output(
            args.out, suffix=".npz", kind="search result", keys=("format", "ids", "distances"),
            inputs=[args.index, args.query], force=args.force)
        index = CodeIndex.load(args.index, backend=args.backend,
                               knn="exact" if args.nprobe is None else "ivf",
                               nprobe=16 if args.nprobe is None else args.nprobe)
        queries = _codes(args.query)
        if queries.shape[1] != index.n_bits:
            raise EvalInputError(f"the query codes have {queries.shape[1]} bits and the index "
                                 f"{args.index} holds {index.n_bits}-bit codes")
        if args.k is not None:
            distances, ids = index.search(queries, args.k)
            lims = np.arange(len(queries) + 1, dtype=np.int64) * distances.shape[1]
            flat_ids, flat_distances = ids.ravel(), distances.ravel()
            arrays = {"ids": ids, "distances": distances, "k": np.array(args.k)}
        else:
            lims, flat_distances, flat_ids = index.range_search(queries, args.radius)
            arrays = {"lims": lims, "ids": flat_ids, "distances": flat_distances,
                      "radius": np.array(args.radius)}
        if out is not None:
            with atomic_write(out) as handle:
                np.savez(handle, format=np.array(RESULTS_FORMAT),
                         n_bits=np.array(index.n_bits), **arrays)
    except (*_ERRORS, ImportError) as exc:
        print(f"hashgym search: error: {exc}", file=sys.stderr)
        return 2
    what = f"k = {args.k}" if args.k is not None else f"radius {args.radius}"
    if args.nprobe is not None and args.k is not None:
        what += f" (approximate: IVF, {args.nprobe} lists per query)"
    print(f"{len(queries):,} queries against {len(index):,} codes of {index.n_bits} bits, "
          f"{what}, backend {index.backend}")
    for i in range(min(max(args.show, 0), len(queries))):
        hits = [(int(d), int(j)) for d, j in zip(flat_distances[lims[i]:lims[i + 1]],
                                                 flat_ids[lims[i]:lims[i + 1]], strict=True)
                if j >= 0]
        shown = ", ".join(f"{j} ({d})" for d, j in hits[:10])
        more = f", … {len(hits) - 10} more" if len(hits) > 10 else ""
        print(f"query {i}: {shown or 'no hits'}{more}")
    if out is not None:
        print(f"wrote {Path(out)}")
    return 0
