"""Hash centers: the per-class target codes of central similarity hashing.

This module implements the hash-center generator of CSQ (Yuan et al., "Central Similarity
Quantization for Efficient Image and Video Retrieval", CVPR 2020, Algorithm 1), which SCIHCGRL
reuses unchanged as its Algorithm 1 and which the ``CentralHash-v0`` environment and the CSQ
baseline both call (``docs/methods.md``, "Hash centres"):

* ``m <= K`` classes, ``K = n_bits``: the first ``m`` rows of a ``K × K`` Hadamard matrix;
* ``K < m <= 2K``: the first ``m`` rows of ``[H; -H]``;
* otherwise: random *balanced* codes (half the bits set), drawn until every pair of centers is at
  least a minimum Hamming distance apart.

Centers are returned as ``uint8`` 0/1 bits (``hashgym.codes`` form "bits"); convert with
:func:`hashgym.codes.to_signs` for the ±1 form the papers' formulas use.

Hadamard matrices
-----------------
Common implementations call ``scipy.linalg.hadamard``, which only knows Sylvester's construction and
therefore fails for code lengths such as 12, 24 or 48. :func:`hadamard` instead combines

* **Sylvester doubling**: ``H_2n = [[H, H], [H, -H]]`` (for powers of two the result equals
  ``scipy.linalg.hadamard``);
* **Paley I** (Paley 1933): order ``q + 1`` for a prime power ``q ≡ 3 (mod 4)``;
* **Paley II** (Paley 1933): order ``2(q + 1)`` for a prime power ``q ≡ 1 (mod 4)``.

Both Paley constructions use the quadratic character of the finite field GF(q); prime powers
``q = p^k`` are handled with polynomial arithmetic modulo an irreducible polynomial. This covers
every order that is a multiple of 4 up to 88; the first order it cannot build is 92 (which needs
Williamson's construction), and such orders raise ``ValueError``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator

import numpy as np

from hashgym.codes import as_bits, hamming, to_signs
from hashgym.errors import CodesError
from hashgym.validation import check_int, is_integer

__all__ = [
    "AUTO_DISTANCE",
    "DEFAULT_MAX_TRIES",
    "CenterError",
    "default_min_distance",
    "hadamard",
    "hadamard_construction",
    "has_hadamard",
    "hash_centers",
    "multilabel_centers",
    "paley_hadamard",
    "tie_break_bits",
]

logger = logging.getLogger(__name__)

#: Default budget of random candidate codes :func:`hash_centers` may draw before giving up.
DEFAULT_MAX_TRIES = 200_000
# Candidates are drawn in fixed-size batches, so results depend only on the seed (and the batch
# size, which is part of the algorithm and must not change without a version note).
_BATCH = 256


#: ``min_distance`` value asking :func:`hash_centers` for the widest distance it can meet.
AUTO_DISTANCE = "auto"


#: This module's name for :class:`~hashgym.errors.CodesError` (an alias).
CenterError = CodesError


# --------------------------------------------------------------------------------------------
# Finite fields GF(p^k), just enough for the quadratic character used by Paley's constructions.
# Elements are the integers 0 .. q-1; the base-p digits of an element are the coefficients of its
# polynomial (digit i = coefficient of x^i).
# --------------------------------------------------------------------------------------------


def _prime_power(q: int) -> tuple[int, int] | None:
    """``(p, k)`` with ``q = p^k`` and ``p`` prime, or ``None`` if ``q`` is not a prime power."""
    if q < 2:
        return None
    p = next((d for d in range(2, math.isqrt(q) + 1) if q % d == 0), q)
    k, rest = 0, q
    while rest % p == 0:
        rest //= p
        k += 1
    return (p, k) if rest == 1 else None


def _poly_rem(a: list[int], b: list[int], p: int) -> list[int]:
    """Remainder of ``a`` modulo the monic ``b`` over GF(p); coefficients low → high."""
    a = list(a)
    db = len(b) - 1
    for d in range(len(a) - 1, db - 1, -1):
        c = a[d] % p
        if c:
            for i in range(db + 1):
                a[d - db + i] = (a[d - db + i] - c * b[i]) % p
    return [x % p for x in a[:db]]


def _monic_polys(degree: int, p: int) -> Iterator[list[int]]:
    """All monic polynomials of ``degree`` over GF(p), in increasing order of their lower digits."""
    for low in range(p**degree):
        yield [(low // p**i) % p for i in range(degree)] + [1]


@functools.cache
def _irreducible(p: int, k: int) -> tuple[int, ...]:
    """The first monic irreducible polynomial of degree ``k`` over GF(p) (deterministic).

    Irreducibility is checked by trial division by every monic polynomial of degree ``<= k / 2``.
    """
    for f in _monic_polys(k, p):
        if f[0] == 0:
            continue  # divisible by x
        if all(
            any(_poly_rem(f, g, p)) for d in range(1, k // 2 + 1) for g in _monic_polys(d, p)
        ):
            return tuple(f)
    # Unreachable: irreducible polynomials of every degree exist over every prime field.
    raise AssertionError(f"no irreducible polynomial of degree {k} over GF({p})")


def _quadratic_character(p: int, k: int) -> np.ndarray:
    """``chi[x]`` for each ``x`` in GF(p^k): 0 at 0, +1 on nonzero squares, -1 otherwise."""
    q = p**k
    digits = (np.arange(q)[:, None] // p ** np.arange(k)[None, :]) % p  # [q, k]
    if k == 1:
        sq = digits[:, 0] * digits[:, 0] % p
    else:
        f = np.array(_irreducible(p, k), dtype=np.int64)
        prod = np.zeros((q, 2 * k - 1), dtype=np.int64)
        for i in range(k):
            for j in range(k):
                prod[:, i + j] += digits[:, i] * digits[:, j]
        prod %= p
        for d in range(2 * k - 2, k - 1, -1):  # x^d = x^(d-k) * x^k ≡ -x^(d-k) * (f - x^k)
            c = prod[:, d].copy()
            prod[:, d - k : d] -= c[:, None] * f[None, :k]
            prod[:, d] = 0
            prod %= p
        sq = prod[:, :k] @ (p ** np.arange(k))
    chi = -np.ones(q, dtype=np.int8)
    chi[sq] = 1
    chi[0] = 0
    return chi


def _field_difference(p: int, k: int) -> np.ndarray:
    """``[q, q]`` table of the element index of ``a - b`` in GF(p^k)."""
    q = p**k
    elems = np.arange(q)
    out = np.zeros((q, q), dtype=np.int64)
    for i in range(k):
        digit = (elems // p**i) % p
        out += ((digit[:, None] - digit[None, :]) % p) * p**i
    return out


def _jacobsthal(q: int) -> np.ndarray:
    """The Jacobsthal matrix ``Q[a, b] = chi(a - b)`` of GF(q), ``q`` an odd prime power."""
    pk = _prime_power(q)
    if pk is None or pk[0] == 2:
        raise CenterError(f"Paley constructions need an odd prime power q, got q={q}")
    return _quadratic_character(*pk)[_field_difference(*pk)]


def _normalise(h: np.ndarray) -> np.ndarray:
    """Negate rows and columns so that the first row and the first column are all +1."""
    h = h * h[:, :1]
    return (h * h[:1, :]).astype(np.int8)


def paley_hadamard(q: int) -> np.ndarray:
    """A normalised Hadamard matrix from Paley's constructions over GF(q) (Paley 1933).

    * ``q ≡ 3 (mod 4)`` — **Paley I**, order ``q + 1``: ``H = I + S`` with the skew conference
      matrix ``S = [[0, 1ᵀ], [-1, Q]]``;
    * ``q ≡ 1 (mod 4)`` — **Paley II**, order ``2(q + 1)``: from the symmetric conference matrix
      ``C = [[0, 1ᵀ], [1, Q]]``, every 0 becomes ``[[1, -1], [-1, -1]]`` and every ±1 becomes
      ``±[[1, 1], [1, -1]]``.

    ``Q`` is the Jacobsthal matrix ``Q[a, b] = chi(a - b)`` of the quadratic character of GF(q).
    The result is normalised (first row and column all +1).

    :param q: an odd prime power (prime, or ``p^k`` with ``p`` an odd prime).
    :raises CenterError: if ``q`` is not an odd prime power.
    """
    q = check_int(q, "q", 3, CenterError)
    jac = _jacobsthal(q).astype(np.int64)
    n = q + 1
    core = np.zeros((n, n), dtype=np.int64)
    core[1:, 1:] = jac
    core[0, 1:] = 1
    if q % 4 == 3:
        core[1:, 0] = -1
        return _normalise(core + np.eye(n, dtype=np.int64))
    core[1:, 0] = 1
    zero_block = np.array([[1, -1], [-1, -1]], dtype=np.int64)
    sign_block = np.array([[1, 1], [1, -1]], dtype=np.int64)
    return _normalise(np.kron(core, sign_block) + np.kron(np.eye(n, dtype=np.int64), zero_block))


# --------------------------------------------------------------------------------------------
# Hadamard matrices of any supported order.
# --------------------------------------------------------------------------------------------

_SUPPORTED_FORMS = (
    "1, 2, and 2^a * m with m = q + 1 for a prime power q ≡ 3 (mod 4) (Paley I) or "
    "m = 2(q + 1) for a prime power q ≡ 1 (mod 4) (Paley II)"
)


def _recipe(n: int) -> tuple[str, int, int] | None:
    """``(kind, q, doublings)`` building order ``n``, with the smallest base order; else ``None``.

    ``kind`` is ``"sylvester"`` (base ``[[1]]``, ``q = 0``), ``"paley1"`` or ``"paley2"``.
    """
    if n < 1:
        return None
    a_max = (n & -n).bit_length() - 1  # the power of two dividing n
    for a in range(a_max, -1, -1):
        m = n >> a
        if m == 1:
            return ("sylvester", 0, a)
        pk = _prime_power(m - 1)
        if pk is not None and (m - 1) % 4 == 3:
            return ("paley1", m - 1, a)
        if m % 2 == 0:
            pk = _prime_power(m // 2 - 1)
            if pk is not None and (m // 2 - 1) % 4 == 1:
                return ("paley2", m // 2 - 1, a)
    return None


def has_hadamard(n: int) -> bool:
    """Whether :func:`hadamard` can build a Hadamard matrix of order ``n``."""
    return is_integer(n) and _recipe(int(n)) is not None


def hadamard_construction(n: int) -> str:
    """How :func:`hadamard` builds order ``n``, e.g. ``"Paley I (q=11) × 2^1"`` for 24.

    :raises CenterError: if no construction exists (see :func:`hadamard`).
    """
    kind, q, a = _checked_recipe(n)
    if kind == "sylvester":
        return f"Sylvester 2^{a}"
    base = f"Paley I (q={q})" if kind == "paley1" else f"Paley II (q={q})"
    return base + (f" × 2^{a}" if a else "")


def _checked_recipe(n: int) -> tuple[str, int, int]:
    n = check_int(n, "n", 1, CenterError)
    recipe = _recipe(n)
    if recipe is not None:
        return recipe
    if n > 2 and n % 4:
        raise CenterError(
            f"no Hadamard matrix of order n={n} exists (orders above 2 are multiples of 4); "
            f"supported orders are {_SUPPORTED_FORMS}"
        )
    raise CenterError(
        f"no Hadamard construction implemented for order n={n}; supported orders are "
        f"{_SUPPORTED_FORMS}"
    )


@functools.lru_cache(maxsize=32)
def _hadamard_cached(n: int) -> np.ndarray:
    kind, q, a = _checked_recipe(n)
    h = np.ones((1, 1), dtype=np.int8) if kind == "sylvester" else paley_hadamard(q)
    for _ in range(a):
        h = np.block([[h, h], [h, -h]])
    h.setflags(write=False)
    return h


def hadamard(n: int) -> np.ndarray:
    """An ``n × n`` Hadamard matrix: ±1 ``int8`` entries with ``H Hᵀ = n I``.

    Deterministic. ``n`` is written as ``2^a * m`` with the smallest base order ``m`` that has a
    construction: ``m = 1`` (Sylvester; identical to ``scipy.linalg.hadamard`` for powers of two),
    ``m = q + 1`` with ``q ≡ 3 (mod 4)`` (Paley I) or ``m = 2(q + 1)`` with ``q ≡ 1 (mod 4)``
    (Paley II), ``q`` a prime power (Paley 1933; see :func:`paley_hadamard`); the base is then
    doubled ``a`` times with ``H_2n = [[H, H], [H, -H]]``. Paley bases are normalised (first row
    and column all +1), so every returned matrix has an all-ones first row. Any two rows differ in
    exactly ``n / 2`` positions (``n >= 2``).

    These forms cover every multiple of 4 below 92. Orders such as 92, 116 or 156 need other
    constructions (Williamson, ...) that are not implemented.

    :param n: the order, a positive integer.
    :raises CenterError: naming ``n`` and the supported forms, for orders with no
        construction (including every ``n > 2`` that is not a multiple of 4).
    """
    return _hadamard_cached(check_int(n, "n", 1, CenterError)).copy()


# --------------------------------------------------------------------------------------------
# Hash centers (CSQ Algorithm 1 = SCIHCGRL Algorithm 1).
# --------------------------------------------------------------------------------------------


def default_min_distance(n_bits: int) -> int:
    """Default minimum pairwise Hamming distance of random centers: ``n_bits // 4 + 1``.

    CSQ's reference code accepts a random center set when its minimum pairwise distance exceeds
    ``K / 4``; this is the same rule as an integer bound.

    :param n_bits: the code length ``K``.
    """
    return check_int(n_bits, "n_bits", 1, CenterError) // 4 + 1


def _feasibility_error(n_classes: int, n_bits: int, min_distance: int) -> str | None:
    """Why no set of balanced codes can satisfy the constraint, or ``None`` if bounds allow one."""
    weight = n_bits // 2
    if min_distance > n_bits:
        return f"min_distance={min_distance} exceeds n_bits={n_bits}"
    if min_distance == 0:
        return None
    if n_classes > math.comb(n_bits, weight):
        return (f"there are only {math.comb(n_bits, weight)} distinct balanced codes of "
                f"{n_bits} bits")
    d_even = min_distance + (min_distance % 2)  # balanced codes are an even distance apart
    if d_even > n_bits:
        return (f"balanced codes are an even distance apart, so min_distance={min_distance} "
                f"requires {d_even} > n_bits={n_bits}")
    if 2 * d_even > n_bits:
        plotkin = 2 * (d_even // (2 * d_even - n_bits))
        if n_classes > plotkin:
            return (f"the Plotkin bound allows at most {plotkin} codes of {n_bits} bits at "
                    f"distance >= {d_even}")
    return None


def _random_balanced(rng: np.random.Generator, count: int, n_bits: int) -> np.ndarray:
    """``[count, n_bits]`` uint8 codes with exactly ``n_bits // 2`` ones at random positions."""
    ranks = np.argsort(rng.random((count, n_bits)), axis=1).argsort(axis=1)
    return (ranks < n_bits // 2).astype(np.uint8)


def _random_centers(
    n_classes: int, n_bits: int, seed: int, min_distance: int, max_tries: int
) -> np.ndarray:
    """Greedy rejection sampling of balanced codes at pairwise distance ``>= min_distance``."""
    problem = _feasibility_error(n_classes, n_bits, min_distance)
    if problem is not None:
        raise CenterError(
            f"cannot build n_classes={n_classes} hash centers of n_bits={n_bits} with "
            f"min_distance={min_distance}: {problem}"
        )
    rng = np.random.default_rng(seed)
    out = np.empty((n_classes, n_bits), dtype=np.uint8)
    count = drawn = 0
    while count < n_classes:
        if drawn >= max_tries:
            raise CenterError(
                f"found only {count} of n_classes={n_classes} balanced hash centers of "
                f"n_bits={n_bits} at pairwise distance >= min_distance={min_distance} within "
                f"max_tries={max_tries} random draws; lower min_distance (or pass "
                f"{AUTO_DISTANCE!r}), raise max_tries or use more bits"
            )
        cand = _random_balanced(rng, _BATCH, n_bits)[: max_tries - drawn]
        drawn += cand.shape[0]
        ok = np.ones(cand.shape[0], dtype=bool)
        if count:
            ok = hamming(cand, out[:count]).min(axis=1) >= min_distance
        within = hamming(cand, cand)
        chosen: list[int] = []
        for i in np.flatnonzero(ok):
            if chosen and within[i, chosen].min() < min_distance:
                continue
            chosen.append(int(i))
            if count + len(chosen) == n_classes:
                break
        out[count : count + len(chosen)] = cand[chosen]
        count += len(chosen)
    logger.debug("drew %d candidates for %d random hash centers of %d bits",
                 drawn, n_classes, n_bits)
    return out


def _widest_centers(n_classes: int, n_bits: int, seed: int, mode: str,
                    max_tries: int) -> np.ndarray:
    """:func:`hash_centers` with ``min_distance="auto"``: the default, else the widest even
    distance below it that a set of ``n_classes`` centers meets."""
    if mode != AUTO_DISTANCE:
        raise CenterError(f"min_distance must be an integer, None or {AUTO_DISTANCE!r}, "
                          f"got {mode!r}")
    default = default_min_distance(n_bits)
    tries = [default, *range(default + default % 2 - 2, 1, -2)]
    for distance in tries:
        try:
            centers = hash_centers(n_classes, n_bits, seed, distance, max_tries)
        except CenterError as error:
            failure = error
            continue
        if distance != default:
            logger.warning("hash_centers(%d, %d, min_distance='auto'): no set at the default "
                           "distance %d; the centers are at least %d apart", n_classes, n_bits,
                           default, distance)
        return centers
    raise CenterError(f"min_distance='auto' found no set of n_classes={n_classes} centers of "
                      f"n_bits={n_bits} at any distance from {default} down to 2: {failure}")


def hash_centers(
    n_classes: int,
    n_bits: int,
    seed: int = 0,
    min_distance: int | str | None = None,
    max_tries: int = DEFAULT_MAX_TRIES,
) -> np.ndarray:
    """Hash centers for ``n_classes`` classes: ``[n_classes, n_bits]`` ``uint8`` 0/1 bits.

    CSQ Algorithm 1 (Yuan et al., CVPR 2020), reused as SCIHCGRL Algorithm 1, with
    ``m = n_classes``, ``K = n_bits`` and ``H = hadamard(K)``:

    * ``m <= K``: row ``i`` of the result is row ``i`` of ``H`` (the first ``m`` rows, so row 0
      is the all-ones code); any two centers are exactly ``K / 2`` apart.
    * ``K < m <= 2K``: the first ``m`` rows of ``[H; -H]``; center ``K + i`` is the complement of
      center ``i`` (distance ``K``), every other pair is ``K / 2`` apart.
    * otherwise, and also whenever no Hadamard matrix of order ``K`` exists (odd ``K``, or orders
      such as 92; see :func:`hadamard`) or ``min_distance > K / 2`` asks for more than the
      Hadamard rows give: random **balanced** codes with exactly ``K // 2`` ones (floor for odd
      ``K``). Candidates are drawn from ``numpy.random.default_rng(seed)`` and accepted greedily,
      one at a time, when they are at least ``min_distance`` from every center accepted so far.
      Unlike CSQ's reference code, which redraws the whole set a fixed number of times and may
      silently return a set that misses its bound, this either meets the bound or raises. The
      first ``j`` centers do not depend on ``n_classes``, so growing the class count keeps the
      existing centers.

    Distances between balanced codes are always even, so an odd ``min_distance`` acts as the next
    even number; ``min_distance=0`` removes the constraint (random centers may then repeat).

    ``min_distance="auto"`` (:data:`AUTO_DISTANCE`) tries the default first and, when no set
    meeting it is found, each smaller even distance down to 2 (distinct centers), with the same
    seed each time, and logs the distance it settled on. It returns exactly the default's centers
    wherever the default can be met: 100 classes need it at 12 and 16 bits only (the greedy draw
    finds 68 centers of 12 bits at distance 4 and 61 of 16 bits at distance 6), which is what lets
    one suite run CSQ and ``CentralHash-v0`` at every code length.

    :param n_classes: the number of classes ``m`` (>= 1).
    :param n_bits: the code length ``K`` (>= 1).
    :param seed: seed of the random construction (unused for Hadamard rows).
    :param min_distance: minimum pairwise Hamming distance of random centers; default
        :func:`default_min_distance` (``K // 4 + 1``, CSQ's "more than K/4"); ``"auto"`` for
        the widest distance the draw meets, as above.
    :param max_tries: budget of random candidate codes to draw before giving up.
    :raises CenterError: (a ``ValueError``) for bad arguments, or when no center set meeting
        ``min_distance`` is found (by a counting or Plotkin bound, or within ``max_tries`` draws);
        the message names ``n_classes``, ``n_bits`` and ``min_distance``.
    """
    n_classes = check_int(n_classes, "n_classes", 1, CenterError)
    n_bits = check_int(n_bits, "n_bits", 1, CenterError)
    seed = check_int(seed, "seed", 0, CenterError)
    max_tries = check_int(max_tries, "max_tries", 1, CenterError)
    if isinstance(min_distance, str):
        return _widest_centers(n_classes, n_bits, seed, min_distance, max_tries)
    if min_distance is None:
        min_distance = default_min_distance(n_bits)
    else:
        min_distance = check_int(min_distance, "min_distance", 0, CenterError)
    hadamard_distance = n_bits if n_bits == 1 else n_bits // 2
    if n_classes <= 2 * n_bits and has_hadamard(n_bits) and min_distance <= hadamard_distance:
        h = hadamard(n_bits)
        rows = h[:n_classes] if n_classes <= n_bits else np.vstack([h, -h])[:n_classes]
        return as_bits(rows, n_bits=n_bits, name="Hadamard rows")
    if n_classes <= 2 * n_bits:
        reason = ("no Hadamard matrix of this order" if not has_hadamard(n_bits)
                  else f"min_distance={min_distance} > {hadamard_distance}")
        logger.info("hash_centers(%d, %d): random balanced centers (%s)", n_classes, n_bits, reason)
    return _random_centers(n_classes, n_bits, seed, min_distance, max_tries)


# --------------------------------------------------------------------------------------------
# Multi-label centroids (SCIHCGRL Sec. 3, "hash center centroid").
# --------------------------------------------------------------------------------------------


def tie_break_bits(n_bits: int, seed: int = 0) -> np.ndarray:
    """The fixed random ``[n_bits]`` uint8 0/1 vector that fills tied bits of multi-label centers.

    :param n_bits: the code length.
    :param seed: seed of ``numpy.random.default_rng``.
    """
    n_bits = check_int(n_bits, "n_bits", 1, CenterError)
    rng = np.random.default_rng(check_int(seed, "seed", 0, CenterError))
    return rng.integers(0, 2, size=n_bits, dtype=np.uint8)


def multilabel_centers(multi_hot: np.ndarray, centers: np.ndarray, seed: int = 0) -> np.ndarray:
    """Per-image centers for multi-label data: ``[N, n_bits]`` uint8 0/1.

    SCIHCGRL (Sec. 3, after Algorithm 1; as in CSQ) uses the centroid of an image's label centers:
    bit ``j`` of image ``n`` is the sign of ``mean_{c in labels(n)} s_c[j]``, with ``s_c`` the
    ±1 form of center ``c``. A bit whose mean is exactly 0 (a tie) is taken from one fixed random
    vector, :func:`tie_break_bits` ``(n_bits, seed)``, shared by all images. An image with no
    label has a zero mean everywhere, so its center **is** that random vector (a consistent,
    label-independent target; filter such images out beforehand if they should not be trained on).
    A single-label row gets exactly its class center.

    :param multi_hot: ``[N, n_classes]`` 0/1 (or bool) label indicators.
    :param centers: ``[n_classes, n_bits]`` class centers, 0/1 or ±1 (e.g. from
        :func:`hash_centers`).
    :param seed: seed of the tie-breaking vector.
    :raises CenterError: if ``multi_hot`` is not 2-D, has values other than 0/1, or its number of
        columns differs from the number of centers.
    :raises hashgym.codes.CodeError: if ``centers`` are not valid codes.
    """
    signs = to_signs(as_bits(centers, name="centers"), dtype=np.float64)
    mh = np.asarray(multi_hot)
    if mh.ndim != 2:
        raise CenterError(f"multi_hot must be [N, n_classes], got shape {mh.shape}")
    if mh.shape[1] != signs.shape[0]:
        raise CenterError(
            f"multi_hot has {mh.shape[1]} columns but there are {signs.shape[0]} centers"
        )
    if mh.dtype != np.bool_ and not np.isin(mh, (0, 1)).all():
        raise CenterError("multi_hot must contain only 0/1 values")
    total = mh.astype(np.float64) @ signs  # same sign as the mean
    fill = tie_break_bits(signs.shape[1], seed)
    out = np.where(total > 0, 1, np.where(total < 0, 0, fill[None, :])).astype(np.uint8)
    return out
