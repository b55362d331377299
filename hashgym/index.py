"""An exact Hamming-distance index over packed binary codes, backed by FAISS or numpy.

:class:`CodeIndex` stores codes packed (``ceil(n_bits / 8)`` bytes each, :func:`hashgym.codes.pack`)
and answers two queries with identical results on both backends:

* ``search(queries, k)``: the ``k`` nearest codes, ordered by (distance, database id);
* ``range_search(queries, radius)``: every code at distance ``<= radius`` (inclusive), in the
  same order.

Database ids are insertion order (0, 1, ...). Ties are always broken by the smaller id, as in
the metrics' ranking (``docs/methods.md``, "Ranking"), so the top ``k`` is unique.

Backends
    ``"faiss"`` (``faiss-cpu``): the codes live once, in an ``IndexBinaryFlat``, which answers
    exact k-NN. FAISS needs a multiple of 8 bits: codes are zero padded, which leaves distances
    unchanged.

    ``"numpy"``: chunked XOR + ``np.bitwise_count`` on 64-bit words and the stable radix ranking
    of :mod:`hashgym.ranking`.

    ``"auto"`` (default) picks ``"faiss"`` when it imports, else ``"numpy"``.

Approximate k-NN (opt-in, FAISS only): ``CodeIndex(n_bits, knn="ivf")`` answers ``search``
through an ``IndexBinaryIVF`` instead of the exhaustive scan: the codes are clustered into
``nlist`` lists (``sqrt(N)`` by default, k-means trained on a seeded sample of 64 codes per
list at the first search after a change) and each query scans the ``nprobe`` nearest lists. Every returned distance is exact
and the order is the same (distance, id); codes in unprobed lists are missed, so the top ``k``
may differ from the exact one (with ``nprobe >= nlist`` the distances are the exact top
``k``'s, though codes tied at the ``k``-th distance may be others than the smallest ids). It holds a second copy of
the codes and 8 bytes of id per code. ``benchmarks/bench_scale.py`` measures its time and its
recall of the exact top 100. Radius search stays exact.

Radius search, on both backends, probes a :class:`hashgym.buckets.BucketTable` (the codes' ids
bucketed by a key of their most balanced bits, built on first use after each change and about
0.6x the packed codes for 64-bit codes) when that touches under an eighth of the codes, and
scans every code otherwise (``IndexBinaryFlat.range_search`` on FAISS; FAISS's radius is strict,
``< r``, so this class passes ``radius + 1``). Both are exact. The table replaced FAISS's
``IndexBinaryMultiHash``, whose ``radius + 1`` hash maps held 10x the codes' memory
(``benchmarks/results/bench_scale.txt``).

File formats, both written atomically, both loaded by :meth:`CodeIndex.load` (which tells them
apart by their first bytes) into either backend:

* ``"npz"`` (``hashgym-codeindex/1``, the default): one ``.npz`` read with ``allow_pickle=False``
  holding ``format`` (str), ``n_bits`` (int64) and ``codes`` (``[N, ceil(n_bits / 8)]`` uint8,
  packed); any code length;
* ``"faiss"``: FAISS's own binary index format, an ``IndexBinaryFlat`` as
  ``faiss.write_index_binary`` writes it, so that FAISS (``faiss.read_index_binary``) and any
  FAISS-based server read the file as it is. That format counts whole bytes, so it holds codes
  of a multiple of 8 bits. Writing and reading it needs ``faiss-cpu``; FAISS's reader parses the
  file (no pickle) and only flat binary indexes are accepted.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hashgym.atomic import atomic_write
from hashgym.buckets import BucketTable
from hashgym.codes import (
    CodeError,
    as_bits,
    check_packed,
    distance_dtype,
    hamming_words,
    pack,
    packed_to_words,
)
from hashgym.errors import CodesError
from hashgym.npyfile import check_declared_sizes
from hashgym.ranking import chunk_rows, stable_order
from hashgym.validation import check_count, check_int, check_memory

__all__ = ["FILE_FORMATS", "FORMAT", "Backend", "CodeIndex", "CodeIndexError",
           "FaissMissingError", "faiss_available"]

logger = logging.getLogger(__name__)

FORMAT = "hashgym-codeindex/1"
#: What :meth:`CodeIndex.save` writes (module docstring).
FILE_FORMATS = ("npz", "faiss")
Backend = Literal["auto", "faiss", "numpy"]
#: The first bytes of FAISS's ``IndexBinaryFlat`` file (its other binary indexes: ``IB..``).
_FAISS_FLAT_MAGIC = b"IBxF"


#: This module's name for :class:`~hashgym.errors.CodesError` (an alias).
CodeIndexError = CodesError


class FaissMissingError(CodeIndexError, ImportError):
    """What was asked needs the faiss-cpu package, which is not installed. Also an
    :class:`ImportError`, so code that catches a missing import keeps working."""


def _import_faiss() -> Any | None:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


#: The header of FAISS's ``IndexBinaryFlat`` file: magic, ``d`` (int32), ``code_size`` (int32),
#: ``ntotal`` (int64), ``is_trained`` (1 byte), ``metric_type`` (int32), then the codes as a
#: vector: its byte count (uint64) and the bytes.
_FAISS_FLAT_HEADER = np.dtype([("magic", "S4"), ("d", "<i4"), ("code_size", "<i4"),
                               ("ntotal", "<i8"), ("is_trained", "u1"), ("metric", "<i4"),
                               ("nbytes", "<u8")])


def _check_faiss_header(data: np.ndarray, source: Path) -> None:
    """Refuse an ``IndexBinaryFlat`` file whose header declares other sizes than the bytes it
    holds, before FAISS allocates them (a 39-byte file may declare 2**39 bytes of codes)."""
    size = _FAISS_FLAT_HEADER.itemsize
    if data.size < size:
        raise CodeIndexError(f"cannot read FAISS index file {source}: it is truncated "
                             f"({data.size} bytes, the header alone is {size})")
    head = data[:size].view(_FAISS_FLAT_HEADER)[0]
    d, code_size, ntotal, nbytes = (int(head["d"]), int(head["code_size"]), int(head["ntotal"]),
                                    int(head["nbytes"]))
    if d < 8 or d % 8 or code_size != d // 8 or ntotal < 0:
        raise CodeIndexError(f"cannot read FAISS index file {source}: its header declares "
                             f"d={d}, code_size={code_size}, ntotal={ntotal}, which do not fit "
                             f"together (code_size must be d / 8): the file is corrupted")
    if nbytes != ntotal * code_size or size + nbytes != data.size:
        raise CodeIndexError(
            f"cannot read FAISS index file {source}: its header declares {ntotal:,} codes of "
            f"{code_size} bytes ({nbytes:,} bytes of codes) but the file holds "
            f"{data.size - size:,} bytes after its header: the file is truncated, corrupted or "
            f"crafted")


def faiss_available() -> bool:
    """Whether ``faiss`` (``faiss-cpu``) can be imported."""
    return _import_faiss() is not None


def _sort_hits(
    query_of_hit: np.ndarray, dist: np.ndarray, ids: np.ndarray, n_queries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Range-search hits in (query, distance, id) order, as FAISS-style ``lims``, distances, ids."""
    order = np.lexsort((ids, dist, query_of_hit))
    lims = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(np.bincount(query_of_hit, minlength=n_queries), out=lims[1:])
    return lims, dist[order].astype(np.int32), ids[order].astype(np.int64)


