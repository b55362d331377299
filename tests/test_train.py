"""train(): every algorithm on the env it fits, save/load, budgets, errors, in-process resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from hashgym.agents.curriculum import LOG_EPISODES_PER_ENV
from hashgym.agents.encode import encode
from hashgym.agents.saving import load_model
from hashgym.agents.train import ALGORITHMS, TrainError, algorithm_class, train
from hashgym.envs.hierhash import random_memory
from hashgym.synthetic import make_hierarchical_bank

torch.set_num_threads(1)
BANK = make_hierarchical_bank(seed=0)
_REPLAY = {"learning_starts": 32, "batch_size": 16, "buffer_size": 1000}
_ROLLOUT = {"n_steps": 8, "batch_size": 64, "n_epochs": 1}
_PROBS = {"n_bits": 8, "action_type": "probability"}

CASES = [
    ("dqn", "HierHash-v0", {}, _REPLAY),
    ("qrdqn", "HierHash-v0", {}, _REPLAY),
    ("ppo", "HierHash-v0", {}, _ROLLOUT),
    ("a2c", "CentralHash-v0", {"n_bits": 8}, {"n_steps": 4}),
    ("trpo", "CentralHash-v0", {"n_bits": 8}, {"n_steps": 8, "batch_size": 64}),
    ("recurrentppo", "CentralHash-v0", {**_PROBS, "bits_per_step": 4}, _ROLLOUT),
    ("maskableppo", "CentralHash-v0", {"n_bits": 8, "bits_per_step": 2}, _ROLLOUT),
    ("ars", "HierHash-v0", {}, {"n_delta": 2}),
    ("sac", "CentralHash-v0", _PROBS, _REPLAY),
    ("td3", "CentralHash-v0", _PROBS, _REPLAY),
    ("reinforce", "CentralHash-v0", {"n_bits": 8}, {}),
]


@pytest.mark.parametrize(("algo", "env_id", "env_kwargs", "algo_kwargs"), CASES,
                         ids=[c[0] for c in CASES])
def test_every_algorithm_trains_saves_and_loads(tmp_path: Path, algo: str, env_id: str,
                                                env_kwargs: dict, algo_kwargs: dict) -> None:
    result = train(algo, env_id, {"bank": BANK, **env_kwargs}, total_timesteps=256,
                   num_envs=16, seed=0, algo_kwargs=algo_kwargs, out=tmp_path,
                   levels=[0] if env_id == "HierHash-v0" else None)
    assert result.timesteps >= 256 and result.path == tmp_path / "model.zip"
    codes = encode(result.model, BANK, "query")
    n_bits = env_kwargs.get("n_bits", 12)
    assert codes.shape == (len(BANK.indices("query")), n_bits) and codes.dtype == np.uint8
    loaded, info = load_model(result.path)
    assert info["algo"] == algo and info["env_id"] == env_id
    np.testing.assert_array_equal(encode(loaded, BANK, "query"), codes)
    np.testing.assert_array_equal(encode(result.path, BANK, "query"), codes)


def test_registry_names_and_classes() -> None:
    assert {"dqn", "qrdqn", "ppo", "a2c", "recurrentppo", "maskableppo", "trpo", "ars", "sac",
            "td3"} <= set(ALGORITHMS)
    assert algorithm_class("PPO") is PPO and algorithm_class("Recurrent-PPO").__name__ == \
        "RecurrentPPO"
    assert algorithm_class(PPO) is PPO


def test_algorithm_class_is_accepted() -> None:
    result = train(PPO, "CentralHash-v0", {"bank": BANK, "n_bits": 8}, total_timesteps=128,
                   num_envs=16, algo_kwargs=_ROLLOUT)
    assert result.info["algo"] == "ppo" and result.path is None


@pytest.mark.parametrize(("algo", "env_id", "env_kwargs", "match"), [
    ("nope", "HierHash-v0", {}, "unknown algorithm 'nope'"),
    ("dqn", "CentralHash-v0", {}, "supports Discrete action spaces.*use HierHash \\(Discrete\\)"),
    ("sac", "HierHash-v0", {}, "action_type='probability'"),
    ("sac", "CentralHash-v0", {}, "supports Box"),
    ("recurrentppo", "CentralHash-v0", {}, "Discrete, MultiDiscrete, Box"),
    ("ppo", "NoSuchEnv-v0", {}, "unknown env id"),
    (3, "HierHash-v0", {}, "algo must be a name"),
])
def test_algorithms_that_do_not_fit(algo, env_id: str, env_kwargs: dict, match: str) -> None:
    with pytest.raises(TrainError, match=match):
        train(algo, env_id, {"bank": BANK, **env_kwargs}, total_timesteps=8, num_envs=2)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"total_timesteps": 8, "level_timesteps": 8}, "not both"),
    ({"total_timesteps": 8, "levels": [2]}, r"must be levels of the bank \(0..1\)"),
    ({"level_timesteps": [8], "levels": [0, 1]}, "gives 1 values for 2 levels"),
    ({"level_timesteps": -1, "levels": [0]}, "must be >= 0"),
    ({"total_timesteps": 8, "env_kwargs": {"n_constraints": 5}}, "train\\(\\)'s own argument"),
    ({"total_timesteps": 8, "algo_kwargs": {"no_such_arg": 1}}, "bad arguments for DQN"),
    ({"total_timesteps": 8, "algo_kwargs": {"learning_rate": lambda p: p}}, "cannot store"),
])
def test_bad_budgets_and_arguments(kwargs: dict, match: str) -> None:
    env_kwargs = {"bank": BANK, **kwargs.pop("env_kwargs", {})}
    with pytest.raises(TrainError if "cannot store" not in match else ValueError, match=match):
        train("dqn", "HierHash-v0", env_kwargs, num_envs=2, **kwargs)


def test_level_only_run_starts_from_random_codes() -> None:
    """levels=[1] without prev_codes: DRLHIH's level-1-only variant, memory from seeded random
    codes: one per fine class by default (``memory_init="class"``), one per image otherwise."""
    n = len(BANK.indices("train"))
    fine = BANK.labels[BANK.indices("train"), 1]
    result = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=0, levels=[1],
                   num_envs=2, seed=3)
    env = result.model.get_env()
    expected = random_memory(fine, 12, np.random.default_rng(3), "class")
    np.testing.assert_array_equal(env.get_attr("prev_codes")[0], expected)
    assert all(np.unique(expected[fine == c], axis=0).shape[0] == 1 for c in np.unique(fine))
    # the memory is those codes with each class moved level_split = 1 bit
    assert ((env.get_attr("memory")[0] ^ expected).sum(axis=1) == 1).all()
    assert env.get_attr("level")[0] == 1
    assert env.get_attr("rho")[0] == 1.0  # no previous level to refine
    kept = train("dqn", "HierHash-v0", {"bank": BANK, "rho": 0.8}, total_timesteps=0,
                 levels=[1], num_envs=2, seed=3).model.get_env()
    assert kept.get_attr("rho")[0] == 0.8
    paper = train("dqn", "HierHash-v0", {"bank": BANK, "memory_init": "image", "level_split": 0},
                  total_timesteps=0, levels=[1], num_envs=2, seed=3).model.get_env()
    bits = np.random.default_rng(3).integers(0, 2, (n, 12), dtype=np.uint8)
    np.testing.assert_array_equal(paper.get_attr("prev_codes")[0], bits)
    np.testing.assert_array_equal(paper.get_attr("memory")[0], bits)


def test_budget_needed_without_a_recipe() -> None:
    """Only HierHash-v0 has a recipe's budget (agents/recipe.py; tests/test_recipe.py)."""
    with pytest.raises(TrainError, match="give a step budget"):
        train("ppo", "CentralHash-v0", {"bank": BANK}, num_envs=2)


