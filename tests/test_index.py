"""CodeIndex: both backends against brute force and each other, persistence, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hashgym.index as index_module
from hashgym.codes import CodeError, pack
from hashgym.index import FORMAT, CodeIndex, CodeIndexError, faiss_available

BACKENDS = ["numpy"] + (["faiss"] if faiss_available() else [])
needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed")


def brute_distances(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    return (q[:, None, :] != db[None, :, :]).sum(-1)


def brute_search(q: np.ndarray, db: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    dist = brute_distances(q, db)
    dist_out = np.full((len(q), k), -1)
    ids_out = np.full((len(q), k), -1)
    for row in range(len(q)):
        order = sorted(range(len(db)), key=lambda j: (dist[row, j], j))[:k]
        ids_out[row, : len(order)] = order
        dist_out[row, : len(order)] = dist[row, order]
    return dist_out, ids_out


def brute_range(q: np.ndarray, db: np.ndarray, radius: int) -> list[list[tuple[int, int]]]:
    dist = brute_distances(q, db)
    return [sorted((int(dist[r, j]), j) for j in range(len(db)) if dist[r, j] <= radius) for r in range(len(q))]


def as_lists(lims: np.ndarray, dist: np.ndarray, ids: np.ndarray) -> list[list[tuple[int, int]]]:
    return [list(zip(dist[lims[i] : lims[i + 1]].tolist(), ids[lims[i] : lims[i + 1]].tolist()))
            for i in range(len(lims) - 1)]


@settings(max_examples=40, deadline=None)
@given(
    n_bits=st.integers(1, 70),
    n_db=st.integers(0, 60),
    n_q=st.integers(1, 5),
    k=st.integers(1, 70),
    radius=st.integers(0, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_backends_match_brute_force(n_bits, n_db, n_q, k, radius, seed):
    rng = np.random.default_rng(seed)
    # few distinct codes, so that many distances tie
    pool = rng.integers(0, 2, (max(1, n_db // 3), n_bits))
    db = pool[rng.integers(0, len(pool), n_db)] if n_db else np.zeros((0, n_bits), int)
    q = rng.integers(0, 2, (n_q, n_bits))
    ref_search = brute_search(q, db, k)
    ref_range = brute_range(q, db, radius)
    for backend in BACKENDS:
        index = CodeIndex(n_bits, backend=backend)
        half = n_db // 2 + 1
        if n_db:
            index.add(db[:half])
        if half < n_db:
            index.add(db[half:])  # a second batch: ids continue across add calls
        dist, ids = index.search(q, k)
        assert dist.dtype == np.int32 and ids.dtype == np.int64
        np.testing.assert_array_equal(ids, ref_search[1], err_msg=backend)
        np.testing.assert_array_equal(dist, ref_search[0], err_msg=backend)
        assert as_lists(*index.range_search(q, radius)) == ref_range, backend


@needs_faiss
@pytest.mark.parametrize("n_bits, radius", [(64, 2), (64, 0), (13, 1), (48, 5)])
def test_faiss_range_search_is_inclusive_and_exact(n_bits, radius):
    rng = np.random.default_rng(n_bits + radius)
    db = rng.integers(0, 2, (3000, n_bits))
    q = db[:20].copy()
    # plant neighbours at distances radius and radius + 1 of each query
    for row in range(20):
        for extra, flips in ((0, radius), (1, radius + 1)):
            code = q[row].copy()
            code[rng.choice(n_bits, flips, replace=False)] ^= 1
            db[100 + 2 * row + extra] = code
    faiss_index, numpy_index = CodeIndex(n_bits, "faiss"), CodeIndex(n_bits, "numpy")
    faiss_index.add(db)
    numpy_index.add(db)
    got = as_lists(*faiss_index.range_search(q, radius))
    assert got == as_lists(*numpy_index.range_search(q, radius)) == brute_range(q, db, radius)
    for row in range(20):
        assert (radius, 100 + 2 * row) in got[row]
        assert all(d <= radius for d, _ in got[row])
    # adding after a radius table was built keeps it in step
    faiss_index.add(q)
    numpy_index.add(q)
    assert as_lists(*faiss_index.range_search(q, radius)) == as_lists(*numpy_index.range_search(q, radius))


def test_hand_computed_search():
    db = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0], [0, 0, 0]])
    for backend in BACKENDS:
        index = CodeIndex(3, backend=backend)
        index.add(2 * db - 1)  # ±1 codes are accepted
        dist, ids = index.search(np.array([0, 0, 0]), 4)
        assert ids.tolist() == [[0, 4, 2, 3]] and dist.tolist() == [[0, 0, 1, 1]]
        lims, dist, ids = index.range_search(np.array([[0, 0, 0], [1, 1, 1]]), 1)
        assert lims.tolist() == [0, 4, 1 + 4]
        assert ids.tolist() == [0, 4, 2, 3, 1] and dist.tolist() == [0, 0, 1, 1, 0]
        dist, ids = index.search(np.array([[1, 1, 1]]), 7)
        assert ids.tolist() == [[1, 2, 3, 0, 4, -1, -1]] and dist.tolist() == [[0, 2, 2, 3, 3, -1, -1]]


def test_empty_index(tmp_path):
    for backend in BACKENDS:
        index = CodeIndex(10, backend=backend)
        dist, ids = index.search(np.zeros((2, 10)), 3)
        assert (ids == -1).all() and (dist == -1).all()
        lims, dist, ids = index.range_search(np.zeros((2, 10)), 3)
        assert lims.tolist() == [0, 0, 0] and ids.size == 0
        index.save(tmp_path / "empty.npz")
        assert len(CodeIndex.load(tmp_path / "empty.npz")) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_round_trip(tmp_path, backend):
    rng = np.random.default_rng(0)
    db = rng.integers(0, 2, (200, 21))
    index = CodeIndex(21, backend=backend)
    index.add(db)
    path = index.save(tmp_path / "sub" / "codes.npz")
    assert [p.name for p in path.parent.iterdir()] == ["codes.npz"]  # no temporary file left
    for load_backend in BACKENDS:
        loaded = CodeIndex.load(path, backend=load_backend)
        assert loaded.n_bits == 21 and len(loaded) == 200 and loaded.backend == load_backend
        np.testing.assert_array_equal(loaded.packed, pack(db))
        q = rng.integers(0, 2, (5, 21))
        for a, b in zip(loaded.search(q, 10), index.search(q, 10)):
            np.testing.assert_array_equal(a, b)


def test_numpy_fallback_when_faiss_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # "import faiss" now raises ImportError
    assert not faiss_available()
    index = CodeIndex(12)
    assert index.backend == "numpy"
    index.add(np.eye(12, dtype=np.uint8))
    dist, ids = index.search(np.zeros(12), 2)
    assert ids.tolist() == [[0, 1]] and dist.tolist() == [[1, 1]]
    with pytest.raises(ImportError, match="backend='faiss' needs the faiss-cpu package"):
        CodeIndex(12, backend="faiss")


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_and_packed_view(backend):
    index = CodeIndex(9, backend=backend)
    index.add(np.ones((3, 9)))
    assert index.packed.tolist() == [[255, 128]] * 3
    with pytest.raises(ValueError, match="read-only"):
        index.packed[0, 0] = 0
    index.reset()
    assert len(index) == 0 and index.packed.shape == (0, 2) and index.nbytes == 0


@needs_faiss
def test_faiss_index_holds_its_codes_once():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 2, (50_000, 64))
    index = CodeIndex(64, backend="faiss")
    index.add(codes[:20_000])
    index.add(codes[20_000:])
    assert index.nbytes == 50_000 * 8  # FAISS's storage only: no second packed copy
    lims, dist, ids = index.range_search(codes[:5], 2)  # builds the radius table
    assert ids[lims[:-1]].tolist() == [0, 1, 2, 3, 4] and dist[lims[:-1]].tolist() == [0] * 5
    # the table: 4 bytes of id per code, 4 per bucket offset (2^14 + 1), 14 key positions
    assert index.nbytes == 50_000 * 8 + 50_000 * 4 + 4 * (2**14 + 1) + 8 * 14
    assert index.nbytes < 1.7 * 50_000 * 8
    np.testing.assert_array_equal(index.packed, pack(codes))


def test_corrupted_files_are_refused(tmp_path):
    index = CodeIndex(16, backend="numpy")
    index.add(np.zeros((4, 16)))
    good = index.save(tmp_path / "good.npz")
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CodeIndexError, match="cannot read code index file"):
        CodeIndex.load(tmp_path / "truncated.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    with pytest.raises(CodeIndexError, match="cannot read code index file"):
        CodeIndex.load(tmp_path / "garbage.npz")
    with pytest.raises(CodeIndexError, match="does not exist"):
        CodeIndex.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "foreign.npz", codes=np.zeros((2, 2), np.uint8))
    with pytest.raises(CodeIndexError, match="not a code index file: missing \\['format', 'n_bits'\\]"):
        CodeIndex.load(tmp_path / "foreign.npz")
    np.savez(tmp_path / "other.npz", format=np.array("other/1"), n_bits=np.array(16), codes=np.zeros((2, 2), np.uint8))
    with pytest.raises(CodeIndexError, match="has format 'other/1'"):
        CodeIndex.load(tmp_path / "other.npz")
    np.savez(tmp_path / "bits.npz", format=np.array(FORMAT), n_bits=np.array(0), codes=np.zeros((2, 2), np.uint8))
    with pytest.raises(CodeIndexError, match="invalid n_bits"):
        CodeIndex.load(tmp_path / "bits.npz")
    np.savez(tmp_path / "shape.npz", format=np.array(FORMAT), n_bits=np.array(16), codes=np.zeros((2, 3), np.uint8))
    with pytest.raises(CodeIndexError, match="holds invalid codes"):
        CodeIndex.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "pickled.npz", format=np.array(FORMAT), n_bits=np.array(16),
             codes=np.array([object()], dtype=object))
    with pytest.raises(CodeIndexError, match="cannot read code index file"):
        CodeIndex.load(tmp_path / "pickled.npz")


def test_bad_arguments():
    with pytest.raises(CodeIndexError, match="n_bits must be >= 1, got 0"):
        CodeIndex(0)
    with pytest.raises(CodeIndexError, match="backend must be"):
        CodeIndex(8, backend="annoy")
    index = CodeIndex(8, backend="numpy")
    with pytest.raises(CodeError, match="codes have 7 bits, expected 8"):
        index.add(np.zeros((2, 7)))
    with pytest.raises(CodeError, match="queries have 9 bits, expected 8"):
        index.search(np.zeros((2, 9)), 1)
    with pytest.raises(CodeIndexError, match="k must be a positive int"):
        index.search(np.zeros((2, 8)), 0)
    with pytest.raises(CodeIndexError, match="radius must be a non-negative int"):
        index.range_search(np.zeros((2, 8)), -1)
    with pytest.raises(CodeError, match="non-zero padding bits past bit 5"):
        CodeIndex(5, backend="numpy").add_packed(np.array([[0b00000100]], dtype=np.uint8))
    with pytest.raises(CodeError, match="must be a \\[N, 1\\] uint8 array"):
        CodeIndex(5, backend="numpy").add_packed(np.zeros((1, 2), dtype=np.uint8))


def test_module_has_no_faiss_import_at_top_level():
    # the fallback relies on importing faiss lazily, inside the constructor
    assert "faiss" not in vars(index_module)


@needs_faiss
@pytest.mark.parametrize("backend", BACKENDS)
def test_faiss_file_round_trip(tmp_path, backend):
    """file_format="faiss" writes what FAISS itself reads, and files FAISS wrote load back."""
    import faiss

    rng = np.random.default_rng(1)
    db = rng.integers(0, 2, (300, 24))
    index = CodeIndex(24, backend=backend)
    index.add(db)
    path = index.save(tmp_path / "codes.faiss", file_format="faiss")
    native = faiss.read_index_binary(str(path))
    assert native.d == 24 and native.ntotal == 300
    q = rng.integers(0, 2, (6, 24))
    d_native, i_native = native.search(pack(q), 300)  # FAISS's own search of the file
    by_id = np.zeros((6, 300), dtype=int)
    np.put_along_axis(by_id, i_native, d_native, axis=1)
    np.testing.assert_array_equal(by_id, brute_distances(q, db))
    faiss.write_index_binary(native, str(tmp_path / "by_faiss.faiss"))
    for file in (path, tmp_path / "by_faiss.faiss"):
        for load_backend in BACKENDS:
            loaded = CodeIndex.load(file, backend=load_backend)
            assert loaded.n_bits == 24 and loaded.backend == load_backend
            np.testing.assert_array_equal(loaded.packed, pack(db))
            for a, b in zip(loaded.search(q, 10), index.search(q, 10)):
                np.testing.assert_array_equal(a, b)
    empty = CodeIndex(16, backend=backend).save(tmp_path / "empty.faiss", file_format="faiss")
    assert len(CodeIndex.load(empty)) == 0 and CodeIndex.load(empty).n_bits == 16


@needs_faiss
def test_faiss_file_errors(tmp_path, monkeypatch):
    import faiss

    index = CodeIndex(12, backend="numpy")
    index.add(np.zeros((3, 12)))
    with pytest.raises(CodeIndexError, match="holds codes of a multiple of 8 bits, not 12"):
        index.save(tmp_path / "twelve.faiss", file_format="faiss")
    with pytest.raises(CodeIndexError, match="file_format must be one of npz, faiss, got 'hdf5'"):
        index.save(tmp_path / "x.h5", file_format="hdf5")
    assert not list(tmp_path.iterdir())  # nothing written
    ivf = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(16), 16, 2)
    ivf.train(np.random.default_rng(0).integers(0, 256, (64, 2), dtype=np.uint8))
    faiss.write_index_binary(ivf, str(tmp_path / "ivf.faiss"))
    with pytest.raises(CodeIndexError, match="FAISS binary index of another kind .*IBwF"):
        CodeIndex.load(tmp_path / "ivf.faiss")
    good = CodeIndex(16, backend="numpy")
    good.add(np.ones((40, 16)))
    data = good.save(tmp_path / "good.faiss", file_format="faiss").read_bytes()
    (tmp_path / "cut.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(CodeIndexError, match="cannot read FAISS index file .*cut.faiss"):
        CodeIndex.load(tmp_path / "cut.faiss")
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(CodeIndexError, match="is a FAISS index file: reading it needs the faiss"):
        CodeIndex.load(tmp_path / "good.faiss")
    with pytest.raises(ImportError, match="file_format='faiss' needs the faiss-cpu package"):
        good.save(tmp_path / "again.faiss", file_format="faiss")


def _clustered(rng: np.random.Generator, n: int, n_bits: int, centres: int) -> np.ndarray:
    """Codes near ``centres`` random codes (each bit flipped with probability 0.05)."""
    base = rng.integers(0, 2, (centres, n_bits))[rng.integers(0, centres, n)]
    return base ^ (rng.random((n, n_bits)) < 0.05)


@needs_faiss
def test_ivf_knn_returns_exact_distances_and_most_of_the_top_k():
    rng = np.random.default_rng(3)
    db, q = _clustered(rng, 20_000, 32, 200), _clustered(rng, 40, 32, 200)
    exact = CodeIndex(32, backend="faiss")
    exact.add(db)
    ivf = CodeIndex(32, knn="ivf", nprobe=8)
    ivf.add(db[:10_000])
    assert ivf.ivf_lists is None
    ivf.search(q, 5)  # trains the IVF; the next add must retrain it over every code
    assert ivf.ivf_lists == 100  # sqrt(10,000)
    ivf.add(db[10_000:])
    d_exact, i_exact = exact.search(q, 50)
    d_ivf, i_ivf = ivf.search(q, 50)
    brute = brute_distances(q, db)
    found = i_ivf >= 0
    assert found.mean() > 0.9
    np.testing.assert_array_equal(np.take_along_axis(brute, np.where(found, i_ivf, 0), 1)[found],
                                  d_ivf[found])  # every distance is the true one
    key = np.where(found, d_ivf.astype(np.int64) * 100_000 + i_ivf, np.iinfo(np.int64).max)
    assert (np.diff(key, axis=1) > 0).all()  # ordered by (distance, id), misses last
    assert (d_ivf[~found] == -1).all()
    recall = np.mean([len(set(a) & set(b)) / 50 for a, b in zip(i_exact, i_ivf)])
    assert 0.5 < recall  # clustered codes: the probed lists hold most neighbours
    everything = CodeIndex(32, knn="ivf", nprobe=10_000)
    everything.add(db)
    np.testing.assert_array_equal(everything.search(q, 50)[0], d_exact)  # all lists: exact
    assert ivf.nbytes == 20_000 * 4 + 20_000 * (4 + 8)  # the flat codes + the lists' codes, ids
    assert ivf.ivf_lists == 141  # sqrt(20,000)


def test_ivf_errors(tmp_path, monkeypatch):
    with pytest.raises(CodeIndexError, match="knn must be 'exact' or 'ivf', got 'hnsw'"):
        CodeIndex(16, knn="hnsw")
    with pytest.raises(CodeIndexError, match="knn='ivf' is FAISS's IndexBinaryIVF: use backend"):
        CodeIndex(16, backend="numpy", knn="ivf")
    with pytest.raises(CodeIndexError, match="nprobe must be a positive int"):
        CodeIndex(16, nprobe=0)
    with pytest.raises(CodeIndexError, match="nlist must be a positive int"):
        CodeIndex(16, nlist=0)
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="knn='ivf' needs the faiss-cpu package"):
        CodeIndex(16, knn="ivf")
