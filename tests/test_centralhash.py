"""CentralHash-v0: hand-computed SCIHCGRL rewards (eqs. (4.1)–(4.2)) and the use of hash centers."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hashgym  # noqa: F401
from hashgym.centers import hash_centers, multilabel_centers
from hashgym.codes import hamming
from hashgym.envs.centralhash import center_reward, hard_center_reward
from hashgym.synthetic import make_hierarchical_bank, make_multilabel_bank

BANK = make_hierarchical_bank(branching=(3, 2), n_per_class=8, dim=16, seed=0)
EPS = 1e-3


def test_center_reward_by_hand() -> None:
    centers = np.array([[1, 0, 1, 1]])
    right, wrong = -math.log(1 - EPS), -math.log(EPS)
    assert center_reward(np.array([[1.0, 0, 1, 1]]), centers, EPS)[0] == pytest.approx(1 - right)
    assert center_reward(np.array([[0.0, 0, 1, 1]]), centers, EPS)[0] == pytest.approx(
        1 - (wrong + 3 * right) / 4)
    half = center_reward(np.full((1, 4), 0.5), centers, EPS)[0]
    assert half == pytest.approx(1 - math.log(2))
    probs = np.array([[0.9, 0.2, 0.6, 0.99]])
    bce = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.99)) / 4
    assert center_reward(probs, centers, EPS)[0] == pytest.approx(1 - bce)


def _pinned(**kwargs) -> tuple[gym.Env, int, np.ndarray]:
    env = gym.make("CentralHash-v0", bank=BANK, **kwargs).unwrapped
    row = int(BANK.indices("train")[5])
    _, info = env.reset(seed=0, options={"indices": row})
    return env, row, info


def test_info_carries_the_hadamard_center() -> None:
    env, row, info = _pinned(n_bits=8, level=1)  # 6 classes <= 8 bits: Hadamard rows
    expected = hash_centers(6, 8)[BANK.labels[row, 1]]
    assert info["hash_center"].tolist() == expected.tolist()
    assert info["label"] == BANK.labels[row, 1] and info["index"] == row
    d = hamming(env.class_centers, env.class_centers)
    assert np.all(d[~np.eye(6, dtype=bool)] == 4)  # the env uses mutually K/2-apart centers


def test_reward_on_a_center_with_known_bits() -> None:
    env, _, info = _pinned(n_bits=8, level=0, global_weight=0.5)
    center = info["hash_center"]
    _, r, terminated, _, _ = env.step(center)
    assert terminated and r == pytest.approx(1.5 * (1 + math.log(1 - EPS)))
    env.reset(options={"indices": info["index"]})
    flipped = center.copy()
    flipped[:2] ^= 1
    _, r, *_ = env.step(flipped)
    one = 1 - (2 * -math.log(EPS) + 6 * -math.log(1 - EPS)) / 8
    assert r == pytest.approx(1.5 * one)


def test_chunked_local_and_global_rewards() -> None:
    env, _, info = _pinned(n_bits=8, bits_per_step=4, level=1, global_weight=2.0)
    c = info["hash_center"]
    first = c[:4].copy()
    first[0] ^= 1
    _, r1, done1, _, _ = env.step(first)
    _, r2, done2, _, _ = env.step(c[4:])
    right, wrong = -math.log(1 - EPS), -math.log(EPS)
    assert not done1 and done2
    assert r1 == pytest.approx(1 - (wrong + 3 * right) / 4)
    assert r2 == pytest.approx((1 - right) + 2.0 * (1 - (wrong + 7 * right) / 8))


def test_probability_actions_use_the_bce_of_p() -> None:
    env, _, info = _pinned(n_bits=4, level=0, action_type="probability", global_weight=0.0)
    c = info["hash_center"].astype(float)
    p = np.where(c == 1, 0.8, 0.3).astype(np.float32)
    obs, r, *_ = env.step(p)
    ones = int(c.sum())  # every bit is "right": BCE = -ln 0.8 on 1-bits, -ln 0.7 on 0-bits
    assert r == pytest.approx(1 + (ones * math.log(0.8) + (4 - ones) * math.log(0.7)) / 4)
    assert obs["code"].tolist() == (c * 2 - 1).tolist()  # p >= 0.5 emits the center's bits


def test_multilabel_bank_uses_centroid_centers() -> None:
    bank = make_multilabel_bank(n=80, n_concepts=6, dim=16, seed=1)
    env = gym.make("CentralHash-v0", bank=bank, n_bits=16).unwrapped
    train = bank.indices("train")
    expected = multilabel_centers(bank.multi_hot[train], hash_centers(6, 16))
    np.testing.assert_array_equal(env.image_centers, expected)
    _, info = env.reset(seed=0, options={"indices": train[3]})
    assert info["label"].tolist() == bank.multi_hot[train[3]].tolist()
    assert info["hash_center"].tolist() == expected[3].tolist()


@pytest.mark.parametrize("n_bits", [12, 16, 24, 32, 48, 64])
def test_every_supported_length_builds(n_bits: int) -> None:
    env = gym.make("CentralHash-v0", n_bits=n_bits, level=0).unwrapped  # 20 classes
    assert env.class_centers.shape == (20, n_bits)
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[2]


def test_multilabel_errors() -> None:
    bank = make_multilabel_bank(n=40, n_concepts=4, dim=8, seed=0)
    with pytest.raises(ValueError, match="level applies to single-label banks"):
        gym.make("CentralHash-v0", bank=bank, level=0)
    with pytest.raises(ValueError, match="needs a bank with multi_hot labels"):
        gym.make("CentralHash-v0", bank=BANK, multilabel=True)
    with pytest.raises(ValueError, match="action masks exist for action_type='binary' only"):
        gym.make("CentralHash-v0", bank=BANK, action_type="probability").unwrapped.action_masks()


def test_hard_center_reward_equals_the_bce_of_hard_bits() -> None:
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (50, 12)).astype(np.uint8)
    centers = rng.integers(0, 2, (50, 12)).astype(np.uint8)
    h = (bits != centers).sum(axis=1)
    for eps in (EPS, 0.1):
        np.testing.assert_allclose(hard_center_reward(h, 12, eps),
                                   center_reward(bits.astype(float), centers, eps), atol=1e-12)
    assert hard_center_reward(np.array([0]), 4, EPS)[0] == pytest.approx(1 + math.log(1 - EPS))


@pytest.mark.parametrize("bits_per_step", [2, 8])
def test_binary_vector_rewards_match_brute_force_bce(bits_per_step: int) -> None:
    """Binary actions are rewarded from Hamming distances; recompute every step's local and
    global reward with the BCE of eqs. (4.1)-(4.2) (center_reward) on the emitted bits."""
    venv = gym.make_vec("CentralHash-v0", num_envs=12, bank=BANK, n_bits=8,
                        bits_per_step=bits_per_step, global_weight=0.7)
    _, info = venv.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(3):  # episodes
        centers = info["hash_center"].astype(float)
        emitted = []
        for step in range(8 // bits_per_step):
            chunk = rng.integers(0, 2, (12, bits_per_step)).astype(np.int8)
            _, rewards, terminated, _, info = venv.step(chunk)
            emitted.append(chunk)
            lo = step * bits_per_step
            expected = center_reward(chunk.astype(float), centers[:, lo:lo + bits_per_step], EPS)
            if terminated.all():
                expected = expected + 0.7 * center_reward(
                    np.concatenate(emitted, 1).astype(float), centers, EPS)
            np.testing.assert_allclose(rewards, expected, rtol=0, atol=1e-12)


def test_auto_centre_distance_lets_100_classes_code_at_12_bits() -> None:
    bank = make_hierarchical_bank(branching=(10, 10), n_per_class=2, dim=8, seed=0)
    with pytest.raises(ValueError, match=r"n_classes=100 .* n_bits=12 .* pass 'auto'"):
        gym.make("CentralHash-v0", bank=bank, n_bits=12)
    env = gym.make("CentralHash-v0", bank=bank, n_bits=12, min_distance="auto")
    np.testing.assert_array_equal(env.unwrapped.class_centers,
                                  hash_centers(100, 12, min_distance=2))
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
