"""MemoryRefresh: the code memory becomes the agent's greedy codes, on schedule, at every level."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from hashgym.agents.encode import encode_with_env
from hashgym.agents.memory import MemoryRefresh
from hashgym.agents.train import TrainError, train
from hashgym.envs.sb3 import native_vector_env
from hashgym.synthetic import make_hierarchical_bank

torch.set_num_threads(1)
BANK = make_hierarchical_bank(seed=0)
_REPLAY = {"learning_starts": 32, "batch_size": 16, "buffer_size": 1000}


class _Spy(BaseCallback):
    """After each step, records whether the memory equals the greedy codes (``MemoryRefresh``
    runs before it in the callback list) and the step count."""

    def __init__(self) -> None:
        super().__init__()
        self.matches: list[tuple[int, bool, int | None]] = []

    def _on_step(self) -> bool:
        venv = self.model.get_env()
        env = native_vector_env(venv)
        greedy = encode_with_env(self.model, venv)
        self.matches.append((self.num_timesteps, bool(np.array_equal(env.memory, greedy)),
                             env.level))
        return True


def test_refresh_sets_the_memory_to_greedy_codes_on_schedule() -> None:
    spy = _Spy()
    result = train("dqn", "HierHash-v0", {"bank": BANK}, num_envs=8, levels=[0, 1],
                   level_timesteps=[96, 96], algo_kwargs=_REPLAY, memory_refresh=32,
                   callback=spy)
    refreshed = {step for step, same, _ in spy.matches if same}
    # the refresh runs at the vector step that crosses each multiple of 32 steps (8 envs: every
    # 4th vector step), at both levels
    for multiple in range(32, 193, 32):
        assert multiple in refreshed
    assert {level for step, _, level in spy.matches if step in refreshed} == {0, 1}
    assert result.info["memory_refresh"] == 32


def test_without_refresh_the_memory_is_only_written_by_episodes() -> None:
    spy = _Spy()
    train("dqn", "HierHash-v0", {"bank": BANK}, num_envs=8, levels=[0],
          level_timesteps=[64], algo_kwargs=_REPLAY, callback=spy)
    # the memory starts random and only the coded images' rows change: it never equals the
    # greedy codes of all training images after a handful of episodes
    assert not any(same for _, same, _ in spy.matches)


def test_refresh_counts_and_callback_direct_use() -> None:
    result = train("dqn", "HierHash-v0", {"bank": BANK}, num_envs=4, levels=[0],
                   level_timesteps=[40], algo_kwargs=_REPLAY)
    callback = MemoryRefresh(every=1000)
    callback.init_callback(result.model)
    env = native_vector_env(result.model.get_env())
    env.memory[:] = 0
    callback.refresh()
    assert callback.refreshes == 1
    np.testing.assert_array_equal(env.memory, encode_with_env(result.model, result.model.get_env()))


@pytest.mark.parametrize("every", [0, -5, 2.5, True, "10"])
def test_callback_rejects_bad_periods(every) -> None:
    with pytest.raises(ValueError, match="the refresh period must be a positive number of environment steps"):
        MemoryRefresh(every)


def test_callback_needs_memory_mode() -> None:
    result = train("dqn", "HierHash-v0", {"bank": BANK, "mode": "triplet"}, num_envs=4,
                   levels=[0], level_timesteps=[24], algo_kwargs=_REPLAY)
    callback = MemoryRefresh(every=10)
    callback.init_callback(result.model)
    with pytest.raises(ValueError, match="needs HierHash in memory mode.*mode='triplet'"):
        callback.refresh()


@pytest.mark.parametrize(("env_id", "env_kwargs", "refresh", "match"), [
    ("HierHash-v0", {"mode": "triplet"}, 10, "memory mode only"),
    ("CentralHash-v0", {"n_bits": 8}, 10, "memory mode only"),
    ("HierHash-v0", {}, 0, ("memory_refresh: the refresh period must be a positive number of "
                            "environment steps, got 0")),
    ("HierHash-v0", {}, 1.5, "memory_refresh: .* got 1.5"),
])
def test_train_rejects_bad_refresh(env_id: str, env_kwargs: dict, refresh, match: str) -> None:
    with pytest.raises(TrainError, match=match):
        train("ppo", env_id, {"bank": BANK, **env_kwargs}, total_timesteps=8, num_envs=2,
              memory_refresh=refresh)
