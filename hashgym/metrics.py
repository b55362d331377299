"""Retrieval metrics of binary codes: mAP@K, precision/recall within a Hamming radius, precision@K,
PR curves, ACG/DCG/NDCG@k and mAHP@k, all exactly defined (``docs/methods.md``, "Metrics").

Ranking
    Each query ranks the whole database by Hamming distance, ascending; ties keep database order
    (a stable sort, :mod:`hashgym.ranking`), so every value below is deterministic. Rank
    positions ``i`` count from 1.

Relevance (the ``relevance`` argument; a 2-D label matrix is ambiguous, so say which it is)
    ``"label"``
        1-D class ids, e.g. ``bank.labels[:, level]``: relevant iff the labels are equal;
        graded relevance ``r`` is 0 or 1. The default when both label arrays are 1-D.
    ``"multilabel"``
        multi-hot ``[N, C]`` 0/1 rows, e.g. ``bank.multi_hot``: relevant iff at least one label is
        shared (``min_grade`` raises the bar); ``r`` = the number of shared labels. A query with
        no label has no relevant item.
    ``"hierarchy"``
        ``[N, L]`` class ids per level, level 0 coarsest, e.g. ``bank.labels``: ``r`` = the number
        of levels at which the labels agree (0..L); relevant iff ``r >= min_grade``, by default
        ``L`` (same class at every level, i.e. the same leaf class).

Conventions
    * A query with no relevant item scores 0 in every metric and still counts in the mean.
    * ``k`` (or ``topk``) larger than the database is clipped to the database size.
    * Metrics return the mean over queries as a ``float``; with ``per_query=True`` they return
      ``(mean, values)`` with the per-query ``float64`` values.
    * Codes may be 0/1, ±1 or bool (validated by :func:`hashgym.codes.as_bits`).

Definitions (``rel_i`` binary, ``r_i`` graded relevance of the item at rank ``i``; ``R`` the number
of relevant items in the database; ``P@i = (1/i) Σ_{j≤i} rel_j``)

* ``AP@K = (1/R_K) Σ_{i≤K} rel_i · P@i`` with ``R_K = Σ_{i≤K} rel_i`` (``normalize="retrieved"``,
  ``docs/methods.md``, "mAP@K", and the public DeepHash evaluation code), or
  ``(1/R) Σ_{i≤K} rel_i · P@i`` (``normalize="database"``: the area under the full
  precision-recall curve truncated at K, which also penalises relevant items missed by the top K).
* precision within radius ``ρ``: relevant items at distance ``≤ ρ`` over all items at distance
  ``≤ ρ`` (0 when none is); recall within radius: relevant items at distance ``≤ ρ`` over ``R``.
* ``P@K = (1/K) Σ_{i≤K} rel_i``.
* ``ACG@k = (1/k) Σ_{i≤k} r_i``; ``DCG@k = Σ_{i≤k} (2^{r_i} − 1) / log2(1 + i)``;
  ``NDCG@k = DCG@k / IDCG@k`` where IDCG@k is the DCG@k of the ideal order of the *whole* database
  (all items sorted by ``r`` descending), so a ranking can reach 1 only by putting the best items of
  the database on top. These are the graded-relevance metrics of DRLHIH's experiments (its Table 1
  reports ACG/DCG/NDCG@20 on CIFAR-100 with the super-class hierarchy).
* ``mAHP@k``: the mean over queries of the average hierarchical precision of Deng, Berg and
  Fei-Fei, "Hierarchical Semantic Indexing for Large Scale Image Retrieval" (CVPR 2011), used for
  CIFAR-100 by Barz and Denzler, "Hierarchy-based Image Embeddings for Semantic Image Retrieval"
  (WACV 2019). Hierarchical precision ``hP@j = Σ_{i≤j} r_i / Σ_{i≤j} r*_i``, where ``r*`` is the
  ideal (descending) order of the whole database; here the similarity is the graded relevance
  ``r`` (for a hierarchy, the number of agreeing levels, i.e. the depth of the lowest common
  ancestor). Deng et al. define AHP@k as the area under the hP curve from 1 to k, which leaves the
  integration rule open. ``rule="mean"`` (default) uses ``AHP@k = (1/k) Σ_{j≤k} hP@j``, which is
  1 for an ideal ranking; ``rule="trapezoid"`` uses
  ``(1/k) (Σ_{j≤k} hP@j − (hP@1 + hP@k)/2)``, the trapezoidal rule with Barz and Denzler's
  normalisation by k (their public evaluation code), which gives ``(k−1)/k`` for an ideal ranking.

Speed
    Distances are ``uint8`` and the stable ranking is numpy's radix sort, one query chunk at a time
    (``chunk_bytes`` bounds the memory); radius metrics need no sort at all, only per-query counts,
    and the PR curve uses per-distance histograms. :func:`evaluate` ranks once for all metrics.
    ``n_jobs > 1`` processes query chunks in threads (numpy releases the GIL in these kernels).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np

from hashgym import kernels
from hashgym.codes import as_bits_pair, distance_dtype, hamming_words, pack_words
from hashgym.errors import CodesError
from hashgym.ranking import chunk_rows, stable_order
from hashgym.validation import check_count, is_integer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ACG",
    "DCG",
    "DEFAULT_METRICS",
    "MAHP",
    "MAP",
    "NDCG",
    "Metric",
    "MetricError",
    "Options",
    "PRCurve",
    "PrecisionAtK",
    "PrecisionAtRadius",
    "RecallAtRadius",
    "Relevance",
    "RelevanceKind",
    "acg_at_k",
    "dcg_at_k",
    "evaluate",
    "mahp_at_k",
    "mean_average_precision",
    "ndcg_at_k",
    "parse_metric",
    "precision_at_k",
    "precision_at_k_curve",
    "precision_at_radius",
    "precision_recall_curve",
    "recall_at_radius",
]

RelevanceKind = Literal["label", "multilabel", "hierarchy"]
_KINDS = ("label", "multilabel", "hierarchy")
DEFAULT_METRICS: tuple[str, ...] = ("mAP@all", "P@r<=2", "R@r<=2", "P@100", "NDCG@100")
METRIC_CHUNK_BYTES = 1 << 24
"""Default memory budget of one query chunk: small chunks stay in cache (16 MiB measured about
twice faster than 128 MiB for 50,000 database codes)."""


#: This module's name for :class:`~hashgym.errors.CodesError` (an alias).
MetricError = CodesError


# ----------------------------------------------------------------------------------------------
# relevance


def _compact_ints(values: np.ndarray) -> np.ndarray:
    """Integer labels in the smallest of int16/int32/int64 that holds them (cheaper gathers)."""
    if values.size == 0:
        return values.astype(np.int16)
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype)
    return values.astype(np.int64)


def _int_labels(labels: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise MetricError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    return arr


class Relevance:
    """Binary and graded relevance between query and database items (``docs/methods.md``,
    "Relevance").

    :param query_labels: labels of the queries (see the module docstring for the layouts).
    :param db_labels: labels of the database items, in the same layout.
    :param kind: ``"label"``, ``"multilabel"`` or ``"hierarchy"``; ``None`` accepts only 1-D
        labels (``"label"``), since a 2-D matrix could be multi-hot or a hierarchy.
    :param min_grade: binary relevance threshold on the graded relevance ``r``: 1 for labels and
        multi-labels (at least one shared label), ``L`` for a hierarchy (same leaf class).
    :raises MetricError: for labels of the wrong shape, dtype or values, or a bad ``min_grade``.
    """

    def __init__(
        self,
        query_labels: np.ndarray,
        db_labels: np.ndarray,
        kind: RelevanceKind | None = None,
        min_grade: int | None = None,
    ) -> None:
        q = _int_labels(query_labels, "query_labels")
        d = _int_labels(db_labels, "db_labels")
        if kind is None:
            if q.ndim == 1 and d.ndim == 1:
                kind = "label"
            else:
                raise MetricError(
                    f"2-D labels are ambiguous (query_labels {q.shape}, db_labels {d.shape}): pass "
                    "relevance='hierarchy' for one class id per level (bank.labels), "
                    "relevance='multilabel' for multi-hot rows (bank.multi_hot), or 1-D labels "
                    "(bank.labels[:, level]) for single-label relevance"
                )
        if kind not in _KINDS:
            raise MetricError(f"relevance must be one of {_KINDS} or None, got {kind!r}")
        self.kind: RelevanceKind = kind
        if kind == "label":
            q, d = (self._single_column(a, name) for a, name in ((q, "query_labels"), (d, "db_labels")))
        else:
            for arr, name in ((q, "query_labels"), (d, "db_labels")):
                if arr.ndim != 2 or arr.shape[1] == 0:
                    raise MetricError(
                        f"relevance={kind!r} needs [N, {'C' if kind == 'multilabel' else 'L'}] "
                        f"labels with at least one column, got {name} of shape {arr.shape}"
                    )
            if q.shape[1] != d.shape[1]:
                raise MetricError(
                    f"query_labels have {q.shape[1]} columns but db_labels have {d.shape[1]}"
                )
        self.n_query, self.n_database = q.shape[0], d.shape[0]
        if kind == "multilabel":
            for arr, name in ((q, "query_labels"), (d, "db_labels")):
                if arr.size and not np.isin(arr, (0, 1)).all():
                    raise MetricError(f"{name} must be multi-hot 0/1 for relevance='multilabel'")
            self.max_grade = max(1, int(q.sum(axis=1).max(initial=0)))
            self._q_words = pack_words(q.astype(np.uint8)) if q.shape[0] else np.zeros((0, 1), np.uint64)
            self._d_words = pack_words(d.astype(np.uint8)) if d.shape[0] else np.zeros((0, 1), np.uint64)
            default_min = 1
        elif kind == "hierarchy":
            self.max_grade = q.shape[1]
            self._q_levels = [_compact_ints(q[:, level]) for level in range(q.shape[1])]
            self._d_levels = [_compact_ints(np.ascontiguousarray(d[:, level])) for level in range(d.shape[1])]
            self._nested = _is_nested(np.concatenate([q, d]))
            default_min = q.shape[1]
        else:
            self.max_grade = 1
            self._q, self._d = _compact_ints(q), _compact_ints(d)
            default_min = 1
        if min_grade is None:
            min_grade = default_min
        if not is_integer(min_grade) or not (
            1 <= min_grade <= (self.max_grade if kind != "multilabel" else d.shape[1])
        ):
            raise MetricError(
                f"min_grade must be an int in 1..{self.max_grade if kind != 'multilabel' else d.shape[1]} "
                f"for relevance={kind!r}, got {min_grade!r}"
            )
        self.min_grade = int(min_grade)
        self.grade_dtype = np.dtype(np.uint8 if self.max_grade <= 255 else np.uint16)
        # binary relevance as equality of one label per item where possible (fast path)
        self._binary_labels: tuple[np.ndarray, np.ndarray] | None = None
        if kind == "label":
            self._binary_labels = (self._q, self._d)
        elif kind == "hierarchy" and self._nested:
            # nested levels: agreeing at level l implies agreeing at every coarser level, so
            # r >= m  <=>  same class at level m - 1
            level = self.min_grade - 1
            self._binary_labels = (self._q_levels[level], self._d_levels[level])

    @staticmethod
    def _single_column(arr: np.ndarray, name: str) -> np.ndarray:
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise MetricError(
                f"relevance='label' needs 1-D class ids (e.g. bank.labels[:, level]), "
                f"got {name} of shape {arr.shape}"
            )
        return arr

    def grades(self, queries: slice, ids: np.ndarray | None = None) -> np.ndarray:
        """Graded relevance ``r`` of database items to the queries ``queries``.

        :param queries: a slice of query rows.
        :param ids: ``[n_q, k]`` database ids; ``None`` means the whole database in its order.
        :return: ``[n_q, k]`` (or ``[n_q, n_database]``) grades, ``uint8``/``uint16``.
        """
        if self.kind == "label":
            return self.relevant(queries, ids).view(np.uint8)
        if self.kind == "hierarchy":
            out = None
            for q_l, d_l in zip(self._q_levels, self._d_levels):
                agree = _take(d_l, ids) == q_l[queries][:, None]
                out = agree.astype(self.grade_dtype) if out is None else out + agree
            return out
        out = None
        for w in range(self._q_words.shape[1]):
            shared = np.bitwise_count(self._q_words[queries, w][:, None] & _take(self._d_words[:, w], ids))
            out = shared.astype(self.grade_dtype) if out is None else out + shared
        return out

    def relevant(self, queries: slice, ids: np.ndarray | None = None) -> np.ndarray:
        """Binary relevance (``r >= min_grade``) as ``bool``, laid out as :meth:`grades`."""
        if self._binary_labels is not None:
            q, d = self._binary_labels
            return _take(d, ids) == q[queries][:, None]
        return self.grades(queries, ids) >= self.min_grade

    @cached_property
    def _class_counts(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self._binary_labels is None:
            return None
        return np.unique(self._binary_labels[1], return_counts=True)

    def n_relevant(self, queries: slice) -> np.ndarray:
        """Number of relevant database items of each query in ``queries``, ``int64``."""
        if self._class_counts is not None:
            return _lookup_counts(self._class_counts, self._binary_labels[0][queries])
        return np.count_nonzero(self.relevant(queries), axis=1).astype(np.int64)

    def grade_counts(self, queries: slice) -> np.ndarray:
        """``[n_q, max_grade]`` counts: column ``g - 1`` = database items with ``r >= g``."""
        if self.kind == "label":
            return self.n_relevant(queries)[:, None]
        if self.kind == "hierarchy" and self._nested:
            cols = [
                _lookup_counts(np.unique(d_l, return_counts=True), q_l[queries])
                for q_l, d_l in zip(self._q_levels, self._d_levels)
            ]
            return np.stack(cols, axis=1)
        grades = self.grades(queries)
        return np.stack(
            [np.count_nonzero(grades >= g, axis=1) for g in range(1, self.max_grade + 1)], axis=1
        ).astype(np.int64)


def _take(values: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    return values[None, :] if ids is None else values[ids]


def _lookup_counts(counts: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
    values, n = counts
    pos = np.clip(np.searchsorted(values, keys), 0, max(0, len(values) - 1))
    found = (values[pos] == keys) if len(values) else np.zeros(keys.shape, bool)
    return np.where(found, n[pos] if len(values) else 0, 0).astype(np.int64)


def _is_nested(labels: np.ndarray) -> bool:
    """Whether each level's class determines the class of every coarser level (a tree)."""
    for level in range(1, labels.shape[1]):
        pairs = np.unique(labels[:, level - 1 : level + 1], axis=0)
        if len(pairs) != len(np.unique(labels[:, level])):
            return False
    return True


