"""What a hash function retrieves, as the figure hashing papers print: each query image, then its
top-``k`` database images by Hamming rank.

:func:`retrieval_grid` draws it from codes, images and labels: one row per query, the query
first (framed blue), then its neighbours in Hamming-rank order (distance, then database
position: :mod:`hashgym.ranking`'s order), each framed green when it shares the query's finest
label and red when not (grey when the queries have no labels, as a new picture), with its
Hamming distance under it. ``hashgym show`` (:mod:`hashgym.cli.show`) draws it from code files
and an image file, ``hashgym search --image ... --show grid.png`` from pictures.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hashgym.atomic import atomic_write
from hashgym.codes import as_bits
from hashgym.errors import CodesError
from hashgym.index import CodeIndex
from hashgym.validation import check_count

__all__ = ["QUERY_COLOR", "RELEVANT_COLOR", "UNKNOWN_COLOR", "WRONG_COLOR", "ShowError",
           "retrieval_grid"]

QUERY_COLOR = "#1f5fbf"
RELEVANT_COLOR = "#1a9e3a"
WRONG_COLOR = "#d62728"
#: The frame of a neighbour of an unlabelled query (relevance unknown).
UNKNOWN_COLOR = "#7f7f7f"
#: Inches per image tile; 100 dpi makes a 32-pixel CIFAR image about 1.3 times its size.
TILE_INCHES = 0.9
DPI = 100


#: This module's name for :class:`~hashgym.errors.CodesError` (an alias).
ShowError = CodesError


def _check_images(images: np.ndarray, n: int, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[0] != n:
        raise ShowError(f"{what} images must be uint8 [{n}, H, W] or [{n}, H, W, 3] (one per "
                        f"code), got {images.dtype} {images.shape}")
    return images


def neighbours(query_codes: np.ndarray, db_codes: np.ndarray, query_labels: np.ndarray,
               db_labels: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each query's top-``k`` database codes by Hamming rank, and whether each is relevant.

    :param query_codes: ``[q, n_bits]`` codes (0/1, ±1 or bool).
    :param db_codes: ``[n, n_bits]`` database codes.
    :param query_labels: ``[q]`` or ``[q, L]`` labels; the last column (the finest level)
        decides relevance.
    :param db_labels: ``[n]`` or ``[n, L]`` database labels.
    :param k: neighbours per query (at most ``n``).
    :return: ``(ids, distances, relevant)``, each ``[q, min(k, n)]``: database positions in
        (distance, position) order, their Hamming distances, and whether each shares the
        query's finest label.
    :raises ShowError: for mismatched shapes or a bad ``k``; ``CodeError`` for non-binary codes.
    """
    check_count(k, "k", 1, ShowError)
    q_bits = as_bits(query_codes, name="query codes")
    db_bits = as_bits(db_codes, name="database codes")
    if q_bits.shape[1] != db_bits.shape[1]:
        raise ShowError(f"the query codes have {q_bits.shape[1]} bits and the database codes "
                        f"{db_bits.shape[1]}")
    query_labels, db_labels = np.asarray(query_labels), np.asarray(db_labels)
    if query_labels.shape[0] != len(q_bits) or db_labels.shape[0] != len(db_bits):
        raise ShowError(f"labels need one row per code: {query_labels.shape[0]} query labels "
                        f"for {len(q_bits)} codes, {db_labels.shape[0]} database labels for "
                        f"{len(db_bits)}")
    q_lab = query_labels.reshape(len(q_bits), -1)[:, -1]
    db_lab = db_labels.reshape(len(db_bits), -1)[:, -1]
    index = CodeIndex(q_bits.shape[1], backend="numpy")
    index.add(db_bits)
    distances, ids = index.search(q_bits, min(int(k), len(db_bits)))
    return ids, distances, db_lab[ids] == q_lab[:, None]


def retrieval_grid(query_codes: np.ndarray, db_codes: np.ndarray, query_images: np.ndarray,
                   db_images: np.ndarray, query_labels: np.ndarray | None,
                   db_labels: np.ndarray, out: str | os.PathLike[str], k: int = 10) -> Path:
    """Draw each query and its top-``k`` database images by Hamming rank, and save a PNG.

    :param query_codes: ``[q, n_bits]`` codes (0/1, ±1 or bool) of the queries to draw.
    :param db_codes: ``[n, n_bits]`` database codes.
    :param query_images: ``uint8 [q, H, W, 3]`` (or ``[q, H, W]``) query images.
    :param db_images: ``uint8 [n, H, W, 3]`` database images.
    :param query_labels: ``[q]`` or ``[q, L]`` labels (see :func:`neighbours`), or ``None``
        for queries without labels (new pictures): neighbours are then framed grey.
    :param db_labels: ``[n]`` or ``[n, L]`` database labels.
    :param out: the ``.png`` to write (atomically).
    :param k: neighbours per query (10, as papers print; fewer when the database is smaller).
    :return: the written path. The image is ``(k + 1) · TILE_INCHES · DPI`` pixels wide and
        ``q · (TILE_INCHES + 0.25) · DPI`` high.
    :raises ShowError: for mismatched shapes, no codes or a bad ``k``; ``CodeError`` for
        non-binary codes.
    """
    if len(query_codes) == 0 or len(db_codes) == 0:
        raise ShowError("retrieval_grid needs at least one query and one database code")
    labelled = query_labels is not None
    if query_labels is None:
        query_labels = np.zeros(len(query_codes), dtype=np.int64)
    ids, distances, relevant = neighbours(query_codes, db_codes, query_labels, db_labels, k)
    n_q, k = ids.shape
    query_images = _check_images(query_images, n_q, "query")
    db_images = _check_images(db_images, len(db_codes), "database")

    # a bare Figure (no pyplot): no global backend is chosen, nothing stays open
    fig = Figure(figsize=((k + 1) * TILE_INCHES, n_q * (TILE_INCHES + 0.25)))
    axes = fig.subplots(n_q, k + 1, squeeze=False)
    for i in range(n_q):
        tiles = [(query_images[i], QUERY_COLOR, "query")]
        tiles += [(db_images[j], (RELEVANT_COLOR if good else WRONG_COLOR) if labelled
                   else UNKNOWN_COLOR, f"d={int(d)}")
                  for d, j, good in zip(distances[i], ids[i], relevant[i], strict=True)]
        for ax, (image, color, caption) in zip(axes[i], tiles, strict=True):
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(color)
                spine.set_linewidth(3)
            ax.set_xlabel(caption, fontsize=7, labelpad=1)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.06, wspace=0.08, hspace=0.35)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    target = Path(out)
    with atomic_write(target) as handle:
        handle.write(buffer.getvalue())
    return target
