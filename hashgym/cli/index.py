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
``.npz`` (``hashgym index search`` is the same command; ``hashgym search`` also searches with
pictures, ``--image``: :mod:`hashgym.cli.search`). Nothing is unpickled.

Search results (``format`` = ``"hashgym-search/1"``): with ``--k``, ``ids`` and ``distances``
``[n_queries, k]`` (``-1`` where the index holds fewer than ``k`` codes); with ``--radius``,
FAISS's range layout: the hits of query ``i`` are ``ids[lims[i]:lims[i + 1]]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hashgym.atomic import atomic_write, check_output
from hashgym.cli.usage import UsageError
from hashgym.codefile import load_code_file
from hashgym.index import CodeIndex

__all__ = ["RESULTS_FORMAT", "add_arguments", "add_search_arguments", "check_results_path",
           "format_hits", "hits_of", "run_from_args", "run_search_from_args", "search_index",
           "write_hits"]

#: The ``format`` entry of the result files ``hashgym search --out`` writes.
RESULTS_FORMAT = "hashgym-search/1"
_INDEX_KEYS = ("format", "n_bits", "codes")


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


def _show(value: str) -> int | str:
    """``--show``: a count of queries to print, or the ``.png`` grid to draw."""
    if value.lower().endswith(".png"):
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of queries to print or a .png file to draw, got {value!r}"
        ) from None


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym search`` with query codes (:mod:`hashgym.cli.search` adds the
    pictures')."""
    parser.add_argument("index", help="an index file written by hashgym index build (with "
                                      "--image: the model file)")
    parser.add_argument("query", nargs="?", default=None,
                        help="query codes, in any form hashgym eval reads")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--k", type=int, help="the k nearest codes of each query")
    which.add_argument("--radius", type=int,
                       help="every code within this Hamming distance (inclusive)")
    parser.add_argument("--out", default=None, help="write every query's hits to this .npz")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out file even if it is not a search result")
    parser.add_argument("--show", type=_show, default=5, metavar="N|GRID.png",
                        help="print the hits of this many queries (default 5; 0: none); with "
                             "--image, a .png file draws each picture and its top k instead")
    parser.add_argument("--backend", choices=("auto", "faiss", "numpy"), default="auto",
                        help="search with FAISS, numpy, or FAISS when installed (default)")
    parser.add_argument("--nprobe", type=int, default=None,
                        help="approximate --k search through FAISS's IVF, scanning this many "
                             "lists per query (default: exact)")


def search_index(index: CodeIndex, queries: np.ndarray, k: int | None,
                 radius: int | None) -> dict[str, np.ndarray]:
    """The hits of ``queries`` in ``index`` as ``hashgym search --out`` writes them: with ``k``,
    ``ids`` and ``distances`` ``[n, k]``; with ``radius``, FAISS's ``lims`` layout."""
    if k is not None:
        distances, ids = index.search(queries, k)
        return {"ids": ids, "distances": distances, "k": np.array(k)}
    lims, distances, ids = index.range_search(queries, radius)  # type: ignore[arg-type]
    return {"lims": lims, "ids": ids, "distances": distances, "radius": np.array(radius)}


def hits_of(arrays: dict[str, np.ndarray], i: int) -> list[tuple[int, int]]:
    """``(distance, id)`` of query ``i``'s hits in :func:`search_index`'s arrays, nearest first."""
    if "lims" in arrays:
        part = slice(int(arrays["lims"][i]), int(arrays["lims"][i + 1]))
        pairs = zip(arrays["distances"][part], arrays["ids"][part], strict=True)
    else:
        pairs = zip(arrays["distances"][i], arrays["ids"][i], strict=True)
    return [(int(d), int(j)) for d, j in pairs if j >= 0]


def write_hits(out: Path, n_bits: int, arrays: dict[str, np.ndarray]) -> None:
    """Write :func:`search_index`'s arrays as a ``hashgym-search/1`` file (atomically)."""
    with atomic_write(out) as handle:
        np.savez(handle, format=np.array(RESULTS_FORMAT), n_bits=np.array(n_bits), **arrays)


def check_results_path(args: argparse.Namespace, inputs: list[str]) -> Path | None:
    """``--out`` checked as a search result file that overwrites none of ``inputs``."""
    return None if args.out is None else check_output(
        args.out, suffix=".npz", kind="search result", keys=("format", "ids", "distances"),
        inputs=inputs, force=args.force)


def format_hits(hits: list[tuple[int, int]]) -> str:
    """The first 10 hits as ``id (distance), ...``."""
    shown = ", ".join(f"{j} ({d})" for d, j in hits[:10])
    more = f", … {len(hits) - 10} more" if len(hits) > 10 else ""
    return (shown or "no hits") + more


def _codes(path: str) -> np.ndarray:
    codes, _ = load_code_file(path)  # always [n, n_bits]
    return codes


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym index build`` or ``hashgym index search``; returns the exit status."""
    if args.index_command == "search":
        return run_search_from_args(args)
    faiss_file = Path(args.out).suffix == ".faiss"
    out = check_output(args.out, suffix=".faiss" if faiss_file else ".npz",
                       kind="code index", keys=() if faiss_file else _INDEX_KEYS,
                       inputs=[args.codes], force=args.force)
    codes = _codes(args.codes)
    index = CodeIndex(codes.shape[1], backend="numpy")
    index.add(codes)
    index.save(out, file_format="faiss" if faiss_file else "npz")
    print(f"indexed {len(index):,} codes of {index.n_bits} bits: wrote {out}")
    return 0


def run_search_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym search`` with query codes; returns the exit status."""
    if args.query is None:
        raise UsageError("give the query codes after the index (or search by picture: "
                         "hashgym search MODEL --image FILE --index INDEX)")
    if isinstance(args.show, str):
        raise UsageError(f"--show {args.show}: drawing needs pictures (--image); with "
                         f"query codes, hashgym show draws the grid")
    out = check_results_path(args, [args.index, args.query])
    index = CodeIndex.load(args.index, backend=args.backend,
                           knn="exact" if args.nprobe is None else "ivf",
                           nprobe=16 if args.nprobe is None else args.nprobe)
    queries = _codes(args.query)
    if queries.shape[1] != index.n_bits:
        raise UsageError(f"the query codes have {queries.shape[1]} bits and the index "
                         f"{args.index} holds {index.n_bits}-bit codes")
    arrays = search_index(index, queries, args.k, args.radius)
    if out is not None:
        write_hits(out, index.n_bits, arrays)
    what = f"k = {args.k}" if args.k is not None else f"radius {args.radius}"
    if args.nprobe is not None and args.k is not None:
        what += f" (approximate: IVF, {args.nprobe} lists per query)"
    print(f"{len(queries):,} queries against {len(index):,} codes of {index.n_bits} bits, "
          f"{what}, backend {index.backend}")
    for i in range(min(max(args.show, 0), len(queries))):
        print(f"query {i}: {format_hits(hits_of(arrays, i))}")
    if out is not None:
        print(f"wrote {Path(out)}")
    return 0
