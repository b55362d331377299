"""``hashgym search``: the nearest codes of query codes, or of pictures.

With query codes (``hashgym search INDEX QUERY --k 10``) it is :mod:`hashgym.cli.index`'s
search. With pictures::

    hashgym search MODEL --image FILE|DIR ... --index INDEX --k 10 [--show grid.png]

each picture (a file, or every image file in a folder) is embedded by the backbone the model's
bank recorded (:func:`hashgym.embed.embed_pictures`: the bank's ``--save-weights`` file, or
``--weights``), coded by the model (:func:`hashgym.agents.encode.encode_features`), and
answered from ``INDEX``: an index file (``hashgym index build``) or ``hashgym encode``'s codes
file. Hits are index positions; they are the bank's rows when ``INDEX`` is a codes file (its
``rows``) or holds one code per bank image (``hashgym encode`` with its default ``--split
all``), and then ``--show grid.png`` draws each picture and the images of its top ``k``
(:func:`hashgym.show.retrieval_grid`, framed grey: a picture has no label). ``--out`` writes
the hits as with query codes (``ids``: index positions), plus the pictures' ``codes`` and
paths (``pictures``). No torch or SB3 import at import time.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.atomic import OutputPathError
from hashgym.bank import FeatureBank
from hashgym.cli.index import (
    add_search_arguments,
    check_results_path,
    format_hits,
    hits_of,
    run_search_from_args,
    search_index,
    write_hits,
)
from hashgym.cli.usage import UsageError
from hashgym.codefile import load_code_file
from hashgym.codes import unpack
from hashgym.datasets import read_image_files
from hashgym.embed import bank_input_side, embed_pictures, picture_files
from hashgym.images import bank_images
from hashgym.index import CodeIndex
from hashgym.protocols import resolve_bank
from hashgym.show import retrieval_grid

__all__ = ["add_arguments", "run_from_args"]

_PICTURE_OPTIONS = ("picture_index", "bank", "weights")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym search``: query codes' (:mod:`hashgym.cli.index`), then pictures'."""
    add_search_arguments(parser)
    group = parser.add_argument_group(
        "search by picture", "hashgym search MODEL --image FILE|DIR ... --index INDEX --k K")
    group.add_argument("--image", nargs="+", metavar="FILE|DIR",
                       help="pictures to search with: image files, or folders of them")
    group.add_argument("--index", dest="picture_index", metavar="INDEX",
                       help="the database: an index file (hashgym index build) or hashgym "
                            "encode's codes file")
    group.add_argument("--bank", default=None,
                       help="the bank whose backbone embeds the pictures and whose images "
                            "--show draws (default: the model's bank)")
    group.add_argument("--weights", default=None, metavar="FILE",
                       help="the backbone's weights file when the bank's recorded one moved, "
                            "or the bank was extracted with --weights FILE")
    group.add_argument("--device", default="cpu", help="torch device (default cpu)")
    group.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def _is_codes_file(path: str) -> bool:
    """Whether ``path`` is an ``.npz`` with ``codes`` and their bank ``rows`` (hashgym encode's)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {"codes", "rows"} <= set(archive.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def _database(path: str, backend: str, knn: dict[str, Any]) -> tuple[CodeIndex, np.ndarray | None]:
    """The index of ``path`` and the bank rows of its codes (``None`` when not recorded)."""
    if not _is_codes_file(path):  # CodeIndex.load names what else it may be
        return CodeIndex.load(path, backend=backend, **knn), None
    codes, _ = load_code_file(path)
    with np.load(path, allow_pickle=False) as archive:
        rows = np.asarray(archive["rows"], dtype=np.int64)
    index = CodeIndex(codes.shape[1], backend=backend, **knn)
    index.add(codes)
    return index, rows


def _bank_rows(index: CodeIndex, rows: np.ndarray | None, bank: FeatureBank) -> np.ndarray | None:
    """The bank row of each index position, when known."""
    if rows is not None:
        if rows.size and rows.max() >= bank.n:
            raise UsageError(f"the codes file's rows reach {int(rows.max())} but the bank "
                             f"has {bank.n} images: give the bank the codes were made from")
        return rows
    return np.arange(bank.n) if len(index) == bank.n else None


def _grid(out: str, bank: FeatureBank, files: list[Path], codes: np.ndarray, index: CodeIndex,
          rows: np.ndarray | None, arrays: dict[str, np.ndarray]) -> Path:
    """Draw each picture and the bank images of its hits (only those images are read)."""
    if rows is None:
        raise UsageError(
                         f"--show {out} needs the bank rows of the index's codes: give hashgym encode's codes "
                         f"file as --index, or an index of every bank image (hashgym encode --split all)")
    if not out.lower().endswith(".png"):
        raise OutputPathError(f"--show {out}: the figure is a .png file")
    hit_ids = np.unique(np.concatenate([[j for _, j in hits_of(arrays, i)]
                                        for i in range(len(files))]).astype(np.int64))
    if not hit_ids.size:
        raise UsageError("no picture has a hit to draw (try a larger --radius)")
    db_codes = unpack(index.packed[hit_ids], index.n_bits)
    pictures = read_image_files(files, bank_input_side(bank))
    k = int(arrays["k"]) if "k" in arrays else int(max(len(hits_of(arrays, i))
                                                       for i in range(len(files))))
    return retrieval_grid(codes, db_codes, pictures, bank_images(bank, rows[hit_ids]), None,
                          bank.labels[rows[hit_ids]], out, k=max(1, k))


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym search``; returns the exit status."""
    if args.image is None:
        given = [name for name in _PICTURE_OPTIONS if getattr(args, name) is not None]
        if given:
            flag = {"picture_index": "--index"}.get(given[0], f"--{given[0]}")
            raise UsageError(f"{flag} goes with --image (search by picture)")
        return run_search_from_args(args)
    return _run_pictures(args)


