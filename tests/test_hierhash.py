"""HierHash-v0: hand-computed DRLHIH rewards (eqs. (1), (4)–(5)), the code memory and the
constraint pools."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hashgym  # noqa: F401
from hashgym.envs.constraints import ConstraintSampler
from hashgym.envs.core import HashEnvError
from hashgym.envs.hierhash import PAPER_SETTINGS, level_reward, triplet_reward
from hashgym.envs.rewards import triplet_episode_reward
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(branching=(3, 2), n_per_class=8, dim=16, seed=0)
TRAIN = BANK.indices("train")
#: The paper's environment (these tests check the semantics of docs/methods.md; the defaults are
#: tested in test_hierhash_defaults.py), ``rho`` left to each test
PAPER = {k: v for k, v in PAPER_SETTINGS.items() if k != "rho"}


def _triplet_rows(level: int = 0) -> np.ndarray:
    """One valid (anchor, positive, negative) as bank rows: sibling negative at level 1."""
    labels = BANK.labels
    a = TRAIN[0]
    p = next(r for r in TRAIN[1:] if labels[r, level] == labels[a, level])
    same_parent = labels[:, 0] == labels[a, 0] if level else np.ones(BANK.n, bool)
    n = next(r for r in TRAIN if same_parent[r] and labels[r, level] != labels[a, level])
    return np.array([a, p, n])


def test_triplet_episode_reward_is_eq_1_then_eqs_4_5() -> None:
    """Triplet mode's terminal reward is triplet_reward, and at level >= 1 level_reward over
    the three images, the same floats."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (50, 3, 12)).astype(np.uint8)
    previous = rng.integers(0, 2, (50, 3, 12)).astype(np.uint8)
    r = triplet_reward(bits[:, 0], bits[:, 1], bits[:, 2], 3.0)
    assert (r < 0).any() and (r == 0).any()  # both sides of the hinge
    np.testing.assert_array_equal(triplet_episode_reward(bits, None, 3.0, 0.5, 0.8), r)
    expected = level_reward(r, list(bits.transpose(1, 0, 2)), list(previous.transpose(1, 0, 2)),
                            0.5, 0.8)
    np.testing.assert_array_equal(triplet_episode_reward(bits, previous, 3.0, 0.5, 0.8),
                                  expected)


def test_triplet_reward_by_hand() -> None:
    anchor = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    positive = np.array([[1, 1, 1, 0], [0, 0, 1, 1]])  # H = 1, H = 4
    negative = np.array([[0, 0, 1, 1], [1, 1, 0, 1]])  # H = 4, H = 1
    r = triplet_reward(anchor, positive, negative, margin=2.0)
    # row 0: -max(0, 2 + 1 - 4) = 0; row 1: -max(0, 2 + 4 - 1) = -5
    np.testing.assert_array_equal(r, [0.0, -5.0])
    # ±1 codes give the same distances
    np.testing.assert_array_equal(triplet_reward(anchor * 2 - 1, positive * 2 - 1,
                                                 negative * 2 - 1, 2.0), r)


def test_level_reward_by_hand() -> None:
    r = np.array([-2.0])
    codes = [np.array([[1, 0, 1, 0]]), np.array([[1, 1, 1, 1]]), np.array([[0, 0, 0, 0]])]
    prev = [np.array([[1, 0, 1, 1]]), np.array([[1, 1, 1, 1]]), np.array([[1, 1, 0, 0]])]
    # mean distance (1 + 0 + 2) / 3 = 1; r_l = 0.9 * -2 + 0.1 * (-2 * 1)
    np.testing.assert_allclose(level_reward(r, codes, prev, lam=2.0, rho=0.9), [-2.0])
    np.testing.assert_allclose(level_reward(r, codes[:1], prev[:1], lam=1.0, rho=0.5), [-1.5])


def _act_bits(bits: str, bits_per_step: int) -> list[int]:
    return [int(bits[i : i + bits_per_step], 2) for i in range(0, len(bits), bits_per_step)]


