"""benchmarks/variants.py: a variant trains the suite's method with its changes on the
development twin, records what it scored, is not run twice, and refuses what it cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hashgym.benchmarks import variants
from hashgym.benchmarks.suites import BenchError, BenchSuite, MethodSpec
from hashgym.benchmarks.variants import parse_changes, run_variant, variants_table

torch.set_num_threads(1)

SUITE = BenchSuite(
    name="tiny", description="", banks=("cifar100-trees-people",), bits=(12,),
    metrics=("NDCG@20",), relevance="hierarchy",
    methods=(MethodSpec("itq", "baseline", {"name": "itq", "n_iter": 50}, "ITQ"),))


def test_changes_are_nested_and_read_as_json() -> None:
    assert parse_changes(["algo_kwargs.train_freq=2", "levels=[0, 1]", "name=itq",
                          "algo_kwargs.gamma=0.5"]) == {
        "algo_kwargs": {"train_freq": 2, "gamma": 0.5}, "levels": [0, 1], "name": "itq"}
    assert parse_changes([]) == {}


@pytest.mark.parametrize(("items", "message"), [
    (["train_freq"], "a change is written path.to.key=value, got 'train_freq'"),
    (["a..b=1"], r"a change is written path.to.key=value, got 'a..b=1'"),
    (["a=1", "a.b=2"], "change 'a.b=2' sets inside 'a', which is a value"),
])
def test_bad_changes_are_named(items: list[str], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        parse_changes(items)


def test_a_variant_runs_on_the_development_twin_once(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASHGYM_DATA", str(shared_data))
    seen = []
    real = variants.run_method

    def spy(spec, bank, n_bits, seed):  # type: ignore[no-untyped-def]
        seen.append((bank.meta.get("development"), spec.params, n_bits, seed))
        return real(spec, bank, n_bits, seed)

    monkeypatch.setattr(variants, "run_method", spy)
    record = run_variant(SUITE, "itq", "cifar100-trees-people", bits=12, name="short",
                         changes={"n_iter": 3}, seed=5, out=tmp_path)
    assert seen == [(True, {"name": "itq", "n_iter": 3}, 12, 5)]
    assert record["bank"] == "cifar100-dev-trees-people"
    assert set(record["scores"]) == {"NDCG@20", "mAP@all"}
    assert 0 < record["scores"]["NDCG@20"] <= 1 and 0 < record["scores"]["mAP@all"] <= 1
    assert 1 < record["distinct_query_codes"] <= 2 ** 12
    assert json.loads((tmp_path / "short.json").read_text()) == record
    assert str(shared_data) not in json.dumps(record)  # no absolute data paths in a record
    # a variant already written is read, not trained again
    assert run_variant(SUITE, "itq", "cifar100-trees-people", bits=12, name="short",
                       changes={"n_iter": 99}, seed=5, out=tmp_path) == record
    assert len(seen) == 1
    table = variants_table(tmp_path).splitlines()
    assert table[0].startswith("| variant | bits | changes | NDCG@20 | mAP@all |")
    assert table[2].startswith(f"| short | 12 | n_iter=3 | {record['scores']['NDCG@20']:.4f} |")


@pytest.mark.parametrize(("bank", "name", "message"), [
    ("cifar100-dev-trees-people", "a", "'cifar100-dev-trees-people' has no development twin"),
    ("cifar100-trees-people", "../a", "a variant name is a plain file name, got '../a'"),
    ("cifar100-trees-people", "", "a variant name is a plain file name, got ''"),
])
def test_variant_errors(tmp_path: Path, bank: str, name: str, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        run_variant(SUITE, "itq", bank, bits=12, name=name, changes={}, seed=0, out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_an_empty_folder_has_no_table(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no variant records"):
        variants_table(tmp_path)
