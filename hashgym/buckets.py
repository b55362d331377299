"""Exact Hamming radius search through one table of bucketed ids: the radius index of :mod:`hashgym.index`.

:class:`BucketTable` sorts the ids of ``N`` packed codes by a ``b``-bit **key**, the code's
values at ``b`` chosen bit positions, and keeps only that order (``N`` ids, ``int32`` below
2^31 codes) and the ``2^b + 1`` bucket offsets; the codes themselves stay where they are. A
query's hits within radius ``r`` have keys within Hamming distance ``r`` of the query's key
(the key is a subset of the bits, so it can only lose distance), so probing the
``sum_{i<=r} C(b, i)`` buckets whose keys differ from the query's in at most ``r`` positions and
checking each candidate's full distance finds all of them, exactly. This is multi-probe hashing
on a single table; FAISS's ``IndexBinaryMultiHash`` answers the same query with ``r + 1`` hash
maps instead, which costs several times the codes' own memory (``benchmarks/results/bench_scale.txt``).

Memory: 4 bytes of id per code and 4 bytes per bucket offset (8 each from 2^31 codes); for 64-bit
codes and the default ``b`` that is about 0.6-0.75x the packed codes. Work per query: the probes
plus about ``probes * N / 2^b`` candidate distances. :func:`default_key_bits` takes
``b = floor(log2(N / 2))`` (2-4 codes per bucket when the keys are spread, so a radius-2 query at
``N = 10^7`` checks about 500 candidates; a shorter key would save offsets and cost candidates),
at most the code length and 24 bits, and :meth:`BucketTable.pays_off` says when a scan of all
``N`` codes is cheaper.

The key's positions are the ``b`` most balanced bits of the codes (ones closest to half the
codes), so constant or nearly constant bits (padding, bits a hasher never uses) do not pile the
codes into a few buckets. Codes that cluster (the codes of one class share most bits) still make
some buckets large; the search stays exact, only slower.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from hashgym.codes import unpack
from hashgym.errors import CodesError

__all__ = ["MAX_KEY_BITS", "BucketTable", "default_key_bits", "key_masks"]

MAX_KEY_BITS = 24
"""Longest key :func:`default_key_bits` chooses: ``2^24 + 1`` offsets are 64 MiB."""


def default_key_bits(n_codes: int, n_bits: int) -> int:
    """Key length for ``n_codes`` codes of ``n_bits`` bits: ``floor(log2(n_codes / 2))``, within
    ``[0, min(n_bits, MAX_KEY_BITS)]`` (buckets of 2 to 4 codes when the keys are spread)."""
    if n_codes < 4:
        return 0
    return max(0, min(n_bits, MAX_KEY_BITS, math.floor(math.log2(n_codes / 2))))


def key_masks(key_bits: int, radius: int) -> np.ndarray:
    """Every ``key_bits``-bit mask with at most ``radius`` ones, by number of ones then value.

    ``query_key ^ mask`` over these masks are the buckets a radius-``radius`` search probes;
    there are ``sum_{i <= radius} C(key_bits, i)`` of them.
    """
    masks = [0]
    for ones in range(1, min(radius, key_bits) + 1):
        masks.extend(sorted(sum(1 << p for p in combo)
                            for combo in itertools.combinations(range(key_bits), ones)))
    return np.asarray(masks, dtype=np.int64)


def _keys(packed: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The key of each packed code: bit ``positions[j]`` of the code is bit ``j`` of its key."""
    keys = np.zeros(packed.shape[0], dtype=np.int64)
    for j, position in enumerate(positions.tolist()):
        byte, shift = divmod(position, 8)
        bit = (packed[:, byte] >> np.uint8(7 - shift)) & np.uint8(1)  # np.packbits is big-endian
        keys |= bit.astype(np.int64) << j
    return keys


