"""Training labels of the baselines, and the one definition of pairwise similarity they use.

A baseline is fitted on features and labels of one of three kinds, named explicitly so that a
2-D integer matrix is never ambiguous:

* ``"single"``: ``[N]`` class ids;
* ``"hierarchy"``: ``[N, L]`` class ids per level, level 0 the coarsest (a :class:`FeatureBank`'s
  ``labels``); single-label methods use the finest level, SHDH uses every level;
* ``"multi_hot"``: ``[N, C]`` 0/1 concepts (NUS-WIDE style).

All three become 0/1 *indicator* matrices, one per level (one-hot for class ids, the multi-hot
matrix itself for concepts). Similarity is then defined once, for numpy arrays and torch tensors
alike (``docs/methods.md``, "Relevance"):

* two images are **similar** at a level when their indicator rows share a 1, i.e. the same class
  (single label) or at least one common concept (multi-label): ``s_ij = [Y_i · Y_j > 0]``;
* the **graded** similarity used by SHDH counts the levels at which they are similar
  (:func:`graded_similarity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

import numpy as np

from hashgym.errors import BenchError

__all__ = [
    "LabelError",
    "LabelKind",
    "LabelSet",
    "as_label_set",
    "graded_similarity",
    "similarity",
    "unique_rows",
]

LabelKind = Literal["single", "hierarchy", "multi_hot"]
LABEL_KINDS: tuple[str, ...] = get_args(LabelKind)
ArrayT = TypeVar("ArrayT")


#: This module's name for :class:`~hashgym.errors.BenchError` (an alias).
LabelError = BenchError


@dataclass(frozen=True)
class LabelSet:
    """Validated training labels as per-level 0/1 indicator matrices.

    :param kind: ``"single"``, ``"hierarchy"`` or ``"multi_hot"``.
    :param indicators: one ``[N, C_l]`` ``uint8`` matrix per level, level 0 the coarsest (a single
        level for ``"single"`` and ``"multi_hot"``).
    """

    kind: LabelKind
    indicators: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return int(self.indicators[0].shape[0])

    @property
    def n_levels(self) -> int:
        """Number of levels (1 unless ``kind == "hierarchy"``)."""
        return len(self.indicators)

    @property
    def finest(self) -> np.ndarray:
        """The finest level's indicators, ``[N, C]`` (what single-label methods train on)."""
        return self.indicators[-1]

    @property
    def n_classes(self) -> int:
        """Classes (or concepts) at the finest level."""
        return int(self.finest.shape[1])

    def take(self, rows: np.ndarray) -> LabelSet:
        """The labels of some rows only."""
        return LabelSet(self.kind, tuple(ind[rows] for ind in self.indicators))


def _check_class_ids(values: np.ndarray, name: str) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.integer):
        if np.issubdtype(values.dtype, np.floating) and np.all(np.isfinite(values)) and np.all(
            values == np.round(values)
        ):
            values = values.astype(np.int64)
        else:
            raise LabelError(f"{name} must be integer class ids, got dtype {values.dtype}")
    if values.size and values.min() < 0:
        raise LabelError(f"{name} must be non-negative class ids, found {int(values.min())}")
    return values.astype(np.int64)


