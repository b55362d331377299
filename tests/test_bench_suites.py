"""Benchmark suite presets: every preset is well-formed, and bad selections fail clearly."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

from hashgym.agents.recipe import generation_steps, recipe_level_timesteps
from hashgym.agents.train import ALGORITHMS
from hashgym.benchmarks.baselines import BASELINES
from hashgym.benchmarks.cells import Cell, cell_key
from hashgym.benchmarks.methods import METHOD_KINDS, agent_config
from hashgym.benchmarks.suites import (
    AGENTS_GENERATION,
    BENCH_SUITES,
    BEST_BASELINE,
    SLICE_NAMES,
    BenchError,
    BenchSuite,
    MethodSpec,
    get_suite,
    suite_names,
)
from hashgym.benchmarks.tables import paired_differences, paired_markdown, t_quantile
from hashgym.centers import hash_centers
from hashgym.cli.bench import parse_seeds
from hashgym.envs import is_hierhash
from hashgym.envs.hierhash import default_bits_per_step
from hashgym.metrics import parse_metric
from hashgym.protocols import preset_names
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(branching=(3, 2), n_per_class=8, dim=16, seed=0)


@pytest.mark.parametrize("name", sorted(BENCH_SUITES))
def test_preset_is_well_formed(name: str) -> None:
    suite = get_suite(name)
    assert suite.name == name
    assert set(suite.banks) <= set(preset_names())
    for metric in suite.metrics:
        base, _, part = metric.partition(" ")  # "mAP@1000 unseen@all": a metric on a slice
        parse_metric(base)
        assert part in ("", *SLICE_NAMES), metric
    assert len({m.key for m in suite.methods}) == len(suite.methods)
    for spec in suite.methods:
        assert spec.kind in METHOD_KINDS, f"{name}: {spec.key} has kind {spec.kind!r}"
        if spec.kind == "baseline":
            assert spec.params["name"] in BASELINES
        if spec.kind == "agent":
            assert spec.params["algo"] in ALGORITHMS
            # RunConfig's settings (and the benchmark's own), with the cell's bank and seed
            assert agent_config(spec.params, 12, 0, None).algo == spec.params["algo"]
            if not is_hierhash(spec.params["env_id"]):  # no recipe budget
                assert "total_timesteps" in spec.params or "level_timesteps" in spec.params
            step = spec.params.get("env_kwargs", {}).get("bits_per_step")
            if is_hierhash(spec.params["env_id"]) and step:
                assert all(bits % step == 0 for bits in suite.bits), (spec.key, suite.bits)
    assert suite.to_dict()["methods"][0]["key"] == suite.methods[0].key


@pytest.mark.parametrize("name", sorted(BENCH_SUITES))
def test_hash_centers_exist_for_every_bit_length(name: str) -> None:
    # CSQ and CentralHash-v0 need 100 CIFAR-100 centers at each length, at the distance the
    # method asks for; too short codes cannot hold them apart at the default distance.
    suite = get_suite(name)
    for spec in suite.methods:
        if spec.params.get("name") == "csq":
            distance = spec.params.get("min_distance")
        elif spec.params.get("env_id") == "CentralHash-v0":
            distance = spec.params.get("env_kwargs", {}).get("min_distance")
        else:
            continue
        for bits in suite.bits:
            assert hash_centers(100, bits, min_distance=distance).shape == (100, bits)


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
    assert scihcgrl.bits == (16, 24, 32, 48, 64)  # the paper's three lengths, 16 and 64
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
            budget = recipe_level_timesteps(spec.params["levels"], generation_steps(
                50_000, 4, env["memory_generation"]))
            assert env["memory_generation"] == AGENTS_GENERATION and sum(budget) == 2_000_000
    lengths = get_suite("lengths")
    assert lengths.banks == ("cifar100",) and lengths.bits == (12, 24, 32, 48, 64)
    assert lengths.seeds == 3 and lengths.relevance == "hierarchy"
    assert {"itq", "dch", "shdh", "csq", "dqn-hier", "reinforce"} == {
        m.key for m in lengths.methods}
    # the DQN codes HierHash-v1's default bits per step and margin at every length
    assert "bits_per_step" not in lengths.method("dqn-hier").params.get("env_kwargs", {})
    assert "margin" not in lengths.method("dqn-hier").params.get("env_kwargs", {})
    assert lengths.method("dqn-hier").params["env_id"] == "HierHash-v1"
    assert get_suite("quick").method("dqn-hier").params["env_id"] == "HierHash-v1"
    # the suites whose records were measured on HierHash-v0 keep it
    assert {get_suite(name).method(key).params["env_id"] for name, key in (
        ("drlhih", "dqn-hier"), ("drlhih", "dqn-l1"), ("agents", "dqn"), ("unseen", "dqn-hier"))
    } == {"HierHash-v0"}
    # the baselines take the settings their studies chose, as in the single-length suites
    assert lengths.method("dch").params == get_suite("drlhih").method("dch").params
    assert lengths.method("csq").params == get_suite("scihcgrl").method("csq").params
    quick = get_suite("quick")
    assert quick.banks == ("cifar100-mini",)
    assert quick.seeds == 1
    assert {m.kind for m in quick.methods} == {"baseline", "agent"}


def test_lengths_shares_the_drlhih_cells_at_12_bits() -> None:
    """The lengths suite's 12-bit baseline cells on cifar100 are the drlhih suite's cells: the
    same configuration, so the same cell key, and one run's saved cells serve the other. Its DQN
    trains on HierHash-v1, which at 12 bits resolves to the env drlhih's HierHash-v0 row
    trains: the same arguments, the drlhih row's other parameters unchanged."""
    drlhih, lengths = get_suite("drlhih"), get_suite("lengths")
    assert default_bits_per_step(12) == 3  # drlhih codes DRLHIH's 3 bits per step by default
    shared = {m.key for m in lengths.methods} & {m.key for m in drlhih.methods}
    assert shared == {"itq", "dch", "shdh", "dqn-hier"}
    ours, theirs = lengths.method("dqn-hier").params, drlhih.method("dqn-hier").params
    assert {**ours, "env_id": "HierHash-v0"} == theirs
    envs = [gym.make(env_id, bank=BANK, n_bits=12).unwrapped
            for env_id in (ours["env_id"], theirs["env_id"])]
    settings = [(e.margin, e.bits_per_step, e.memory_generation) for e in envs]
    assert settings[0] == settings[1] and settings[0][:2] == (3.0, 3)
    for key in sorted(shared - {"dqn-hier"}):
        for seed in lengths.seed_list:
            ours = Cell("cifar100", lengths.method(key), 12, seed).config("bank")
            theirs = Cell("cifar100", drlhih.method(key), 12, seed).config("bank")
            assert cell_key(ours) == cell_key(theirs), key
    # longer codes are other cells
    assert cell_key(Cell("cifar100", lengths.method("dqn-hier"), 24, 100).config("bank")) != \
        cell_key(Cell("cifar100", drlhih.method("dqn-hier"), 12, 100).config("bank"))


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
        ({"first_seed": -1}, "first_seed must be a non-negative integer, got -1"),
    ],
)
def test_bad_suite_definitions(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        _proto(**changes)


def test_final_tables_default_to_seeds_no_development_run_used() -> None:
    assert _proto(seeds=2).seed_list == [0, 1]
    assert _proto(seeds=2, first_seed=100).seed_list == [100, 101]
    # the committed final tables' seeds, so that `hashgym bench --suite S` measures them again
    assert get_suite("scihcgrl").seed_list == list(range(100, 105))
    assert get_suite("drlhih").seed_list == list(range(100, 105))
    assert get_suite("unseen").seed_list == get_suite("lengths").seed_list == [100, 101, 102]
    for name in sorted(BENCH_SUITES):  # studies and variants develop on seed 1000
        assert 1000 not in get_suite(name).seed_list


def test_method_spec_title_and_dict() -> None:
    spec = MethodSpec("itq", "baseline", {"name": "itq", "n_iter": 5})
    assert spec.title == "itq"
    assert MethodSpec("itq", "baseline", label="ITQ").title == "ITQ"
    assert spec.to_dict() == {"key": "itq", "kind": "baseline",
                              "params": {"name": "itq", "n_iter": 5}, "label": "itq"}


def _rows(values: dict[str, list[float]], bits: int = 24, metric: str = "mAP@all") -> list[dict]:
    return [{"bank": "b", "method": method, "bits": bits, "seed": 100 + seed, "metric": metric,
             "value": value}
            for method, series in values.items() for seed, value in enumerate(series)]


def test_paired_differences_against_brute_force() -> None:
    suite = BenchSuite(name="t", description="", banks=("b",), bits=(24,), metrics=("mAP@all",),
                       methods=(MethodSpec("a", "baseline", {"name": "itq"}),
                                MethodSpec("c", "baseline", {"name": "lsh"}),
                                MethodSpec("rl", "agent", {"algo": "dqn"})),
                       comparisons=(("rl", "a"), ("rl", BEST_BASELINE)))
    rl, a, c = [0.60, 0.62, 0.62, 0.61], [0.58, 0.61, 0.60, 0.60], [0.50, 0.70, 0.70, 0.70]
    pairs = paired_differences(_rows({"rl": rl, "a": a, "c": c}), suite)
    assert [(p.method, p.other) for p in pairs] == [("rl", "a"), ("rl", "c")]  # c: best mean
    diff = np.subtract(rl, a)
    half = 3.182 * diff.std(ddof=1) / np.sqrt(4)  # t(0.975, 3 df)
    assert pairs[0].seeds == (100, 101, 102, 103)
    assert pairs[0].mean == pytest.approx(diff.mean())
    assert (pairs[0].low, pairs[0].high) == pytest.approx((diff.mean() - half, diff.mean() + half))
    assert pairs[0].low > 0  # rl is above a on every seed, by a steady margin
    # only the seeds both ran are paired; one seed gives no interval
    one = paired_differences(_rows({"rl": rl, "a": a[:1]}), suite)[0]
    assert one.seeds == (100,) and np.isnan(one.low) and one.mean == pytest.approx(0.02)
    text = paired_markdown(_rows({"rl": rl, "a": a, "c": c}), suite)
    assert f"| b | 24 | mAP@all | rl | a | 4 | {diff.mean():+.4f} |" in text
    # the best baseline that is also named does not repeat its row
    assert len(paired_differences(_rows({"rl": rl, "a": a}), suite)) == 1


def test_t_quantiles() -> None:
    assert t_quantile(4) == 2.776 and t_quantile(30) == 2.042
    assert t_quantile(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile(120) == pytest.approx(1.980, abs=1e-3)
    with pytest.raises(ValueError, match="a t interval needs at least 1 degree of freedom, got 0"):
        t_quantile(0)


def test_a_comparison_names_the_suite_methods() -> None:
    with pytest.raises(BenchError, match="comparison \\('rl', 'x'\\) names no method 'x'"):
        BenchSuite(name="t", description="", banks=("b",), bits=(24,), metrics=("mAP@all",),
                   methods=(MethodSpec("rl", "agent", {"algo": "dqn"}),),
                   comparisons=(("rl", "x"),))
    drlhih = get_suite("drlhih")
    assert drlhih.select(methods=["dch"]).comparisons == ()


@pytest.mark.parametrize(("text", "seeds"), [("3", 3), ("100-104", [100, 101, 102, 103, 104]),
                                             ("7,9", [7, 9]), ("5-5", [5]),
                                             ("20", 20), ("101-101", [101])])
def test_seed_options(text: str, seeds: int | list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("text", "message"), [
    ("104-100", "--seeds range '104-100' ends before it starts"),
    ("a-b", "--seeds must be a count, a range A-B or a list A,B,...: 'a-b'"),
    ("1,x", "--seeds must be a comma-separated list of int: '1,x'"),
    ("101", ("--seeds 101 asks for 101 seeds (0..100); for the one seed 101 write 101-101, "
             "for that many write 0-100")),
])
def test_bad_seed_options(text: str, message: str) -> None:
    with pytest.raises(BenchError, match=re.escape(message)):
        parse_seeds(text)


def test_a_metric_names_a_known_class_slice() -> None:
    with pytest.raises(BenchError, match="metric 'mAP@all seen@all' names no class slice; known: "
                                         "seen@seen, unseen@unseen, unseen@all"):
        BenchSuite(name="t", description="", banks=("b",), bits=(24,),
                   metrics=("mAP@all seen@all",),
                   methods=(MethodSpec("rl", "agent", {"algo": "dqn"}),))