# ----------------------------------------------------------------------------------------------
# one chunk of queries, with everything the metrics share computed lazily and once


class _Chunk:
    def __init__(self, dist: np.ndarray, queries: slice, relevance: Relevance, depth: int) -> None:
        self.dist = dist
        self.queries = queries
        self.relevance = relevance
        self.depth = depth
        self.n_rows, self.n_database = dist.shape

    @cached_property
    def ids(self) -> np.ndarray:
        return stable_order(self.dist, self.depth)

    @cached_property
    def relevant_ranked(self) -> np.ndarray:
        return self.relevance.relevant(self.queries, self.ids)

    @cached_property
    def grades_ranked(self) -> np.ndarray:
        return self.relevance.grades(self.queries, self.ids)

    @cached_property
    def relevant_db(self) -> np.ndarray:
        return self.relevance.relevant(self.queries)

    @cached_property
    def n_relevant(self) -> np.ndarray:
        return self.relevance.n_relevant(self.queries)

    @cached_property
    def grade_counts(self) -> np.ndarray:
        return self.relevance.grade_counts(self.queries)

    def ideal_grades(self, k: int) -> np.ndarray:
        """``[n_rows, k]`` grades of the ideal order of the whole database, ``float64``."""
        positions = np.arange(k)
        return (self.grade_counts[:, :, None] > positions).sum(axis=1).astype(np.float64)

    def cumulative_histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per query and radius 0..max distance: items retrieved and relevant items retrieved."""
        n_levels = int(self.dist.max()) + 1
        offsets = (np.arange(self.n_rows, dtype=np.int64) * n_levels)[:, None]
        keys = (self.dist + offsets).ravel()
        size = self.n_rows * n_levels
        hist_all = np.bincount(keys, minlength=size).reshape(self.n_rows, n_levels)
        hist_rel = np.bincount(keys[self.relevant_db.ravel()], minlength=size).reshape(self.n_rows, n_levels)
        return np.cumsum(hist_all, axis=1), np.cumsum(hist_rel, axis=1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (the 'scores 0' convention)."""
    num = np.asarray(num, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=np.asarray(den) > 0)