def _one_hot(ids: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((ids.shape[0], n_classes), dtype=np.uint8)
    out[np.arange(ids.shape[0]), ids] = 1
    return out


def as_label_set(
    y: np.ndarray,
    kind: LabelKind | None = None,
    n_rows: int | None = None,
    n_classes: tuple[int, ...] | None = None,
) -> LabelSet:
    """Validate labels and convert them to a :class:`LabelSet`.

    :param y: ``[N]`` class ids, ``[N, L]`` class ids per level, or ``[N, C]`` multi-hot.
    :param kind: the label kind; may be omitted for 1-D ``y`` (then ``"single"``) but is required
        for 2-D ``y``, which could be either a hierarchy or multi-hot labels.
    :param n_rows: the expected number of rows (the number of feature vectors).
    :param n_classes: classes per level, when known (e.g. from a bank's class names); otherwise
        ``max + 1`` per level.
    :raises LabelError: naming the problem.
    """
    y = np.asarray(y)
    if kind is None:
        if y.ndim == 1:
            kind = "single"
        elif y.ndim == 2:
            raise LabelError(
                f"labels of shape {y.shape} are ambiguous: pass label_kind='hierarchy' for class "
                f"ids per level (level 0 coarsest) or label_kind='multi_hot' for 0/1 concepts"
            )
    if kind not in LABEL_KINDS:
        raise LabelError(f"unknown label_kind {kind!r}; expected one of {', '.join(LABEL_KINDS)}")
    expected_ndim = 1 if kind == "single" else 2
    if y.ndim != expected_ndim:
        layout = {"single": "[N]", "hierarchy": "[N, L]", "multi_hot": "[N, C]"}[kind]
        raise LabelError(f"{kind!r} labels must have shape {layout}, got shape {y.shape}")
    if y.shape[0] == 0 or (y.ndim == 2 and y.shape[1] == 0):
        raise LabelError(f"labels are empty (shape {y.shape})")
    if n_rows is not None and y.shape[0] != n_rows:
        raise LabelError(
            f"length mismatch: {n_rows} feature vectors but {y.shape[0]} label rows"
        )
    if kind == "multi_hot":
        if not np.isin(y, (0, 1)).all():
            raise LabelError("multi_hot labels must contain only 0 and 1")
        y = y.astype(np.uint8)
        if not y.any(axis=1).all():
            row = int(np.flatnonzero(~y.any(axis=1))[0])
            raise LabelError(f"multi_hot labels must give each image a concept; row {row} has none")
        return LabelSet("multi_hot", (y,))
    ids = _check_class_ids(y, "labels")
    if ids.ndim == 1:
        ids = ids[:, None]
    sizes = tuple(int(ids[:, level].max()) + 1 for level in range(ids.shape[1]))
    if n_classes is not None:
        if len(n_classes) != ids.shape[1]:
            raise LabelError(f"labels have {ids.shape[1]} levels but {len(n_classes)} class counts")
        for level, (size, known) in enumerate(zip(sizes, n_classes)):
            if size > known:
                raise LabelError(
                    f"labels out of range at level {level}: {size - 1} >= {known} classes"
                )
        sizes = tuple(int(c) for c in n_classes)
    indicators = tuple(_one_hot(ids[:, level], sizes[level]) for level in range(ids.shape[1]))
    return LabelSet(kind, indicators)


def similarity(a: ArrayT, b: ArrayT) -> ArrayT:
    """Binary similarity ``s_ij = [Y_a[i] · Y_b[j] > 0]`` of two indicator matrices, ``[Na, Nb]``.

    Same class for one-hot rows, at least one shared concept for multi-hot rows. Works on float
    numpy arrays and torch tensors alike (returns bool).

    :param a: ``[Na, C]`` 0/1 indicators (float).
    :param b: ``[Nb, C]`` 0/1 indicators (float).
    """
    return (a @ b.T) > 0  # type: ignore[operator, attr-defined]


def graded_similarity(a_levels: Sequence[ArrayT], b_levels: Sequence[ArrayT]) -> ArrayT:
    """Graded similarity: the number of levels at which two images are similar, ``[Na, Nb]``.

    ``r_ij = Σ_l [Y^l_a[i] · Y^l_b[j] > 0]``, from 0 (unrelated) to ``L`` (same leaf class); for
    a hierarchy this is the ``relevance="hierarchy"`` grade of :mod:`hashgym.metrics`. Works on
    numpy arrays (returns ``int64``) and torch tensors (returns ``int64``/``long``) alike.

    :param a_levels: one ``[Na, C_l]`` 0/1 indicator matrix (float) per level.
    :param b_levels: one ``[Nb, C_l]`` 0/1 indicator matrix (float) per level, same levels.
    :raises LabelError: when the two sequences have different numbers of levels, or none.
    """
    if len(a_levels) != len(b_levels) or not len(a_levels):
        raise LabelError(
            f"graded_similarity needs the same positive number of levels on both sides, got "
            f"{len(a_levels)} and {len(b_levels)}"
        )
    grades = similarity(a_levels[0], b_levels[0]) * 1  # bool -> integer, numpy and torch alike
    for a, b in zip(a_levels[1:], b_levels[1:]):
        grades = grades + similarity(a, b) * 1
    return grades


def unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of a label matrix.

    :return: ``(rows [U, C], inverse [N], counts [U])`` with ``matrix == rows[inverse]``.
    """
    rows, inverse, counts = np.unique(matrix, axis=0, return_inverse=True, return_counts=True)
    return rows, inverse.reshape(-1), counts
