"""``hashgym show QUERY DB --bank B --out grid.png``: what the codes retrieve, as a figure.

The code files are what ``hashgym encode`` writes (codes with their bank rows and labels) or raw
arrays whose rows are a ``--bank`` split's (``--query-split`` / ``--db-split``, as ``hashgym
eval``). The images come from the image source that ``--bank`` records (:mod:`hashgym.images`:
the shared ``cifar100.npz`` for the shared bank and its presets, torchvision's CIFAR files or a
NUS-WIDE list for banks that ``hashgym features`` made from them), or from ``--images``: an
``.npz`` holding an ``images`` array ``uint8 [N, H, W, 3]`` whose image ``i`` is bank row ``i``.
The first ``--queries`` query codes are drawn (or ``--pick`` random ones, seeded), each with
its ``--k`` nearest database images (:func:`hashgym.show.retrieval_grid`); from a bank's source
only those images are read.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.atomic import check_output
from hashgym.cli.usage import UsageError
from hashgym.codefile import check_overlap, load_code_file
from hashgym.images import ImageError, bank_images
from hashgym.npyfile import check_declared_sizes
from hashgym.protocols import resolve_bank
from hashgym.show import neighbours, retrieval_grid

__all__ = ["add_arguments", "run_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym show``."""
    parser.add_argument("query", help="query codes: hashgym encode's .npz, or a .npy / .npz array")
    parser.add_argument("database", help="database codes, in the same forms")
    parser.add_argument("--images", default=None,
                        help="image file in bank order (an .npz with 'images'); default: the "
                             "image source --bank records")
    parser.add_argument("--bank", default=None,
                        help="the bank of the codes' rows (preset name or .npz): their labels "
                             "for raw code arrays, and their images")
    parser.add_argument("--protocol", default=None, help="a split protocol applied to --bank")
    parser.add_argument("--query-split", default="query", help="--bank split of the query codes")
    parser.add_argument("--db-split", default="database", help="--bank split of the database codes")
    parser.add_argument("--queries", type=int, default=8, help="query rows drawn (default 8)")
    parser.add_argument("--pick", action="store_true",
                        help="draw random queries (seeded by --seed) instead of the first ones")
    parser.add_argument("--seed", type=int, default=0, help="seed of --pick")
    parser.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    parser.add_argument("--out", required=True,
                        help="the .png to write (never an input; an existing file that is not a "
                             "PNG needs --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out file even if it is not a PNG")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="show queries against a database that holds the same images "
                             "(refused by default: each such query finds itself first)")


def _rows_and_labels(path: str, bank: Any, split: str, flag: str
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes, their bank rows and labels: from hashgym encode's file, or the bank's split."""
    codes, labels = load_code_file(path)
    if labels is not None:
        with np.load(path, allow_pickle=False) as archive:
            return codes, archive["rows"], labels
    if bank is None:
        raise UsageError(f"{path} holds raw codes without bank rows: give --bank (its "
                         f"{split!r} split's rows are the codes' rows)")
    rows = bank.indices(split)
    if len(rows) != len(codes):
        raise UsageError(f"{path} has {len(codes)} codes but the bank's {split!r} split has "
                         f"{len(rows)} images: give --{flag} with the right split")
    return codes, rows, bank.labels[rows]


def _load_images(path: Path) -> np.ndarray:
    """The ``images`` array of an image ``.npz`` (never unpickled), memory-mapped-free."""
    if not path.is_file():
        raise ImageError(f"image file {path} does not exist")
    try:
        check_declared_sizes(path, ImageError, "image file")
        with np.load(path, allow_pickle=False) as archive:
            if "images" not in archive.files:
                raise ImageError(f"{path} holds no 'images' array (it has "
                                 f"{', '.join(archive.files)})")
            return archive["images"]
    except ImageError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
        raise ImageError(f"cannot read image file {path}: {exc}") from exc


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym show``; returns the exit status."""
    out = check_output(args.out, suffix=".png", kind="figure", keys=(),
                       inputs=(args.query, args.database, args.bank, args.images),
                       force=args.force)
    bank = None if args.bank is None else resolve_bank(args.bank, protocol=args.protocol)
    query, q_rows, q_labels = _rows_and_labels(args.query, bank, args.query_split,
                                               "query-split")
    database, db_rows, db_labels = _rows_and_labels(args.database, bank, args.db_split,
                                                     "db-split")
    if not args.allow_overlap:
        check_overlap(args.query, args.database, query, database, q_rows, db_rows)
    if args.queries < 1:
        raise UsageError(f"--queries must be >= 1, got {args.queries}")
    n, n_db = min(args.queries, len(query)), len(database)
    chosen = (np.sort(np.random.default_rng(args.seed).choice(len(query), n, replace=False))
              if args.pick else np.arange(n))
    query, q_rows, q_labels = query[chosen], q_rows[chosen], q_labels[chosen]
    top = int(max(q_rows.max(initial=0), db_rows.max(initial=0)))
    if args.images is not None:
        images = _load_images(Path(args.images))
        if top >= len(images):
            raise UsageError(f"{args.images} has {len(images)} images but the codes' "
                             f"bank rows reach {top}: give the image file of the "
                             f"codes' bank, in bank order")
        q_images, db_images = images[q_rows], images[db_rows]
    else:
        if bank is None:
            raise UsageError("give --bank (its image source shows the images) or "
                             "--images FILE")
        if top >= bank.n:
            raise UsageError(f"the codes' bank rows reach {top} but --bank has "
                             f"{bank.n} images: give the bank the codes were made from")
        # the database codes among some query's top k, kept in database order: each
        # query's top k among them is its top k among all, and only their images are read
        keep = np.unique(neighbours(query, database, q_labels, db_labels, args.k)[0])
        database, db_labels, db_rows = database[keep], db_labels[keep], db_rows[keep]
        q_images, db_images = bank_images(bank, q_rows), bank_images(bank, db_rows)
    path = retrieval_grid(query, database, q_images, db_images, q_labels, db_labels, out,
                          k=args.k)
    print(f"{n} queries, top {min(args.k, n_db)} of {n_db:,}: wrote {path}")
    return 0
