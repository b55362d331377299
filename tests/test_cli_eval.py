"""``hashgym eval``: the scores of code files equal ``hashgym.metrics.evaluate`` on the same codes,
whether the files are ``hashgym encode``'s or raw arrays with labels from a file or a bank; every
bad input is an error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hashgym.cli import main
from hashgym.codefile import save_codes
from hashgym.metrics import evaluate
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(seed=0)
Q, DB = BANK.indices("query"), BANK.indices("database")
METRICS = ["mAP@all", "P@r<=2", "NDCG@20"]


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, (BANK.n, 12), dtype=np.uint8)


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BANK.save(tmp_path_factory.mktemp("bank") / "bank.npz")


def _expected(codes: np.ndarray, relevance: str = "hierarchy") -> dict[str, float]:
    return evaluate(codes[Q], codes[DB], BANK.labels[Q], BANK.labels[DB], METRICS,
                    relevance=relevance)


def _printed(out: str) -> dict[str, float]:
    lines = [line.split() for line in out.splitlines()[1:] if line.strip()]
    return {name: float(value) for name, value in lines}


def test_encode_files_score_as_evaluate(codes: np.ndarray, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    q = save_codes(tmp_path / "q.npz", codes[Q], BANK, Q)
    db = save_codes(tmp_path / "db.npz", codes[DB], BANK, DB)
    assert main(["eval", str(q), str(db), "--relevance", "hierarchy", "--json",
                 str(tmp_path / "s.json")]) == 0
    expected = _expected(codes)
    assert _printed(capsys.readouterr().out) == pytest.approx(expected, abs=5e-5)
    written = json.loads((tmp_path / "s.json").read_text())["scores"]
    assert written == pytest.approx(expected)


def test_json_replaces_its_own_scores_and_with_force_any_file(codes: np.ndarray, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    q = save_codes(tmp_path / "q.npz", codes[Q], BANK, Q)
    db = save_codes(tmp_path / "db.npz", codes[DB], BANK, DB)
    scores = tmp_path / "s.json"
    for _ in range(2):  # the second run replaces the first run's scores file
        assert main(["eval", str(q), str(db), "--json", str(scores)]) == 0
    notes = tmp_path / "notes.json"
    notes.write_text("[1, 2]")
    assert main(["eval", str(q), str(db), "--json", str(notes)]) == 2
    assert "exists and is not a scores file" in capsys.readouterr().err
    assert notes.read_text() == "[1, 2]"
    assert main(["eval", str(q), str(db), "--json", str(notes), "--force"]) == 0
    assert json.loads(notes.read_text())["scores"] == json.loads(scores.read_text())["scores"]


def test_raw_arrays_with_label_files_or_a_bank(codes: np.ndarray, tmp_path: Path,
                                               bank_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    signs = codes.astype(np.int8) * 2 - 1  # ±1, as DeepHash-pytorch writes them
    np.save(tmp_path / "q.npy", signs[Q])
    np.savez(tmp_path / "db.npz", codes=signs[DB])
    np.save(tmp_path / "ql.npy", BANK.labels[Q])
    np.save(tmp_path / "dl.npy", BANK.labels[DB])
    expected = _expected(codes)
    assert main(["eval", str(tmp_path / "q.npy"), str(tmp_path / "db.npz"), "--query-labels",
                 str(tmp_path / "ql.npy"), "--db-labels", str(tmp_path / "dl.npy"),
                 "--relevance", "hierarchy"]) == 0
    assert _printed(capsys.readouterr().out) == pytest.approx(expected, abs=5e-5)
    assert main(["eval", str(tmp_path / "q.npy"), str(tmp_path / "db.npz"), "--bank",
                 str(bank_path), "--relevance", "hierarchy"]) == 0
    assert _printed(capsys.readouterr().out) == pytest.approx(expected, abs=5e-5)
    # explicit rows: the database in reverse order
    np.save(tmp_path / "db_rev.npy", signs[DB[::-1]])
    np.save(tmp_path / "rows_rev.npy", DB[::-1])
    assert main(["eval", str(tmp_path / "q.npy"), str(tmp_path / "db_rev.npy"), "--bank",
                 str(bank_path), "--db-rows", str(tmp_path / "rows_rev.npy"),
                 "--relevance", "hierarchy", "--metrics", "mAP@all"]) == 0
    reversed_db = evaluate(codes[Q], codes[DB[::-1]], BANK.labels[Q], BANK.labels[DB[::-1]],
                           ["mAP@all"], relevance="hierarchy")  # ties rank by database order
    assert _printed(capsys.readouterr().out) == pytest.approx(reversed_db, abs=5e-5)
    # labels from a bank or from hashgym encode are a hierarchy's: the default relevance
    assert main(["eval", str(tmp_path / "q.npy"), str(tmp_path / "db.npz"), "--bank",
                 str(bank_path)]) == 0
    assert _printed(capsys.readouterr().out) == pytest.approx(expected, abs=5e-5)


def test_bad_inputs_are_named(codes: np.ndarray, tmp_path: Path, bank_path: Path,
                              capsys: pytest.CaptureFixture) -> None:
    np.save(tmp_path / "q.npy", codes[Q])
    np.save(tmp_path / "db.npy", codes[DB])
    np.save(tmp_path / "db8.npy", codes[DB, :8])
    np.save(tmp_path / "three.npy", np.full((len(DB), 12), 3))
    np.save(tmp_path / "short.npy", BANK.labels[Q][:-1])
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "two.npz", a=codes[Q], b=codes[Q])
    q, db = str(tmp_path / "q.npy"), str(tmp_path / "db.npy")
    cases = [
        ([q, str(tmp_path / "missing.npy")], "codes file"),
        ([q, db], "the query codes carry no labels: give --bank"),
        ([q, str(tmp_path / "db8.npy"), "--bank", str(bank_path)],
         "the query codes have 12 bits and the database codes 8"),
        ([q, str(tmp_path / "three.npy"), "--bank", str(bank_path)], "db_codes"),
        ([q, db, "--query-labels", str(tmp_path / "short.npy"), "--bank", str(bank_path),
          "--relevance", "hierarchy"], "query_labels have"),
        ([q, db, "--query-labels", str(tmp_path / "short.npy"), "--db-labels",
          str(tmp_path / "short.npy")], "2-D labels are ambiguous"),
        ([str(tmp_path / "obj.npy"), db, "--bank", str(bank_path)],
         "holds pickled Python objects, which hashgym never loads"),
        ([str(tmp_path / "two.npz"), db, "--bank", str(bank_path)], "holds 2 arrays (a, b)"),
        ([db, db, "--bank", str(bank_path)],
         f"the query codes have {len(DB)} rows but the bank's 'query' split has {len(Q)}"),
        ([q, db, "--bank", str(bank_path), "--metrics", "mAP@nope"], "mAP@nope"),
    ]
    for argv, message in cases:
        assert main(["eval", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("hashgym eval: error: ") and message in err, (argv, err)


def test_prefixes_score_as_files_of_the_first_bits(codes: np.ndarray, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    """``--prefixes 3,6,12`` prints and writes, for each length, the scores of files holding
    only the codes' first bits."""
    q = save_codes(tmp_path / "q.npz", codes[Q], BANK, Q)
    db = save_codes(tmp_path / "db.npz", codes[DB], BANK, DB)
    assert main(["eval", str(q), str(db), "--prefixes", "3,6,12", "--json",
                 str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    table = out.split("first K bits")[1].splitlines()[1:]
    written = json.loads((tmp_path / "s.json").read_text())
    assert written["scores"] == pytest.approx(_expected(codes))
    for k, line in zip((3, 6, 12), table, strict=True):
        qk = save_codes(tmp_path / f"q{k}.npz", codes[Q, :k], BANK, Q)
        dbk = save_codes(tmp_path / f"db{k}.npz", codes[DB, :k], BANK, DB)
        assert main(["eval", str(qk), str(dbk), "--json", str(tmp_path / f"s{k}.json")]) == 0
        alone = _printed(capsys.readouterr().out)
        assert line.split()[0] == str(k)
        assert [float(v) for v in line.split()[1:]] == pytest.approx(list(alone.values()),
                                                                     abs=5e-5)
        assert written["prefixes"][str(k)] == json.loads(
            (tmp_path / f"s{k}.json").read_text())["scores"]
    assert written["prefixes"]["3"] != written["prefixes"]["12"]