def test_triplet_mode_rewards_a_known_triplet() -> None:
    env = gym.make("HierHash-v0", **PAPER, bank=BANK, mode="triplet", n_bits=4, bits_per_step=2,
                   margin=2).unwrapped
    rows = _triplet_rows()
    _, info = env.reset(seed=0, options={"indices": rows})
    assert info["triplet"].tolist() == rows.tolist()
    # anchor 1100, positive 1101 (H = 1), negative 1111 (H = 2): r = -max(0, 2 + 1 - 2) = -1
    actions = _act_bits("1100", 2) + _act_bits("1101", 2) + _act_bits("1111", 2)
    rewards, indices = [], []
    for a in actions:
        _obs, r, terminated, _, info = env.step(a)
        rewards.append(r)
        indices.append(int(info["index"]))
    assert rewards == [0, 0, 0, 0, 0, -1.0] and terminated
    assert indices == [rows[0], rows[1], rows[1], rows[2], rows[2], rows[2]]


def test_triplet_mode_hides_the_role() -> None:
    env = gym.make("HierHash-v0", **PAPER, bank=BANK, mode="triplet", n_bits=4,
                   bits_per_step=2).unwrapped
    rows = _triplet_rows()
    obs, _ = env.reset(seed=0, options={"indices": rows})
    seen = [obs]
    for a in [3, 0, 1, 2, 0]:
        obs, *_ = env.step(a)
        seen.append(obs)
    # the first step of every image looks the same apart from the features
    for k in (0, 2, 4):
        assert seen[k]["t"][0] == 0 and np.all(seen[k]["code"] == 0)
    np.testing.assert_array_equal(seen[2]["features"], BANK.features[rows[1]])
    np.testing.assert_array_equal(seen[4]["features"], BANK.features[rows[2]])


def test_memory_mode_dense_reward_sums_to_terminal_reward() -> None:
    env = gym.make("HierHash-v0", **PAPER, bank=BANK, n_bits=4, bits_per_step=2, margin=2).unwrapped
    rows = _triplet_rows()
    env.reset(seed=0)
    pos = env.core.position_of_row[rows]
    env.memory[pos[1]] = [1, 1, 0, 1]  # positive's remembered code
    env.memory[pos[2]] = [0, 0, 1, 1]  # negative's remembered code
    env.reset(options={"indices": rows})
    # anchor 11 then 00: prefix "11": -max(0, 1 + 0 - 2) = 0; full "1100": -max(0, 2 + 1 - 4) = 0
    _, r1, *_ = env.step(3)
    _, r2, done, *_ = env.step(0)
    assert (r1, r2, done) == (0.0, 0.0, True)
    assert env.memory[pos[0]].tolist() == [1, 1, 0, 0]  # written at episode end
    # anchor 00 then 11: prefix "00": -max(0, 1 + 2 - 0) = -3; full "0011": -max(0, 2 + 3 - 0) = -5
    env.reset(options={"indices": rows})
    _, r1, *_ = env.step(0)
    _, r2, *_ = env.step(3)
    assert (r1, r2) == (-3.0, -2.0) and r1 + r2 == -5.0
    assert env.memory[pos[0]].tolist() == [0, 0, 1, 1]


def test_level_penalty_in_triplet_and_memory_mode() -> None:
    rows = _triplet_rows(level=1)
    prev = np.zeros((TRAIN.size, 4), np.uint8)
    env = gym.make("HierHash-v0", **PAPER, bank=BANK, mode="triplet", level=1, n_bits=4,
                   bits_per_step=4, prev_codes=prev, margin=1, lam=1.0, rho=0.5).unwrapped
    env.reset(seed=0, options={"indices": rows})
    # codes 1000 / 1000 / 0111: r = -max(0, 1 + 0 - 4) = 0; distances to 0000: 1, 1, 3 -> mean 5/3
    rewards = [env.step(a)[1] for a in (0b1000, 0b1000, 0b0111)]
    np.testing.assert_allclose(rewards, [0, 0, 0.5 * 0 + 0.5 * -(5 / 3)])

    env = gym.make("HierHash-v0", **PAPER, bank=BANK, level=1, n_bits=4, bits_per_step=2,
                   prev_codes=prev, margin=0, lam=2.0, rho=0.5).unwrapped
    env.reset(seed=0)
    pos = env.core.position_of_row[rows]
    env.memory[pos[1]] = [1, 1, 1, 1]
    env.memory[pos[2]] = [1, 1, 1, 1]
    env.reset(options={"indices": rows})
    # prefix "10": r = -max(0, 0 + 1 - 1) = 0, dist 1 -> 0.5 * -2 = -1
    # full "1011": r = 0, dist 3 -> -3; step rewards -1 then -2
    rewards = [env.step(a)[1] for a in (0b10, 0b11)]
    assert rewards == [-1.0, -2.0]


