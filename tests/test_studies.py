"""benchmarks/studies.py: each method's study scores on the development twin, starts from the
suite's own setting, records every trial, resumes, and refuses what it cannot do fairly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hashgym.benchmarks import studies
from hashgym.benchmarks.studies import run_study
from hashgym.benchmarks.suites import BenchError, BenchSuite, MethodSpec

torch.set_num_threads(1)
pytest.importorskip("optuna")

SUITE = BenchSuite(
    name="tiny", description="", banks=("cifar100-csq",), bits=(24,), metrics=("mAP@all",),
    relevance="label", methods=(MethodSpec("csq", "baseline", {"name": "csq", "epochs": 1,
                                                                 "lam": 1e-4,
                                                                 "learning_curve": {}}, "CSQ"),
                                MethodSpec("lsh", "baseline", {"name": "lsh"}, "LSH")))


@pytest.mark.slow
def test_a_study_scores_on_the_development_twin_and_resumes(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASHGYM_DATA", str(shared_data))
    seen, params = [], []
    real = studies.run_method

    def spy(spec, bank, n_bits, seed):  # type: ignore[no-untyped-def]
        params.append(spec.params)
        seen.append((bank.meta.get("development"), bank.meta["protocol"]["name"],
                     len(bank.indices("query")), spec.params.get("lam"), n_bits, seed))
        return real(spec, bank, n_bits, seed)

    monkeypatch.setattr(studies, "run_method", spy)
    result = run_study(SUITE, "csq", "cifar100-csq", bits=24, trials=2, seed=7,
                       out=tmp_path / "csq")
    assert result["bank"] == "cifar100-dev-csq" and result["test_bank"] == "cifar100-csq"
    assert len(seen) == 2 and all(s[:3] == (True, "csq", 1000) and s[4:] == (24, 7)
                                  for s in seen)
    assert seen[0][3] == 1e-4  # the first run is the suite's own setting
    assert not any("learning_curve" in p for p in params)  # trials skip the curve's evaluations
    record = json.loads((tmp_path / "csq" / "study.json").read_text())
    assert [r["trial"] for r in record["rows"]] == [0, 1]
    assert record["start"]["value"] == record["rows"][0]["value"]
    best = max(record["rows"], key=lambda r: r["value"])
    assert record["best"]["value"] == best["value"]
    if best["trial"]:  # the winner's parameters are the drawn ones, laid over the suite's
        assert record["best"]["params"]["lam"] == pytest.approx(best["lam"])
        assert record["best"]["params"]["epochs"] == 1
    assert record["space"] == studies.SPACES["csq"]
    assert (tmp_path / "csq" / "trials.csv").read_text().startswith("trial,value,seconds,lr,")
    # run again with a larger budget: only the missing trial runs
    seen.clear()
    again = run_study(SUITE, "csq", "cifar100-csq", bits=24, trials=3, seed=7,
                      out=tmp_path / "csq")
    assert len(seen) == 1 and again["trials"] == 3
    drawn = [row["lam"] for row in again["rows"][1:]]
    assert len(set(drawn)) == 2  # the resumed sampler does not repeat its first proposal


@pytest.mark.parametrize(("method", "bank", "trials", "message"), [
    ("csq", "cifar100-dev-csq", 2, "'cifar100-dev-csq' has no development twin"),
    ("csq", "my-bank.npz", 2, "'my-bank.npz' has no development twin"),
    ("lsh", "cifar100-csq", 2, "method 'lsh' has no search space; methods with one: cnnh"),
    ("csq", "cifar100-csq", 0, "trials must be at least 1, got 0"),
    ("nope", "cifar100-csq", 2, "suite 'tiny' has no method 'nope'"),
])
def test_study_errors(tmp_path: Path, method: str, bank: str, trials: int,
                      message: str) -> None:
    with pytest.raises(BenchError, match=message):
        run_study(SUITE, method, bank, bits=24, trials=trials, seed=0, out=tmp_path)


def test_a_study_refuses_a_metric_its_suite_does_not_score(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="metric 'NDCG@20' is not one the 'tiny' suite scores: mAP@all"):
        run_study(SUITE, "csq", "cifar100-csq", bits=24, trials=2, seed=0, out=tmp_path,
                  metric="NDCG@20")
    assert not any(tmp_path.iterdir())
