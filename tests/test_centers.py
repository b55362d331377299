"""Hash centers: Hadamard constructions, CSQ Algorithm 1 and multi-label centroids."""

from __future__ import annotations

import numpy as np
import pytest

from hashgym.centers import (
    AUTO_DISTANCE,
    CenterError,
    default_min_distance,
    hadamard,
    hadamard_construction,
    has_hadamard,
    hash_centers,
    multilabel_centers,
    paley_hadamard,
    tie_break_bits,
)
from hashgym.codes import CodeError, as_bits, hamming, to_signs

REQUIRED_ORDERS = [1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 60, 64, 72, 80, 96, 128]
# Orders that need GF(p^k) with k > 1: 28 = 27 + 1 (Paley I), 52 = 2(25 + 1), 100 = 2(49 + 1).
PRIME_POWER_ORDERS = [52, 100]
CENTER_BITS = [12, 16, 24, 32, 48, 64]


def _pairwise(codes: np.ndarray) -> np.ndarray:
    """Hamming distances of distinct pairs ``i < j``."""
    d = hamming(codes, codes).astype(int)
    return d[np.triu_indices(len(codes), k=1)]


def _assert_hadamard(h: np.ndarray, n: int) -> None:
    assert h.shape == (n, n) and h.dtype == np.int8
    assert set(np.unique(h)) <= {-1, 1}
    np.testing.assert_array_equal(h.astype(np.int64) @ h.T.astype(np.int64), n * np.eye(n))
    if n >= 2:
        assert (_pairwise(as_bits(h)) == n // 2).all()


# ---------------------------------------------------------------------------------------------
# Hadamard matrices
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", REQUIRED_ORDERS + PRIME_POWER_ORDERS)
def test_hadamard_is_orthogonal_with_rows_half_apart(n: int) -> None:
    h = hadamard(n)
    _assert_hadamard(h, n)
    assert (h[0] == 1).all() and (h[:, 0] == 1).all()  # normalised
    np.testing.assert_array_equal(h, hadamard(n))  # deterministic


def test_hadamard_small_orders_by_hand() -> None:
    np.testing.assert_array_equal(hadamard(1), [[1]])
    np.testing.assert_array_equal(hadamard(2), [[1, 1], [1, -1]])
    np.testing.assert_array_equal(
        hadamard(4), [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]
    )


def test_hadamard_powers_of_two_match_scipy() -> None:
    linalg = pytest.importorskip("scipy.linalg")
    for n in [1, 2, 4, 8, 16, 32, 64, 128]:
        np.testing.assert_array_equal(hadamard(n), linalg.hadamard(n))


def test_hadamard_returns_a_private_copy() -> None:
    h = hadamard(12)
    h[:] = 0
    _assert_hadamard(hadamard(12), 12)


def test_hadamard_constructions() -> None:
    assert hadamard_construction(64) == "Sylvester 2^6"
    assert hadamard_construction(12) == "Paley I (q=11)"
    assert hadamard_construction(24) == "Paley I (q=11) × 2^1"
    assert hadamard_construction(28) == "Paley I (q=27)"
    assert hadamard_construction(52) == "Paley II (q=25)"
    assert hadamard_construction(100) == "Paley II (q=49)"


@pytest.mark.parametrize("q", [3, 5, 7, 9, 11, 13, 17, 19, 25, 27, 49, 81])
def test_paley_prime_and_prime_power_fields(q: int) -> None:
    h = paley_hadamard(q)
    _assert_hadamard(h, q + 1 if q % 4 == 3 else 2 * (q + 1))


def test_supported_orders_cover_multiples_of_four_below_92() -> None:
    supported = [n for n in range(1, 200) if has_hadamard(n)]
    # every claimed order is built; none that cannot exist (4 | n above 2) is claimed
    for n in supported:
        _assert_hadamard(hadamard(n), n)
    assert all(n in (1, 2) or n % 4 == 0 for n in supported)
    for n in sorted(set(range(1, 200)) - set(supported)):
        with pytest.raises(CenterError, match=rf"order n={n}\b"):
            hadamard(n)
    assert [n for n in range(4, 200, 4) if not has_hadamard(n)] == [92, 116, 156, 172, 184, 188]
    assert not any(has_hadamard(n) for n in (0, -4, 3, 6, 10, 30))
    assert not has_hadamard("12")  # type: ignore[arg-type]
    assert not has_hadamard(True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "match"),
    [
        (92, r"order n=92.*Paley I.*Paley II"),
        (116, r"order n=116"),
        (6, r"order n=6 exists \(orders above 2 are multiples of 4\)"),
        (3, r"order n=3 exists"),
        (0, r"n must be >= 1, got 0"),
        (-4, r"n must be >= 1, got -4"),
        (2.0, r"n must be an integer"),
        (True, r"n must be an integer"),
    ],
)
def test_hadamard_bad_orders(n: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        hadamard(n)  # type: ignore[arg-type]
    with pytest.raises(CenterError, match=match):
        hadamard_construction(n)  # type: ignore[arg-type]


@pytest.mark.parametrize(("q", "match"), [(15, "odd prime power q, got q=15"),
                                          (8, "odd prime power q, got q=8"),
                                          (1, "q must be >= 3")])
def test_paley_bad_field(q: int, match: str) -> None:
    with pytest.raises(CenterError, match=match):
        paley_hadamard(q)


# ---------------------------------------------------------------------------------------------
# Hash centers (CSQ Algorithm 1)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", CENTER_BITS)
def test_centers_up_to_k_are_hadamard_rows(k: int) -> None:
    for m in (1, 2, k // 2 + 1, k):
        c = hash_centers(m, k, seed=m)
        assert c.shape == (m, k) and c.dtype == np.uint8
        np.testing.assert_array_equal(c, as_bits(hadamard(k)[:m]))
        assert (_pairwise(c) == k // 2).all()


@pytest.mark.parametrize("k", CENTER_BITS)
def test_centers_up_to_2k_use_negated_rows(k: int) -> None:
    for m in (k + 1, 2 * k):
        c = hash_centers(m, k)
        np.testing.assert_array_equal(c[:k], as_bits(hadamard(k)))
        np.testing.assert_array_equal(c[k:], 1 - c[: m - k])  # complements
        d = hamming(c, c).astype(int)
        for i in range(m):
            for j in range(i + 1, m):
                assert d[i, j] == (k if j == i + k else k // 2)


@pytest.mark.parametrize("k", CENTER_BITS)
def test_centers_beyond_2k_are_balanced_spread_and_seeded(k: int) -> None:
    m = 2 * k + 5
    c = hash_centers(m, k, seed=3)
    assert c.shape == (m, k) and c.dtype == np.uint8
    assert (c.sum(axis=1) == k // 2).all()
    assert _pairwise(c).min() >= default_min_distance(k) == k // 4 + 1
    np.testing.assert_array_equal(c, hash_centers(m, k, seed=3))
    assert not np.array_equal(c, hash_centers(m, k, seed=4))
    # Greedy acceptance: the first centers do not depend on how many are asked for.
    np.testing.assert_array_equal(hash_centers(2 * k + 1, k, seed=3), c[: 2 * k + 1])


def test_explicit_min_distance_is_respected() -> None:
    c = hash_centers(100, 32, seed=1, min_distance=12)
    assert _pairwise(c).min() >= 12
    # An odd bound acts as the next even number: balanced codes are an even distance apart.
    assert (_pairwise(hash_centers(40, 16, min_distance=5)) % 2 == 0).all()


def test_min_distance_above_hadamard_guarantee_falls_back_to_random() -> None:
    c = hash_centers(4, 16, seed=0, min_distance=9)
    assert (c.sum(axis=1) == 8).all()
    assert _pairwise(c).min() >= 10
    # A bound the Hadamard rows meet keeps them.
    np.testing.assert_array_equal(hash_centers(4, 16, min_distance=8), as_bits(hadamard(16)[:4]))


@pytest.mark.parametrize(("k", "m"), [(13, 5), (10, 21), (92, 3), (7, 30)])
def test_centers_without_hadamard_order_are_random_balanced(k: int, m: int) -> None:
    c = hash_centers(m, k, seed=2)
    assert c.shape == (m, k)
    assert (c.sum(axis=1) == k // 2).all()  # floor for odd k
    assert _pairwise(c).min() >= default_min_distance(k)
    np.testing.assert_array_equal(c, hash_centers(m, k, seed=2))


def test_tiny_code_lengths() -> None:
    np.testing.assert_array_equal(hash_centers(2, 1), [[1], [0]])
    np.testing.assert_array_equal(hash_centers(4, 2), [[1, 1], [1, 0], [0, 0], [0, 1]])
    np.testing.assert_array_equal(hash_centers(3, 1, min_distance=0), [[0], [0], [0]])


def test_every_small_case_meets_its_bound_or_raises() -> None:
    for k in range(1, 21):
        for m in sorted({1, 2, k, k + 1, 2 * k, 2 * k + 1, 3 * k}):
            try:
                c = hash_centers(m, k, seed=k, max_tries=2000)
            except CenterError as err:
                assert f"n_classes={m}" in str(err) and f"n_bits={k}" in str(err)
                assert m > 2 * k or not has_hadamard(k)
                continue
            assert c.shape == (m, k) and c.dtype == np.uint8
            if m >= 2:
                bound = k // 2 if has_hadamard(k) and m <= 2 * k else default_min_distance(k)
                assert _pairwise(c).min() >= bound


@pytest.mark.parametrize("k", [24, 32, 48, 64, 20])
def test_auto_distance_is_the_default_wherever_the_default_is_met(k: int) -> None:
    np.testing.assert_array_equal(hash_centers(100, k, seed=3, min_distance=AUTO_DISTANCE),
                                  hash_centers(100, k, seed=3))


@pytest.mark.parametrize(("k", "default", "settled"), [(12, 4, 2), (16, 5, 4)])
def test_auto_distance_steps_down_where_the_default_has_no_set(
        k: int, default: int, settled: int, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(CenterError, match=rf"min_distance={default} .* pass 'auto'"):
        hash_centers(100, k)
    c = hash_centers(100, k, min_distance="auto")
    assert c.shape == (100, k) and (c.sum(axis=1) == k // 2).all()
    assert _pairwise(c).min() >= settled
    np.testing.assert_array_equal(c, hash_centers(100, k, min_distance=settled))
    assert f"no set at the default distance {default}; the centers are at least {settled} apart" \
        in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_classes": 100, "n_bits": 12, "min_distance": "widest"},
         r"min_distance must be an integer, None or 'auto', got 'widest'"),
        ({"n_classes": 71, "n_bits": 8, "min_distance": "auto"},
         (r"'auto' found no set of n_classes=71 centers of n_bits=8 at any distance from 3 "
          r"down to 2: .*only 70 distinct balanced codes")),
        ({"n_classes": 3, "n_bits": 16, "min_distance": 17}, r"n_classes=3.*n_bits=16.*min_distance=17"),
        ({"n_classes": 40, "n_bits": 16, "min_distance": 12}, r"min_distance=12: the Plotkin bound"),
        ({"n_classes": 3, "n_bits": 5, "min_distance": 5}, r"n_bits=5.*min_distance=5.*even distance"),
        ({"n_classes": 9, "n_bits": 4}, r"only 6 distinct balanced codes"),
        (
            {"n_classes": 100, "n_bits": 12, "max_tries": 1000},
            r"found only \d+ of n_classes=100 .* n_bits=12 .* min_distance=4 within max_tries=1000",
        ),
        ({"n_classes": 0, "n_bits": 16}, r"n_classes must be >= 1, got 0"),
        ({"n_classes": 4, "n_bits": 0}, r"n_bits must be >= 1, got 0"),
        ({"n_classes": 4, "n_bits": 16.0}, r"n_bits must be an integer"),
        ({"n_classes": 4, "n_bits": 16, "seed": -1}, r"seed must be >= 0"),
        ({"n_classes": 4, "n_bits": 16, "min_distance": -1}, r"min_distance must be >= 0"),
        ({"n_classes": 40, "n_bits": 16, "max_tries": 0}, r"max_tries must be >= 1"),
    ],
)
def test_hash_centers_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(CenterError, match=match):
        hash_centers(**kwargs)


# ---------------------------------------------------------------------------------------------
# Multi-label centroids
# ---------------------------------------------------------------------------------------------

# Three classes, four bits: +1 +1 -1 -1 / +1 -1 +1 -1 / -1 -1 -1 +1 in sign form.
TINY_CENTERS = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=np.uint8)
TINY_LABELS = np.array(
    [
        [1, 0, 0],  # one label: its center
        [1, 1, 0],  # sums 2, 0, 0, -2: ties at bits 1, 2
        [1, 1, 1],  # sums 1, -1, -1, -1
        [0, 0, 0],  # no label: all ties
        [0, 1, 1],  # sums 0, -2, 0, 0: ties at bits 0, 2, 3
    ],
    dtype=np.uint8,
)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_multilabel_tiny_case_by_hand(seed: int) -> None:
    f = tie_break_bits(4, seed)
    expected = np.array(
        [
            [1, 1, 0, 0],
            [1, f[1], f[2], 0],
            [1, 0, 0, 0],
            [f[0], f[1], f[2], f[3]],
            [f[0], 0, f[2], f[3]],
        ],
        dtype=np.uint8,
    )
    out = multilabel_centers(TINY_LABELS, TINY_CENTERS, seed=seed)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    # ±1 centers and boolean labels give the same result.
    np.testing.assert_array_equal(
        multilabel_centers(TINY_LABELS.astype(bool), to_signs(TINY_CENTERS), seed=seed), expected
    )


def test_multilabel_no_images() -> None:
    out = multilabel_centers(np.zeros((0, 3), dtype=np.uint8), TINY_CENTERS)
    assert out.shape == (0, 4) and out.dtype == np.uint8


def test_tie_break_bits_are_fixed_and_seeded() -> None:
    a = tie_break_bits(64, seed=5)
    assert a.shape == (64,) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    np.testing.assert_array_equal(a, tie_break_bits(64, seed=5))
    assert not np.array_equal(a, tie_break_bits(64, seed=6))


def test_multilabel_matches_brute_force_mean_sign() -> None:
    rng = np.random.default_rng(0)
    centers = hash_centers(20, 12, seed=1)
    multi_hot = (rng.random((60, 20)) < 0.15).astype(np.int64)
    out = multilabel_centers(multi_hot, centers, seed=9)
    fill = tie_break_bits(12, 9)
    signs = to_signs(centers, dtype=np.float64)
    for n in range(60):
        labels = np.flatnonzero(multi_hot[n])
        mean = signs[labels].mean(axis=0) if len(labels) else np.zeros(12)
        want = [1 if v > 0 else 0 if v < 0 else fill[j] for j, v in enumerate(mean)]
        np.testing.assert_array_equal(out[n], want)
    # One-hot rows give back exactly the class centers.
    np.testing.assert_array_equal(multilabel_centers(np.eye(20), centers), centers)


@pytest.mark.parametrize(
    ("multi_hot", "centers", "error", "match"),
    [
        (np.array([1, 0, 0]), TINY_CENTERS, CenterError,
         r"multi_hot must be \[N, n_classes\], got shape \(3,\)"),
        (np.ones((2, 4)), TINY_CENTERS, CenterError,
         r"multi_hot has 4 columns but there are 3 centers"),
        (np.array([[2, 0, 0]]), TINY_CENTERS, CenterError, r"multi_hot must contain only 0/1"),
        (TINY_LABELS, TINY_CENTERS * 3, CodeError, r"centers must contain only 0/1 or ±1"),
    ],
)
def test_multilabel_errors(
    multi_hot: np.ndarray, centers: np.ndarray, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        multilabel_centers(multi_hot, centers)