def test_vector_env_shares_one_memory() -> None:
    venv = gym.make_vec("HierHash-v0", **PAPER, num_envs=4, bank=BANK, n_bits=4, bits_per_step=4)
    venv.reset(seed=0)
    anchors = TRAIN[[0, 1, 2, 3]]
    venv.reset(options={"indices": anchors})
    venv.step(np.array([1, 2, 4, 8]))
    memory = venv.unwrapped.memory
    pos = venv.unwrapped.core.position_of_row[anchors]
    assert memory[pos].tolist() == [[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]]


def test_memory_and_pool_are_seeded() -> None:
    def state(seed: int) -> tuple:
        env = gym.make("HierHash-v0", **PAPER, bank=BANK).unwrapped
        env.reset(seed=seed)
        return env.memory.copy(), env.constraints.copy()

    (m1, c1), (m2, c2), (m3, c3) = state(1), state(1), state(2)
    assert np.array_equal(m1, m2) and np.array_equal(c1, c2)
    assert not np.array_equal(m1, m3) and not np.array_equal(c1, c3)
    assert 0.3 < m1.mean() < 0.7  # random bits


@pytest.mark.parametrize(("level", "siblings"), [(0, True), (1, True), (1, False)])
def test_constraint_pool_brute_force(level: int, siblings: bool) -> None:
    labels = BANK.labels[TRAIN]
    sampler = ConstraintSampler(labels, level, siblings)
    pool = sampler.pool(3000, np.random.default_rng(0))
    a, p, n = pool.T
    assert np.all(a != p)
    assert np.all(labels[a, level] == labels[p, level])
    assert np.all(labels[a, level] != labels[n, level])
    if level and siblings:
        assert np.all(labels[a, level - 1] == labels[n, level - 1])  # palm vs oak
    else:
        other_parent = labels[a, 0] != labels[n, 0]
        assert other_parent.any()
    # every candidate negative is reachable: the pool covers all siblings of an anchor class
    first = a[0]
    seen = set(n[a == first].tolist()) | set(sampler.sample(np.full(400, first),
                                                             np.random.default_rng(1))[1].tolist())
    ok = labels[:, level] != labels[first, level]
    if level and siblings:
        ok &= labels[:, level - 1] == labels[first, level - 1]
    assert seen == set(np.flatnonzero(ok).tolist())


def test_sibling_fraction_mixes_sibling_and_other_negatives() -> None:
    labels = BANK.labels[TRAIN]
    pools = {f: ConstraintSampler(labels, 1, f).pool(20_000, np.random.default_rng(0))
             for f in (0.0, 0.5, 1.0)}

    def same_parent(pool: np.ndarray) -> float:
        a, _, n = pool.T
        assert np.all(labels[a, 1] != labels[n, 1]) and np.all(labels[a, 1] == labels[pool[:, 1], 1])
        return float(np.mean(labels[a, 0] == labels[n, 0]))

    base, half, full = (same_parent(pools[f]) for f in (0.0, 0.5, 1.0))
    assert full == 1.0
    # half the triplets draw a sibling, the other half any other class (a sibling with the
    # share ``base``): the mixture's expected share of same-parent negatives
    assert abs(half - (0.5 + 0.5 * base)) < 0.02
    # the bools keep their pools exactly (no extra random draw)
    np.testing.assert_array_equal(
        pools[1.0], ConstraintSampler(labels, 1, True).pool(20_000, np.random.default_rng(0)))
    np.testing.assert_array_equal(
        pools[0.0], ConstraintSampler(labels, 1, False).pool(20_000, np.random.default_rng(0)))
    # level 0 has no parent: any fraction gives the same pool
    np.testing.assert_array_equal(
        ConstraintSampler(labels, 0, 0.3).pool(500, np.random.default_rng(0)),
        ConstraintSampler(labels, 0, True).pool(500, np.random.default_rng(0)))