# ----------------------------------------------------------------------------------------------
# metrics


class Metric:
    """A per-query retrieval metric. Subclasses set :attr:`name` and implement :meth:`compute`."""

    name: str

    def depth(self, n_database: int) -> int:
        """How many ranked items the metric reads (0 if it needs no ranking)."""
        return 0

    def compute(self, chunk: _Chunk) -> np.ndarray:
        """Per-query values for one chunk of queries."""
        raise NotImplementedError


@dataclass(frozen=True)
class MAP(Metric):
    """mean Average Precision over the top ``k`` (all by default); see the module docstring.

    :param k: cut-off K; ``None`` for mAP@all.
    :param normalize: ``"retrieved"`` divides by the relevant items in the top K
        (``docs/methods.md``, "mAP@K"), ``"database"`` by all relevant items in the database.
    """

    k: int | None = None
    normalize: Literal["retrieved", "database"] = "retrieved"

    def __post_init__(self) -> None:
        if self.k is not None:
            check_count(self.k, "topk", 1, MetricError)
        if self.normalize not in ("retrieved", "database"):
            raise MetricError(f"normalize must be 'retrieved' or 'database', got {self.normalize!r}")

    @property
    def name(self) -> str:
        suffix = "" if self.normalize == "retrieved" else ":database"
        return f"mAP@{'all' if self.k is None else self.k}{suffix}"

    def depth(self, n_database: int) -> int:
        return n_database if self.k is None else min(self.k, n_database)

    def compute(self, chunk: _Chunk) -> np.ndarray:
        same_class = chunk.relevance._binary_labels
        if self.k is None and kernels.AVAILABLE and same_class is not None:
            # no ranking needed: two passes per query in database order (hashgym.kernels)
            q_classes, db_classes = same_class
            total, n_hits = kernels.ap_all_sums(
                chunk.dist, np.ascontiguousarray(q_classes[chunk.queries]), db_classes,
                int(chunk.dist.max(initial=0)) + 1)
            return _ratio(total, n_hits if self.normalize == "retrieved" else chunk.n_relevant)
        k = self.depth(chunk.n_database)
        rel = chunk.relevant_ranked[:, :k]
        # only the relevant positions matter: the j-th relevant item at rank i adds j / i
        flat = np.flatnonzero(rel)
        row, col = np.divmod(flat, k)
        n_hits = np.bincount(row, minlength=chunk.n_rows)
        first = np.cumsum(n_hits) - n_hits
        nth = np.arange(1, flat.size + 1) - first[row]
        total = np.bincount(row, weights=nth / (col + 1.0), minlength=chunk.n_rows)
        return _ratio(total, n_hits if self.normalize == "retrieved" else chunk.n_relevant)


