"""``hashgym show`` and :mod:`hashgym.show`: the neighbours against brute force, the PNG's size,
both kinds of code file, and every bad input by its message."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hashgym.cli import main
from hashgym.codefile import save_codes
from hashgym.codes import CodeError
from hashgym.images import attach_images
from hashgym.show import DPI, TILE_INCHES, ShowError, neighbours, retrieval_grid
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(branching=(2, 3), n_per_class=10, dim=8, seed=0)
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (BANK.n, 8, 8, 3), dtype=np.uint8)
CODES = RNG.integers(0, 2, (BANK.n, 6)).astype(np.uint8)


def _png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_neighbours_match_brute_force() -> None:
    q, db = BANK.indices("query"), BANK.indices("database")
    ids, dist, relevant = neighbours(CODES[q].astype(int) * 2 - 1, CODES[db], BANK.labels[q], BANK.labels[db],
                                     k=5)
    for i, row in enumerate(q):
        d = (CODES[row] != CODES[db]).sum(axis=1)
        order = np.lexsort((np.arange(len(db)), d))[:5]
        np.testing.assert_array_equal(ids[i], order)
        np.testing.assert_array_equal(dist[i], d[order])
        np.testing.assert_array_equal(relevant[i], BANK.labels[db[order], 1] == BANK.labels[row, 1])
    assert relevant.any() and not relevant.all()


def test_retrieval_grid_writes_a_png_of_the_expected_size(tmp_path) -> None:
    q, db = BANK.indices("query")[:3], BANK.indices("database")
    path = retrieval_grid(CODES[q], CODES[db], IMAGES[q], IMAGES[db], BANK.labels[q],
                          BANK.labels[db], tmp_path / "grid.png", k=4)
    assert _png_size(path) == (round(5 * TILE_INCHES * DPI), round(3 * (TILE_INCHES + 0.25) * DPI))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 0}, ShowError, "k must be a positive int"),
        ({"db_codes": CODES[:5, :4]}, ShowError, "the query codes have 6 bits and the database"),
        ({"query_codes": np.full((2, 6), 3)}, CodeError, "0/1"),
        ({"query_images": IMAGES[:1]}, ShowError, "query images must be uint8 [2, H, W]"),
        ({"db_images": IMAGES[:5].astype(float)}, ShowError, "database images must be uint8"),
        ({"db_labels": BANK.labels[:4]}, ShowError, "labels need one row per code"),
    ],
)
def test_retrieval_grid_errors(tmp_path, kwargs, error, message) -> None:
    args = {"query_codes": CODES[:2], "db_codes": CODES[:5], "query_images": IMAGES[:2],
            "db_images": IMAGES[:5], "query_labels": BANK.labels[:2],
            "db_labels": BANK.labels[:5], "out": tmp_path / "g.png", **kwargs}
    with pytest.raises(error, match=message.replace("[", r"\[")):
        retrieval_grid(**args)
    assert not (tmp_path / "g.png").exists()


@pytest.fixture
def files(tmp_path):
    BANK.save(tmp_path / "bank.npz")
    np.savez(tmp_path / "images.npz", images=IMAGES)
    np.save(tmp_path / "q.npy", CODES[BANK.indices("query")])
    np.save(tmp_path / "db.npy", CODES[BANK.indices("database")])
    return tmp_path


def test_show_from_raw_codes_and_a_bank(files, capsys) -> None:
    out = files / "grid.png"
    assert main(["show", str(files / "q.npy"), str(files / "db.npy"), "--bank",
                 str(files / "bank.npz"), "--images", str(files / "images.npz"), "--queries", "2",
                 "--k", "3", "--out", str(out)]) == 0
    assert _png_size(out) == (round(4 * TILE_INCHES * DPI), round(2 * (TILE_INCHES + 0.25) * DPI))
    assert "2 queries, top 3" in capsys.readouterr().out


def test_show_from_encode_files(files) -> None:
    q, db = BANK.indices("query"), BANK.indices("database")
    save_codes(files / "q_enc.npz", CODES[q], BANK, q, {})
    save_codes(files / "db_enc.npz", CODES[db], BANK, db, {})
    out = files / "grid.png"
    assert main(["show", str(files / "q_enc.npz"), str(files / "db_enc.npz"), "--images",
                 str(files / "images.npz"), "--pick", "--queries", "3", "--out", str(out)]) == 0
    assert _png_size(out)[1] == round(3 * (TILE_INCHES + 0.25) * DPI)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--images", "{d}/missing.npz"], "image file {d}/missing.npz does not exist"),
        (["--images", "{d}/bank.npz"], "holds no 'images' array"),
        (["--images", "{d}/few.npz"], "has 4 images but the codes' bank rows reach"),
        (["--images", "{d}/images.npz", "--out", "{d}/grid.jpg"], "give a path ending in .png"),
        (["--images", "{d}/images.npz", "--queries", "0"], "--queries must be >= 1"),
        (["--images", "{d}/images.npz", "--k", "0"], "k must be a positive int"),
        (["--images", "{d}/images.npz", "--db-split", "query"],
         "but the bank's 'query' split has"),
    ],
)
def test_show_bad_input_names_the_problem(files, extra, message, capsys) -> None:
    np.savez(files / "few.npz", images=IMAGES[:4])
    argv = ["show", str(files / "q.npy"), str(files / "db.npy"), "--bank", str(files / "bank.npz"),
            "--out", str(files / "grid.png"), *[e.format(d=files) for e in extra]]
    if "--out" in extra:
        argv = argv[:5] + argv[7:]  # the case's own --out replaces the default
    assert main(argv) == 2
    assert message.format(d=files) in capsys.readouterr().err


def test_show_raw_codes_need_a_bank(files, capsys) -> None:
    assert main(["show", str(files / "q.npy"), str(files / "db.npy"), "--images",
                 str(files / "images.npz"), "--out", str(files / "grid.png")]) == 2
    assert "holds raw codes without bank rows: give --bank" in capsys.readouterr().err


def test_show_reads_the_images_the_bank_names(files) -> None:
    """Without --images the bank's own image source is read, through its image_index (here a
    reversed, offset layout): the figure is byte-identical to the one from an image file."""
    index = np.arange(BANK.n)[::-1] + 3
    stored = np.zeros((BANK.n + 3, 8, 8, 3), dtype=np.uint8)
    stored[index] = IMAGES
    np.savez(files / "stored.npz", pixels=stored)
    attach_images(BANK, files / "stored.npz", key="pixels", index=index).save(
        files / "with_images.npz")
    common = [str(files / "q.npy"), str(files / "db.npy"), "--queries", "4", "--k", "5"]
    assert main(["show", *common, "--bank", str(files / "with_images.npz"),
                 "--out", str(files / "from_bank.png")]) == 0
    assert main(["show", *common, "--bank", str(files / "bank.npz"), "--images",
                 str(files / "images.npz"), "--out", str(files / "from_file.png")]) == 0
    assert (files / "from_bank.png").read_bytes() == (files / "from_file.png").read_bytes()


@pytest.mark.parametrize(("bank", "message"), [
    (None, "give --bank (its image source shows the images) or --images FILE"),
    ("bank.npz", "this bank has no images"),
    ("small.npz", "the codes' bank rows reach 59 but --bank has 30 images"),
])
def test_show_without_images_needs_a_bank_with_images(files, bank, message, capsys) -> None:
    q, db = BANK.indices("query"), BANK.indices("database")
    save_codes(files / "q_enc.npz", CODES[q], BANK, q, {})
    save_codes(files / "db_enc.npz", CODES[db], BANK, db, {})
    attach_images(BANK, files / "images.npz").take(np.arange(30)).save(files / "small.npz")
    argv = ["show", str(files / "q_enc.npz"), str(files / "db_enc.npz"),
            "--out", str(files / "grid.png")]
    assert main(argv + ([] if bank is None else ["--bank", str(files / bank)])) == 2
    assert message in capsys.readouterr().err
    assert not (files / "grid.png").exists()