def test_negative_class_weights_are_the_sampling_distribution() -> None:
    """Rows of ``negative_class_weights`` sum the sampling rule's probability of every image of a
    class (enumerated image by image), on a bank with unequal classes and a parent with one
    class; many draws of ``sample`` land on the same frequencies."""
    labels = np.array([[0, 0]] * 2 + [[0, 1]] + [[0, 2]] * 3 + [[1, 3]] * 2 + [[1, 4]]
                      + [[2, 5]] * 2)
    for level, fraction in ((0, 0.5), (1, 0.0), (1, 0.5), (1, 1.0)):
        sampler = ConstraintSampler(labels, level, fraction)
        weights = sampler.negative_class_weights()
        y = labels[:, level]
        for a in range(len(labels)):
            other = y != y[a]
            probs = other / other.sum()
            sibling = other & (labels[:, level - 1] == labels[a, level - 1]) if level else other & False
            if sibling.any():
                probs = fraction * sibling / sibling.sum() + (1 - fraction) * probs
            brute = np.bincount(y, weights=probs, minlength=y.max() + 1)
            np.testing.assert_allclose(weights[y[a]], brute, rtol=0, atol=1e-12)
        anchors = np.repeat(sampler.valid_anchors, 4000)
        _, negatives = sampler.sample(anchors, np.random.default_rng(0))
        counts = np.zeros_like(weights)
        np.add.at(counts, (y[anchors], y[negatives]), 1)
        drawn = counts / counts.sum(axis=1, keepdims=True)
        rows = np.unique(y[anchors])
        assert np.abs(drawn[rows] - weights[rows]).max() < 0.02


def test_sibling_negatives_is_a_fraction() -> None:
    for given, fraction in ((True, 1.0), (False, 0.0), (0.25, 0.25), (1, 1.0)):
        core = gym.make("HierHash-v0", bank=BANK, sibling_negatives=given).unwrapped.core
        assert type(core.sibling_negatives) is float and core.sibling_negatives == fraction


@pytest.mark.parametrize("bad", [1.5, -0.1, "yes", None])
def test_sibling_negatives_must_be_bool_or_fraction(bad) -> None:
    with pytest.raises(HashEnvError, match=r"sibling_negatives must be True, False or a fraction "
                                           r"in \[0, 1\], got"):
        gym.make("HierHash-v0", bank=BANK, sibling_negatives=bad)
    with pytest.raises(HashEnvError, match="sibling_negatives must be"):
        ConstraintSampler(BANK.labels[TRAIN], 1, bad)


def test_sibling_fallback_when_parent_has_one_child() -> None:
    labels = np.array([[0, 0], [0, 0], [1, 1], [1, 1], [1, 2]])
    sampler = ConstraintSampler(labels, 1, siblings=True)
    _, neg = sampler.sample(np.array([0, 0, 0, 0, 0, 0]), np.random.default_rng(0))
    assert set(neg.tolist()) <= {2, 3, 4}  # no sibling of class 0: any other class


def test_constraints_and_set_level() -> None:
    env = gym.make("HierHash-v0", **{**PAPER, "n_constraints": 50}, bank=BANK).unwrapped
    env.reset(seed=0)
    assert env.constraints.shape == (50, 3) and np.isin(env.constraints, TRAIN).all()
    assert env.margin == 3.0  # n_bits / 4
    codes = np.random.default_rng(0).integers(0, 2, (TRAIN.size, 12))
    env.set_level(1, prev_codes=codes)
    assert env.level == 1 and np.array_equal(env.prev_codes, codes)
    labels = BANK.labels
    a, _, n = env.constraints.T
    assert np.all(labels[a, 0] == labels[n, 0]) and np.all(labels[a, 1] != labels[n, 1])
    env.reset()
    assert env.step(0)[1] <= 0


