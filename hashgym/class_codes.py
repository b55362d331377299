"""Where a hash function puts each class: its most common code, how far apart those codes sit,
and which class's code each query lands nearest.

Retrieval metrics say how well codes rank; this says why. With a few bits per class, a
supervised hasher (or a hashing agent) tends to give each class one code. Two things then decide
graded NDCG@k: how many unseen queries land nearest their own class's code, and, for those that
do not, whether they land on a sibling (a class with the same parent, which graded relevance
half-credits) or elsewhere. Both follow from the geometry of the class codes: siblings one bit
apart are confused by a query one bit off its class.

:func:`class_code_report` measures this from database codes and labels, and optionally query
codes and labels; ``hashgym eval --class-codes`` prints it. A worked reading, the hierarchical
DQN against SHDH on a validation split of ``cifar100-trees-people``, is in
``benchmarks/results/notes/trees-people-validation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hashgym.codes import as_bits, as_bits_pair, hamming
from hashgym.errors import CodesError

__all__ = ["ClassCodeError", "ClassCodeReport", "class_code_report", "class_codes"]


#: This module's name for :class:`~hashgym.errors.CodesError` (an alias).
ClassCodeError = CodesError


def _labels(labels: np.ndarray, n: int, name: str) -> np.ndarray:
    """``labels`` as a ``[n, levels]`` integer array (one level when 1-D)."""
    arr = np.asarray(labels)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ClassCodeError(f"{name} must be [n] or [n, levels], got shape {np.shape(labels)}")
    if arr.shape[0] != n:
        raise ClassCodeError(f"{name} has {arr.shape[0]} rows for {n} codes")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ClassCodeError(f"{name} must be integer class ids, got dtype {arr.dtype}")
    return arr


def class_codes(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each class's most common code among ``codes``.

    :param codes: ``[n, n_bits]`` codes (0/1, ±1 or bool).
    :param labels: ``[n]`` class ids.
    :return: ``(classes, modes, on_mode)``: the sorted class ids, their most common codes
        ``[n_classes, n_bits]`` (``uint8`` 0/1; between equally common codes, the smallest read
        as a binary number from the first bit, so the result does not depend on the images'
        order), and a ``[n]`` bool array: whether each image has its class's code.
    :raises ClassCodeError: for labels of the wrong shape or type.
    :raises hashgym.codes.CodeError: for invalid codes.
    """
    bits = as_bits(codes)
    classes, _, modes, on_mode = _modes(bits, _labels(labels, len(bits), "labels")[:, -1])
    return classes, modes, on_mode


