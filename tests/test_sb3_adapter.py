"""The Stable-Baselines3 bridge: VecEnv conventions, every algorithm trains, and PPO learns."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import QRDQN, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.vec_env import VecMonitor

from hashgym.envs import HashEnvError
from hashgym.envs.sb3 import SB3VecEnv, make_sb3_vec_env
from hashgym.synthetic import make_hierarchical_bank

torch.set_num_threads(1)
BANK = make_hierarchical_bank(seed=0)


def test_vec_env_conventions() -> None:
    venv = SB3VecEnv(gym.make_vec("HierHash-v0", num_envs=5, bank=BANK, n_bits=4,
                                  bits_per_step=2))
    venv.seed(3)
    obs = venv.reset()
    assert obs["features"].shape == (5, 32) and len(venv.reset_infos) == 5
    assert "triplet" in venv.reset_infos[0]
    obs, rewards, dones, infos = venv.step(np.zeros(5, dtype=np.int64))
    assert rewards.dtype == np.float32 and not dones.any() and len(infos) == 5
    assert "terminal_observation" not in infos[0]
    obs, rewards, dones, infos = venv.step(np.full(5, 3))
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is False
        assert info["terminal_observation"]["code"].tolist() == [-1, -1, 1, 1]
    assert np.all(obs["code"] == 0)  # already reset
    venv.seed(3)
    again = venv.reset()
    venv.seed(3)
    np.testing.assert_array_equal(venv.reset()["features"], again["features"])


def test_attributes_methods_and_masks() -> None:
    venv = SB3VecEnv(gym.make_vec("HierHash-v0", num_envs=4, bank=BANK), info_keys=())
    venv.reset()
    assert venv.get_attr("n_bits") == [12] * 4 and venv.get_attr("n_bits", [1, 2]) == [12, 12]
    assert venv.has_attr("memory") and not venv.has_attr("no_such_thing")
    masks = np.stack(venv.env_method("action_masks"))
    assert masks.shape == (4, 8) and masks.all()
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 4
    codes = np.zeros((len(venv.vector_env.split_rows), 12), np.uint8)
    venv.env_method("set_level", 1, codes)
    assert venv.get_attr("level") == [1] * 4
    _, _, _, infos = venv.step(np.zeros(4, dtype=np.int64))
    assert infos == [{}] * 4  # info_keys=() drops the env's infos


def test_needs_same_step_autoreset() -> None:
    sync = gym.make_vec("HierHash-v0", num_envs=2, bank=BANK, vectorization_mode="sync")
    with pytest.raises(HashEnvError, match="AutoresetMode.SAME_STEP"):
        SB3VecEnv(sync)


ALGOS = [
    (DQN, "MultiInputPolicy", {"learning_starts": 32, "buffer_size": 1000, "batch_size": 16},
     "HierHash-v0", {}),
    (PPO, "MultiInputPolicy", {"n_steps": 8, "batch_size": 64, "n_epochs": 1}, "HierHash-v0",
     {"mode": "triplet"}),
    (A2C, "MultiInputPolicy", {"n_steps": 4}, "CentralHash-v0", {"n_bits": 16}),
    (QRDQN, "MultiInputPolicy", {"learning_starts": 32, "buffer_size": 1000, "batch_size": 16},
     "HierHash-v0", {}),
    (RecurrentPPO, "MultiInputLstmPolicy", {"n_steps": 8, "batch_size": 64, "n_epochs": 1},
     "CentralHash-v0", {"n_bits": 16, "bits_per_step": 4, "action_type": "probability"}),
    (MaskablePPO, "MultiInputPolicy", {"n_steps": 8, "batch_size": 64, "n_epochs": 1},
     "CentralHash-v0", {"n_bits": 8, "bits_per_step": 2}),
]


@pytest.mark.parametrize(("algo", "policy", "kwargs", "env_id", "env_kwargs"), ALGOS,
                         ids=[a[0].__name__ for a in ALGOS])
def test_every_algorithm_trains(algo, policy: str, kwargs: dict, env_id: str,
                                env_kwargs: dict) -> None:
    venv = make_sb3_vec_env(env_id, num_envs=16, bank=BANK, **env_kwargs)
    assert isinstance(venv, VecMonitor)
    model = algo(policy, venv, seed=0, device="cpu", **kwargs).learn(320)
    assert model.num_timesteps >= 320
    assert len(model.ep_info_buffer) > 0  # VecMonitor saw finished episodes


def _mean_reward(act, seed: int = 123) -> float:
    venv = make_sb3_vec_env("CentralHash-v0", num_envs=256, bank=BANK, n_bits=8, level=0,
                            monitor=False)
    venv.seed(seed)
    obs = venv.reset()
    _, rewards, dones, _ = venv.step(act(obs))
    assert dones.all()
    return float(rewards.mean())


@pytest.mark.slow
def test_ppo_through_the_adapter_beats_a_random_policy() -> None:
    rng = np.random.default_rng(0)
    random_mean = _mean_reward(lambda obs: rng.integers(0, 2, (256, 8)))
    venv = make_sb3_vec_env("CentralHash-v0", num_envs=64, bank=BANK, n_bits=8, level=0)
    model = PPO("MultiInputPolicy", venv, n_steps=4, batch_size=128, n_epochs=4,
                learning_rate=3e-3, seed=0, device="cpu").learn(4096)
    trained_mean = _mean_reward(lambda obs: model.predict(obs, deterministic=True)[0])
    # random bits: about 2 * (1 - 6.9 / 2) = -4.9; the centers' own bits: about 2
    assert random_mean < -3.5
    assert trained_mean > random_mean + 3.0


def test_terminal_step_infos_describe_the_ended_episode():
    """SB3's convention (as DummyVecEnv's): infos at a done step belong to the episode that ended;
    the new episode's infos are in ``reset_infos``."""
    venv = make_sb3_vec_env("CentralHash-v0", num_envs=4, monitor=False, n_bits=32)
    native = venv.vector_env
    venv.seed(0)
    venv.reset()
    coded = [info["index"] for info in venv.reset_infos]
    for _ in range(3):
        _, _, dones, infos = venv.step(np.ones((4, 32), dtype=np.int8))
        assert dones.all()
        assert [info["index"] for info in infos] == coded
        assert all("terminal_observation" in info for info in infos)
        fine = native.bank.labels[coded, -1]
        np.testing.assert_array_equal([info["label"] for info in infos], fine)
        np.testing.assert_array_equal([info["hash_center"] for info in infos],
                                      native.class_centers[fine])
        following = [info["index"] for info in venv.reset_infos]
        assert following != coded
        coded = following
