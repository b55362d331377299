"""Codes API: conversions, Hamming distances, the stable ranking, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashgym.codes import (
    CodeError,
    as_bits,
    as_bits_pair,
    check_packed,
    distance_dtype,
    hamming,
    hamming_bits_paired,
    hamming_paired,
    hamming_words,
    pack,
    pack_words,
    packed_to_words,
    to_signs,
    unpack,
)
from hashgym.ranking import rank, stable_order


def brute_hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([[sum(int(x) != int(y) for x, y in zip(ra, rb)) for rb in b] for ra in a])


codes_pair = st.integers(1, 140).flatmap(
    lambda n_bits: st.tuples(
        st.just(n_bits), st.integers(1, 6), st.integers(1, 9), st.integers(0, 2**31 - 1)
    )
)


@settings(max_examples=40, deadline=None)
@given(case=codes_pair)
def test_forms_round_trip_and_distances_match_brute_force(case):
    n_bits, n_a, n_b, seed = case
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, (n_a, n_bits)), rng.integers(0, 2, (n_b, n_bits))
    signs = to_signs(a)
    assert signs.dtype == np.int8 and set(np.unique(signs)) <= {-1, 1}
    np.testing.assert_array_equal(as_bits(signs), a)
    np.testing.assert_array_equal(unpack(pack(a), n_bits), a)
    np.testing.assert_array_equal(packed_to_words(pack(a)), pack_words(a))
    ref = brute_hamming(a, b)
    np.testing.assert_array_equal(hamming(a, b), ref)
    np.testing.assert_array_equal(hamming(signs, 2 * b - 1, chunk_bytes=1), ref)
    np.testing.assert_array_equal(hamming_words(pack_words(a), pack_words(b), dtype=np.uint8), ref)
    np.testing.assert_array_equal(hamming_paired(a, a[::-1]), np.diag(brute_hamming(a, a[::-1])))
    bits = as_bits(a)
    np.testing.assert_array_equal(hamming_bits_paired(bits, bits[::-1]),
                                  np.diag(brute_hamming(a, a[::-1])))
    # ranking: stable by distance, ties in database order
    expected = [sorted(range(n_b), key=lambda j: (ref[i, j], j)) for i in range(n_a)]
    np.testing.assert_array_equal(rank(a, b), expected)
    np.testing.assert_array_equal(rank(a, b, k=3, chunk_bytes=1), np.array(expected)[:, :3])


def test_hand_computed_forms():
    bits = np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.uint8)
    assert pack(bits).tolist() == [[0b10110000, 0b10000000], [0, 0]]
    assert to_signs(bits[0]).tolist() == [[1, -1, 1, 1, -1, -1, -1, -1, 1]]
    assert hamming(bits, bits).tolist() == [[0, 4], [4, 0]]
    assert as_bits(np.array([True, False])).tolist() == [[1, 0]]
    assert as_bits(np.array([[-1.0, 1.0]])).tolist() == [[0, 1]]


def test_stable_order_ties_keep_column_order():
    dist = np.array([[2, 1, 1, 0, 2, 1]], dtype=np.uint8)
    assert stable_order(dist).tolist() == [[3, 1, 2, 5, 0, 4]]
    assert stable_order(dist, 2).tolist() == [[3, 1]]
    assert stable_order(dist, 100).shape == (1, 6)


def test_distance_dtype():
    assert distance_dtype(255) == np.uint8
    assert distance_dtype(256) == np.uint16
    np.testing.assert_array_equal(hamming(np.ones((1, 300)), np.zeros((2, 300))), [[300, 300]])


def test_check_packed_accepts_valid_codes():
    packed = pack(np.eye(4, 12))
    np.testing.assert_array_equal(check_packed(packed, 12), packed)
    rows = check_packed(packed[::2], 12)  # a strided view comes back C-contiguous, same bytes
    assert rows.flags.c_contiguous
    np.testing.assert_array_equal(rows, packed[[0, 2]])
    assert check_packed(np.zeros((0, 2), np.uint8), 12).shape == (0, 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: as_bits(np.array([[0, 1, -1]])), "mix 0/1 and ±1"),
        (lambda: as_bits(np.array([[0, 2]]), name="codes"), "only 0/1 or ±1 values, found 2"),
        (lambda: as_bits(np.zeros((0, 4))), "codes is empty"),
        (lambda: as_bits(np.zeros((3, 0))), "codes is empty"),
        (lambda: as_bits(np.zeros((2, 2, 2))), "must be \\[N, n_bits\\]"),
        (lambda: as_bits(np.array([["a", "b"]])), "must be numeric"),
        (lambda: as_bits(np.zeros((2, 4)), n_bits=5), "have 4 bits, expected 5"),
        (lambda: hamming(np.zeros((1, 4)), np.zeros((1, 5))), "a has 4 bits, b has 5"),
        (lambda: as_bits_pair(np.zeros((1, 4)), np.zeros((1, 5)), names=("q", "db")), "q has 4 bits, db has 5"),
        (lambda: hamming_paired(np.zeros((2, 4)), np.zeros((3, 4))), "same shape"),
        (lambda: unpack(np.zeros((1, 2), np.uint8), 17), "cannot hold exactly 17 bits"),
        (lambda: unpack(np.zeros((1, 2), np.int64), 16), "uint8 array"),
        (lambda: check_packed(np.array([[0xFF, 0xFF]], np.uint8), 12), "non-zero padding bits past bit 12"),
        (lambda: check_packed(np.zeros((1, 3), np.uint8), 12), "\\[N, 2\\] uint8 array for 12-bit codes"),
    ],
)
def test_bad_codes_are_named(call, match):
    with pytest.raises(CodeError, match=match):
        call()


def test_hamming_bits_paired_by_hand_and_on_stacked_rows():
    a = np.array([[1, 0, 1, 1], [0, 0, 0, 0]], np.uint8)
    b = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], np.uint8)
    out = hamming_bits_paired(a, b)
    assert out.dtype == np.int64 and out.tolist() == [2, 4]
    # any leading axes: the distance is over the last one (bool bits too)
    stacked = hamming_bits_paired(np.stack([a, b]).astype(bool), np.stack([b, b]).astype(bool))
    assert stacked.tolist() == [[2, 4], [0, 0]]
    # 255 differing bits do not wrap around in uint8
    assert hamming_bits_paired(np.ones((1, 300), np.uint8), np.zeros((1, 300), np.uint8)) == 300
