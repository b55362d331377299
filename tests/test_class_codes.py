"""``hashgym.class_codes``: every number of the report against a brute-force loop over classes,
pairs and queries; its invariances; every bad input by its message; ``hashgym eval
--class-codes``."""

from __future__ import annotations

import json
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from hashgym.class_codes import ClassCodeError, class_code_report, class_codes
from hashgym.cli import main
from hashgym.codes import CodeError
from hashgym.synthetic import make_hierarchical_bank


def _hierarchy(rng: np.random.Generator, n: int, n_parents: int = 3, per_parent: int = 3,
               ) -> np.ndarray:
    fine = rng.integers(0, n_parents * per_parent, n)
    return np.stack([fine // per_parent, fine], axis=1)


def _codes_near_classes(rng: np.random.Generator, labels: np.ndarray, n_bits: int,
                        flip: float) -> np.ndarray:
    """Few bits, so codes collide and distances tie: every tie rule gets exercised."""
    centres = rng.integers(0, 2, (labels[:, -1].max() + 1, n_bits), dtype=np.uint8)
    return centres[labels[:, -1]] ^ (rng.random((len(labels), n_bits)) < flip).astype(np.uint8)


def _brute_modes(codes: np.ndarray, fine: np.ndarray) -> dict[int, tuple[int, ...]]:
    out = {}
    for c in sorted(set(fine.tolist())):
        counts = Counter(tuple(row) for row in codes[fine == c].tolist())
        best = max(counts.values())
        out[c] = min(code for code, k in counts.items() if k == best)
    return out


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    db_labels, q_labels = _hierarchy(rng, 300), _hierarchy(rng, 80)
    db = _codes_near_classes(rng, db_labels, 5, 0.2)
    queries = rng.integers(0, 2, (80, 5), dtype=np.uint8)
    report = class_code_report(db, db_labels, queries, q_labels)

    modes = _brute_modes(db, db_labels[:, 1])
    parent = {c: int(db_labels[db_labels[:, 1] == c][0, 0]) for c in modes}
    assert report.n_classes == len(modes) and report.n_bits == 5
    assert report.on_code == pytest.approx(np.mean(
        [tuple(row) == modes[c] for row, c in zip(db.tolist(), db_labels[:, 1].tolist())]))
    assert report.distinct_database == len({tuple(row) for row in db.tolist()})
    assert report.classes_sharing == sum(
        any(modes[c] == modes[o] for o in modes if o != c) for c in modes)
    sib = [_distance(modes[a], modes[b]) for a, b in combinations(modes, 2)
           if parent[a] == parent[b]]
    other = [_distance(modes[a], modes[b]) for a, b in combinations(modes, 2)
             if parent[a] != parent[b]]
    assert report.sibling_distance == (min(sib), pytest.approx(np.mean(sib)))
    assert report.other_distance == (min(other), pytest.approx(np.mean(other)))

    own = sibling = 0.0
    for code, (q_parent, q_class) in zip(queries.tolist(), q_labels.tolist()):
        d = {c: _distance(tuple(code), m) for c, m in modes.items()}
        tied = [c for c in d if d[c] == min(d.values())]
        own += (q_class in tied) / len(tied)
        sibling += sum(parent[c] == q_parent and c != q_class for c in tied) / len(tied)
    assert report.query_own == pytest.approx(own / len(queries))
    assert report.query_sibling == pytest.approx(sibling / len(queries))
    assert report.query_other == pytest.approx(1 - (own + sibling) / len(queries))
    assert report.distinct_query == len({tuple(row) for row in queries.tolist()})


def test_class_codes_tie_break_and_order_invariance() -> None:
    # class 7: two codes twice each; the smaller as a binary number wins, whatever the order
    codes = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 1]], dtype=np.uint8)
    labels = np.array([7, 7, 7, 7, 3])
    for order in (np.arange(5), np.array([4, 3, 2, 1, 0]), np.array([1, 4, 0, 3, 2])):
        classes, modes, on_mode = class_codes(codes[order], labels[order])
        np.testing.assert_array_equal(classes, [3, 7])
        np.testing.assert_array_equal(modes, [[1, 1], [0, 1]])
        np.testing.assert_array_equal(on_mode, (codes[order] == [[0, 1]]).all(1)
                                      | (labels[order] == 3))


def test_signs_and_one_level_labels() -> None:
    rng = np.random.default_rng(3)
    labels = _hierarchy(rng, 200)
    codes = _codes_near_classes(rng, labels, 8, 0.1)
    bits = class_code_report(codes, labels[:, 1], codes[:50], labels[:50, 1])
    signs = class_code_report(codes.astype(np.int8) * 2 - 1, labels[:, 1],
                              codes[:50].astype(np.int8) * 2 - 1, labels[:50, 1])
    assert bits == signs
    # one level: no siblings, every pair of classes is "other"
    assert bits.sibling_distance is None and bits.query_sibling is None
    assert bits.query_own + bits.query_other == pytest.approx(1.0)
    assert any("another's" in line for line in bits.lines())
    assert not any("siblings apart" in line for line in bits.lines())


