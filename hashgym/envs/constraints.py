"""Triplet constraints ``(I, I+, I−)`` per hierarchy level, with sibling negatives (DRLHIH §3.2).

At level ``l`` (``docs/methods.md``, "Constraints"):

* the positive ``I+`` is another image with the anchor's level-``l`` label;
* the negative ``I−`` is a *sibling*: the same level-``(l−1)`` label, a different level-``l``
  label (the paper's "palm vs oak"). At level 0, or with ``siblings=False``, it is any image of
  another level-``l`` class. With ``siblings`` a fraction ``f`` in ``(0, 1)``, each triplet's
  negative is a sibling with probability ``f`` and any other class otherwise. When the anchor's
  parent has no other child class among the images, the negative falls back to any other
  level-``l`` class.

Sampling is vectorised: images are sorted by (parent, class), so that a class and its parent are
contiguous blocks, and an image "from the block minus a sub-block" is one random integer shifted
past the sub-block.
"""

from __future__ import annotations

import numpy as np

from hashgym.envs.core import HashEnvError

__all__ = [
    "PAPER_N_CONSTRAINTS",
    "TRIPLETS_PER_IMAGE",
    "ConstraintSampler",
    "default_n_constraints",
    "sibling_fraction",
]

#: Pool size per image of the split, at every level, by default. About one fresh triplet per
#: episode over a run, so the pool cannot be memorised (the paper's 4,000 triplets anchor a
#: twelfth of a 50,000-image split); see ``benchmarks/results/notes/hierhash-learnable.md``.
TRIPLETS_PER_IMAGE = 30

#: DRLHIH §4.2's best CIFAR pools: 4,000 triplets at level 0 and 1,000 below ("(4K, 1K)").
PAPER_N_CONSTRAINTS = (4000, 1000)


def sibling_fraction(siblings: bool | float) -> float:
    """``sibling_negatives`` as the fraction of sibling negatives: ``True`` 1, ``False`` 0.

    :raises HashEnvError: for anything but a bool or a number in ``[0, 1]``.
    """
    if isinstance(siblings, (bool, np.bool_)):
        return float(siblings)
    if isinstance(siblings, (int, float, np.integer, np.floating)) and 0.0 <= float(siblings) <= 1.0:
        return float(siblings)
    raise HashEnvError(
        f"sibling_negatives must be True, False or a fraction in [0, 1], got {siblings!r}"
    )


def default_n_constraints(n_images: int) -> int:
    """The pool size by default: :data:`TRIPLETS_PER_IMAGE` triplets per image of the split.

    The paper's pools are :data:`PAPER_N_CONSTRAINTS` (pass them as ``n_constraints``).
    """
    return TRIPLETS_PER_IMAGE * int(n_images)


