"""One recipe everywhere: ``hashgym train``, ``train()``, ``hierarchical_dqn()`` and the benchmark
suites resolve to the same DQN settings on HierHash-v0 when given no budget or settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from hashgym.agents.dqn import DQN_DEFAULTS
from hashgym.agents.recipe import (
    NUM_ENVS,
    TOTAL_GENERATIONS,
    default_num_envs,
    generation_steps,
    recipe_budget,
    recipe_level_timesteps,
)
from hashgym.agents.train import hierarchical_dqn, train
from hashgym.benchmarks.methods import run_agent
from hashgym.benchmarks.suites import get_suite
from hashgym.cli import main
from hashgym.envs.hierhash import GENERATION_CODINGS
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(branching=(2, 2), n_per_class=6, dim=8, seed=0)
N_TRAIN = len(BANK.indices("train"))
#: the settings that make a run; the CLI leaves the env's shape arguments to the env's defaults
_KEYS = ("algo", "algo_kwargs", "levels", "level_timesteps", "n_constraints", "num_envs",
         "memory_refresh")
_ENV_DEFAULTS = {"n_bits": 12, "bits_per_step": 3}


def _settings(info: dict[str, Any]) -> dict[str, Any]:
    out = {k: info[k] for k in _KEYS}
    env = {k: v for k, v in info.get("env_kwargs", {}).items() if k != "bank"}
    out["env_kwargs"] = {**_ENV_DEFAULTS, **env}
    return json.loads(json.dumps(out, default=str))


def test_recipe_budget_counts_generations() -> None:
    gen = GENERATION_CODINGS * 4 * 1000  # 12 bits, 3 per step: four steps per coding
    assert generation_steps(1000) == gen
    assert generation_steps(1000, None) == gen
    assert generation_steps(1000, 5000) == 5000
    assert recipe_level_timesteps(1000, [0, 1]) == [gen, (TOTAL_GENERATIONS - 1) * gen]
    assert recipe_level_timesteps(1000, [1]) == [TOTAL_GENERATIONS * gen]
    assert sum(recipe_level_timesteps(1000, [0, 1, 2])) == TOTAL_GENERATIONS * gen
    assert default_num_envs("HierHash-v0") == NUM_ENVS
    assert default_num_envs("CentralHash-v0") == 64
    with pytest.raises(ValueError, match="levels must name at least one level"):
        recipe_level_timesteps(1000, [])
    # on a bank: the env's split and memory_generation
    assert recipe_budget(BANK, [0, 1], {}) == recipe_level_timesteps(N_TRAIN, [0, 1])
    assert recipe_budget(BANK, [1], {"memory_generation": 500}) == [TOTAL_GENERATIONS * 500]
    # longer codes: as many codings of every image, in the env's default steps per code (four
    # at 24 bits) or the ones given
    assert recipe_budget(BANK, [1], {"n_bits": 24}) == recipe_level_timesteps(N_TRAIN, [1])
    assert recipe_budget(BANK, [1], {"n_bits": 24, "bits_per_step": 3}) == (
        recipe_level_timesteps(N_TRAIN, [1], steps_per_image=8))
    assert recipe_budget(BANK, [1], {"n_bits": 48})[0] == TOTAL_GENERATIONS * 6 * 15 * N_TRAIN
    n_query = len(BANK.indices("query"))
    assert recipe_budget(BANK, [0], {"split": "query"}) == recipe_level_timesteps(n_query, [0])


@pytest.mark.slow
def test_every_entry_point_resolves_to_the_recipe(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    bank_path = BANK.save(tmp_path / "bank.npz")
    out = tmp_path / "cli"
    assert main(["train", "--bank", str(bank_path), "--out", str(out), "--no-progress",
                 "--no-tensorboard"]) == 0
    cli = json.loads((out / "config.json").read_text())
    direct = train("dqn", "HierHash-v0", {"bank": BANK}).info
    front = hierarchical_dqn(BANK).info
    spec = next(m for m in get_suite("drlhih").methods if m.key == "dqn-hier")
    bench = run_agent(BANK, 12, 0, {**spec.params, "learning_curve": None}).info

    expected = _settings(direct)
    assert expected["level_timesteps"] == recipe_level_timesteps(N_TRAIN, [0, 1])
    assert expected["num_envs"] == NUM_ENVS
    assert expected["memory_refresh"] is None
    assert expected["algo_kwargs"]["gamma"] == DQN_DEFAULTS["gamma"]
    for name, info in (("hashgym train", cli), ("hierarchical_dqn", front),
                       ("drlhih suite", bench)):
        assert _settings(info) == expected, name