@dataclass(frozen=True)
class _RadiusMetric(Metric):
    radius: int = 2

    def __post_init__(self) -> None:
        check_count(self.radius, "radius", 0, MetricError)


@dataclass(frozen=True)
class PrecisionAtRadius(_RadiusMetric):
    """Precision within Hamming radius ``radius`` (distance ``<= radius``); 0 if nothing is retrieved."""

    @property
    def name(self) -> str:
        return f"P@r<={self.radius}"

    def compute(self, chunk: _Chunk) -> np.ndarray:
        inside = chunk.dist <= self.radius
        hits = np.count_nonzero(inside & chunk.relevant_db, axis=1)
        return _ratio(hits, np.count_nonzero(inside, axis=1))


@dataclass(frozen=True)
class RecallAtRadius(_RadiusMetric):
    """Recall within Hamming radius ``radius``: relevant items at distance ``<= radius`` over all relevant."""

    @property
    def name(self) -> str:
        return f"R@r<={self.radius}"

    def compute(self, chunk: _Chunk) -> np.ndarray:
        hits = np.count_nonzero((chunk.dist <= self.radius) & chunk.relevant_db, axis=1)
        return _ratio(hits, chunk.n_relevant)


@dataclass(frozen=True)
class _CutoffMetric(Metric):
    k: int = 20

    def __post_init__(self) -> None:
        check_count(self.k, "k", 1, MetricError)

    def depth(self, n_database: int) -> int:
        return min(self.k, n_database)