class CodeIndex:
    """Exact k-NN and radius search in Hamming space over binary codes.

    Example::

        index = CodeIndex(n_bits=48)
        index.add(db_codes)                      # 0/1, ±1 or bool, [N, 48]
        dist, ids = index.search(query_codes, k=100)
        lims, dist, ids = index.range_search(query_codes, radius=2)
        index.save("codes.npz"); index = CodeIndex.load("codes.npz")

    :param n_bits: code length (any positive number; not necessarily a multiple of 8).
    :param backend: ``"auto"``, ``"faiss"`` or ``"numpy"`` (module docstring).
    :param chunk_bytes: memory budget of one query chunk in the numpy backend.
    :param knn: ``"exact"`` (default) or ``"ivf"``: approximate k-NN through FAISS's
        ``IndexBinaryIVF`` (module docstring); exact stays the default because the metrics and
        ``hashgym search`` promise the exact ranking.
    :param nprobe: lists each query scans with ``knn="ivf"`` (16: recall of the exact top 100
        measured in ``benchmarks/results/bench_scale.txt``).
    :param nlist: lists of the IVF (``None``: ``sqrt(N)``, at most ``N / 39`` so that k-means
        has FAISS's minimum of 39 codes per list; more lists scan less per query but train in
        time proportional to lists x sample, which took 337 s at 4 sqrt(N) lists for 10^6
        codes on the project's machine).
    :raises CodeIndexError: for a bad ``n_bits``, ``backend``, ``knn``, ``nprobe`` or ``nlist``.
    :raises FaissMissingError: for ``backend="faiss"`` or ``knn="ivf"`` when faiss cannot be imported.
    """

    def __init__(self, n_bits: int, backend: Backend = "auto", chunk_bytes: int = 1 << 26,
                 knn: Literal["exact", "ivf"] = "exact", nprobe: int = 16,
                 nlist: int | None = None) -> None:
        check_int(n_bits, "n_bits", 1, CodeIndexError)
        if backend not in ("auto", "faiss", "numpy"):
            raise CodeIndexError(f"backend must be 'auto', 'faiss' or 'numpy', got {backend!r}")
        if chunk_bytes <= 0:
            raise CodeIndexError(f"chunk_bytes must be positive, got {chunk_bytes}")
        if knn not in ("exact", "ivf"):
            raise CodeIndexError(f"knn must be 'exact' or 'ivf', got {knn!r}")
        check_count(nprobe, "nprobe", 1, CodeIndexError)
        if nlist is not None:
            check_count(nlist, "nlist", 1, CodeIndexError)
        if knn == "ivf" and backend == "numpy":
            raise CodeIndexError("knn='ivf' is FAISS's IndexBinaryIVF: use backend='faiss' or "
                                 "'auto'")
        faiss = _import_faiss() if backend != "numpy" else None
        if backend == "faiss" and faiss is None:
            raise FaissMissingError("backend='faiss' needs the faiss-cpu package; install it or use backend='numpy'")
        if knn == "ivf" and faiss is None:
            raise FaissMissingError("knn='ivf' needs the faiss-cpu package (FAISS's IndexBinaryIVF)")
        self.knn, self.nprobe, self.nlist = knn, int(nprobe), nlist
        self._ivf: Any = None
        self.n_bits = int(n_bits)
        self.n_bytes = -(-self.n_bits // 8)
        self.backend: Literal["faiss", "numpy"] = "faiss" if faiss is not None else "numpy"
        self.chunk_bytes = int(chunk_bytes)
        self._faiss = faiss
        # numpy keeps the codes in _packed (+ _parts not yet joined); FAISS keeps them in _flat only
        self._parts: list[np.ndarray] = []
        self._packed: np.ndarray = np.zeros((0, self.n_bytes), dtype=np.uint8)
        self._words: np.ndarray | None = None
        self._flat: Any = None
        self._table: BucketTable | None = None
        if faiss is not None:
            self._flat = faiss.IndexBinaryFlat(self.n_bytes * 8)
        logger.debug("CodeIndex(n_bits=%d) uses the %s backend", self.n_bits, self.backend)

    # -- contents --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"CodeIndex(n_bits={self.n_bits}, backend={self.backend!r}, ntotal={self.ntotal})"

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        if self._flat is not None:
            return int(self._flat.ntotal)
        return int(self._packed.shape[0]) + sum(int(p.shape[0]) for p in self._parts)

    @property
    def nbytes(self) -> int:
        """Bytes the index holds: its codes (FAISS's storage, or numpy's packed array and, once a
        search made it, its 64-bit word copy) and the radius table, once a radius search built it."""
        if self._flat is not None:
            held = self.ntotal * int(self._flat.code_size)
        else:
            held = int(self._packed.nbytes) + sum(int(p.nbytes) for p in self._parts)
            held += int(self._words.nbytes) if self._words is not None else 0
        if self._ivf is not None:  # its inverted lists: a code and an int64 id per code
            held += self.ntotal * (int(self._flat.code_size) + 8)
        return held + (self._table.nbytes if self._table is not None else 0)

    @property
    def packed(self) -> np.ndarray:
        """All codes, packed, ``[ntotal, ceil(n_bits / 8)]`` ``uint8``, in id order, read-only
        (a view on numpy; on faiss a copy, made at each call, of FAISS's storage, where the index
        keeps its only copy)."""
        if self._flat is not None:
            view = self._stored().copy()
        else:
            if self._parts:
                self._packed = np.concatenate([self._packed, *self._parts])
                self._parts = []
            view = self._packed.view()
        view.flags.writeable = False
        return view

    def _stored(self) -> np.ndarray:
        """The codes as stored, without a copy: FAISS's own buffer (valid until the next ``add``
        or ``reset``, so never kept past a call) or numpy's array."""
        if self._flat is None:
            return self.packed
        n = self.ntotal
        if n == 0:
            return np.zeros((0, self.n_bytes), dtype=np.uint8)
        flat = self._faiss.rev_swig_ptr(self._flat.xb.data(), n * self._flat.code_size)
        return flat.reshape(n, self._flat.code_size)[:, : self.n_bytes]

    def add(self, codes: np.ndarray) -> None:
        """Append codes (0/1, ±1 or bool, ``[N, n_bits]``); they get the next ids.

        :raises CodeError: for invalid codes or another code length.
        """
        self.add_packed(pack(as_bits(codes, n_bits=self.n_bits, name="codes")))

    def add_packed(self, packed: np.ndarray) -> None:
        """Append packed codes (:func:`hashgym.codes.pack`), ``[N, ceil(n_bits / 8)]`` ``uint8``.

        :raises CodeError: for another shape or dtype, or non-zero padding bits.
        """
        packed = check_packed(packed, self.n_bits, name="packed codes")
        if packed.shape[0] == 0:
            return
        self._words, self._table, self._ivf = None, None, None
        if self._flat is not None:
            self._flat.add(np.ascontiguousarray(packed))
        else:
            self._parts.append(packed.copy())

    def reset(self) -> None:
        """Remove every code."""
        self._parts, self._packed, self._words = [], np.zeros((0, self.n_bytes), np.uint8), None
        self._table, self._ivf = None, None
        if self._flat is not None:
            self._flat.reset()

    # -- queries ---------------------------------------------------------------------------

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        return pack(as_bits(queries, n_bits=self.n_bits, name="queries"))

    def _db_words(self) -> np.ndarray:
        if self._words is None:
            self._words = packed_to_words(self.packed)
        return self._words

    @property
    def ivf_lists(self) -> int | None:
        """The lists of the ``knn="ivf"`` index once a search built it (``None`` before)."""
        return None if self._ivf is None else int(self._ivf.nlist)

    def _ivf_index(self) -> Any:
        """The IVF of ``knn="ivf"``, trained and filled at the first search after a change."""
        if self._ivf is None:
            n, faiss = self.ntotal, self._faiss
            nlist = self.nlist or int(np.clip(round(np.sqrt(n)), 1, max(1, n // 39)))
            nlist = min(nlist, n)
            codes = self._stored()
            sample = np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)
            quantizer = faiss.IndexBinaryFlat(self.n_bytes * 8)
            ivf = faiss.IndexBinaryIVF(quantizer, self.n_bytes * 8, nlist)
            ivf.hashgym_quantizer = quantizer  # the IVF does not own it: keep it alive
            ivf.train(np.ascontiguousarray(codes[np.sort(sample)]))
            for start in range(0, n, 1 << 20):  # FAISS's storage stays valid while adding here
                ivf.add(np.ascontiguousarray(codes[start:start + (1 << 20)]))
            self._ivf = ivf
        self._ivf.nprobe = self.nprobe
        return self._ivf

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query, ordered by (distance, id).

        :param queries: ``[Nq, n_bits]`` or ``[n_bits]`` codes (0/1, ±1 or bool).
        :param k: number of neighbours; when the index holds fewer, rows are padded with
            distance ``-1`` and id ``-1`` (FAISS's convention for the ids).
        :return: ``(distances, ids)``, ``[Nq, k]`` ``int32`` and ``int64``.
        :raises CodeIndexError: for a bad ``k``; ``CodeError`` for bad queries.
        """
        check_count(k, "k", 1, CodeIndexError)
        q = self._queries(queries)
        n_q, k = q.shape[0], int(k)
        check_memory(n_q * k * 12, f"k={k:,} for {n_q:,} queries (the results are [{n_q:,}, "
                     f"{k:,}] distances and ids; this index holds {self.ntotal:,} codes, so a k "
                     f"above that only adds padding)", CodeIndexError)
        dist = np.full((n_q, k), -1, dtype=np.int32)
        ids = np.full((n_q, k), -1, dtype=np.int64)
        kk = min(k, self.ntotal)
        if kk == 0:
            return dist, ids
        if self.knn == "ivf":
            d, i = self._ivf_index().search(q, kk)
            missed = i < 0  # fewer than kk codes in the probed lists
            d[missed] = np.iinfo(np.int32).max
            key = d.astype(np.int64) * (self.ntotal + 1) + np.where(missed, self.ntotal, i)
            order = np.argsort(key, axis=1, kind="stable")
            dist[:, :kk] = np.where(np.take_along_axis(missed, order, axis=1), -1,
                                    np.take_along_axis(d, order, axis=1))
            ids[:, :kk] = np.take_along_axis(i, order, axis=1)
            return dist, ids
        if self.backend == "faiss":
            d, i = self._flat.search(q, kk)
            # re-sort every row by (distance, id); FAISS's heap already keeps the smallest ids
            # among ties, the sort makes the order within the list explicit
            key = d.astype(np.int64) * (self.ntotal + 1) + i
            order = np.argsort(key, axis=1, kind="stable")
            dist[:, :kk] = np.take_along_axis(d, order, axis=1)
            ids[:, :kk] = np.take_along_axis(i, order, axis=1)
            return dist, ids
        dw = self._db_words()
        qw = packed_to_words(q)
        rows = chunk_rows(dw.shape[0], 10, self.chunk_bytes)
        dtype = distance_dtype(self.n_bits)
        for start in range(0, n_q, rows):
            sl = slice(start, min(start + rows, n_q))
            chunk = hamming_words(qw[sl], dw, dtype=dtype)
            top = stable_order(chunk, kk)
            ids[sl, :kk] = top
            dist[sl, :kk] = np.take_along_axis(chunk, top, axis=1)
        return dist, ids

    def range_search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All codes within Hamming distance ``radius`` (inclusive, ``<= radius``) of each query.

        :param queries: ``[Nq, n_bits]`` or ``[n_bits]`` codes (0/1, ±1 or bool).
        :param radius: non-negative int.
        :return: ``(lims, distances, ids)`` as in FAISS: the hits of query ``i`` are
            ``ids[lims[i]:lims[i + 1]]``, ordered by (distance, id); ``lims`` ``[Nq + 1]``
            ``int64``, ``distances`` ``int32``, ``ids`` ``int64``.
        :raises CodeIndexError: for a bad ``radius``; ``CodeError`` for bad queries.
        """
        check_count(radius, "radius", 0, CodeIndexError)
        q = self._queries(queries)
        # no two codes differ in more than n_bits bits: a larger radius means the same, and
        # would overflow FAISS's int argument
        n_q, radius = q.shape[0], min(int(radius), self.n_bits)
        if self.ntotal == 0:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros(n_q + 1, dtype=np.int64), empty.astype(np.int32), empty
        if self._table is None:
            self._table = BucketTable(self._stored(), self.n_bits)
        if self._table.pays_off(radius):
            query_of_hit, d, i = self._table.range_search(self._stored(), q, radius)
            return _sort_hits(query_of_hit, d, i, n_q)
        if self.backend == "faiss":
            lims, d, i = self._flat.range_search(q, radius + 1)  # FAISS's radius is strict
            query_of_hit = np.repeat(np.arange(n_q), np.diff(lims.astype(np.int64)))
            return _sort_hits(query_of_hit, d, i, n_q)
        dw = self._db_words()
        qw = packed_to_words(q)
        rows = chunk_rows(dw.shape[0], 4, self.chunk_bytes)
        dtype = distance_dtype(self.n_bits)
        hit_q, hit_d, hit_i = [], [], []
        for start in range(0, n_q, rows):
            sl = slice(start, min(start + rows, n_q))
            chunk = hamming_words(qw[sl], dw, dtype=dtype)
            flat = np.flatnonzero(chunk <= radius)
            row, col = np.divmod(flat, chunk.shape[1])
            hit_q.append(row + start)
            hit_d.append(chunk.ravel()[flat])
            hit_i.append(col)
        return _sort_hits(np.concatenate(hit_q), np.concatenate(hit_d), np.concatenate(hit_i), n_q)

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], file_format: str = "npz") -> Path:
        """Write the codes to ``path``, atomically.

        :param path: the file.
        :param file_format: ``"npz"`` (``hashgym-codeindex/1``) or ``"faiss"`` (FAISS's
            ``IndexBinaryFlat`` file; module docstring).
        :raises CodeIndexError: for another format, or ``"faiss"`` with a code length that is
            not a multiple of 8 bits.
        :raises FaissMissingError: for ``"faiss"`` without ``faiss-cpu``.
        """
        if file_format not in FILE_FORMATS:
            raise CodeIndexError(f"file_format must be one of {', '.join(FILE_FORMATS)}, got "
                                 f"{file_format!r}")
        target = Path(path)
        if file_format == "npz":
            with atomic_write(target) as handle:
                np.savez(handle, format=np.array(FORMAT),
                         n_bits=np.array(self.n_bits, dtype=np.int64), codes=self.packed)
            return target
        if self.n_bits % 8:
            raise CodeIndexError(f"FAISS's binary index format counts whole bytes, so it holds "
                                 f"codes of a multiple of 8 bits, not {self.n_bits}; save as npz")
        faiss = _import_faiss()
        if faiss is None:
            raise FaissMissingError("file_format='faiss' needs the faiss-cpu package")
        flat = self._flat
        if flat is None:  # numpy backend: a flat index just for the file
            flat = faiss.IndexBinaryFlat(self.n_bits)
            if self.ntotal:
                flat.add(np.ascontiguousarray(self.packed))
        data = faiss.serialize_index_binary(flat)
        with atomic_write(target) as handle:
            handle.write(data.tobytes())
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], backend: Backend = "auto",
             knn: Literal["exact", "ivf"] = "exact", nprobe: int = 16) -> CodeIndex:
        """Read an index written by :meth:`save` in either format (never unpickles).

        :param path: an ``.npz`` of format ``hashgym-codeindex/1``, or FAISS's file of an
            ``IndexBinaryFlat`` (its codes' length is its dimension).
        :param backend: backend of the loaded index.
        :param knn: its k-NN search, ``"exact"`` or ``"ivf"`` (see :class:`CodeIndex`).
        :param nprobe: lists scanned per query with ``knn="ivf"``.
        :raises CodeIndexError: for a missing, truncated, corrupted or foreign file.
        """
        options = {"backend": backend, "knn": knn, "nprobe": nprobe}
        source = Path(path)
        try:
            with open(source, "rb") as handle:
                magic = handle.read(4)
        except FileNotFoundError:
            raise CodeIndexError(f"code index file {source} does not exist") from None
        except OSError as exc:
            raise CodeIndexError(f"cannot read code index file {source}: {exc}") from exc
        if magic.startswith(b"IB"):
            return cls._load_faiss(source, options)
        try:
            check_declared_sizes(source, CodeIndexError, "code index file")
            loaded = np.load(source, allow_pickle=False)
            if isinstance(loaded, np.ndarray):  # a .npy file: one bare array
                raise CodeIndexError(f"cannot read code index file {source}: it holds one bare "
                                     f"array (.npy); build an index with hashgym index build")
            with loaded as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise CodeIndexError(f"code index file {source} does not exist") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise CodeIndexError(f"cannot read code index file {source}: {exc}") from exc
        missing = {"format", "n_bits", "codes"} - set(arrays)
        if missing:
            raise CodeIndexError(f"{source} is not a code index file: missing {sorted(missing)}")
        if str(arrays["format"]) != FORMAT:
            raise CodeIndexError(f"{source} has format {str(arrays['format'])!r}, expected {FORMAT!r}")
        n_bits = arrays["n_bits"]
        if n_bits.shape != () or not np.issubdtype(n_bits.dtype, np.integer) or int(n_bits) < 1:
            raise CodeIndexError(f"{source} has an invalid n_bits entry {n_bits!r}")
        index = cls(int(n_bits), **options)
        try:
            index.add_packed(arrays["codes"])
        except CodeError as exc:
            raise CodeIndexError(f"{source} holds invalid codes: {exc}") from exc
        return index

    @classmethod
    def _load_faiss(cls, source: Path, options: dict[str, Any]) -> CodeIndex:
        """Read FAISS's file of an ``IndexBinaryFlat`` (see :meth:`load`)."""
        faiss = _import_faiss()
        if faiss is None:
            raise CodeIndexError(f"{source} is a FAISS index file: reading it needs the "
                                 f"faiss-cpu package")
        data = np.fromfile(source, dtype=np.uint8)
        if data[:4].tobytes() != _FAISS_FLAT_MAGIC:
            raise CodeIndexError(f"{source} is a FAISS binary index of another kind "
                                 f"({data[:4].tobytes()!r}); hashgym reads IndexBinaryFlat "
                                 f"files ({_FAISS_FLAT_MAGIC!r})")
        _check_faiss_header(data, source)
        try:
            flat = faiss.deserialize_index_binary(data)
        except RuntimeError as exc:
            raise CodeIndexError(f"cannot read FAISS index file {source}: "
                                 f"{str(exc).splitlines()[-1]}") from exc
        n, size = int(flat.ntotal), int(flat.code_size)
        codes = (faiss.rev_swig_ptr(flat.xb.data(), n * size).reshape(n, size).copy() if n
                 else np.zeros((0, size), dtype=np.uint8))
        index = cls(int(flat.d), **options)
        index.add_packed(codes)
        return index