def _normalise_rows(weights: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1 (rows of zeros stay zero)."""
    sums = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, sums, out=np.zeros_like(weights), where=sums > 0)


class ConstraintSampler:
    """Draws triplets of positions into ``labels`` (the images of one split).

    :param labels: ``[n, L]`` integer labels of the images, level 0 the coarsest.
    :param level: the level ``l`` the triplets are about.
    :param siblings: draw negatives among siblings (same level-``l−1`` label) when ``l >= 1``:
        ``True`` (always), ``False`` (never) or the fraction of triplets whose negative is a
        sibling.
    :raises HashEnvError: if ``level`` is not a level of ``labels``, no image can be an anchor,
        or ``siblings`` is not a bool or a fraction in ``[0, 1]``.
    """

    def __init__(self, labels: np.ndarray, level: int, siblings: bool | float = True) -> None:
        labels = np.asarray(labels)
        n_levels = labels.shape[1] if labels.ndim == 2 else 0
        if not 0 <= level < n_levels:
            raise HashEnvError(
                f"level={level} is beyond the bank's {n_levels} hierarchy level(s) "
                f"(valid: 0..{n_levels - 1})"
            )
        fraction = sibling_fraction(siblings)
        n = labels.shape[0]
        child = labels[:, level].astype(np.int64)
        parent = (labels[:, level - 1].astype(np.int64) if level >= 1 and fraction > 0
                  else np.zeros(n, dtype=np.int64))
        #: the fraction of triplets drawn with a sibling negative (only between 0 and 1 does
        #: sampling draw the extra coin, so pools of ``True`` / ``False`` are as before)
        self.sibling_fraction = fraction if level >= 1 else 0.0
        order = np.lexsort((child, parent))
        sorted_child, sorted_parent = child[order], parent[order]
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        self.order = order
        self.rank = rank
        self._child, self._parent = child, parent
        self.class_lo, self.class_hi = self._blocks(sorted_parent * (child.max() + 1) + sorted_child, rank)
        self.parent_lo, self.parent_hi = self._blocks(sorted_parent, rank)
        self.n = n
        size = self.class_hi - self.class_lo
        self.valid_anchors = np.flatnonzero((size >= 2) & (size < n))
        if self.valid_anchors.size == 0:
            raise HashEnvError(
                f"no image can anchor a level-{level} triplet: it needs a class with two images "
                f"and a second class"
            )

    @staticmethod
    def _blocks(sorted_keys: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For every image, the [lo, hi) range of its key's block in sorted order."""
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], sorted_keys.size]
        block = np.cumsum(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) - 1
        return starts[block][rank], ends[block][rank]

    def negative_class_weights(self) -> np.ndarray:
        """The constraint distribution of the negative's class: ``[C, C]``, row ``y`` the
        probability that an anchor of class ``y`` gets a negative of each class.

        Classes are the level-``l`` labels in sorted order (``np.unique``). It is exactly what
        :meth:`sample` draws from: a sibling with probability ``sibling_fraction`` (uniform over
        the images of the anchor's parent outside its class, so a sibling class weighs by its
        size), otherwise any image outside the anchor's class; where the parent has no other
        class, always the latter. A row of a class that cannot anchor (the only class) is 0.
        """
        _, first, class_of = np.unique(self._child, return_index=True, return_inverse=True)
        sizes = np.bincount(class_of).astype(np.float64)
        other = np.broadcast_to(sizes, (sizes.size, sizes.size)).copy()
        np.fill_diagonal(other, 0.0)
        sibling = other * (self._parent[first][:, None] == self._parent[first][None, :])
        weights = _normalise_rows(other)
        has_sibling = sibling.sum(axis=1) > 0
        f = self.sibling_fraction
        weights[has_sibling] = (f * _normalise_rows(sibling[has_sibling])
                                + (1.0 - f) * weights[has_sibling])
        return weights

    def sample(self, anchors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A positive and a negative for every anchor (positions); anchors must be valid."""
        anchors = np.asarray(anchors, dtype=np.int64)
        c_lo, c_hi = self.class_lo[anchors], self.class_hi[anchors]
        size = c_hi - c_lo
        own = self.rank[anchors]
        pos_rank = c_lo + rng.integers(0, size - 1)
        pos_rank += pos_rank >= own
        lo, hi = self.parent_lo[anchors], self.parent_hi[anchors]
        no_sibling = (hi - lo) == size
        if 0.0 < self.sibling_fraction < 1.0:
            no_sibling |= rng.random(anchors.size) >= self.sibling_fraction
        lo = np.where(no_sibling, 0, lo)
        hi = np.where(no_sibling, self.n, hi)
        neg_rank = lo + rng.integers(0, (hi - lo) - size)
        neg_rank += np.where(neg_rank >= c_lo, size, 0)
        return self.order[pos_rank], self.order[neg_rank]

    def pool(self, n_constraints: int, rng: np.random.Generator) -> np.ndarray:
        """A pool of ``n_constraints`` triplets ``[n_constraints, 3]`` (anchor, positive, negative)."""
        anchors = self.valid_anchors[rng.integers(0, self.valid_anchors.size, n_constraints)]
        positives, negatives = self.sample(anchors, rng)
        return np.stack([anchors, positives, negatives], axis=1)

    def is_valid_anchor(self, positions: np.ndarray) -> np.ndarray:
        """Whether each position can anchor a triplet (its class has another image and the
        bank another class)."""
        size = self.class_hi[positions] - self.class_lo[positions]
        return (size >= 2) & (size < self.n)