@dataclass(frozen=True)
class PrecisionAtK(_CutoffMetric):
    """Precision of the top ``k`` ranked items."""

    k: int = 100

    @property
    def name(self) -> str:
        return f"P@{self.k}"

    def compute(self, chunk: _Chunk) -> np.ndarray:
        k = self.depth(chunk.n_database)
        return np.count_nonzero(chunk.relevant_ranked[:, :k], axis=1) / k


@dataclass(frozen=True)
class ACG(_CutoffMetric):
    """Average cumulative gain ``ACG@k = (1/k) Σ_{i≤k} r_i`` (graded relevance)."""

    @property
    def name(self) -> str:
        return f"ACG@{self.k}"

    def compute(self, chunk: _Chunk) -> np.ndarray:
        k = self.depth(chunk.n_database)
        return chunk.grades_ranked[:, :k].sum(axis=1, dtype=np.float64) / k


def _dcg(grades: np.ndarray) -> np.ndarray:
    k = grades.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    # an elementwise product and a row sum, not a BLAS matrix product: the result of a row must
    # not depend on how many rows share the chunk
    return ((np.exp2(grades.astype(np.float64)) - 1.0) * discounts).sum(axis=1)


@dataclass(frozen=True)
class DCG(_CutoffMetric):
    """Discounted cumulative gain ``DCG@k = Σ_{i≤k} (2^{r_i} − 1) / log2(1 + i)``."""

    @property
    def name(self) -> str:
        return f"DCG@{self.k}"

    def compute(self, chunk: _Chunk) -> np.ndarray:
        return _dcg(chunk.grades_ranked[:, : self.depth(chunk.n_database)])


@dataclass(frozen=True)
class NDCG(_CutoffMetric):
    """``NDCG@k = DCG@k / IDCG@k``, the ideal order taken over the whole database (0 if IDCG is 0)."""

    @property
    def name(self) -> str:
        return f"NDCG@{self.k}"

    def compute(self, chunk: _Chunk) -> np.ndarray:
        k = self.depth(chunk.n_database)
        return _ratio(_dcg(chunk.grades_ranked[:, :k]), _dcg(chunk.ideal_grades(k)))


@dataclass(frozen=True)
class MAHP(_CutoffMetric):
    """Mean average hierarchical precision ``mAHP@k`` (Deng et al., CVPR 2011); see the module docstring.

    :param k: cut-off.
    :param rule: ``"mean"`` (``(1/k) Σ hP@j``, 1 for an ideal ranking) or ``"trapezoid"``
        (Barz and Denzler's trapezoidal area divided by k).
    """

    k: int = 250
    rule: Literal["mean", "trapezoid"] = "mean"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rule not in ("mean", "trapezoid"):
            raise MetricError(f"rule must be 'mean' or 'trapezoid', got {self.rule!r}")

    @property
    def name(self) -> str:
        return f"mAHP@{self.k}" + ("" if self.rule == "mean" else ":trapezoid")

    def compute(self, chunk: _Chunk) -> np.ndarray:
        k = self.depth(chunk.n_database)
        real = np.cumsum(chunk.grades_ranked[:, :k], axis=1, dtype=np.float64)
        ideal = np.cumsum(chunk.ideal_grades(k), axis=1)
        hp = _ratio(real, ideal)
        if self.rule == "mean":
            return hp.mean(axis=1)
        return (hp.sum(axis=1) - 0.5 * (hp[:, 0] + hp[:, -1])) / k


@dataclass(frozen=True)
class _RadiusCounts(Metric):
    """``[n_rows, 3, n_bits + 1]``: retrieved, relevant retrieved and relevant, per radius."""

    n_bits: int

    name = "radius-counts"

    def compute(self, chunk: _Chunk) -> np.ndarray:
        retrieved, hits = chunk.cumulative_histograms()
        out = np.empty((chunk.n_rows, 3, self.n_bits + 1), dtype=np.float64)
        n_cols = retrieved.shape[1]
        out[:, 0, :n_cols], out[:, 1, :n_cols] = retrieved, hits
        out[:, 0, n_cols:] = retrieved[:, -1:]
        out[:, 1, n_cols:] = hits[:, -1:]
        out[:, 2, :] = chunk.n_relevant[:, None]
        return out


