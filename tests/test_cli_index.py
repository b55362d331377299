"""``hashgym index build`` and ``hashgym search``: answers against brute force, result files, and
every bad input by its message."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hashgym.cli import main
from hashgym.index import faiss_available

RNG = np.random.default_rng(0)
DB = RNG.integers(0, 2, (300, 16)).astype(np.uint8)
QUERIES = RNG.integers(0, 2, (12, 16)).astype(np.uint8)
BACKENDS = ["numpy"] + (["faiss"] if faiss_available() else [])


def _distances() -> np.ndarray:
    return (QUERIES[:, None, :] != DB[None, :, :]).sum(axis=2)


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "db.npy", DB)
    np.savez(tmp_path / "q.npz", codes=QUERIES.astype(np.int8) * 2 - 1)  # ±1 codes
    assert main(["index", "build", str(tmp_path / "db.npy"), "--out",
                 str(tmp_path / "index.npz")]) == 0
    return tmp_path


@pytest.mark.parametrize("backend", BACKENDS)
def test_k_search_matches_brute_force(files, backend, capsys):
    out = files / "hits.npz"
    assert main(["search", str(files / "index.npz"), str(files / "q.npz"), "--k", "7",
                 "--backend", backend, "--out", str(out)]) == 0
    dist = _distances()
    with np.load(out, allow_pickle=False) as res:
        assert str(res["format"]) == "hashgym-search/1" and int(res["k"]) == 7
        for i in range(len(QUERIES)):
            order = np.lexsort((np.arange(len(DB)), dist[i]))[:7]
            np.testing.assert_array_equal(res["ids"][i], order)
            np.testing.assert_array_equal(res["distances"][i], dist[i, order])
    printed = capsys.readouterr().out
    assert f"backend {backend}" in printed and "query 0: " in printed


@pytest.mark.parametrize("backend", BACKENDS)
def test_radius_search_matches_brute_force(files, backend):
    out = files / "hits.npz"
    assert main(["index", "search", str(files / "index.npz"), str(files / "q.npz"),
                 "--radius", "4", "--backend", backend, "--out", str(out), "--show", "0"]) == 0
    dist = _distances()
    with np.load(out, allow_pickle=False) as res:
        lims, ids, d = res["lims"], res["ids"], res["distances"]
        for i in range(len(QUERIES)):
            expected = np.flatnonzero(dist[i] <= 4)
            expected = expected[np.lexsort((expected, dist[i, expected]))]
            np.testing.assert_array_equal(ids[lims[i]:lims[i + 1]], expected)
            np.testing.assert_array_equal(d[lims[i]:lims[i + 1]], dist[i, expected])


def test_k_beyond_the_index_pads_with_minus_one(files):
    out = files / "hits.npz"
    assert main(["search", str(files / "index.npz"), str(files / "q.npz"), "--k", "301",
                 "--out", str(out), "--show", "0"]) == 0
    with np.load(out, allow_pickle=False) as res:
        assert (res["ids"][:, -1] == -1).all() and (res["ids"][:, :-1] >= 0).all()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "{d}/missing.npz", "{d}/q.npz", "--k", "3"],
         "code index file {d}/missing.npz does not exist"),
        (["search", "{d}/db.npy", "{d}/q.npz", "--k", "3"], "cannot read code index file"),
        (["search", "{d}/other.npz", "{d}/q.npz", "--k", "3"], "is not a code index file"),
        (["search", "{d}/index.npz", "{d}/short.npy", "--k", "3"],
         "the query codes have 8 bits and the index {d}/index.npz holds 16-bit codes"),
        (["search", "{d}/index.npz", "{d}/q.npz", "--k", "0"], "k must be a positive int"),
        (["search", "{d}/index.npz", "{d}/q.npz", "--radius", "-1"],
         "radius must be a non-negative int"),
        (["search", "{d}/index.npz", "{d}/q.npz", "--k", "3", "--out", "{d}/q.npz"],
         "is the input {d}/q.npz"),
        (["search", "{d}/index.npz", "{d}/q.npz", "--k", "3", "--out", "{d}/other.npz"],
         "exists and is not a search result file"),
        (["search", "{d}/index.npz", "{d}/flat.npy", "--k", "3"],
         "must hold one code per row"),
        (["index", "build", "{d}/bad.npy", "--out", "{d}/i2.npz"], "0/1"),
        (["index", "build", "{d}/db.npy", "--out", "{d}/other.npz"],
         "exists and is not a code index file"),
        (["index", "build", "{d}/db.npy", "--out", "{d}/index.txt"], "give a path ending in .npz"),
    ],
)
def test_bad_input_names_the_problem(files, argv, message, capsys):
    np.savez(files / "other.npz", something=np.zeros(3))
    np.save(files / "short.npy", QUERIES[:, :8])
    np.save(files / "flat.npy", QUERIES[0])
    np.save(files / "bad.npy", np.full((4, 16), 3))
    before = (files / "other.npz").read_bytes()
    assert main([a.format(d=files) for a in argv]) == 2
    assert message.format(d=files) in capsys.readouterr().err
    assert (files / "other.npz").read_bytes() == before  # nothing is overwritten


def test_force_replaces_another_file(files):
    np.savez(files / "other.npz", something=np.zeros(3))
    assert main(["index", "build", str(files / "db.npy"), "--out", str(files / "other.npz"),
                 "--force"]) == 0
    with np.load(files / "other.npz", allow_pickle=False) as data:
        assert str(data["format"]) == "hashgym-codeindex/1"


def test_a_faiss_file_index_answers_as_the_npz_one(files):
    """--out INDEX.faiss writes FAISS's own file; search reads it and answers the same."""
    assert main(["index", "build", str(files / "db.npy"), "--out", str(files / "index.faiss")]) == 0
    assert (files / "index.faiss").read_bytes()[:4] == b"IBxF"
    for name in ("index.npz", "index.faiss"):
        assert main(["search", str(files / name), str(files / "q.npz"), "--k", "9", "--out",
                     str(files / f"{name}.hits.npz"), "--show", "0"]) == 0
    with np.load(files / "index.npz.hits.npz") as a, np.load(files / "index.faiss.hits.npz") as b:
        np.testing.assert_array_equal(a["ids"], b["ids"])
        np.testing.assert_array_equal(a["distances"], b["distances"])
    # rebuilding over an earlier FAISS file is allowed; over another file, refused
    assert main(["index", "build", str(files / "db.npy"), "--out", str(files / "index.faiss")]) == 0


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: (d / "notes.faiss").write_text("my notes"), "exists and is not a code index file"),
    (lambda d: np.save(d / "db.npy", DB[:, :12]), "multiple of 8 bits, not 12"),
])
def test_faiss_file_build_errors(files, setup, message, capsys):
    setup(files)
    out = files / "notes.faiss"
    assert main(["index", "build", str(files / "db.npy"), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed")
def test_nprobe_searches_through_the_ivf(files, capsys):
    """--nprobe: approximate k-NN; probing every list gives the exact distances."""
    out = files / "hits.npz"
    assert main(["search", str(files / "index.npz"), str(files / "q.npz"), "--k", "7",
                 "--nprobe", "1000", "--out", str(out)]) == 0
    assert "(approximate: IVF, 1000 lists per query)" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as res:
        np.testing.assert_array_equal(res["distances"], np.sort(_distances(), axis=1)[:, :7])
    assert main(["search", str(files / "index.npz"), str(files / "q.npz"), "--k", "7",
                 "--nprobe", "0"]) == 2
    assert "nprobe must be a positive int" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (lambda d: ["index", "build", str(d / "db.npy"), "--out", str(d / "db.faiss")],
     "hashgym index build: error: file_format='faiss' needs the faiss-cpu package\n"),
    (lambda d: ["search", str(d / "index.npz"), str(d / "q.npz"), "--k", "3", "--backend",
                "faiss"],
     ("hashgym search: error: backend='faiss' needs the faiss-cpu package; install it or use "
      "backend='numpy'\n")),
])
def test_without_faiss_the_command_says_what_to_install(files, argv, message, monkeypatch,
                                                         capsys):
    """A missing optional package is an error of the command's one path (exit status 2, one
    line on stderr), not a traceback."""
    monkeypatch.setitem(sys.modules, "faiss", None)  # "import faiss" now raises ImportError
    assert main(argv(files)) == 2
    assert capsys.readouterr().err == message
    assert not (files / "db.faiss").exists()
