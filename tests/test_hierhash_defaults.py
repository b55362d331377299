"""HierHash-v0's default estimator and memory generations: the expected and the class-mean
rewards against brute force over every class member and every negative, generations that freeze
the reward's memory, their errors, and the single and vector env agreeing."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hashgym  # noqa: F401
from hashgym.envs import is_hierhash
from hashgym.envs.constraints import TRIPLETS_PER_IMAGE
from hashgym.envs.core import HashEnvError
from hashgym.envs.hierhash import (
    GENERATION_CODINGS,
    PAPER_SETTINGS,
    default_bits_per_step,
    default_margin,
    quarter_margin,
    resolve_margin,
    triplet_value,
)
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(branching=(3, 2), n_per_class=8, dim=16, seed=0)
TRAIN = BANK.indices("train")


def _brute_distance(code: np.ndarray, members: np.ndarray) -> float:
    """The mean Hamming distance from ``code`` to every row of ``members``, pair by pair."""
    return float(np.mean([np.sum(code != m) for m in members]))


def _brute_pair_distance(first: np.ndarray, second: np.ndarray) -> float:
    """The mean Hamming distance over every (first row, second row) pair."""
    return float(np.mean([np.sum(a != b) for a in first for b in second]))


def test_defaults_are_the_learnable_setting() -> None:
    env = gym.make("HierHash-v0", bank=BANK).unwrapped
    env.reset(seed=0)
    assert env.estimator == "expected"
    assert env.memory_roles == "anchor"
    assert (env.bits_per_step, env.margin) == (3, 3.0)  # the paper's shape at 12 bits
    assert env.core.rho == 0.9
    assert env.core.sampler.sibling_fraction == 0.0  # level 0 has no siblings
    assert env.memory_generation == GENERATION_CODINGS * 4 * TRAIN.size  # T = 12 / 3
    long_codes = gym.make("HierHash-v0", bank=BANK, n_bits=24).unwrapped
    assert (long_codes.bits_per_step, long_codes.steps_per_image) == (6, 4)
    assert long_codes.margin == pytest.approx(3 * np.sqrt(2))
    assert long_codes.memory_generation == GENERATION_CODINGS * 4 * TRAIN.size
    # coding every role leaves the negative's expectation to the class-mean estimator
    every_role = gym.make("HierHash-v0", bank=BANK, memory_roles="all").unwrapped
    assert every_role.estimator == "class-mean"
    assert env.constraints.shape == (TRIPLETS_PER_IMAGE * TRAIN.size, 3)
    # any other class as the negative: level-1 negatives may leave the anchor's parent
    env.set_level(1, prev_codes=np.zeros((TRAIN.size, 12), np.uint8))
    env.reset(seed=0)
    triplets = env.constraints
    parent = BANK.labels[:, 0]
    # half of the level-1 negatives are siblings, the rest any other class
    assert env.core.sampler.sibling_fraction == 0.5
    assert (parent[triplets[:, 0]] != parent[triplets[:, 2]]).any()
    assert (parent[triplets[:, 0]] == parent[triplets[:, 2]]).any()
    # the paper's setting is one argument set away
    paper = gym.make("HierHash-v0", bank=BANK, **PAPER_SETTINGS).unwrapped
    paper.reset(seed=0)
    assert (paper.estimator, paper.memory_generation, paper.memory_roles) == ("sample", None, "all")
    assert paper.constraints.shape == (4000, 3)


@pytest.mark.parametrize("level", [0, 1])
def test_class_mean_reward_matches_brute_force(level: int) -> None:
    """Every step's reward is eq. (1) on the mean distances to every member of the positive's and
    the negative's level-``l`` classes in the memory (eqs. (4)-(5) added at level 1)."""
    rng = np.random.default_rng(level)
    venv, prev, memory, triplets = _random_memory_env(rng, level, estimator="class-mean")
    classes = BANK.labels[TRAIN, level]
    a, p, n = triplets.T

    def value_of(j: int, prefix: np.ndarray) -> float:
        k = prefix.size
        d_pos = _brute_distance(prefix, memory[classes == classes[p[j]], :k])
        d_neg = _brute_distance(prefix, memory[classes == classes[n[j]], :k])
        value = -max(0.0, 2.5 * k / 6 + d_pos - d_neg)
        return 0.7 * value - 0.3 * 0.5 * np.sum(prefix != prev[a[j], :k]) if level else value

    _check_dense_rewards(venv, rng, value_of)