def test_perfect_codes_and_unknown_query_class() -> None:
    labels = np.array([[0, 0], [0, 1], [1, 2], [1, 3]]).repeat(5, axis=0)
    codes = np.eye(4, 6, dtype=np.uint8)[labels[:, 1]]
    report = class_code_report(codes, labels, codes, labels)
    assert report.on_code == 1.0 and report.query_own == 1.0 and report.query_sibling == 0.0
    assert report.sibling_distance == (2, 2.0) and report.classes_sharing == 0
    # a query class the database lacks never counts as landing on its own class
    lost = class_code_report(codes, labels, codes[:1], np.array([[0, 9]]))
    assert lost.query_own == 0.0 and lost.query_sibling == 1.0
    # classes 2 and 3 sharing one code split their queries
    shared = codes.copy()
    shared[labels[:, 1] == 3] = shared[labels[:, 1] == 2][0]
    split = class_code_report(shared, labels, shared[labels[:, 1] == 2], labels[labels[:, 1] == 2])
    assert split.classes_sharing == 2 and split.query_own == 0.5 and split.query_sibling == 0.5


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"database_labels": np.zeros((4, 2, 1), int)}, ClassCodeError, "must be \\[n\\] or"),
    ({"database_labels": np.zeros(3, int)}, ClassCodeError, "has 3 rows for 4 codes"),
    ({"database_labels": np.zeros(4)}, ClassCodeError, "must be integer class ids"),
    ({"queries": np.zeros((2, 3), np.uint8)}, ClassCodeError, "give queries and query_labels"),
    ({"query_labels": np.zeros(2, int)}, ClassCodeError, "give queries and query_labels"),
    ({"queries": np.zeros((2, 4), np.uint8), "query_labels": np.zeros(2, int)}, CodeError,
     "different lengths"),
    ({"queries": np.zeros((2, 3), np.uint8), "query_labels": np.zeros((2, 2), int)},
     ClassCodeError, "query_labels have 2 levels and database_labels 1"),
    ({"queries": np.zeros((2, 3), np.uint8), "query_labels": np.zeros(5, int)},
     ClassCodeError, "query_labels has 5 rows for 2 codes"),
    ({"database": np.full((4, 3), 2)}, CodeError, "only 0/1 or"),
])
def test_errors(kwargs: dict, error: type[Exception], message: str) -> None:
    args = {"database": np.zeros((4, 3), np.uint8), "database_labels": np.zeros(4, int), **kwargs}
    with pytest.raises(error, match=message):
        class_code_report(**args)


def test_cli_prints_and_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          ) -> None:
    bank = make_hierarchical_bank(seed=0)
    rng = np.random.default_rng(0)
    codes = _codes_near_classes(rng, bank.labels, 12, 0.1)
    q, db = bank.indices("query"), bank.indices("database")
    np.save(tmp_path / "q.npy", codes[q])
    np.save(tmp_path / "db.npy", codes[db])
    bank_path = bank.save(tmp_path / "bank.npz")
    args = ["eval", str(tmp_path / "q.npy"), str(tmp_path / "db.npy"), "--bank", str(bank_path)]
    assert main([*args, "--class-codes", "--json", str(tmp_path / "s.json")]) == 0
    printed = capsys.readouterr().out
    expected = class_code_report(codes[db], bank.labels[db], codes[q], bank.labels[q])
    assert "\n".join(expected.lines()) in printed
    written = json.loads((tmp_path / "s.json").read_text())["class_codes"]
    assert written["query_own"] == pytest.approx(expected.query_own)
    assert written["sibling_distance"] == list(expected.sibling_distance)
    # without the flag: scores only
    assert main(args) == 0
    assert "class codes" not in capsys.readouterr().out


def test_cli_refuses_multi_hot_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    for name, shape in (("q", (5, 8)), ("db", (20, 8))):
        np.save(tmp_path / f"{name}.npy", rng.integers(0, 2, shape, dtype=np.uint8))
        np.save(tmp_path / f"{name}_labels.npy", rng.integers(0, 2, (shape[0], 4)))
    code = main(["eval", str(tmp_path / "q.npy"), str(tmp_path / "db.npy"), "--relevance",
                 "multilabel", "--query-labels", str(tmp_path / "q_labels.npy"), "--db-labels",
                 str(tmp_path / "db_labels.npy"), "--class-codes"])
    assert code == 2
    assert "--class-codes needs class labels" in capsys.readouterr().err