@dataclass(frozen=True)
class _PrecisionCurve(Metric):
    """``[n_rows, len(ks)]`` precision at each cut-off of ``ks``."""

    ks: tuple[int, ...]

    name = "precision-curve"

    def depth(self, n_database: int) -> int:
        return min(max(self.ks), n_database)

    def compute(self, chunk: _Chunk) -> np.ndarray:
        depth = self.depth(chunk.n_database)
        hits = np.cumsum(chunk.relevant_ranked[:, :depth], axis=1, dtype=np.int64)
        ks = np.minimum(np.asarray(self.ks), depth)
        return hits[:, ks - 1] / ks


_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Metric]], ...] = (
    (re.compile(r"map(?:@(all|\d+))?(?::(retrieved|database))?"),
     lambda m: MAP(None if m[1] in (None, "all") else int(m[1]), m[2] or "retrieved")),
    (re.compile(r"(?:p|precision)@r(?:<=)?(\d+)"), lambda m: PrecisionAtRadius(int(m[1]))),
    (re.compile(r"(?:r|recall)@r(?:<=)?(\d+)"), lambda m: RecallAtRadius(int(m[1]))),
    (re.compile(r"(?:p|precision)@(\d+)"), lambda m: PrecisionAtK(int(m[1]))),
    (re.compile(r"acg@(\d+)"), lambda m: ACG(int(m[1]))),
    (re.compile(r"dcg@(\d+)"), lambda m: DCG(int(m[1]))),
    (re.compile(r"ndcg@(\d+)"), lambda m: NDCG(int(m[1]))),
    (re.compile(r"mahp@(\d+)(?::(mean|trapezoid))?"), lambda m: MAHP(int(m[1]), m[2] or "mean")),
)


def parse_metric(spec: str | Metric) -> Metric:
    """A metric from its name (case-insensitive), or the metric itself.

    Names: ``mAP``, ``mAP@all``, ``mAP@K``, ``mAP@K:database``; ``P@r<=2`` (or ``P@r2``,
    ``precision@r2``); ``R@r<=2``; ``P@K``; ``ACG@k``, ``DCG@k``, ``NDCG@k``; ``mAHP@k``,
    ``mAHP@k:trapezoid``. Each metric's ``name`` parses back to an equal metric.

    :raises MetricError: for an unknown name.
    """
    if isinstance(spec, Metric):
        return spec
    if not isinstance(spec, str):
        raise MetricError(f"a metric must be a name or a Metric, got {type(spec).__name__}")
    text = spec.strip().lower().replace(" ", "")
    for pattern, build in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return build(match)
    raise MetricError(
        f"unknown metric {spec!r}; expected e.g. 'mAP@all', 'mAP@1000', 'P@r<=2', 'R@r<=2', "
        "'P@100', 'ACG@20', 'DCG@20', 'NDCG@20' or 'mAHP@250'"
    )


# ----------------------------------------------------------------------------------------------
# the driver


def _run(
    metrics: Sequence[Metric],
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    relevance: RelevanceKind | None,
    min_grade: int | None,
    chunk_bytes: int,
    n_jobs: int,
) -> list[np.ndarray]:
    """Per-query values of every metric, ranking each query chunk once for all of them."""
    q_bits, d_bits = as_bits_pair(query_codes, db_codes, names=("query_codes", "db_codes"))
    rel = Relevance(query_labels, db_labels, kind=relevance, min_grade=min_grade)
    if rel.n_query != q_bits.shape[0]:
        raise MetricError(f"query_labels have {rel.n_query} rows but query_codes have {q_bits.shape[0]}")
    if rel.n_database != d_bits.shape[0]:
        raise MetricError(f"db_labels have {rel.n_database} rows but db_codes have {d_bits.shape[0]}")
    check_count(n_jobs, "n_jobs", 1, MetricError)
    check_count(chunk_bytes, "chunk_bytes", 1, MetricError)
    n_q, n_db, n_bits = q_bits.shape[0], d_bits.shape[0], q_bits.shape[1]
    depth = max((m.depth(n_db) for m in metrics), default=0)
    # distances (1 byte) + relevance masks; a ranking adds ids (8) and gathered labels (<= 8)
    rows = chunk_rows(n_db, 4 + (20 if depth else 0), chunk_bytes)
    qw, dw = pack_words(q_bits), pack_words(d_bits)
    dtype = distance_dtype(n_bits)
    slices = [slice(s, min(s + rows, n_q)) for s in range(0, n_q, rows)]

    def work(sl: slice) -> list[np.ndarray]:
        chunk = _Chunk(hamming_words(qw[sl], dw, dtype=dtype), sl, rel, depth)
        return [m.compute(chunk) for m in metrics]

    if n_jobs == 1 or len(slices) == 1:
        parts = [work(sl) for sl in slices]
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            parts = list(pool.map(work, slices))
    return [np.concatenate([p[i] for p in parts]) for i in range(len(metrics))]


def _mean(values: np.ndarray) -> float:
    return float(values.mean())


