"""One recipe everywhere: ``hashgym train``, ``train()``, ``hierarchical_dqn()`` and the benchmark
suites resolve to the same DQN settings on HierHash when given no budget or settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from hashgym.agents.config import RunConfig
from hashgym.agents.dqn import DQN_DEFAULTS
from hashgym.agents.recipe import (
    NUM_ENVS,
    TOTAL_GENERATIONS,
    default_num_envs,
    generation_steps,
    recipe_level_timesteps,
)
from hashgym.agents.train import hierarchical_dqn, resolve_run, train
from hashgym.benchmarks.methods import run_agent
from hashgym.benchmarks.suites import get_suite
from hashgym.cli import main
from hashgym.envs.hierhash import GENERATION_CODINGS
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(branching=(2, 2), n_per_class=6, dim=8, seed=0)
N_TRAIN = len(BANK.indices("train"))
#: the settings that make a run (the env's shape is compared as each run resolved it)
_KEYS = ("algo", "algo_kwargs", "levels", "level_timesteps", "n_constraints", "num_envs",
         "memory_refresh", "resolved")


def _settings(info: dict[str, Any]) -> dict[str, Any]:
    out = {k: info[k] for k in _KEYS}
    out["env_kwargs"] = {k: v for k, v in info.get("env_kwargs", {}).items()
                         if k not in ("bank", "n_bits", "bits_per_step")}
    return json.loads(json.dumps(out, default=str))


def test_recipe_budget_counts_generations() -> None:
    gen = GENERATION_CODINGS * 4 * 1000  # four steps per coding (12 bits, 3 per step)
    assert generation_steps(1000, 4) == gen
    assert generation_steps(1000, 4, None) == gen
    assert generation_steps(1000, 4, 5000) == 5000
    assert recipe_level_timesteps([0, 1], gen) == [gen, (TOTAL_GENERATIONS - 1) * gen]
    assert recipe_level_timesteps([1], gen) == [TOTAL_GENERATIONS * gen]
    assert sum(recipe_level_timesteps([0, 1, 2], gen)) == TOTAL_GENERATIONS * gen
    assert default_num_envs("HierHash-v0") == NUM_ENVS
    assert default_num_envs("CentralHash-v0") == 64
    with pytest.raises(ValueError, match="levels must name at least one level"):
        recipe_level_timesteps([], gen)


@pytest.mark.parametrize(("env_kwargs", "steps_per_image", "generation"), [
    ({}, 4, None),  # 12 bits, the env's 3 per step
    ({"memory_generation": 500}, 4, 500),
    ({"n_bits": 24}, 4, None),  # the env's default at 24 bits: 6 per step, four steps
    ({"n_bits": 24, "bits_per_step": 3}, 8, None),
    ({"n_bits": 48}, 6, None),
    ({"split": "query"}, 4, None),
])
def test_train_counts_the_budget_in_the_envs_generations(
        env_kwargs: dict[str, Any], steps_per_image: int, generation: int | None) -> None:
    plan = resolve_run(RunConfig(env_kwargs={"bank": BANK, **env_kwargs}, levels=[1]))
    n_images = len(BANK.indices(env_kwargs.get("split", "train")))
    assert plan.shape["steps_per_image"] == steps_per_image
    expected = generation or GENERATION_CODINGS * steps_per_image * n_images
    assert plan.steps == [TOTAL_GENERATIONS * expected]
    # the record holds the shape the env resolved, given or not
    assert plan.record()["resolved"]["n_bits"] == env_kwargs.get("n_bits", plan.shape["n_bits"])


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
    assert expected["level_timesteps"] == recipe_level_timesteps(
        [0, 1], generation_steps(N_TRAIN, 4))
    assert expected["resolved"]["n_bits"] == 12  # recorded though none of them gave it
    assert expected["num_envs"] == NUM_ENVS
    assert expected["memory_refresh"] is None
    assert expected["algo_kwargs"]["gamma"] == DQN_DEFAULTS["gamma"]
    for name, info in (("hashgym train", cli), ("hierarchical_dqn", front),
                       ("drlhih suite", bench)):
        assert _settings(info) == expected, name
    # with no env named they train HierHash-v1 (the same env as drlhih's v0 at 12 bits), as do
    # the lengths suite's DQN cells
    lengths = get_suite("lengths").method("dqn-hier").params
    assert cli["env_id"] == front["env_id"] == RunConfig().env_id == lengths["env_id"] == (
        "HierHash-v1")
