"""Benchmark suite presets: every preset is well-formed, and bad selections fail clearly."""

from __future__ import annotations

import pytest
from hashgym.agents.recipe import recipe_level_timesteps
from hashgym.agents.train import ALGORITHMS
from hashgym.benchmarks.baselines import BASELINES
from hashgym.benchmarks.methods import AGENT_KEYS, METHOD_KINDS
from hashgym.benchmarks.suites import (
    AGENTS_GENERATION,
    BENCH_SUITES,
    BenchError,
    BenchSuite,
    MethodSpec,
    get_suite,
    suite_names,
)

from hashgym.centers import hash_centers
from hashgym.metrics import parse_metric
from hashgym.protocols import preset_names


@pytest.mark.parametrize("name", sorted(BENCH_SUITES))
def test_preset_is_well_formed(name: str) -> None:
    suite = get_suite(name)
    assert suite.name == name
    assert set(suite.banks) <= set(preset_names())
    for metric in suite.metrics:
        parse_metric(metric)
    assert len({m.key for m in suite.methods}) == len(suite.methods)
    for spec in suite.methods:
        assert spec.kind in METHOD_KINDS, f"{name}: {spec.key} has kind {spec.kind!r}"
        if spec.kind == "baseline":
            assert spec.params["name"] in BASELINES
        if spec.kind == "agent":
            assert spec.params["algo"] in ALGORITHMS
            assert set(spec.params) <= AGENT_KEYS
            if spec.params.get("env_id", "HierHash-v0") != "HierHash-v0":  # no recipe budget
                assert "total_timesteps" in spec.params or "level_timesteps" in spec.params
            step = spec.params.get("env_kwargs", {}).get("bits_per_step")
            if spec.params.get("env_id", "HierHash-v0") == "HierHash-v0" and step:
                assert all(bits % step == 0 for bits in suite.bits), (spec.key, suite.bits)
    assert suite.to_dict()["methods"][0]["key"] == suite.methods[0].key


@pytest.mark.parametrize("name", sorted(BENCH_SUITES))
def test_csq_centers_exist_for_every_bit_length(name: str) -> None:
    # CSQ needs 100 CIFAR-100 centers at each length; too short codes cannot hold them apart.
    suite = get_suite(name)
    if any(m.params.get("name") == "csq" for m in suite.methods):
        for bits in suite.bits:
            assert hash_centers(100, bits).shape == (100, bits)


def test_presets_match_the_papers() -> None:
    drlhih = get_suite("drlhih")
    assert drlhih.banks == ("cifar100-trees-people", "cifar100")
    assert drlhih.bits == (12,)
    assert drlhih.metrics == ("ACG@20", "DCG@20", "NDCG@20")
    assert drlhih.relevance == "hierarchy"
    assert {"lsh", "sh", "itq", "dch", "shdh", "dqn-l0", "dqn-l1", "dqn-hier"} == {
        m.key for m in drlhih.methods}
    assert [drlhih.method(k).params["levels"] for k in ("dqn-l0", "dqn-l1", "dqn-hier")] == [
        [0], [1], [0, 1]]
    scihcgrl = get_suite("scihcgrl")
    assert scihcgrl.banks == ("cifar100-csq",)
    assert scihcgrl.bits == (24, 32, 48)
    assert scihcgrl.metrics == ("mAP@all", "P@r<=2")
    assert (scihcgrl.relevance, scihcgrl.level) == ("label", -1)
    assert {"cnnh", "dsh", "ninh", "hashnet", "csq", "reinforce"} == {
        m.key for m in scihcgrl.methods}
    assert scihcgrl.method("reinforce").params["env_id"] == "CentralHash-v0"
    agents = get_suite("agents")
    assert {m.params.get("algo") for m in agents.methods if m.kind == "agent"} == {
        "dqn", "qrdqn", "ppo", "a2c", "recurrentppo"}
    for spec in agents.methods:  # the same budget for all: four generations of 500k steps
        if spec.kind == "agent":
            env = spec.params["env_kwargs"]
            budget = recipe_level_timesteps(50_000, spec.params["levels"],
                                            env["memory_generation"])
            assert env["memory_generation"] == AGENTS_GENERATION and sum(budget) == 2_000_000
    quick = get_suite("quick")
    assert quick.banks == ("cifar100-mini",)
    assert quick.seeds == 1
    assert {m.kind for m in quick.methods} == {"baseline", "agent"}


def test_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(BenchError, match=r"unknown benchmark suite 'nope'; known: drlhih, "):
        get_suite("nope")
    assert suite_names() == list(BENCH_SUITES)


def test_select_restricts_and_checks_methods() -> None:
    quick = get_suite("quick")
    sub = quick.select(methods=["itq", "lsh", "itq"], bits=[8], seeds=2)
    assert [m.key for m in sub.methods] == ["lsh", "itq"]  # the suite's order, no duplicates
    assert sub.bits == (8,) and sub.seeds == 2
    assert quick.bits != (8,)  # the preset itself is unchanged
    with pytest.raises(BenchError, match=r"suite 'quick' has no method 'nope'; its methods: lsh"):
        quick.select(methods=["lsh", "nope"])


def _proto(**changes: object) -> BenchSuite:
    base: dict[str, object] = {
        "name": "t", "description": "test", "banks": ("b",), "bits": (8,), "metrics": ("mAP@all",),
        "methods": (MethodSpec("lsh", "baseline", {"name": "lsh"}),),
    }
    base.update(changes)
    return BenchSuite(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"banks": ()}, "has no bank"),
        ({"bits": ()}, "bits must be positive integers"),
        ({"bits": (8, 0)}, "bits must be positive integers"),
        ({"bits": (True,)}, "bits must be positive integers"),
        ({"metrics": ()}, "has no metric"),
        ({"methods": ()}, "has no method"),
        ({"methods": (MethodSpec("a", "baseline"), MethodSpec("a", "baseline"))},
         "duplicate method keys"),
        ({"relevance": "multihot"}, "relevance must be 'hierarchy' or 'label'"),
        ({"seeds": 0}, "seeds must be a positive integer"),
    ],
)
def test_bad_suite_definitions(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        _proto(**changes)


def test_method_spec_title_and_dict() -> None:
    spec = MethodSpec("itq", "baseline", {"name": "itq", "n_iter": 5})
    assert spec.title == "itq"
    assert MethodSpec("itq", "baseline", label="ITQ").title == "ITQ"
    assert spec.to_dict() == {"key": "itq", "kind": "baseline",
                              "params": {"name": "itq", "n_iter": 5}, "label": "itq"}