def evaluate(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    metrics: Sequence[str | Metric] = DEFAULT_METRICS,
    *,
    relevance: RelevanceKind | None = None,
    min_grade: int | None = None,
    per_query: bool = False,
    chunk_bytes: int = METRIC_CHUNK_BYTES,
    n_jobs: int = 1,
) -> dict[str, float] | dict[str, np.ndarray]:
    """Evaluate several metrics on one retrieval, ranking the database once per query.

    Example, for a bank split: ``evaluate(codes[q], codes[db], bank.labels[q, 1],
    bank.labels[db, 1], ["mAP@all", "P@r<=2"])``, or with ``bank.labels[q]``,
    ``bank.labels[db]`` and ``relevance="hierarchy"`` for the graded metrics.

    :param query_codes: ``[Nq, n_bits]`` query codes (0/1, ±1 or bool).
    :param db_codes: ``[Nd, n_bits]`` database codes.
    :param query_labels: query labels in the layout ``relevance`` names.
    :param db_labels: database labels, same layout.
    :param metrics: metric names (see :func:`parse_metric`) or :class:`Metric` objects.
    :param relevance: ``"label"``, ``"multilabel"`` or ``"hierarchy"`` (module docstring).
    :param min_grade: binary relevance threshold (see :class:`Relevance`).
    :param per_query: return per-query ``float64`` arrays instead of means.
    :param chunk_bytes: memory budget of one query chunk.
    :param n_jobs: threads working on query chunks.
    :return: ``{name: value}``, keyed by the names as given (a :class:`Metric` by its ``name``).
    :raises MetricError: for bad labels, metric names or arguments; ``CodeError`` for bad codes.
    """
    if isinstance(metrics, (str, Metric)):
        metrics = [metrics]
    if len(metrics) == 0:
        raise MetricError("metrics is empty")
    parsed = [parse_metric(m) for m in metrics]
    keys = [m if isinstance(m, str) else m.name for m in metrics]
    if len(set(keys)) != len(keys):
        raise MetricError(f"metrics has duplicate names: {keys}")
    values = _run(parsed, query_codes, db_codes, query_labels, db_labels, relevance, min_grade,
                  chunk_bytes, n_jobs)
    if per_query:
        return dict(zip(keys, values))
    return {key: _mean(v) for key, v in zip(keys, values)}


class Options(TypedDict, total=False):
    """Keyword options shared by the single-metric functions (all optional).

    :param relevance: ``"label"``, ``"multilabel"`` or ``"hierarchy"`` (module docstring).
    :param min_grade: binary relevance threshold (see :class:`Relevance`); graded metrics ignore it.
    :param per_query: also return the per-query values, as ``(mean, values)``.
    :param chunk_bytes: memory budget of one query chunk.
    :param n_jobs: threads working on query chunks.
    """

    relevance: RelevanceKind | None
    min_grade: int | None
    per_query: bool
    chunk_bytes: int
    n_jobs: int


def _single(
    metric: Metric,
    codes: tuple[np.ndarray, np.ndarray],
    labels: tuple[np.ndarray, np.ndarray],
    options: Options,
) -> float | tuple[float, np.ndarray]:
    unknown = set(options) - set(Options.__annotations__)
    if unknown:
        raise MetricError(f"unknown option(s) {sorted(unknown)}; expected some of {sorted(Options.__annotations__)}")
    (values,) = _run(
        [metric], *codes, *labels, options.get("relevance"), options.get("min_grade"),
        options.get("chunk_bytes", METRIC_CHUNK_BYTES), options.get("n_jobs", 1),
    )
    return (_mean(values), values) if options.get("per_query", False) else _mean(values)


