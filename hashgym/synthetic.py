"""Seeded synthetic feature banks for tests and quick trials.

* :func:`make_hierarchical_bank`: Gaussian clusters nested in a class tree. Each coarse class
  has a centre; each fine class sits near its parent's centre; images scatter around their fine
  class. Siblings are therefore closer than cousins, as in a real taxonomy.
* :func:`make_multilabel_bank`: each image carries a few concepts and its feature is the sum of
  their prototypes plus noise (a stand-in for NUS-WIDE).
"""

from __future__ import annotations

import numpy as np

from hashgym.bank import DATABASE, QUERY, FeatureBank
from hashgym.errors import DataError

__all__ = ["make_class_images", "make_hierarchical_bank", "make_multilabel_bank"]


def _split(n: int, query_fraction: float, rng: np.random.Generator) -> np.ndarray:
    n_query = min(n - 1, max(1, round(n * query_fraction)))
    split = np.full(n, DATABASE, dtype=np.int8)
    split[rng.permutation(n)[:n_query]] = QUERY
    return split


def make_hierarchical_bank(
    branching: tuple[int, ...] = (4, 3),
    n_per_class: int = 20,
    dim: int = 32,
    query_fraction: float = 0.2,
    separation: float = 4.0,
    noise: float = 1.0,
    seed: int = 0,
    dtype: np.typing.DTypeLike = np.float32,
) -> FeatureBank:
    """A bank whose labels form a tree with ``branching[l]`` children per level-``l-1`` class.

    With the default ``branching=(4, 3)`` there are 4 coarse classes and 12 fine classes.
    Class centres at level ``l`` are offset from their parent's by ``separation / 2**l`` in a
    random direction, so deeper classes are closer together.

    :param branching: classes at level 0, then children per class at each further level.
    :param n_per_class: images per leaf class.
    :param dim: feature dimension.
    :param query_fraction: fraction of images marked as queries (seeded, stratified per leaf).
    :param separation: distance scale between level-0 centres.
    :param noise: standard deviation of the per-image noise.
    :param seed: seed of everything.
    :param dtype: float16 or float32 features.
    """
    if not branching or any(b < 1 for b in branching):
        raise DataError(f"branching must be a non-empty tuple of positive ints, got {branching}")
    if n_per_class < 2:
        raise DataError(f"n_per_class must be at least 2 (one query, one database), got {n_per_class}")
    rng = np.random.default_rng(seed)
    centres = [rng.normal(size=(branching[0], dim)) * separation]
    parents = [np.arange(branching[0])]
    for level, b in enumerate(branching[1:], start=1):
        parent = np.repeat(np.arange(len(centres[-1])), b)
        offsets = rng.normal(size=(len(parent), dim)) * separation / 2**level
        centres.append(centres[-1][parent] + offsets)
        parents.append(parent)
    n_leaf = len(centres[-1])
    leaf = np.repeat(np.arange(n_leaf), n_per_class)
    labels = np.empty((len(leaf), len(branching)), dtype=np.int16)
    labels[:, -1] = leaf
    for level in range(len(branching) - 1, 0, -1):
        labels[:, level - 1] = parents[level][labels[:, level]]
    features = centres[-1][leaf] + rng.normal(size=(len(leaf), dim)) * noise
    split = np.full(len(leaf), DATABASE, dtype=np.int8)
    n_query = min(n_per_class - 1, max(1, round(n_per_class * query_fraction)))
    for c in range(n_leaf):
        rows = np.flatnonzero(leaf == c)
        split[rng.choice(rows, size=n_query, replace=False)] = QUERY
    class_names = tuple(
        tuple(f"l{level}_c{c}" for c in range(len(centres[level]))) for level in range(len(branching))
    )
    return FeatureBank(
        features=features.astype(dtype),
        labels=labels,
        class_names=class_names,
        split=split,
        level_names=tuple(f"level{level}" for level in range(len(branching))),
        meta={"source": "synthetic", "kind": "hierarchical", "branching": list(branching),
              "n_per_class": n_per_class, "dim": dim, "separation": separation, "noise": noise,
              "seed": seed},
    )


def make_multilabel_bank(
    n: int = 400,
    n_concepts: int = 8,
    dim: int = 32,
    max_labels: int = 3,
    query_fraction: float = 0.2,
    noise: float = 0.5,
    seed: int = 0,
    dtype: np.typing.DTypeLike = np.float32,
) -> FeatureBank:
    """A multi-label bank: each image has 1..``max_labels`` concepts; features sum their prototypes.

    The bank has no hierarchy levels (``labels`` is ``[N, 0]``) and ``multi_hot`` is ``[N, C]``.
    """
    if not 1 <= max_labels <= n_concepts:
        raise DataError(f"max_labels must be in 1..{n_concepts}, got {max_labels}")
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(n_concepts, dim)) * 3.0
    multi_hot = np.zeros((n, n_concepts), dtype=np.uint8)
    counts = rng.integers(1, max_labels + 1, size=n)
    for i, k in enumerate(counts):
        multi_hot[i, rng.choice(n_concepts, size=k, replace=False)] = 1
    features = multi_hot @ prototypes + rng.normal(size=(n, dim)) * noise
    return FeatureBank(
        features=features.astype(dtype),
        labels=np.zeros((n, 0), dtype=np.int16),
        class_names=(),
        split=_split(n, query_fraction, rng),
        multi_hot=multi_hot,
        concept_names=tuple(f"concept{c}" for c in range(n_concepts)),
        meta={"source": "synthetic", "kind": "multilabel", "n": n, "n_concepts": n_concepts,
              "dim": dim, "max_labels": max_labels, "noise": noise, "seed": seed},
    )


def make_class_images(labels: np.ndarray, size: int = 8, noise: float = 40.0,
                      seed: int = 0) -> np.ndarray:
    """Synthetic ``uint8 [N, size, size, 3]`` images whose class shows in their pixels: a random
    template per class (its finest label) plus Gaussian noise, for image-observation tests.

    :param labels: ``[N]`` or ``[N, L]`` class ids (the last column is used).
    :param size: the side of the square images.
    :param noise: the noise's standard deviation, in pixel values.
    :param seed: the seed of the templates and the noise.
    """
    rng = np.random.default_rng(seed)
    finest = np.asarray(labels).reshape(len(labels), -1)[:, -1]
    templates = rng.uniform(0, 255, (int(finest.max()) + 1, size, size, 3))
    images = templates[finest] + rng.normal(0, noise, (len(finest), size, size, 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)