def _run_pictures(args: argparse.Namespace) -> int:
    import torch

    from hashgym.agents.encode import EncodeError, encode_features
    from hashgym.agents.saving import load_model

    torch.set_num_threads(max(1, args.threads))
    if args.query is not None:
        raise UsageError(f"with --image, give the index as --index INDEX, not as a "
                         f"second argument ({args.query})")
    if args.picture_index is None:
        raise UsageError("search by picture needs --index INDEX (hashgym index build, "
                         "or hashgym encode's codes file)")
    out = check_results_path(args, [args.index, args.picture_index])
    files = picture_files(args.image)
    model, info = load_model(args.index, device=args.device)
    recorded = info.get("env_kwargs", {})
    spec = args.bank if args.bank is not None else recorded.get("bank")
    if spec is None or isinstance(spec, dict):
        raise EncodeError("the model does not name its bank (it was trained on an "
                          "in-memory bank): pass --bank")
    protocol = recorded.get("protocol") if args.bank is None else None
    bank = resolve_bank(spec, protocol=protocol, seed=recorded.get("protocol_seed", 0))
    features = embed_pictures(bank, files, weights=args.weights, device=args.device)
    codes = encode_features(model, features, bank)
    knn = {"knn": "exact" if args.nprobe is None else "ivf",
           "nprobe": 16 if args.nprobe is None else args.nprobe}
    index, code_rows = _database(args.picture_index, args.backend, knn)
    if codes.shape[1] != index.n_bits:
        raise UsageError(f"the model makes {codes.shape[1]}-bit codes and the index "
                         f"{args.picture_index} holds {index.n_bits}-bit codes")
    arrays = search_index(index, codes, args.k, args.radius)
    rows = _bank_rows(index, code_rows, bank)
    grid = None
    if isinstance(args.show, str):
        grid = _grid(args.show, bank, files, codes, index, rows, arrays)
    if out is not None:
        write_hits(out, index.n_bits, {**arrays, "codes": codes,
                                       "pictures": np.array([str(f) for f in files])})
    what = f"k = {args.k}" if args.k is not None else f"radius {args.radius}"
    where = "bank rows" if rows is not None else "index positions"
    print(f"{len(files):,} picture(s) against {len(index):,} codes of {index.n_bits} bits, "
          f"{what}; hits as {where} (distance)")
    shown = len(files) if isinstance(args.show, str) else min(max(args.show, 0), len(files))
    for i in range(shown):
        hits = hits_of(arrays, i)
        if rows is not None:
            hits = [(d, int(rows[j])) for d, j in hits]
        print(f"{files[i]}: {format_hits(hits)}")
    for path in (grid, out):
        if path is not None:
            print(f"wrote {path}")
    return 0
