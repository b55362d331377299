"""Prefix codes of a finished run: scores against brute force, the report, the errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hashgym.bank import FeatureBank
from hashgym.benchmarks.prefixes import main, prefix_report, prefix_rows
from hashgym.benchmarks.runner import CellStore, run_benchmark
from hashgym.benchmarks.suites import BEST_BASELINE, BenchError, BenchSuite, MethodSpec, get_suite
from hashgym.metrics import evaluate
from hashgym.synthetic import make_hierarchical_bank

SUITE = BenchSuite(
    name="tiny-lengths",
    description="two fast methods at two lengths",
    banks=("synthetic",),
    bits=(8, 16),
    metrics=("mAP@all", "P@r<=2"),
    relevance="label",
    level=-1,
    seeds=2,
    comparisons=(("itq", BEST_BASELINE),),
    methods=(
        MethodSpec("lsh", "baseline", {"name": "lsh"}, "LSH"),
        MethodSpec("itq", "baseline", {"name": "itq", "n_iter": 5}, "ITQ"),
    ),
)


@pytest.fixture(scope="module")
def bank() -> FeatureBank:
    # noisy enough that no method is perfect, so a prefix scores below the whole code
    return make_hierarchical_bank(branching=(3, 2), n_per_class=15, dim=24, noise=4.0, seed=0)


@pytest.fixture(scope="module")
def run(bank: FeatureBank, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run_benchmark(SUITE, banks={"synthetic": bank}, out=out, progress=False, plots=False)
    return out


def _results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_prefix_scores_are_the_metrics_of_the_first_bits(bank: FeatureBank, run: Path) -> None:
    rows = prefix_rows(run, SUITE, "itq", 16, [4, 8, 16], banks={"synthetic": bank})
    record = json.loads((run / "record.json").read_text())
    store = CellStore(run / "cells")
    query_labels = bank.labels[bank.indices("query"), -1]
    db_labels = bank.labels[bank.indices("database"), -1]
    assert len(rows) == 2 * 3 * 2  # seeds × prefixes × metrics
    for cell in (c for c in record["cells"] if c["method"] == "itq" and c["bits"] == 16):
        query, database = store.load_codes(cell["key"], 16)
        for k in (4, 8, 16):
            expected = evaluate(query[:, :k], database[:, :k], query_labels, db_labels,
                                list(SUITE.metrics))
            got = {r["metric"]: r["value"] for r in rows
                   if r["seed"] == cell["seed"] and r["bits"] == k}
            assert got == pytest.approx(expected)
    assert {r["method"] for r in rows} == {"itq@16"}
    assert len({r["value"] for r in rows if r["metric"] == "mAP@all"}) == 6  # all different
    # the whole code is the run's own 16-bit row, to the last digit
    ran = {(int(r["seed"]), r["metric"]): float(r["value"]) for r in _results(run / "results.csv")
           if r["method"] == "itq" and r["bits"] == "16"}
    assert {(int(r["seed"]), r["metric"]): r["value"] for r in rows if r["bits"] == 16} == ran


def test_report_sets_the_prefixes_beside_the_dedicated_models(bank: FeatureBank,
                                                              run: Path) -> None:
    rows = prefix_rows(run, SUITE, "itq", 16, [8], banks={"synthetic": bank})
    report = prefix_report(run, SUITE, "itq", 16, [8], rows)
    lines = report.splitlines()
    assert any(line.startswith("| ITQ, first K of 16 bits |") for line in lines)
    assert any(line.startswith("| ITQ |") for line in lines)
    assert "mAP@all (8 bits)" in report and "(16 bits)" not in report
    # the paired differences: the prefix minus the 8-bit ITQ, per seed
    prefix = {r["seed"]: r["value"] for r in rows if r["metric"] == "mAP@all"}
    dedicated = {int(r["seed"]): float(r["value"]) for r in _results(run / "results.csv")
                 if r["method"] == "itq" and r["bits"] == "8" and r["metric"] == "mAP@all"}
    diff = np.mean([prefix[s] - dedicated[s] for s in (0, 1)])
    line = next(line for line in lines if line.startswith("| synthetic | 8 | mAP@all | ITQ, "
                                                          "first K of 16 bits | ITQ |"))
    assert f"{diff:+.4f}" in line


def test_cli_writes_the_rows_and_the_report(tmp_path: Path) -> None:
    # a registered suite on the built-in bank, so that the command finds both by name
    suite = get_suite("quick").select(methods=["lsh"], bits=[6, 12], seeds=1)
    run = tmp_path / "run"
    run_benchmark(suite, out=run, progress=False, plots=False)
    out = tmp_path / "report"
    main([str(run), "--method", "lsh", "--bits", "12", "--prefixes", "6,12", "--out", str(out)])
    rows = _results(out / "prefixes.csv")
    assert {(r["method"], r["bits"]) for r in rows} == {("lsh@12", "6"), ("lsh@12", "12")}
    ran = {r["metric"]: r["value"] for r in _results(run / "results.csv") if r["bits"] == "12"}
    assert {r["metric"]: r["value"] for r in rows if r["bits"] == "12"} == ran
    assert "| LSH, first K of 12 bits |" in (out / "prefixes.md").read_text()


@pytest.mark.parametrize(
    ("method", "bits", "prefixes", "match"),
    [
        ("itq", 12, [8], r"has no 12-bit cell of 'itq'"),
        ("nope", 16, [8], r"suite 'tiny-lengths' has no method 'nope'"),
        ("itq", 16, [0, 17], r"prefix lengths must lie in 1\.\.16, got \[0, 17\]"),
    ],
)
def test_prefix_errors(bank: FeatureBank, run: Path, method: str, bits: int,
                       prefixes: list[int], match: str) -> None:
    with pytest.raises(BenchError, match=match):
        prefix_rows(run, SUITE, method, bits, prefixes, banks={"synthetic": bank})


def test_a_folder_without_a_record_or_with_another_bank_is_refused(
        bank: FeatureBank, run: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"has no record.json: give the folder of a finished"):
        prefix_rows(tmp_path, SUITE, "itq", 16, [8], banks={"synthetic": bank})
    other = make_hierarchical_bank(branching=(3, 2), n_per_class=15, dim=24, noise=4.0, seed=1)
    with pytest.raises(BenchError, match=r"bank 'synthetic' is not the one the run scored"):
        prefix_rows(run, SUITE, "itq", 16, [8], banks={"synthetic": other})
