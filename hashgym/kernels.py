"""Compiled loops for the metrics, when numba is installed (a runtime dependency).

numpy computes mAP@all by sorting every query's whole database (a radix sort of its
distances) and gathering relevance along that order: a few passes over ``n_query ×
n_database`` pairs, each with a large constant. When relevance is "same class" (single labels,
or the leaf class of a hierarchy), :func:`ap_all_sums` gets the same numbers from two passes in
database order per query, with one small counter per distance value and nothing sorted:

1. a histogram of the distances of all items and of the relevant ones gives, for every
   distance ``b``, how many items (``A_b``) and relevant items (``B_b``) rank before the first
   item at distance ``b``;
2. walking the database in index order, which is the order ties are broken in, the ``n``-th
   item met at distance ``b`` has rank ``A_b + n``, and a relevant one is the ``(B_b + m)``-th
   relevant item (``m`` counting the relevant ones met at ``b``); its precision
   ``(B_b + m) / (A_b + n)`` is stored at its place in rank order.

Average precision is the sum of those precisions, taken in rank order like numpy's path does,
so the values are identical to the last bit (``tests/test_metrics.py`` checks it). The kernel
releases the GIL, so the metrics' ``n_jobs`` threads run it in parallel. Without numba (no wheel
for the platform), or with the environment variable ``HASHGYM_NUMBA=0`` set before hashgym is
imported (to compare the two paths), :data:`AVAILABLE` is ``False`` and the metrics use numpy
alone, with the same values.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["AVAILABLE", "DISABLED", "ap_all_sums"]

#: ``HASHGYM_NUMBA=0``: numba is not imported and numpy does the work, as without numba.
DISABLED = os.environ.get("HASHGYM_NUMBA", "").strip() == "0"

if DISABLED:
    numba = None
else:
    try:
        import numba
    except ImportError:  # no numba wheel for this platform: numpy does the work
        numba = None

#: Whether numba is installed, not disabled, and :func:`ap_all_sums` is compiled.
AVAILABLE = numba is not None


def _ap_all_sums(dist: Any, query_classes: Any, db_classes: Any, n_levels: int) -> Any:
    """Per query, the sum over its relevant items of the precision at each one's rank (mAP@all's
    numerator) and the number of relevant items; see the module docstring.

    :param dist: ``[rows, n_database]`` Hamming distances (``uint8``/``uint16``).
    :param query_classes: ``[rows]`` class ids of the queries.
    :param db_classes: ``[n_database]`` class ids of the database items.
    :param n_levels: one more than the largest distance.
    """
    rows, n_database = dist.shape
    totals = np.zeros(rows, dtype=np.float64)
    counts = np.zeros(rows, dtype=np.int64)
    seen = np.zeros(n_levels, dtype=np.int64)
    seen_relevant = np.zeros(n_levels, dtype=np.int64)
    precisions = np.empty(n_database, dtype=np.float64)
    for r in range(rows):
        c = query_classes[r]
        seen[:] = 0
        seen_relevant[:] = 0
        for i in range(n_database):
            b = dist[r, i]
            seen[b] += 1
            if db_classes[i] == c:
                seen_relevant[b] += 1
        before = 0
        before_relevant = 0
        for b in range(n_levels):  # counts become the ranks just before each distance
            n, n_rel = seen[b], seen_relevant[b]
            seen[b] = before
            seen_relevant[b] = before_relevant
            before += n
            before_relevant += n_rel
        for i in range(n_database):
            b = dist[r, i]
            seen[b] += 1
            if db_classes[i] == c:
                seen_relevant[b] += 1
                precisions[seen_relevant[b] - 1] = seen_relevant[b] / seen[b]
        total = 0.0
        for j in range(before_relevant):
            total += precisions[j]
        totals[r] = total
        counts[r] = before_relevant
    return totals, counts


def _compile(func: Any) -> Any:
    """``func`` compiled by numba, its machine code cached on disk when numba finds a writable
    folder for it (beside this file, ``$NUMBA_CACHE_DIR`` or the user's cache folder). A
    read-only install run without a writable ``$HOME`` has none: numba then refuses
    ``cache=True`` at import, so the function is compiled without a cache instead (once per
    process, at its first call)."""
    try:
        return numba.njit(cache=True, nogil=True)(func)
    except RuntimeError:  # "cannot cache function …: no locator available"
        return numba.njit(nogil=True)(func)


ap_all_sums = _compile(_ap_all_sums) if AVAILABLE else None
"""The compiled :func:`_ap_all_sums`, or ``None`` without numba."""