def _random_memory_env(rng: np.random.Generator, level: int, **kwargs: object
                       ) -> tuple[gym.vector.VectorEnv, np.ndarray, np.ndarray, np.ndarray]:
    """An 8-env, 6-bit, 2-bits-per-step env at ``level`` with random ``prev_codes`` (level 1:
    λ = 0.5, ρ = 0.7, no split) and a random memory, reset: ``(venv, prev, memory, triplets)``,
    the triplets as split positions of the first episodes."""
    prev = rng.integers(0, 2, (TRAIN.size, 6)).astype(np.uint8)
    if level:
        kwargs = {"prev_codes": prev, "lam": 0.5, "rho": 0.7, "level_split": 0, **kwargs}
    venv = gym.make_vec("HierHash-v0", num_envs=8, bank=BANK, n_bits=6, bits_per_step=2,
                        margin=2.5, level=level, **kwargs)
    venv.reset(seed=level)
    memory = rng.integers(0, 2, (TRAIN.size, 6)).astype(np.uint8)
    venv.unwrapped.set_memory(memory)
    _, info = venv.reset()
    return venv, prev, memory, venv.unwrapped.core.position_of_row[info["triplet"]]


def _check_dense_rewards(venv: gym.vector.VectorEnv, rng: np.random.Generator,
                         value_of: Callable[[int, np.ndarray], float]) -> None:
    """Step the 8-env, 6-bit, 2-bits-per-step ``venv`` through one episode of random actions:
    every step's rewards must be ``value_of(env, code prefix)`` minus the previous step's."""
    emitted = np.zeros((8, 0), np.uint8)
    before = np.zeros(8)
    for _ in range(3):
        actions = rng.integers(0, 4, 8)
        rewards = venv.step(actions)[1]
        emitted = np.concatenate([emitted, (actions[:, None] >> np.array([1, 0])) & 1], 1)
        value = np.array([value_of(j, emitted[j]) for j in range(8)])
        np.testing.assert_allclose(rewards, value - before, rtol=0, atol=1e-12)
        before = value


def _negative_probabilities(anchor: int, level: int, fraction: float) -> np.ndarray:
    """How likely each training image is the anchor's negative, from the sampling rule: a
    sibling with probability ``fraction`` (uniform over the images of the anchor's parent outside
    its class), otherwise any image outside its class; the latter alone without siblings."""
    labels = BANK.labels[TRAIN]
    other = labels[:, level] != labels[anchor, level]
    probs = other / other.sum()
    if level >= 1:
        sibling = other & (labels[:, level - 1] == labels[anchor, level - 1])
        if sibling.any():
            probs = fraction * sibling / sibling.sum() + (1 - fraction) * probs
    return probs


@pytest.mark.parametrize(("level", "fraction"), [(0, 0.5), (1, 0.5), (1, 1.0), (1, False)])
def test_expected_reward_matches_brute_force(level: int, fraction: float) -> None:
    """estimator="expected": every step's reward is eq. (1) averaged over every possible
    negative image, each weighted by how likely the constraint sampler draws it, with the
    distances to the members of the positive's and the negative's classes (eqs. (4)-(5) added at
    level 1)."""
    rng = np.random.default_rng(10 + level)
    venv, prev, memory, triplets = _random_memory_env(rng, level, sibling_negatives=fraction)
    assert venv.unwrapped.estimator == "expected"
    classes = BANK.labels[TRAIN, level]
    anchors = triplets[:, 0]
    weights = [_negative_probabilities(a, level, float(fraction)) for a in anchors]

    def value_of(j: int, prefix: np.ndarray) -> float:
        k, a = prefix.size, anchors[j]
        d_pos = _brute_distance(prefix, memory[classes == classes[a], :k])
        value = 0.0
        for neg in np.flatnonzero(weights[j]):
            d_neg = _brute_distance(prefix, memory[classes == classes[neg], :k])
            value -= weights[j][neg] * max(0.0, 2.5 * k / 6 + d_pos - d_neg)
        return 0.7 * value - 0.3 * 0.5 * np.sum(prefix != prev[a, :k]) if level else value

    _check_dense_rewards(venv, rng, value_of)


