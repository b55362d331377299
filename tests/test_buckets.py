"""BucketTable: exact radius search against brute force, its key, probes and size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashgym.buckets import MAX_KEY_BITS, BucketTable, default_key_bits, key_masks
from hashgym.codes import pack


def packed(codes: np.ndarray) -> np.ndarray:
    """hashgym.codes.pack, which refuses an empty set, for any number of codes."""
    if len(codes) == 0:
        return np.zeros((0, -(-codes.shape[1] // 8)), dtype=np.uint8)
    return pack(codes.astype(np.uint8))


def brute_hits(db: np.ndarray, q: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    dist = (q[:, None, :] != db[None, :, :]).sum(-1)
    rows, cols = np.nonzero(dist <= radius)
    return sorted(zip(rows.tolist(), dist[rows, cols].tolist(), cols.tolist()))


def table_hits(table: BucketTable, db: np.ndarray, q: np.ndarray, radius: int, **kw) -> list:
    query_of, dist, ids = table.range_search(db, packed(q), radius, **kw)
    assert query_of.dtype == dist.dtype == ids.dtype == np.int64
    return sorted(zip(query_of.tolist(), dist.tolist(), ids.tolist()))


@settings(max_examples=60, deadline=None)
@given(
    n_bits=st.integers(1, 70),
    n_db=st.integers(0, 300),
    n_q=st.integers(1, 6),
    radius=st.integers(0, 5),
    key_bits=st.integers(0, 12),
    seed=st.integers(0, 2**31 - 1),
)
def test_range_search_matches_brute_force(n_bits, n_db, n_q, radius, key_bits, seed):
    rng = np.random.default_rng(seed)
    key_bits = min(key_bits, n_bits)
    # few distinct codes near a few centres, so buckets are uneven and distances tie
    centres = rng.integers(0, 2, (max(1, n_db // 20), n_bits))
    db = centres[rng.integers(0, len(centres), n_db)] ^ (rng.random((n_db, n_bits)) < 0.05)
    q = np.concatenate([db[: n_q // 2], rng.integers(0, 2, (n_q - min(n_q // 2, n_db), n_bits))])
    db_packed = packed(db)
    table = BucketTable(db_packed, n_bits, key_bits=key_bits)
    assert table_hits(table, db_packed, q, radius) == brute_hits(db, q, radius)
    # a small candidate budget splits the queries into several passes: same hits
    assert table_hits(table, db_packed, q, radius, max_candidates=7) == brute_hits(db, q, radius)


def test_key_masks_are_every_mask_within_the_radius():
    for key_bits, radius in [(0, 3), (5, 0), (5, 2), (12, 2), (6, 9)]:
        masks = key_masks(key_bits, radius)
        want = [m for m in range(1 << key_bits) if m.bit_count() <= radius]
        assert sorted(masks.tolist()) == want
        assert len(masks) == sum(math.comb(key_bits, i) for i in range(min(radius, key_bits) + 1))
        assert [m.bit_count() for m in masks.tolist()] == sorted(m.bit_count() for m in want)


def test_default_key_bits():
    assert default_key_bits(0, 64) == 0
    assert default_key_bits(3, 64) == 0
    assert default_key_bits(4, 64) == 1
    assert default_key_bits(1_000_000, 64) == 18  # log2(500,000) = 18.9
    assert default_key_bits(10_000_000, 64) == 22
    assert default_key_bits(10**9, 64) == MAX_KEY_BITS
    assert default_key_bits(10_000_000, 12) == 12


def test_key_avoids_constant_bits():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, (4096, 24), dtype=np.uint8)
    codes[:, :8] = 1  # eight bits every code shares
    codes[:, 8] = rng.random(4096) < 0.02  # and one almost constant
    table = BucketTable(pack(codes), 24, key_bits=9)
    assert not set(table.positions.tolist()) & set(range(9))
    # the keys spread the codes: no bucket holds more than a few times its share
    sizes = np.diff(table.offsets)
    assert sizes.max() <= 4 * 4096 / 2**9


def test_table_is_smaller_than_the_codes_and_pays_off_at_scale():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 2, (1 << 16, 64), dtype=np.uint8)
    packed = pack(codes)
    table = BucketTable(packed, 64)
    assert table.key_bits == 15 and table.ids.dtype == table.offsets.dtype == np.int32
    assert table.nbytes == 4 * (1 << 16) + 4 * ((1 << 15) + 1) + 8 * 15
    assert table.nbytes < 0.8 * packed.nbytes
    assert table.n_probes(2) == 1 + 15 + 105
    assert table.pays_off(4)  # 1,941 probes of 32,768 buckets
    assert not table.pays_off(5)  # 4,944 probes: more than an eighth of the buckets


def test_errors():
    packed = pack(np.zeros((20, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"key_bits must be in \[0, min\(n_bits, 62\)\], got 9"):
        BucketTable(packed, 8, key_bits=9)
    table = BucketTable(packed, 8)
    with pytest.raises(ValueError, match="the table was built on 20 codes, got 19"):
        table.range_search(packed[:19], packed[:1], 1)