def _modes(bits: np.ndarray, fine: np.ndarray,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`class_codes` on validated bits and ``[n]`` labels, with each class's first row."""
    classes, first, class_of = np.unique(fine, return_index=True, return_inverse=True)
    modes = np.empty((classes.size, bits.shape[1]), dtype=np.uint8)
    for c in range(classes.size):
        rows, counts = np.unique(bits[class_of == c], axis=0, return_counts=True)
        modes[c] = rows[counts.argmax()]  # np.unique sorts rows, argmax takes the first maximum
    return classes, first, modes, (bits == modes[class_of]).all(axis=1)


@dataclass(frozen=True)
class ClassCodeReport:
    """What :func:`class_code_report` measured. Shares are fractions in ``[0, 1]``; ``None``
    where the input lacks what a field needs (queries, or a parent level for siblings).

    :param n_bits: code length.
    :param n_classes: classes of the finest level among the database images.
    :param on_code: share of database images whose code is their class's most common one.
    :param distinct_database: distinct codes among the database images.
    :param classes_sharing: classes whose code another class also has.
    :param sibling_distance: ``(min, mean)`` Hamming distance between the codes of two classes
        with the same parent.
    :param other_distance: ``(min, mean)`` between classes with different parents (all pairs
        when there is no parent level).
    :param distinct_query: distinct codes among the queries.
    :param query_own: share of queries whose nearest class code is their own class's.
    :param query_sibling: share whose nearest is a sibling's.
    :param query_other: share whose nearest is another class's (not a sibling's).
    """

    n_bits: int
    n_classes: int
    on_code: float
    distinct_database: int
    classes_sharing: int
    sibling_distance: tuple[int, float] | None
    other_distance: tuple[int, float] | None
    distinct_query: int | None = None
    query_own: float | None = None
    query_sibling: float | None = None
    query_other: float | None = None

    def lines(self) -> list[str]:
        """The report as printed by ``hashgym eval --class-codes``."""
        out = [f"class codes: {self.n_classes} classes, {self.n_bits} bits",
               (f"  database images on their class's code  {self.on_code:.1%} "
                f"({self.distinct_database:,} distinct codes; {self.classes_sharing} classes "
                f"share a code with another)")]
        for name, value in (("siblings", self.sibling_distance),
                            ("other classes", self.other_distance)):
            if value is not None:
                out.append(f"  {name + ' apart (bits)':<39}min {value[0]}, mean {value[1]:.1f}")
        if self.query_own is not None:
            sibling = "" if self.query_sibling is None else (
                f", a sibling's {self.query_sibling:.1%}")
            out.append(f"  queries nearest their class's code     {self.query_own:.1%}{sibling}, "
                       f"another's {self.query_other:.1%} ({self.distinct_query:,} distinct "
                       f"codes)")
        return out


def _pair_stats(distances: np.ndarray, mask: np.ndarray) -> tuple[int, float] | None:
    return (int(distances[mask].min()), float(distances[mask].mean())) if mask.any() else None


def class_code_report(
    database: np.ndarray,
    database_labels: np.ndarray,
    queries: np.ndarray | None = None,
    query_labels: np.ndarray | None = None,
) -> ClassCodeReport:
    """Measure where a hash function puts each class (see the module docstring).

    A class's code is its most common code among the database images (:func:`class_codes`). A
    query's nearest class code is the one at the smallest Hamming distance; where several tie,
    each gets an equal share of the query, which is the expectation under a random tie-break
    (so classes sharing one code split their queries).

    :param database: ``[n, n_bits]`` database codes (0/1, ±1 or bool).
    :param database_labels: ``[n]`` class ids, or ``[n, levels]`` label levels, coarsest first
        (a bank's labels): classes are the last level, and two classes are siblings when their
        images share the level above (read from each class's first image).
    :param queries: ``[m, n_bits]`` query codes, or ``None``.
    :param query_labels: the queries' labels, in the database labels' form; needed with
        ``queries``. A query of a class the database lacks counts as landing elsewhere.
    :raises ClassCodeError: for labels of the wrong shape or type, queries without labels (or
        labels without queries), or query labels with other levels than the database's.
    :raises hashgym.codes.CodeError: for invalid codes, or codes of two lengths.
    """
    if (queries is None) != (query_labels is None):
        raise ClassCodeError("give queries and query_labels together, or neither")
    db_bits = as_bits(database, name="database")
    db_labels = _labels(database_labels, len(db_bits), "database_labels")
    classes, first, modes, on_mode = _modes(db_bits, db_labels[:, -1])
    parent = db_labels[first, -2] if db_labels.shape[1] > 1 else None
    distances = hamming(modes, modes).astype(np.int64)
    off_diagonal = ~np.eye(classes.size, dtype=bool)
    same_code = (distances == 0) & off_diagonal
    if parent is None:
        siblings = np.zeros_like(off_diagonal)
        sibling_stats = None
    else:
        siblings = (parent[:, None] == parent[None, :]) & off_diagonal
        sibling_stats = _pair_stats(distances, siblings)
    report = ClassCodeReport(
        n_bits=int(db_bits.shape[1]), n_classes=int(classes.size), on_code=float(on_mode.mean()),
        distinct_database=int(np.unique(db_bits, axis=0).shape[0]),
        classes_sharing=int(same_code.any(axis=1).sum()),
        sibling_distance=sibling_stats,
        other_distance=_pair_stats(distances, off_diagonal & ~siblings),
    )
    if queries is None:
        return report
    q_bits, _ = as_bits_pair(queries, db_bits, names=("queries", "database"))
    q_labels = _labels(query_labels, len(q_bits), "query_labels")
    if q_labels.shape[1] != db_labels.shape[1]:
        raise ClassCodeError(f"query_labels have {q_labels.shape[1]} levels and "
                             f"database_labels {db_labels.shape[1]}")
    to_class = hamming(q_bits, modes)
    nearest = to_class == to_class.min(axis=1, keepdims=True)
    weight = nearest / nearest.sum(axis=1, keepdims=True)
    position = np.searchsorted(classes, q_labels[:, -1])
    known = (position < classes.size) & (classes[np.minimum(position, classes.size - 1)]
                                         == q_labels[:, -1])
    own = np.zeros(len(q_bits))
    own[known] = weight[known, position[known]]
    sibling = None
    if parent is not None:
        is_sibling = (parent[None, :] == q_labels[:, -2, None])
        is_sibling[known, position[known]] = False  # a query's own class is not its sibling
        sibling = float((weight * is_sibling).sum(axis=1).mean())
    return replace(report, distinct_query=int(np.unique(q_bits, axis=0).shape[0]),
                   query_own=float(own.mean()), query_sibling=sibling,
                   query_other=float(1.0 - own.mean() - (sibling or 0.0)))