def test_default_shape_and_margin_follow_the_code_length() -> None:
    """Four steps per code up to 8 bits per step, then more steps; the margin grows like the
    square root of the code length, 3 bits at 12."""
    table = {1: 1, 4: 1, 7: 1, 10: 2, 12: 3, 16: 4, 17: 1, 24: 6, 32: 8, 48: 8, 64: 8, 256: 8}
    assert {n: default_bits_per_step(n) for n in table} == table
    assert [default_margin(n) for n in (3, 12, 48)] == [1.5, 3.0, 6.0]
    env = gym.make("HierHash-v0", bank=BANK, n_bits=16).unwrapped  # 3 does not divide 16
    assert (env.bits_per_step, env.steps_per_image) == (4, 4)


def test_class_mean_with_every_role_matches_brute_force() -> None:
    """memory_roles="all": the two images not coded stand for their classes, and the distance
    between them is the mean over every pair of their classes' members."""
    rng = np.random.default_rng(3)
    venv = gym.make_vec("HierHash-v0", num_envs=24, bank=BANK, n_bits=4, bits_per_step=4,
                        margin=1.0, memory_roles="all")
    venv.reset(seed=0)
    memory = rng.integers(0, 2, (TRAIN.size, 4)).astype(np.uint8)
    venv.unwrapped.set_memory(memory)
    _, info = venv.reset()
    core = venv.unwrapped.core
    classes = BANK.labels[TRAIN, 0]
    actions = rng.integers(0, 16, 24)
    _, rewards, *_ = venv.step(actions)
    bits = (actions[:, None] >> np.arange(3, -1, -1)) & 1
    members = {c: memory[classes == c] for c in np.unique(classes)}
    a, p, n = core.position_of_row[info["triplet"]].T  # infos of the ended episodes' triplets
    role = info["role"]
    assert set(role.tolist()) == {0, 1, 2}
    for j in range(24):
        A, P, N = members[classes[a[j]]], members[classes[p[j]]], members[classes[n[j]]]
        if role[j] == 0:
            d_pos, d_neg = _brute_distance(bits[j], P), _brute_distance(bits[j], N)
        elif role[j] == 1:
            d_pos, d_neg = _brute_distance(bits[j], A), _brute_pair_distance(A, N)
        else:
            d_pos, d_neg = _brute_pair_distance(A, P), _brute_distance(bits[j], A)
        expected = triplet_value(np.array([d_pos]), np.array([d_neg]), 1.0)[0]
        assert rewards[j] == pytest.approx(expected, abs=1e-12)


def test_generations_freeze_the_reward_memory() -> None:
    """Episodes write ``latest``; the reward's ``memory`` takes those codes only when a
    generation of ``memory_generation`` environment steps ends."""
    venv = gym.make_vec("HierHash-v0", num_envs=4, bank=BANK, n_bits=4, bits_per_step=2,
                        memory_generation=24)  # 3 episodes of 4 images x 2 steps
    venv.reset(seed=0)
    start = venv.unwrapped.memory.copy()
    for episode in range(3):
        venv.reset()
        anchors = venv.unwrapped.core.positions[:, 0].copy()
        venv.step(np.full(4, 3))
        venv.step(np.full(4, 3))
        np.testing.assert_array_equal(venv.unwrapped.latest[anchors], 1)
        if episode < 2:
            np.testing.assert_array_equal(venv.unwrapped.memory, start)
            assert venv.unwrapped.generations == 0
    assert venv.unwrapped.generations == 1
    np.testing.assert_array_equal(venv.unwrapped.memory, venv.unwrapped.latest)
    assert not np.array_equal(venv.unwrapped.memory, start)
    # set_memory starts a new generation from the given codes
    codes = np.zeros((TRAIN.size, 4), np.uint8)
    venv.unwrapped.set_memory(codes.astype(int) * 2 - 1)
    assert venv.unwrapped.generations == 0
    np.testing.assert_array_equal(venv.unwrapped.memory, codes)
    np.testing.assert_array_equal(venv.unwrapped.latest, codes)