def test_levels_only_for_hierhash() -> None:
    with pytest.raises(TrainError, match="apply to HierHash, not CentralHash-v0"):
        train("ppo", "CentralHash-v0", {"bank": BANK}, total_timesteps=8, levels=[0])


class _Interrupt(BaseCallback):
    """Stops the process (as a kill would) once the run has checkpointed at level index 1."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out

    def _on_step(self) -> bool:
        state = self.out / "checkpoints" / "state.json"
        if state.exists() and json.loads(state.read_text())["level_index"] == 1:
            raise KeyboardInterrupt
        return True


def test_resume_continues_from_the_checkpoint(tmp_path: Path) -> None:
    args = {"env_kwargs": {"bank": BANK}, "num_envs": 16, "seed": 0, "levels": [0, 1],
                "level_timesteps": [384, 512], "algo_kwargs": _REPLAY, "out": tmp_path,
                "checkpoint_every": 64}
    with pytest.raises(KeyboardInterrupt):
        train("dqn", "HierHash-v0", callback=_Interrupt(tmp_path), **args)
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["level_index"] == 1 and 384 <= state["num_timesteps"] < 896
    with np.load(tmp_path / "checkpoints" / state["state"]) as saved:
        prev_codes = saved["prev_codes"]
        # the env's whole memory state: frozen memory, latest codes, generation counters
        assert {"memory_memory", "memory_latest", "memory_generation_steps",
                "memory_generations"} <= set(saved.files)
        assert int(saved["memory_generation_steps"]) > 0
    assert prev_codes.shape == (len(BANK.indices("train")), 12)
    first_log = tmp_path / "logs" / "from-000000000" / "progress.csv"
    logged = first_log.read_bytes()
    assert logged  # the interrupted attempt logged (6 episodes of each env at level 0)
    result = train("dqn", "HierHash-v0", **args)
    assert result.resumed_from == state["num_timesteps"]
    assert result.timesteps == 896
    # the resumed attempt logs in its own folder and leaves the first one whole
    assert first_log.read_bytes() == logged
    assert (tmp_path / "logs" / f"from-{state['num_timesteps']:09d}" / "progress.csv").exists()
    # continuing changed neither the level reached nor the recorded previous-level codes
    final = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert final["final"] and final["level_index"] == 1
    with np.load(tmp_path / "checkpoints" / final["state"]) as saved:
        np.testing.assert_array_equal(saved["prev_codes"], prev_codes)
    # a finished run is not trained again; a different run in the same folder is refused
    again = train("dqn", "HierHash-v0", **args)
    assert again.resumed_from == 896 and again.timesteps == 896
    assert first_log.read_bytes() == logged
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "from-000000000", f"from-{state['num_timesteps']:09d}", "from-000000896"]
    with pytest.raises(TrainError, match="different run .*seed"):
        train("dqn", "HierHash-v0", **{**args, "seed": 1})
    fresh = train("dqn", "HierHash-v0", **{**args, "seed": 1, "level_timesteps": [64, 0]},
                  resume=False)
    assert fresh.resumed_from is None and fresh.timesteps == 64


def test_replay_buffer_round_trip(tmp_path: Path) -> None:
    from hashgym.agents.saving import ModelFileError, load_replay_buffer, save_replay_buffer

    result = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=96, num_envs=16,
                   levels=[0], algo_kwargs=_REPLAY)
    buffer = result.model.replay_buffer
    save_replay_buffer(buffer, tmp_path / "buffer.npz")
    other = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=0, num_envs=16,
                  levels=[0], algo_kwargs=_REPLAY).model.replay_buffer
    load_replay_buffer(other, tmp_path / "buffer.npz")
    assert other.pos == buffer.pos and other.full == buffer.full
    n = buffer.pos
    np.testing.assert_array_equal(other.observations["features"][:n],
                                  buffer.observations["features"][:n])
    np.testing.assert_array_equal(other.rewards[:n], buffer.rewards[:n])
    small = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=0, num_envs=16,
                  levels=[0], algo_kwargs={**_REPLAY, "buffer_size": 500}).model.replay_buffer
    with pytest.raises(ModelFileError, match=r"holds 62 x 16 slots, the model.s has 31 x 16"):
        load_replay_buffer(small, tmp_path / "buffer.npz")


def test_logs_and_tensorboard_flag(tmp_path: Path) -> None:
    import importlib.util

    result = train("ppo", "CentralHash-v0", {"bank": BANK, "n_bits": 8}, total_timesteps=128,
                   num_envs=16, algo_kwargs=_ROLLOUT, out=tmp_path, tensorboard=False)
    csv = tmp_path / "logs" / "from-000000000" / "progress.csv"
    assert csv.exists() and "rollout/ep_rew_mean" in csv.read_text().splitlines()[0]
    assert json.loads((tmp_path / "config.json").read_text())["algo"] == "ppo"
    assert result.path.exists()
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(TrainError, match="needs the tensorboard package"):
            train("ppo", "CentralHash-v0", {"bank": BANK, "n_bits": 8}, total_timesteps=8,
                  num_envs=16, algo_kwargs=_ROLLOUT, out=tmp_path / "tb", tensorboard=True)
    else:
        train("ppo", "CentralHash-v0", {"bank": BANK, "n_bits": 8}, total_timesteps=128,
              num_envs=16, algo_kwargs=_ROLLOUT, out=tmp_path / "tb", tensorboard=True)
        assert list((tmp_path / "tb" / "logs").rglob("events.out.tfevents.*"))


def test_off_policy_logs_once_per_four_episodes_of_every_env(tmp_path: Path) -> None:
    # 16 envs x 16 episodes of 4 steps: SB3's default (a dump every 4 episodes over all envs)
    # would write 64 rows, 16 at every vector step that ends the envs' episodes together
    result = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=16 * 4 * 16,
                   num_envs=16, levels=[0], algo_kwargs=_REPLAY, out=tmp_path,
                   tensorboard=False)
    assert result.timesteps == 1024
    rows = (tmp_path / "logs" / "from-000000000" / "progress.csv").read_text().splitlines()
    assert "rollout/exploration_rate" in rows[0]
    assert len(rows) - 1 == 256 // (LOG_EPISODES_PER_ENV * 16) == 4
