"""Retrieval metrics: brute-force references, hand-computed cases, edge cases and error paths."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashgym.codes import CodeError
from hashgym.metrics import (
    MAHP,
    MAP,
    NDCG,
    MetricError,
    PrecisionAtRadius,
    Relevance,
    acg_at_k,
    dcg_at_k,
    evaluate,
    mahp_at_k,
    mean_average_precision,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    precision_at_k_curve,
    precision_at_radius,
    precision_recall_curve,
    recall_at_radius,
)
from hashgym.synthetic import make_hierarchical_bank, make_multilabel_bank

# ---------------------------------------------------------------------------------------------
# plain brute-force references: Python loops over one query at a time, written from docs/methods.md


def ref_distances(q: np.ndarray, db: np.ndarray) -> list[int]:
    return [int(sum(int(a) != int(b) for a, b in zip(q, row))) for row in db]


def ref_ranking(q: np.ndarray, db: np.ndarray) -> list[int]:
    dist = ref_distances(q, db)
    return sorted(range(len(db)), key=lambda j: (dist[j], j))


def ref_grade(kind: str, ql: np.ndarray, dl: np.ndarray) -> int:
    if kind == "label":
        return int(ql == dl)
    if kind == "multilabel":
        return int(sum(int(a) and int(b) for a, b in zip(ql, dl)))
    return int(sum(int(a) == int(b) for a, b in zip(ql, dl)))


def ref_values(metric: str, q, db, ql, dl, kind, min_grade, k=None, radius=None) -> list[float]:
    values = []
    n = len(db)
    for qi in range(len(q)):
        order = ref_ranking(q[qi], db)
        dist = ref_distances(q[qi], db)
        grades = [ref_grade(kind, ql[qi], dl[j]) for j in range(n)]
        rel = [int(g >= min_grade) for g in grades]
        ranked_rel = [rel[j] for j in order]
        ranked_grades = [grades[j] for j in order]
        n_rel = sum(rel)
        kk = n if k is None else min(k, n)
        if metric in ("map", "map_db"):
            hits, total = 0, 0.0
            for i in range(kk):
                if ranked_rel[i]:
                    hits += 1
                    total += hits / (i + 1)
            denom = hits if metric == "map" else n_rel
            values.append(total / denom if denom else 0.0)
        elif metric in ("p_r", "r_r"):
            inside = [j for j in range(n) if dist[j] <= radius]
            hits = sum(rel[j] for j in inside)
            if metric == "p_r":
                values.append(hits / len(inside) if inside else 0.0)
            else:
                values.append(hits / n_rel if n_rel else 0.0)
        elif metric == "p_k":
            values.append(sum(ranked_rel[:kk]) / kk)
        elif metric == "acg":
            values.append(sum(ranked_grades[:kk]) / kk)
        elif metric in ("dcg", "ndcg"):
            def dcg(gs):
                return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gs))

            value = dcg(ranked_grades[:kk])
            if metric == "ndcg":
                ideal = dcg(sorted(grades, reverse=True)[:kk])
                value = value / ideal if ideal else 0.0
            values.append(value)
        elif metric in ("mahp", "mahp_trap"):
            ideal = sorted(grades, reverse=True)
            hp = []
            for j in range(1, kk + 1):
                best = sum(ideal[:j])
                hp.append(sum(ranked_grades[:j]) / best if best else 0.0)
            if metric == "mahp":
                values.append(sum(hp) / kk)
            else:
                values.append((sum(hp) - 0.5 * (hp[0] + hp[-1])) / kk)
    return values


# ---------------------------------------------------------------------------------------------
# random small cases


@st.composite
def retrieval_case(draw):
    n_bits = draw(st.integers(1, 9))
    n_q = draw(st.integers(1, 4))
    n_db = draw(st.integers(1, 25))
    seed = draw(st.integers(0, 2**31 - 1))
    kind = draw(st.sampled_from(["label", "multilabel", "hierarchy", "nested"]))
    rng = np.random.default_rng(seed)
    # few bits and few items: many tied distances, so the tie order is exercised
    q = rng.integers(0, 2, (n_q, n_bits))
    db = rng.integers(0, 2, (n_db, n_bits))
    if kind == "label":
        ql, dl = rng.integers(0, 3, n_q), rng.integers(0, 3, n_db)
        min_grade = 1
    elif kind == "multilabel":
        c = draw(st.integers(1, 5))
        ql, dl = (rng.random((n_q, c)) < 0.35).astype(np.uint8), (rng.random((n_db, c)) < 0.35).astype(np.uint8)
        min_grade = draw(st.integers(1, c))
    elif kind == "hierarchy":  # levels not nested: grades counted level by level
        levels = draw(st.integers(1, 3))
        ql, dl = rng.integers(0, 2, (n_q, levels)), rng.integers(0, 2, (n_db, levels))
        min_grade = draw(st.integers(1, levels))
    else:  # a real tree: fine class -> coarse class = fine // 2
        fq, fd = rng.integers(0, 5, n_q), rng.integers(0, 5, n_db)
        ql, dl = np.stack([fq // 2, fq], 1), np.stack([fd // 2, fd], 1)
        min_grade = draw(st.integers(1, 2))
        kind = "hierarchy"
    signs = draw(st.booleans())
    if signs:
        q, db = 2 * q - 1, 2 * db - 1
    return q, db, ql, dl, kind, min_grade


SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(case=retrieval_case(), k=st.one_of(st.none(), st.integers(1, 30)), radius=st.integers(0, 4))
def test_binary_metrics_match_brute_force(case, k, radius):
    q, db, ql, dl, kind, min_grade = case
    kw = {"relevance": kind, "min_grade": min_grade, "per_query": True}
    b01q, b01d = (q > 0).astype(int), (db > 0).astype(int)
    checks = [
        (mean_average_precision(q, db, ql, dl, k, **kw), "map", {"k": k}),
        (mean_average_precision(q, db, ql, dl, k, normalize="database", **kw), "map_db", {"k": k}),
        (precision_at_radius(q, db, ql, dl, radius, **kw), "p_r", {"radius": radius}),
        (recall_at_radius(q, db, ql, dl, radius, **kw), "r_r", {"radius": radius}),
        (precision_at_k(q, db, ql, dl, k or 5, **kw), "p_k", {"k": k or 5}),
    ]
    for (mean, values), name, extra in checks:
        ref = ref_values(name, b01q, b01d, ql, dl, kind, min_grade, **extra)
        np.testing.assert_allclose(values, ref, rtol=0, atol=1e-12, err_msg=name)
        assert mean == pytest.approx(np.mean(ref), abs=1e-12)


@SETTINGS
@given(case=retrieval_case(), k=st.integers(1, 30))
def test_graded_metrics_match_brute_force(case, k):
    q, db, ql, dl, kind, _min_grade = case
    b01q, b01d = (q > 0).astype(int), (db > 0).astype(int)
    got = evaluate(q, db, ql, dl, [f"ACG@{k}", f"DCG@{k}", f"NDCG@{k}", f"mAHP@{k}",
                                   f"mAHP@{k}:trapezoid"], relevance=kind, per_query=True)
    for key, name in [("ACG", "acg"), ("DCG", "dcg"), ("NDCG", "ndcg"), ("mAHP", "mahp")]:
        ref = ref_values(name, b01q, b01d, ql, dl, kind, 1, k=k)
        np.testing.assert_allclose(got[f"{key}@{k}"], ref, rtol=1e-12, atol=1e-12, err_msg=key)
    ref = ref_values("mahp_trap", b01q, b01d, ql, dl, kind, 1, k=k)
    np.testing.assert_allclose(got[f"mAHP@{k}:trapezoid"], ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(case=retrieval_case())
def test_pr_curve_is_radius_metrics_at_every_radius(case):
    q, db, ql, dl, kind, min_grade = case
    n_bits = q.shape[1]
    curve = precision_recall_curve(q, db, ql, dl, relevance=kind, min_grade=min_grade)
    b01q, b01d = (q > 0).astype(int), (db > 0).astype(int)
    assert curve.radius.tolist() == list(range(n_bits + 1))
    for r in range(n_bits + 1):
        assert curve.precision[r] == pytest.approx(np.mean(ref_values("p_r", b01q, b01d, ql, dl, kind, min_grade, radius=r)))
        assert curve.recall[r] == pytest.approx(np.mean(ref_values("r_r", b01q, b01d, ql, dl, kind, min_grade, radius=r)))
        dists = [ref_distances(row, b01d) for row in b01q]
        assert curve.retrieved_fraction[r] == pytest.approx(np.mean([min(d) <= r for d in dists]))


# ---------------------------------------------------------------------------------------------
# hand-computed tiny cases

# query 000; database distances 2, 0, 1, 1, 3 -> ranking d1, d2, d3, d0, d4 (d2 before d3: the
# tie at distance 1 keeps database order)
Q = np.array([[0, 0, 0]])
DB = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 1, 1]])
QL = np.array([1])
DL = np.array([1, 0, 0, 1, 0])  # ranked relevance 0, 0, 1, 1, 0


def test_hand_computed_binary_metrics():
    # AP@all = (1/2)(1/3 + 2/4); with d3 ranked before d2 it would be (1/2)(1/2 + 2/4)
    assert mean_average_precision(Q, DB, QL, DL) == pytest.approx(5 / 12)
    assert mean_average_precision(Q, DB, QL, DL, 3) == pytest.approx(1 / 3)
    assert mean_average_precision(Q, DB, QL, DL, 3, normalize="database") == pytest.approx(1 / 6)
    assert mean_average_precision(Q, DB, QL, DL, 2) == 0.0
    assert precision_at_radius(Q, DB, QL, DL, 1) == pytest.approx(1 / 3)
    assert precision_at_radius(Q, DB, QL, DL, 0) == 0.0
    assert precision_at_radius(Q, DB, QL, DL, 2) == pytest.approx(2 / 4)
    assert recall_at_radius(Q, DB, QL, DL, 1) == pytest.approx(1 / 2)
    assert recall_at_radius(Q, DB, QL, DL, 2) == 1.0
    assert precision_at_k(Q, DB, QL, DL, 3) == pytest.approx(1 / 3)
    assert precision_at_k(Q, DB, QL, DL, 4) == pytest.approx(2 / 4)


def test_hand_computed_graded_metrics():
    # hierarchy grades of d0..d4: 2, 0, 1, 2, 0 -> ranked grades 0, 1, 2, 2, 0; ideal 2, 2, 1, 0, 0
    ql = np.array([[0, 0]])
    dl = np.array([[0, 0], [1, 2], [0, 1], [0, 0], [1, 3]])
    kw = {"relevance": "hierarchy"}
    assert acg_at_k(Q, DB, ql, dl, 3, **kw) == pytest.approx(1.0)
    dcg3 = 1 / math.log2(3) + 3 / 2
    assert dcg_at_k(Q, DB, ql, dl, 3, **kw) == pytest.approx(dcg3)
    assert ndcg_at_k(Q, DB, ql, dl, 3, **kw) == pytest.approx(dcg3 / (3 + 3 / math.log2(3) + 1 / 2))
    # hP@1..3 = 0/2, 1/4, 3/5
    assert mahp_at_k(Q, DB, ql, dl, 3, **kw) == pytest.approx((0 + 0.25 + 0.6) / 3)
    assert mahp_at_k(Q, DB, ql, dl, 3, rule="trapezoid", **kw) == pytest.approx((0.85 - 0.3) / 3)
    # binary relevance: same leaf (default) or same coarse class (min_grade=1)
    assert mean_average_precision(Q, DB, ql, dl, **kw) == pytest.approx(5 / 12)
    assert mean_average_precision(Q, DB, ql, dl, min_grade=1, **kw) == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)


def test_hand_computed_multilabel():
    # shared labels with the query 110: 1, 0, 0, 2, 1 -> ranked 0, 0, 2, 1, 1
    ql = np.array([[1, 1, 0]])
    dl = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    kw = {"relevance": "multilabel"}
    assert mean_average_precision(Q, DB, ql, dl, **kw) == pytest.approx((1 / 3 + 2 / 4 + 3 / 5) / 3)
    assert mean_average_precision(Q, DB, ql, dl, min_grade=2, **kw) == pytest.approx(1 / 3)
    assert acg_at_k(Q, DB, ql, dl, 4, **kw) == pytest.approx(3 / 4)


def test_perfect_ranking_scores_one():
    db = np.array([[0, 0], [1, 1], [0, 0], [1, 1]])
    labels = np.array([0, 1, 0, 1])
    res = evaluate(db, db, labels, labels, ["mAP", "P@r<=0", "R@r<=0", "P@2", "NDCG@2", "mAHP@2"])
    assert res == pytest.approx({"mAP": 1.0, "P@r<=0": 1.0, "R@r<=0": 1.0, "P@2": 1.0,
                                 "NDCG@2": 1.0, "mAHP@2": 1.0})


# ---------------------------------------------------------------------------------------------
# edge cases


def test_query_without_relevant_items_scores_zero_and_counts():
    ql = np.array([1, 7])  # class 7 does not occur in the database
    q = np.vstack([Q, Q])
    mean, values = mean_average_precision(q, DB, ql, DL, per_query=True)
    assert values.tolist() == pytest.approx([5 / 12, 0.0])
    assert mean == pytest.approx(5 / 24)
    res = evaluate(q, DB, ql, DL, ["R@r<=2", "NDCG@3", "mAHP@3", "mAP@3:database"], per_query=True)
    assert all(v[1] == 0.0 for v in res.values())


def test_all_distances_tied_rank_in_database_order():
    db = np.zeros((6, 4), dtype=np.uint8)
    dl = np.array([0, 1, 0, 0, 1, 1])
    # ranking = database order: relevance 0, 1, 0, 0, 1, 1
    ap = (1 / 2 + 2 / 5 + 3 / 6) / 3
    assert mean_average_precision(db[:1], db, np.array([1]), dl) == pytest.approx(ap)
    assert precision_at_radius(db[:1], db, np.array([1]), dl, 0) == pytest.approx(0.5)
    assert precision_at_k(db[:1], db, np.array([1]), dl, 2) == pytest.approx(0.5)


def test_k_larger_than_database_is_clipped():
    assert mean_average_precision(Q, DB, QL, DL, 100) == mean_average_precision(Q, DB, QL, DL)
    assert precision_at_k(Q, DB, QL, DL, 100) == pytest.approx(2 / 5)
    assert ndcg_at_k(Q, DB, QL, DL, 100) == ndcg_at_k(Q, DB, QL, DL, 5)
    ks, prec = precision_at_k_curve(Q, DB, QL, DL, [1, 3, 100])
    assert ks.tolist() == [1, 3, 5]
    assert prec.tolist() == pytest.approx([0, 1 / 3, 2 / 5])


def test_single_query_given_as_one_code():
    assert mean_average_precision(Q[0], DB, QL, DL) == pytest.approx(5 / 12)


def test_multilabel_query_without_labels():
    ql = np.array([[0, 0, 0], [1, 0, 0]], dtype=np.uint8)
    dl = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=np.uint8)
    res = evaluate(np.vstack([Q, Q]), DB, ql, dl, ["mAP", "P@r<=2", "R@r<=2", "NDCG@3", "mAHP@3"],
                   relevance="multilabel", per_query=True)
    assert all(values[0] == 0.0 for values in res.values())
    assert res["mAP"][1] > 0


def test_signs_bools_and_bits_agree():
    rng = np.random.default_rng(3)
    q, db = rng.integers(0, 2, (5, 12)), rng.integers(0, 2, (50, 12))
    ql, dl = rng.integers(0, 4, 5), rng.integers(0, 4, 50)
    a = evaluate(q, db, ql, dl, per_query=True)
    b = evaluate(2 * q - 1, (2 * db - 1).astype(np.float32), ql, dl, per_query=True)
    c = evaluate(q.astype(bool), db.astype(bool), ql, dl, per_query=True)
    for key in a:
        assert np.array_equal(a[key], b[key]) and np.array_equal(a[key], c[key])


def test_chunks_and_threads_give_identical_values():
    bank = make_hierarchical_bank(branching=(3, 3), n_per_class=30, seed=1)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, (bank.n, 10))
    q, d = bank.indices("query"), bank.indices("database")
    names = ["mAP", "mAP@20:database", "P@r<=1", "R@r<=1", "P@10", "ACG@10", "DCG@10", "NDCG@10", "mAHP@10"]
    ref = evaluate(codes[q], codes[d], bank.labels[q], bank.labels[d], names, relevance="hierarchy",
                   min_grade=1, per_query=True)
    small = evaluate(codes[q], codes[d], bank.labels[q], bank.labels[d], names, relevance="hierarchy",
                     min_grade=1, per_query=True, chunk_bytes=1, n_jobs=2)
    for key in names:
        assert np.array_equal(ref[key], small[key]), key


@pytest.mark.parametrize(("kind", "min_grade"), [("label", None), ("hierarchy", 2),
                                                  ("hierarchy", 1)])
def test_compiled_map_all_equals_numpy_to_the_bit(monkeypatch: pytest.MonkeyPatch, kind: str,
                                                  min_grade: int | None) -> None:
    """mAP@all through hashgym.kernels (numba) and through numpy's sort: the same float64 values
    to the last bit, ties included (12-bit codes on 400 items tie a lot), and a query class that
    the database lacks scores 0 both ways."""
    pytest.importorskip("numba")
    from hashgym import kernels

    bank = make_hierarchical_bank(branching=(3, 4), n_per_class=40, seed=3)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 2, (bank.n, 12))
    q, d = bank.indices("query"), bank.indices("database")
    labels = bank.labels if kind == "hierarchy" else bank.labels[:, -1]
    keep = (labels[d] if kind == "label" else labels[d, -1]) != 0  # leaf class 0: no database items
    d = d[keep]
    names = ["mAP@all", "mAP@all:database"]
    args = (codes[q], codes[d], labels[q], labels[d], names)
    fast = evaluate(*args, relevance=kind, min_grade=min_grade, per_query=True, n_jobs=2)
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    slow = evaluate(*args, relevance=kind, min_grade=min_grade, per_query=True)
    for name in names:
        assert np.array_equal(fast[name], slow[name]), name
    leaf = labels[q] if kind == "label" else labels[q, -1]
    if min_grade != 1:
        assert (fast["mAP@all"][leaf == 0] == 0).all() and (fast["mAP@all"][leaf != 0] > 0).all()


def test_hashgym_numba_0_selects_numpys_path() -> None:
    """``HASHGYM_NUMBA=0`` leaves numba unimported and the metrics on numpy's path, whose values
    the test above compares with the compiled ones."""
    script = ("import sys; from hashgym import kernels; "
              "print(kernels.DISABLED, kernels.AVAILABLE, 'numba' in sys.modules)")
    env = {**os.environ, "HASHGYM_NUMBA": "0"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False", "False"]


def test_feature_bank_call_sites():
    bank = make_hierarchical_bank(seed=2)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 2, (bank.n, 8))
    q, d = bank.indices("query"), bank.indices("database")
    fine = mean_average_precision(codes[q], codes[d], bank.labels[q, 1], bank.labels[d, 1])
    # in a tree, "same class at every level" is "same fine class"
    assert mean_average_precision(codes[q], codes[d], bank.labels[q], bank.labels[d],
                                  relevance="hierarchy") == pytest.approx(fine)
    coarse = mean_average_precision(codes[q], codes[d], bank.labels[q, 0], bank.labels[d, 0])
    assert mean_average_precision(codes[q], codes[d], bank.labels[q], bank.labels[d],
                                  relevance="hierarchy", min_grade=1) == pytest.approx(coarse)
    ml = make_multilabel_bank(n=120, seed=0)
    mq, md = ml.indices("query"), ml.indices("database")
    mcodes = rng.integers(0, 2, (ml.n, 8))
    value = mean_average_precision(mcodes[mq], mcodes[md], ml.multi_hot[mq], ml.multi_hot[md],
                                   relevance="multilabel")
    assert 0 < value <= 1


def test_metric_names_round_trip():
    for metric in [MAP(), MAP(1000, "database"), PrecisionAtRadius(3), NDCG(7), MAHP(250, "trapezoid")]:
        assert parse_metric(metric.name) == metric
    assert parse_metric("map") == MAP()
    assert parse_metric("P@r2") == PrecisionAtRadius(2)
    assert parse_metric(" Precision@R<=2 ") == PrecisionAtRadius(2)


def test_evaluate_keys_follow_the_given_names():
    res = evaluate(Q, DB, QL, DL, ["map", MAP(3)])
    assert set(res) == {"map", "mAP@3"}
    assert res["map"] == pytest.approx(5 / 12)


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: mean_average_precision(Q, DB, np.array([[0, 1]]), np.zeros((5, 2), int)), MetricError, "ambiguous"),
        (lambda: mean_average_precision(Q, DB, QL, DL, relevance="graded"), MetricError, "relevance must be one of"),
        (lambda: mean_average_precision(Q, DB, np.array([1, 2]), DL), MetricError, "query_labels have 2 rows"),
        (lambda: mean_average_precision(Q, DB, QL, DL[:4]), MetricError, "db_labels have 4 rows"),
        (lambda: mean_average_precision(Q, DB, QL, DL.astype(float)), MetricError, "integer class ids"),
        (lambda: mean_average_precision(Q, DB, np.array([[2, 0]]), np.zeros((5, 2), int), relevance="multilabel"),
         MetricError, "multi-hot 0/1"),
        (lambda: mean_average_precision(Q, DB, np.array([[0, 1]]), np.zeros((5, 3), int), relevance="hierarchy"),
         MetricError, "query_labels have 2 columns but db_labels have 3"),
        (lambda: mean_average_precision(Q, DB, QL, np.zeros((5, 2), int), relevance="label"),
         MetricError, "needs 1-D class ids"),
        (lambda: mean_average_precision(Q, DB, QL, DL, relevance="hierarchy"), MetricError, "needs \\[N, L\\]"),
        (lambda: mean_average_precision(Q, DB, QL, DL, min_grade=2), MetricError, "min_grade must be an int in 1..1"),
        (lambda: mean_average_precision(Q, DB, QL, DL, 0), MetricError, "topk must be a positive int"),
        (lambda: mean_average_precision(Q, DB, QL, DL, normalize="all"), MetricError, "normalize must be"),
        (lambda: precision_at_radius(Q, DB, QL, DL, -1), MetricError, "radius must be a non-negative int"),
        (lambda: precision_at_k(Q, DB, QL, DL, 2.5), MetricError, "k must be a positive int"),
        (lambda: mahp_at_k(Q, DB, QL, DL, 3, rule="simpson"), MetricError, "rule must be"),
        (lambda: evaluate(Q, DB, QL, DL, ["mAP", "ERR@5"]), MetricError, "unknown metric 'ERR@5'"),
        (lambda: evaluate(Q, DB, QL, DL, []), MetricError, "metrics is empty"),
        (lambda: evaluate(Q, DB, QL, DL, ["mAP", "mAP"]), MetricError, "duplicate names"),
        (lambda: evaluate(Q, DB, QL, DL, n_jobs=0), MetricError, "n_jobs must be a positive int"),
        (lambda: precision_at_k_curve(Q, DB, QL, DL, []), MetricError, "ks is empty"),
        (lambda: mean_average_precision(Q, DB, QL, DL, per_querry=True), MetricError, "unknown option\\(s\\) \\['per_querry'\\]"),
        (lambda: mean_average_precision(Q[:, :2], DB, QL, DL), CodeError, "query_codes has 2 bits, db_codes has 3"),
        (lambda: mean_average_precision(Q + 2, DB, QL, DL), CodeError, "only 0/1 or ±1"),
        (lambda: mean_average_precision(np.zeros((0, 3)), DB, QL[:0], DL), CodeError, "query_codes is empty"),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_relevance_counts():
    rel = Relevance(np.array([[0, 0], [1, 5]]), np.array([[0, 0], [0, 1], [1, 5], [1, 4]]), kind="hierarchy")
    assert rel.grade_counts(slice(0, 2)).tolist() == [[2, 1], [2, 1]]
    assert rel.n_relevant(slice(0, 2)).tolist() == [1, 1]