def test_generation_reward_reads_the_frozen_class_means() -> None:
    """Within a generation the class-mean reward does not move, whatever the episodes write."""
    venv = gym.make_vec("HierHash-v0", num_envs=4, bank=BANK, n_bits=4, bits_per_step=4,
                        memory_generation=10**9)
    venv.reset(seed=0)
    core = venv.unwrapped.core
    rows = np.stack([core.rows[core.pool[j]] for j in range(4)])  # four explicit triplets
    rewards = []
    for _ in range(5):
        venv.reset(options={"indices": rows})
        rewards.append(venv.step(np.array([15, 0, 5, 10]))[1])
    for r in rewards[1:]:
        np.testing.assert_array_equal(r, rewards[0])


def test_without_generations_the_class_means_follow_every_episode() -> None:
    venv = gym.make_vec("HierHash-v0", num_envs=4, bank=BANK, n_bits=4, bits_per_step=4,
                        memory_generation=None)
    venv.reset(seed=0)
    assert venv.unwrapped.latest is venv.unwrapped.memory
    venv.unwrapped.set_memory(np.zeros((TRAIN.size, 4), np.uint8))
    rows = TRAIN[:4]
    venv.reset(options={"indices": rows})
    first = venv.step(np.full(4, 15))[1]  # writes 1111 for four images of the memory
    venv.reset(options={"indices": rows})
    second = venv.step(np.full(4, 15))[1]
    assert not np.array_equal(first, second)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimator": "mean"}, "unknown estimator 'mean'"),
        ({"mode": "triplet", "estimator": "class-mean"},
         "estimator='class-mean' needs mode='memory'"),
        ({"mode": "triplet", "estimator": "expected"},
         "estimator='expected' needs mode='memory'"),
        ({"estimator": "expected", "memory_roles": "all"},
         "estimator='expected' needs memory_roles='anchor'"),
        ({"coarse_weight": 0.5}, "coarse_weight needs estimator='class-mean' or 'sample'"),
        ({"mode": "triplet", "memory_generation": 100}, "memory_generation needs mode='memory'"),
        ({"memory_generation": "soon"}, "memory_generation must be a number of environment steps"),
        ({"memory_generation": 0}, "memory_generation must be >= 1"),
        ({"memory_generation": 2.5}, "memory_generation must be an integer"),
        ({"memory_generation": True}, "memory_generation must be an integer"),
        ({"n_constraints": (10, 20, 30)}, "n_constraints gives 3 pool sizes"),
        ({"n_constraints": (10, 0)}, "n_constraints must be >= 1"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(HashEnvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gym.make("HierHash-v0", bank=BANK, **kwargs)


def test_set_memory_checks_its_codes() -> None:
    env = gym.make("HierHash-v0", bank=BANK, n_bits=4, bits_per_step=2).unwrapped
    env.reset(seed=0)
    with pytest.raises(HashEnvError, match=rf"the code memory must have shape \({TRAIN.size}, 4\)"):
        env.set_memory(np.zeros((3, 4)))
    with pytest.raises(HashEnvError, match="memory"):
        env.set_memory(np.full((TRAIN.size, 4), 2))


def test_per_level_pool_sizes() -> None:
    env = gym.make("HierHash-v0", bank=BANK, n_constraints=(40, 10)).unwrapped
    env.reset(seed=0)
    assert env.constraints.shape == (40, 3)
    env.set_level(1, prev_codes=np.zeros((TRAIN.size, 12), np.uint8))
    env.reset(seed=0)
    assert env.constraints.shape == (10, 3)


@pytest.mark.parametrize("roles", ["anchor", "all"])
def test_single_and_vector_env_agree(roles: str) -> None:
    """The same seed, images and actions give the same rewards and memories, generation swaps
    included, in the single env and the vector env of one."""
    kwargs = {"bank": BANK, "n_bits": 6, "bits_per_step": 3, "memory_generation": 8,
              "memory_roles": roles}
    env = gym.make("HierHash-v0", **kwargs).unwrapped
    venv = gym.make_vec("HierHash-v0", num_envs=1, **kwargs)
    env.reset(seed=5)
    venv.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(16):
        a = int(rng.integers(0, 8))
        _, r, terminated, *_ = env.step(a)
        _, rv, *_ = venv.step(np.array([a]))
        assert r == rv[0]
        if terminated:
            env.reset()
    np.testing.assert_array_equal(env.memory, venv.unwrapped.memory)
    np.testing.assert_array_equal(env.latest, venv.unwrapped.latest)
    assert env.generations == venv.unwrapped.generations == 2


def test_default_env_passes_gymnasium_and_sb3_checks() -> None:
    env = gym.make("HierHash-v0", bank=BANK, memory_generation=16).unwrapped
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(gym.make("HierHash-v0", bank=BANK, memory_generation=16).unwrapped)


@pytest.mark.parametrize("estimator", ["class-mean", "sample"])
def test_coarse_weight_adds_the_parent_level_triplet(estimator: str) -> None:
    """At level 1, ``r = ρ (r_fine + w r_coarse) − (1 − ρ) λ H(b, prev)``, with ``r_coarse``
    eq. (1) against the anchor's and the negative's level-0 classes where those differ (brute
    force)."""
    rng = np.random.default_rng(7)
    prev = rng.integers(0, 2, (TRAIN.size, 6)).astype(np.uint8)
    venv = gym.make_vec("HierHash-v0", num_envs=16, bank=BANK, n_bits=6, bits_per_step=3,
                        margin=1.5, level=1, prev_codes=prev, rho=0.8, lam=0.5,
                        coarse_weight=0.7, estimator=estimator)
    venv.reset(seed=1)
    memory = rng.integers(0, 2, (TRAIN.size, 6)).astype(np.uint8)
    venv.unwrapped.set_memory(memory)
    _, info = venv.reset()
    core = venv.unwrapped.core
    fine, coarse = BANK.labels[TRAIN, 1], BANK.labels[TRAIN, 0]
    a, p, n = core.position_of_row[info["triplet"]].T
    actions = rng.integers(0, 8, (2, 16))
    venv.step(actions[0])
    _, rewards, *_ = venv.step(actions[1])
    bits = np.concatenate([(actions[0][:, None] >> np.arange(2, -1, -1)) & 1,
                           (actions[1][:, None] >> np.arange(2, -1, -1)) & 1], 1)
    differs = 0
    for j in range(16):
        if estimator == "class-mean":
            d = [_brute_distance(bits[j], memory[fine == fine[x]]) for x in (p[j], n[j])]
            dc = [_brute_distance(bits[j], memory[coarse == coarse[x]]) for x in (a[j], n[j])]
        else:
            d = dc = [float(np.sum(bits[j] != memory[x])) for x in (p[j], n[j])]
        r = -max(0.0, 1.5 + d[0] - d[1])
        if coarse[a[j]] != coarse[n[j]]:
            differs += 1
            r += 0.7 * -max(0.0, 1.5 + dc[0] - dc[1])
        value = 0.8 * r - 0.2 * 0.5 * np.sum(bits[j] != prev[a[j]])
        # the second step's reward is the whole episode's value minus the first step's
        first = _first_value(j, bits[j, :3], memory, prev, estimator, a, p, n, fine, coarse)
        assert rewards[j] == pytest.approx(value - first, abs=1e-12)
    assert differs > 0


def _first_value(j, prefix, memory, prev, estimator, a, p, n, fine, coarse) -> float:
    """The value after the first chunk (margin scaled to half the code)."""
    if estimator == "class-mean":
        d = [_brute_distance(prefix, memory[fine == fine[x], :3]) for x in (p[j], n[j])]
        dc = [_brute_distance(prefix, memory[coarse == coarse[x], :3]) for x in (a[j], n[j])]
    else:
        d = dc = [float(np.sum(prefix != memory[x, :3])) for x in (p[j], n[j])]
    r = -max(0.0, 0.75 + d[0] - d[1])
    if coarse[a[j]] != coarse[n[j]]:
        r += 0.7 * -max(0.0, 0.75 + dc[0] - dc[1])
    return 0.8 * r - 0.2 * 0.5 * np.sum(prefix != prev[a[j], :3])


def test_coarse_weight_errors() -> None:
    with pytest.raises(HashEnvError,
                       match=r"coarse_weight must be a finite number in \[0.0, inf\]"):
        gym.make("HierHash-v0", bank=BANK, coarse_weight=-1)
    with pytest.raises(HashEnvError, match="coarse_weight needs mode='memory'"):
        gym.make("HierHash-v0", bank=BANK, mode="triplet", coarse_weight=0.5)


def test_memory_state_round_trip() -> None:
    """A checkpoint's memory state continues the generation where it was."""
    kwargs = {"bank": BANK, "n_bits": 4, "bits_per_step": 2, "memory_generation": 40}
    venv = gym.make_vec("HierHash-v0", num_envs=4, **kwargs)
    venv.reset(seed=0)
    for _ in range(6):  # 24 steps: latest differs from the frozen memory, no generation ended
        venv.step(np.random.default_rng(0).integers(0, 4, 4))
    state = venv.unwrapped.memory_state()
    assert int(state["generation_steps"]) == 24 and int(state["generations"]) == 0
    other = gym.make_vec("HierHash-v0", num_envs=4, **kwargs)
    other.reset(seed=1)
    other.unwrapped.restore_memory_state(state)
    for key, value in other.unwrapped.memory_state().items():
        np.testing.assert_array_equal(value, state[key])
    with pytest.raises(HashEnvError, match="a memory state needs 'memory'"):
        other.unwrapped.restore_memory_state({"latest": state["latest"]})
    with pytest.raises(HashEnvError, match=r"the latest codes must have shape"):
        other.unwrapped.restore_memory_state({**state, "latest": state["latest"][:3]})
    with pytest.raises(HashEnvError, match="latest must contain only 0/1"):
        other.unwrapped.restore_memory_state({**state, "latest": state["latest"] * 3})


def test_v1_is_v0_with_a_quarter_of_the_code_as_margin() -> None:
    """HierHash-v1 changes one default: the margin is n_bits / 4 (v0: 3 * sqrt(n_bits / 12)),
    in the single and the vector env; the two ids are the same env at 12 bits, and a margin the
    caller gives wins on either id."""
    assert [quarter_margin(n) for n in (4, 12, 48, 64)] == [1.0, 3.0, 12.0, 16.0]
    for n_bits, v0, v1 in ((12, 3.0, 3.0), (48, 6.0, 12.0), (64, 3 * np.sqrt(64 / 12), 16.0)):
        assert gym.make("HierHash-v0", bank=BANK, n_bits=n_bits).unwrapped.margin == (
            pytest.approx(v0))
        assert gym.make("HierHash-v1", bank=BANK, n_bits=n_bits).unwrapped.margin == v1
        assert gym.make_vec("HierHash-v1", num_envs=2, bank=BANK,
                            n_bits=n_bits).unwrapped.margin == v1
    assert gym.make("HierHash-v1", bank=BANK, n_bits=48, margin=5).unwrapped.margin == 5.0
    assert gym.make("HierHash-v0", bank=BANK, n_bits=48, margin="quarter").unwrapped.margin == 12
    assert resolve_margin(None, 48) == resolve_margin("sqrt", 48) == default_margin(48)
    assert [is_hierhash(i) for i in ("HierHash-v0", "HierHash-v1", "CentralHash-v0")] == [
        True, True, False]
    # at 12 bits the same seed gives the same rollout on both ids
    traces = []
    for env_id in ("HierHash-v0", "HierHash-v1"):
        venv = gym.make_vec(env_id, num_envs=8, bank=BANK)
        venv.action_space.seed(0)
        venv.reset(seed=0)
        traces.append([venv.step(venv.action_space.sample())[1] for _ in range(40)])
    assert np.array_equal(traces[0], traces[1])