def test_action_bits_are_most_significant_first() -> None:
    env = gym.make("HierHash-v0", **PAPER, bank=BANK, n_bits=6, bits_per_step=3).unwrapped
    env.reset(seed=0)
    obs, *_ = env.step(6)  # 110
    assert obs["code"].tolist() == [1, 1, -1, 0, 0, 0]
    obs, *_ = env.step(1)  # 001
    assert obs["code"].tolist() == [1, 1, -1, -1, -1, 1]


def test_window_keeps_last_bits() -> None:
    env = gym.make("HierHash-v0", **PAPER, bank=BANK, n_bits=6, bits_per_step=2, window=3).unwrapped
    obs, _ = env.reset(seed=0)
    assert obs["code"].tolist() == [0, 0, 0]
    obs, *_ = env.step(0b10)
    assert obs["code"].tolist() == [0, 1, -1]
    obs, *_ = env.step(0b01)
    assert obs["code"].tolist() == [-1, -1, 1]


def test_memory_starts_as_prev_codes_at_level_one() -> None:
    codes = np.random.default_rng(3).integers(0, 2, (TRAIN.size, 12)).astype(np.uint8)
    # built at level 1: the seeded reset sets the memory to prev_codes, not to random bits
    env = gym.make("HierHash-v0", **PAPER, bank=BANK, level=1,
                   prev_codes=codes.astype(int) * 2 - 1).unwrapped
    env.reset(seed=0)
    np.testing.assert_array_equal(env.memory, codes)
    env.step(5)
    # moving a level-0 env on: set_level(1, prev_codes) replaces the random memory (a copy)
    env = gym.make("HierHash-v0", **PAPER, bank=BANK).unwrapped
    env.reset(seed=0)
    assert not np.array_equal(env.memory, codes)
    env.set_level(1, prev_codes=codes)
    np.testing.assert_array_equal(env.memory, codes)
    env.reset()
    for _ in range(4):
        env.step(7)  # the coded image's memory row becomes 111...; prev_codes stay as given
    np.testing.assert_array_equal(env.prev_codes, codes)
    written = env.memory.copy()
    assert not np.array_equal(written, codes)
    env.set_level(1)  # no prev_codes: the memory is kept
    np.testing.assert_array_equal(env.memory, written)
    env.set_level(0, prev_codes=codes)  # level 0: prev_codes are stored, the memory is kept
    np.testing.assert_array_equal(env.memory, written)


@pytest.mark.parametrize("level", [0, 1])
def test_memory_mode_rewards_match_brute_force_prefix_rewards(level: int) -> None:
    """The env accumulates prefix distances chunk by chunk; recompute every step's reward from
    eq. (1) (and eqs. (4)-(5)) on the whole prefix with the public reward functions."""
    rng = np.random.default_rng(level)
    prev = rng.integers(0, 2, (TRAIN.size, 6)).astype(np.uint8)
    kwargs = {"prev_codes": prev, "lam": 0.5, "rho": 0.7} if level else {}
    venv = gym.make_vec("HierHash-v0", **PAPER, num_envs=16, bank=BANK, n_bits=6, bits_per_step=2,
                        margin=2.5, level=level, **kwargs)
    _, info = venv.reset(seed=level)
    core = venv.unwrapped.core
    roles_seen = set()
    for _ in range(4):  # episodes
        a, p, n = core.position_of_row[info["triplet"]].T
        role = info["role"]
        roles_seen |= set(role.tolist())
        coded = np.choose(role, [a, p, n])
        np.testing.assert_array_equal(core.position_of_row[info["index"]], coded)
        memory = venv.unwrapped.memory.copy()
        emitted = np.zeros((16, 0), np.uint8)
        before = np.zeros(16)
        for step in range(3):
            actions = rng.integers(0, 4, 16)
            _, rewards, _, _, info = venv.step(actions)
            emitted = np.concatenate([emitted, (actions[:, None] >> np.array([1, 0])) & 1], 1)
            k = emitted.shape[1]
            # the coded image's emitted bits stand in for its role, the memory for the others
            codes = [memory[a, :k].copy(), memory[p, :k].copy(), memory[n, :k].copy()]
            for j, r in enumerate(role):
                codes[r][j] = emitted[j]
            value = triplet_reward(*codes, 2.5 * k / 6)
            if level:
                value = level_reward(value, [emitted], [prev[coded, :k]], 0.5, 0.7)
            np.testing.assert_allclose(rewards, value - before, rtol=0, atol=1e-12)
            before = value
        # the episode's end wrote each coded image's code to the memory (images coded by two
        # sub-environments at once keep one of the two codes)
        once = np.isin(coded, np.flatnonzero(np.bincount(coded) == 1))
        np.testing.assert_array_equal(venv.unwrapped.memory[coded[once]], emitted[once])
    assert roles_seen == {0, 1, 2}