def _balanced_positions(packed: np.ndarray, n_bits: int, key_bits: int, sample: int = 1 << 16) -> np.ndarray:
    """The ``key_bits`` bit positions whose share of ones is closest to 0.5 (ties: lower position),
    measured on an evenly spaced sample of at most ``sample`` codes."""
    if key_bits == 0:
        return np.zeros(0, dtype=np.int64)
    step = max(1, packed.shape[0] // sample)
    bits = unpack(packed[::step], n_bits)
    imbalance = np.abs(bits.mean(axis=0) - 0.5)
    return np.sort(np.argsort(imbalance, kind="stable")[:key_bits]).astype(np.int64)


def _words(packed: np.ndarray) -> np.ndarray:
    """Packed codes viewed as the widest unsigned words that divide their length (no copy where
    the rows are contiguous): one XOR and one popcount per word instead of per byte."""
    n_bytes = packed.shape[1]
    width = next(w for w in (8, 4, 2, 1) if n_bytes % w == 0)
    rows = np.ascontiguousarray(packed)
    return rows.view(f"u{width}") if rows.size else rows.reshape(0, n_bytes // width).astype(f"u{width}")


class BucketTable:
    """The ids of packed codes bucketed by a ``key_bits``-bit key, for exact radius search.

    Build it over a code set, then call :meth:`range_search` with the same codes (the table holds
    no copy of them). A table describes the codes it was built on: rebuild it after adding codes.

    :param packed: ``[N, ceil(n_bits / 8)]`` ``uint8`` codes packed by :func:`hashgym.codes.pack`.
    :param n_bits: the code length.
    :param key_bits: key length; default :func:`default_key_bits` of ``N`` and ``n_bits``.
    """

    def __init__(self, packed: np.ndarray, n_bits: int, key_bits: int | None = None) -> None:
        n = int(packed.shape[0])
        self.n_codes, self.n_bits = n, int(n_bits)
        self.key_bits = default_key_bits(n, self.n_bits) if key_bits is None else int(key_bits)
        if not 0 <= self.key_bits <= min(self.n_bits, 62):
            raise CodesError(f"key_bits must be in [0, min(n_bits, 62)], got {self.key_bits}")
        self.positions = _balanced_positions(packed, self.n_bits, self.key_bits)
        keys = _keys(packed, self.positions)
        index_dtype = np.int32 if n < 2**31 else np.int64
        self.offsets = np.zeros((1 << self.key_bits) + 1, dtype=index_dtype)
        np.cumsum(np.bincount(keys, minlength=1 << self.key_bits), out=self.offsets[1:])
        self.ids = np.argsort(keys, kind="stable").astype(index_dtype)

    @property
    def nbytes(self) -> int:
        """Bytes the table holds (ids, offsets and key positions)."""
        return int(self.ids.nbytes + self.offsets.nbytes + self.positions.nbytes)

    def n_probes(self, radius: int) -> int:
        """Buckets a radius-``radius`` search probes per query: ``sum_{i <= radius} C(b, i)``."""
        return sum(math.comb(self.key_bits, i) for i in range(min(radius, self.key_bits) + 1))

    def pays_off(self, radius: int) -> bool:
        """Whether probing is expected to touch under an eighth of the codes a full scan would
        (``probes * N / 2^b < N / 8`` for spread keys); otherwise scan all codes instead."""
        return self.n_probes(radius) * 8 < (1 << self.key_bits)

    def range_search(
        self, packed: np.ndarray, queries: np.ndarray, radius: int, max_candidates: int = 1 << 21
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every code within Hamming distance ``radius`` (inclusive) of each query.

        :param packed: the codes the table was built on (same rows, same order).
        :param queries: ``[Nq, ceil(n_bits / 8)]`` packed query codes.
        :param radius: non-negative int.
        :param max_candidates: candidate distances computed at once (bounds the memory: about
            40 bytes each); a query with more is still done in one piece.
        :return: ``(query_of_hit, distances, ids)``, ``int64`` arrays in no particular order.
        """
        if packed.shape[0] != self.n_codes:
            raise CodesError(f"the table was built on {self.n_codes} codes, got {packed.shape[0]}")
        masks = key_masks(self.key_bits, radius)
        probes = _keys(queries, self.positions)[:, None] ^ masks[None, :]  # [Nq, P]
        starts = self.offsets[probes].astype(np.int64)
        ends = self.offsets[probes + 1].astype(np.int64)
        db_words, q_words = _words(packed), _words(queries)
        per_query = (ends - starts).sum(axis=1)
        hits_q, hits_d, hits_i = [], [], []
        first = 0
        while first < len(queries):
            # as many queries as fit in max_candidates (at least one)
            within = np.searchsorted(np.cumsum(per_query[first:]), max_candidates, side="right")
            last = first + max(1, int(within))
            start, count = starts[first:last].ravel(), (ends - starts)[first:last].ravel()
            total = int(count.sum())
            # the positions start[p], ..., start[p] + count[p] - 1 of every probe p, concatenated
            begin = np.repeat(start - (np.cumsum(count) - count), count)
            rows = begin + np.arange(total, dtype=np.int64)
            ids = self.ids[rows].astype(np.int64)
            query_of = np.repeat(np.arange(first, last, dtype=np.int64), per_query[first:last])
            dist = np.bitwise_count(db_words[ids] ^ q_words[query_of]).sum(axis=1, dtype=np.int64)
            keep = dist <= radius
            hits_q.append(query_of[keep])
            hits_d.append(dist[keep])
            hits_i.append(ids[keep])
            first = last
        if not hits_q:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(hits_q), np.concatenate(hits_d), np.concatenate(hits_i)