def mean_average_precision(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    topk: int | None = None,
    normalize: Literal["retrieved", "database"] = "retrieved",
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """mAP@K of a Hamming ranking (``docs/methods.md``, "mAP@K"); ``topk=None`` for mAP@all.

    :param query_codes: ``[Nq, n_bits]`` query codes (0/1, ±1 or bool).
    :param db_codes: ``[Nd, n_bits]`` database codes.
    :param query_labels: query labels in the layout ``relevance`` names (module docstring).
    :param db_labels: database labels, same layout.
    :param topk: cut-off K (clipped to ``Nd``); ``None`` ranks the whole database.
    :param normalize: ``"retrieved"`` (relevant items in the top K) or ``"database"`` (all
        relevant items).
    :param options: ``relevance``, ``min_grade``, ``per_query``, ``chunk_bytes``, ``n_jobs``
        (:class:`Options`).
    :return: the mean over queries, or ``(mean, per-query values)`` with ``per_query=True``.
    """
    return _single(MAP(topk, normalize), (query_codes, db_codes), (query_labels, db_labels), options)


def precision_at_radius(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    radius: int = 2,
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """Precision within Hamming radius ``radius`` (items at distance ``<= radius``); a query that
    retrieves nothing scores 0. Other parameters as in :func:`mean_average_precision`."""
    return _single(PrecisionAtRadius(radius), (query_codes, db_codes), (query_labels, db_labels), options)


def recall_at_radius(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    radius: int = 2,
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """Recall within Hamming radius ``radius``: the fraction of a query's relevant items at
    distance ``<= radius`` (0 without relevant items). Other parameters as in
    :func:`mean_average_precision`."""
    return _single(RecallAtRadius(radius), (query_codes, db_codes), (query_labels, db_labels), options)


def precision_at_k(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int = 100,
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """Precision of the top ``k`` (``k`` clipped to the database size). Other parameters as in
    :func:`mean_average_precision`."""
    return _single(PrecisionAtK(k), (query_codes, db_codes), (query_labels, db_labels), options)


def acg_at_k(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int = 20,
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """``ACG@k = (1/k) Σ_{i≤k} r_i`` with graded relevance (DRLHIH's evaluation, Table 1).
    Other parameters as in :func:`mean_average_precision`."""
    return _single(ACG(k), (query_codes, db_codes), (query_labels, db_labels), options)


def dcg_at_k(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int = 20,
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """``DCG@k = Σ_{i≤k} (2^{r_i} − 1) / log2(1 + i)``. Other parameters as in
    :func:`mean_average_precision`."""
    return _single(DCG(k), (query_codes, db_codes), (query_labels, db_labels), options)


def ndcg_at_k(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int = 20,
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """``NDCG@k``, the ideal DCG taken over the whole database. Other parameters as in
    :func:`mean_average_precision`."""
    return _single(NDCG(k), (query_codes, db_codes), (query_labels, db_labels), options)


def mahp_at_k(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    k: int = 250,
    rule: Literal["mean", "trapezoid"] = "mean",
    **options: Unpack[Options],
) -> float | tuple[float, np.ndarray]:
    """``mAHP@k`` (Deng et al., CVPR 2011; the module docstring gives the exact definition and the
    ``rule`` choice). Other parameters as in :func:`mean_average_precision`."""
    return _single(MAHP(k, rule), (query_codes, db_codes), (query_labels, db_labels), options)


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall of Hamming-radius retrieval at every radius ``0..n_bits``.

    :param radius: ``[n_bits + 1]`` radii.
    :param precision: mean precision within each radius.
    :param recall: mean recall within each radius.
    :param retrieved_fraction: fraction of queries that retrieve at least one item.
    """

    radius: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    retrieved_fraction: np.ndarray


def precision_recall_curve(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    *,
    skip_empty: bool = False,
    relevance: RelevanceKind | None = None,
    min_grade: int | None = None,
    chunk_bytes: int = METRIC_CHUNK_BYTES,
    n_jobs: int = 1,
) -> PRCurve:
    """The usual hashing PR curve: precision and recall within Hamming radius ``ρ`` for ``ρ = 0..n_bits``.

    Both are averaged over queries (macro average) exactly as :func:`precision_at_radius` and
    :func:`recall_at_radius` at each radius: a query that retrieves nothing scores precision 0.
    With ``skip_empty=True`` the precision at a radius averages only the queries that retrieve
    something there (0 if none does), the convention of several public hashing codebases.
    Computed from per-distance histograms, without sorting. Other parameters as in
    :func:`mean_average_precision`.
    """
    n_bits = as_bits_pair(query_codes, db_codes, names=("query_codes", "db_codes"))[0].shape[1]
    (counts,) = _run([_RadiusCounts(n_bits)], query_codes, db_codes, query_labels, db_labels,
                     relevance, min_grade, chunk_bytes, n_jobs)
    retrieved, hits, n_relevant = counts[:, 0], counts[:, 1], counts[:, 2]
    precision = _ratio(hits, retrieved)
    nonempty = retrieved > 0
    if skip_empty:
        mean_precision = _ratio(precision.sum(axis=0), nonempty.sum(axis=0))
    else:
        mean_precision = precision.mean(axis=0)
    return PRCurve(
        radius=np.arange(n_bits + 1),
        precision=mean_precision,
        recall=_ratio(hits, n_relevant).mean(axis=0),
        retrieved_fraction=nonempty.mean(axis=0),
    )


def precision_at_k_curve(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    ks: Sequence[int] | None = None,
    *,
    relevance: RelevanceKind | None = None,
    min_grade: int | None = None,
    chunk_bytes: int = METRIC_CHUNK_BYTES,
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean precision@K for each K of ``ks`` (by default 20 cut-offs spaced geometrically up to
    the database size), from one ranking.

    :return: ``(ks, precision)``, both ``[len(ks)]``; ``ks`` clipped to the database size.
    """
    n_db = np.asarray(db_codes).shape[0] if np.ndim(db_codes) == 2 else 1
    if ks is None:
        ks = np.unique(np.round(np.geomspace(1, max(1, n_db), 20)).astype(int))
    ks_tuple = tuple(check_count(k, "ks", 1, MetricError) for k in ks)
    if not ks_tuple:
        raise MetricError("ks is empty")
    (values,) = _run([_PrecisionCurve(ks_tuple)], query_codes, db_codes, query_labels, db_labels,
                     relevance, min_grade, chunk_bytes, n_jobs)
    return np.minimum(np.asarray(ks_tuple), n_db), values.mean(axis=0)