def test_memory_roles_by_hand() -> None:
    """Every remembered code is 0000; the coded image emits 11 then 11 (margin 2, 4 bits)."""
    venv = gym.make_vec("HierHash-v0", **PAPER, num_envs=24, bank=BANK, n_bits=4, bits_per_step=2,
                        margin=2)
    venv.reset(seed=0)
    venv.unwrapped.memory[:] = 0
    _, info = venv.reset()
    role = info["role"]
    _, r1, *_ = venv.step(np.full(24, 3))
    _, r2, done, _, _ = venv.step(np.full(24, 3))
    assert done.all() and set(role.tolist()) == {0, 1, 2}
    # anchor:   d_pos = H(b, m+) = |b|, d_neg = H(b, m-) = |b|: -max(0, 1 + 2 - 2) = -1, then
    #           -max(0, 2 + 4 - 4) = -2
    # positive: d_pos = H(m, b) = |b|, d_neg = H(m, m-) = 0: -max(0, 1 + 2 - 0) = -3, then -6
    # negative: d_pos = H(m, m+) = 0, d_neg = H(m, b) = |b|: -max(0, 1 + 0 - 2) = 0, then 0
    expected = {0: (-1.0, -1.0), 1: (-3.0, -3.0), 2: (0.0, 0.0)}
    assert [(r1[j], r2[j]) for j in range(24)] == [expected[r] for r in role.tolist()]


def test_memory_roles_keep_every_pool_image_coded() -> None:
    """With ``"all"`` every image of the pool gets coded; with ``"anchor"`` the positives and
    negatives that anchor no triplet keep their random initial codes."""
    written = {}
    for roles in ("all", "anchor"):
        venv = gym.make_vec("HierHash-v0", **{**PAPER, "n_constraints": 20, "memory_roles": roles},
                            num_envs=32, bank=BANK, n_bits=4, bits_per_step=4)
        venv.reset(seed=0)
        venv.unwrapped.memory[:] = 0
        assert venv.unwrapped.memory_roles == roles
        for _ in range(30):
            venv.step(np.full(32, 15))  # every coded image remembers 1111
        pool = venv.unwrapped.core.pool
        memory = venv.unwrapped.memory
        written[roles] = np.isin(np.arange(TRAIN.size), np.flatnonzero(memory.any(axis=1)))
        if roles == "anchor":
            never = ~np.isin(pool[:, 1:], pool[:, 0])
            assert never.any() and not written[roles][pool[:, 1:][never]].any()
            assert written[roles][pool[:, 0]].all()
    assert written["all"][np.unique(venv.unwrapped.core.pool)].all()


def test_memory_roles_errors_and_anchor_only() -> None:
    with pytest.raises(Exception, match="unknown memory_roles 'both'"):
        gym.make("HierHash-v0", bank=BANK, memory_roles="both")
    venv = gym.make_vec("HierHash-v0", **{**PAPER, "memory_roles": "anchor"}, num_envs=8, bank=BANK)
    _, info = venv.reset(seed=0)
    assert (info["role"] == 0).all()
    np.testing.assert_array_equal(info["index"], info["triplet"][:, 0])
