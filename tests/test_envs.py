"""Every registered hashgym environment, with a few argument sets (in the manner of MiniGrid's
suite): API checkers, seeding, single vs vector, pickling, episode length and argument errors."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hashgym  # noqa: F401  (registers the ids)
from hashgym.bank import FeatureBank
from hashgym.envs import HashEnvError
from hashgym.synthetic import make_hierarchical_bank, make_multilabel_bank

BANK = make_hierarchical_bank(branching=(3, 2), n_per_class=8, dim=16, seed=0)
ML_BANK = make_multilabel_bank(n=60, n_concepts=5, dim=16, seed=0)

HASHGYM_IDS = sorted(
    spec.id for spec in gym.registry.values()
    if isinstance(spec.entry_point, str) and spec.entry_point.startswith("hashgym")
)
KWARGS: dict[str, list[dict]] = {
    "HierHash-v0": [
        {},
        {"bank": BANK, "mode": "triplet", "n_bits": 8, "bits_per_step": 2},
        {"bank": BANK, "mode": "memory", "n_bits": 6, "bits_per_step": 1, "window": 3},
        {"bank": BANK, "level": 1, "prev_codes": np.zeros((len(BANK.indices("train")), 12), np.uint8)},
    ],
    # v0 with a margin of a quarter of the code: the cases where that differs from v0's
    "HierHash-v1": [
        {"bank": BANK, "n_bits": 24},
        {"bank": BANK, "mode": "triplet", "n_bits": 8, "bits_per_step": 2},
    ],
    "CentralHash-v0": [
        {},
        {"bank": BANK, "n_bits": 8, "bits_per_step": 2, "action_type": "probability"},
        {"bank": ML_BANK, "n_bits": 16, "bits_per_step": 4, "window": 6},
        {"bank": BANK, "n_bits": 12, "level": 0, "split": "database"},
    ],
}
CASES = [
    pytest.param(env_id, kwargs, id=f"{env_id}-{i}")
    for env_id in HASHGYM_IDS for i, kwargs in enumerate(KWARGS[env_id])
]


def test_every_registered_id_is_covered() -> None:
    assert HASHGYM_IDS == ["CentralHash-v0", "HierHash-v0", "HierHash-v1"]
    for env_id in HASHGYM_IDS:
        assert gym.spec(env_id).vector_entry_point is not None


def _rollout(env: gym.Env, seed: int, n_steps: int) -> list:
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(n_steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((obs, reward, terminated, truncated, info.get("index")))
        if terminated or truncated:
            obs, _ = env.reset()
            trace.append(obs)
    return trace


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) and a.dtype == object:
        a, b = list(a), list(b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_gymnasium_and_sb3_checkers(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded feature Box
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_same_seed_same_rollout(env_id: str, kwargs: dict) -> None:
    a = _rollout(gym.make(env_id, **kwargs), seed=3, n_steps=30)
    b = _rollout(gym.make(env_id, **kwargs), seed=3, n_steps=30)
    c = _rollout(gym.make(env_id, **kwargs), seed=4, n_steps=30)
    assert _equal(a, b)
    assert not _equal(a, c)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_vector_same_seed_same_rollout(env_id: str, kwargs: dict) -> None:
    def run(seed: int) -> list:
        venv = gym.make_vec(env_id, num_envs=5, **kwargs)
        venv.action_space.seed(seed)
        out = [venv.reset(seed=seed)[0]]
        for _ in range(2 * venv.unwrapped.episode_steps + 1):
            obs, rewards, terminated, truncated, info = venv.step(venv.action_space.sample())
            out.append((obs, rewards, terminated, truncated, info["index"]))
        return out

    assert _equal(run(7), run(7))
    assert not _equal(run(7), run(8))


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_single_and_vector_give_identical_rewards(env_id: str, kwargs: dict) -> None:
    n = 6
    venv = gym.make_vec(env_id, num_envs=n, **kwargs)
    venv.reset(seed=0)
    core = venv.unwrapped.core
    images = core.sample()  # split positions of a batch of valid episodes
    rows = core.rows[images]
    venv.action_space.seed(1)
    actions = [venv.action_space.sample() for _ in range(venv.unwrapped.episode_steps)]
    _, _info = venv.reset(seed=0, options={"indices": rows})
    vec_rewards = []
    for act in actions:
        _, r, *_ = venv.step(act)
        vec_rewards.append(r)
    vec_rewards = np.array(vec_rewards)

    for i in range(n):
        env = gym.make(env_id, **kwargs)
        env.reset(seed=0, options={"indices": rows[i] if rows.shape[1] > 1 else rows[i, 0]})
        single = [env.step(act[i])[1] for act in actions]
        np.testing.assert_array_equal(single, vec_rewards[:, i])


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_pickle_round_trip_continues_identically(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=5)
    env.action_space.seed(5)
    actions = [env.action_space.sample() for _ in range(10)]
    if env.step(actions[0])[2]:
        env.reset()
    clone = pickle.loads(pickle.dumps(env))
    for act in actions[1:]:
        a, b = env.step(act), clone.step(act)
        assert _equal(a[:4], b[:4])
        if a[2]:
            assert _equal(env.reset()[0], clone.reset()[0])
    venv = gym.make_vec(env_id, num_envs=3, **kwargs)
    venv.reset(seed=1)
    assert _equal(pickle.loads(pickle.dumps(venv)).step(np.stack([actions[0]] * 3)),
                  venv.step(np.stack([actions[0]] * 3)))


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_episodes_end_exactly_when_documented(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs).unwrapped
    n_bits, bps = env.n_bits, env.bits_per_step
    slots = 3 if getattr(env, "mode", "") == "triplet" else 1
    assert env.episode_steps == slots * n_bits // bps
    env.reset(seed=0)
    for step in range(1, env.episode_steps + 1):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert terminated == (step == env.episode_steps)
        assert not truncated
    assert obs["t"][0] == 1.0 and np.all(obs["code"] != 0)
    with pytest.raises(HashEnvError, match="episode has ended"):
        env.step(env.action_space.sample())

    venv = gym.make_vec(env_id, num_envs=4, **kwargs)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    venv.reset(seed=0)
    for step in range(1, 2 * venv.unwrapped.episode_steps + 1):
        obs, _, terminated, truncated, info = venv.step(venv.action_space.sample())
        end = step % venv.unwrapped.episode_steps == 0
        assert terminated.tolist() == [end] * 4 and not truncated.any()
        assert ("final_obs" in info) == end
        if end:  # same-step autoreset: a fresh episode's first observation, the old one in info
            assert np.all(obs["t"] == 0) and np.all(obs["code"] == 0)
            assert info["_final_obs"].all() and info["final_obs"][0]["t"][0] == 1.0
            assert "index" in info["final_info"]


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_observations_are_fresh_and_in_space(env_id: str, kwargs: dict) -> None:
    venv = gym.make_vec(env_id, num_envs=3, **kwargs)
    first, _ = venv.reset(seed=0)
    kept = {k: v.copy() for k, v in first.items()}
    obs, *_ = venv.step(venv.action_space.sample())
    assert venv.observation_space.contains(obs)
    assert obs["code"] is not first["code"] and obs["t"] is not first["t"]
    assert _equal(first, kept)  # stepping never writes into returned arrays


@pytest.mark.parametrize("env_id", HASHGYM_IDS)
def test_defaults_need_no_arguments(env_id: str) -> None:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    assert obs["features"].dtype == np.float32 and obs["features"].shape == (128,)
    venv = gym.make_vec(env_id, num_envs=1024)
    obs, _ = venv.reset(seed=0)
    obs, rewards, *_ = venv.step(venv.action_space.sample())
    assert obs["features"].shape == (1024, 128) and rewards.shape == (1024,)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_encode_matches_episodes_and_leaves_state_alone(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(env.bank.dim + env.observation_space["code"].shape[0] + 1,))

    def act(obs: dict) -> np.ndarray:
        x = np.concatenate([obs["features"], obs["code"], obs["t"]], axis=1) @ weights
        bits = (np.abs(x)[:, None] * np.arange(1, env.bits_per_step + 1) % 1.0) > 0.5
        if isinstance(env.action_space, gym.spaces.Discrete):
            return bits @ (1 << np.arange(env.bits_per_step)[::-1])
        return bits.astype(np.float32 if env.action_type == "probability" else np.int8)

    state = pickle.dumps(env)
    rows = env.split_rows[:7]
    codes = env.encode(act, rows, batch_size=3)
    assert codes.shape == (7, env.n_bits) and codes.dtype == np.uint8
    assert np.array_equal(codes, env.encode(act, rows))
    assert pickle.dumps(env) == state
    for i, row in enumerate(rows):  # the same policy inside an episode emits the same code
        obs, _info = env.reset(options={"indices": row if env.episode_steps == env.steps_per_image
                                       else [row] * 3})
        for _ in range(env.steps_per_image):
            batched = {k: v[None] for k, v in obs.items()}
            obs, *_ = env.step(act(batched)[0])
        assert np.array_equal(env.core.bits[0, 0], codes[i])
    query = env.bank.indices("query")[:4]
    assert env.encode(act, query).shape == (4, env.n_bits)


# ---------------------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    ("env_id", "kwargs", "match"),
    [
        ("HierHash-v0", {"n_bits": 10, "bits_per_step": 3}, "not divisible by bits_per_step"),
        ("CentralHash-v0", {"n_bits": 10, "bits_per_step": 4}, "not divisible by bits_per_step"),
        ("HierHash-v0", {"bank": BANK, "level": 2}, "beyond the bank's 2 hierarchy level"),
        ("CentralHash-v0", {"bank": BANK, "level": 5}, "beyond the bank's 2 hierarchy level"),
        ("HierHash-v0", {"bank": BANK, "level": 1}, "needs the previous level's codes"),
        ("HierHash-v0", {"bank": BANK, "level": 1, "prev_codes": np.zeros((5, 12))},
         r"prev_codes must have shape \(\d+, 12\)"),
        ("HierHash-v0", {"mode": "pairs"}, "unknown mode 'pairs'"),
        ("CentralHash-v0", {"action_type": "logits"}, "unknown action_type 'logits'"),
        ("HierHash-v0", {"split": "val"}, "unknown split 'val'"),
        ("HierHash-v0", {"window": 13}, "window=13 exceeds n_bits=12"),
        ("HierHash-v0", {"rho": 1.5}, r"rho must be a finite number in \[0.0, 1.0\]"),
        ("HierHash-v0", {"bank": ML_BANK}, "needs a bank with hierarchy labels"),
        ("CentralHash-v0", {"epsilon": 0.0}, "epsilon must lie strictly between 0 and 0.5"),
        ("HierHash-v0", {"bank": "no-such-preset"}, "unknown preset"),
    ],
)
def test_bad_arguments_raise_clear_errors(env_id: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gym.make(env_id, **kwargs)


def test_prev_codes_setter_checks_shape() -> None:
    env = gym.make("HierHash-v0", bank=BANK).unwrapped
    with pytest.raises(HashEnvError, match="prev_codes must have shape"):
        env.prev_codes = np.zeros((3, 12), np.uint8)
    with pytest.raises(ValueError, match="only 0/1 or ±1"):
        env.prev_codes = np.full((len(env.split_rows), 12), 2)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "action", "match"),
    [
        ("HierHash-v0", {}, 8, r"outside the action space Discrete\(8\)"),
        ("HierHash-v0", {}, -1, "outside the action space"),
        ("HierHash-v0", {}, 1.5, "must be integers"),
        ("HierHash-v0", {}, [1, 2], r"must be one integer in 0\.\.7 \(shape \(\)\), got an array of shape \(2,\)"),
        ("CentralHash-v0", {"bank": BANK, "n_bits": 4}, [0, 1, 2, 0], r"outside the action space MultiBinary"),
        ("CentralHash-v0", {"bank": BANK, "n_bits": 4}, [0, 1, 1], r"must be 4 binary values \(shape \(4,\)\), got an array of shape \(3,\)"),
        ("CentralHash-v0", {"bank": BANK, "n_bits": 4, "action_type": "probability"}, [0.2, 1.1, 0, 0],
         r"outside the action space Box"),
        ("CentralHash-v0", {"bank": BANK, "n_bits": 4, "action_type": "probability"}, [np.nan, 0, 0, 0],
         "outside the action space Box"),
    ],
)
def test_actions_outside_the_space_raise(env_id: str, kwargs: dict, action, match: str) -> None:
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=0)
    with pytest.raises(HashEnvError, match=match):
        env.step(np.asarray(action))


def test_bad_reset_options_raise() -> None:
    venv = gym.make_vec("HierHash-v0", num_envs=2, bank=BANK)
    with pytest.raises(HashEnvError, match="unknown reset options"):
        venv.reset(seed=0, options={"images": [0, 1]})
    query = BANK.indices("query")[:2]
    with pytest.raises(HashEnvError, match="must be rows of split 'train'"):
        venv.reset(seed=0, options={"indices": query})
    with pytest.raises(HashEnvError, match=r"indices must have shape \(2,\)"):
        venv.reset(seed=0, options={"indices": BANK.indices("train")[:4].reshape(2, 2)})
    with pytest.raises(HashEnvError, match="not supported"):
        gym.make_vec("HierHash-v0", num_envs=2, max_episode_steps=3)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_feature_buffers_live_through_the_next_image(env_id: str, kwargs: dict) -> None:
    """The documented aliasing (hashgym.envs.core): features stay valid until the image after the
    next one starts; final_obs shows the ended images and its t is a read-only 1."""
    venv = gym.make_vec(env_id, num_envs=3, **kwargs)
    venv.action_space.seed(0)
    obs, _ = venv.reset(seed=0)
    steps_per_image = venv.unwrapped.steps_per_image
    last_final, last_codes = None, None
    for _ in range(3 * venv.unwrapped.episode_steps):
        kept = obs["features"].copy()
        last = obs
        obs, _, terminated, _, info = venv.step(venv.action_space.sample())
        np.testing.assert_array_equal(last["features"], kept)  # still valid one image later
        if last_final is not None:  # the previous final codes too, through the next step
            np.testing.assert_array_equal(np.stack([f["code"] for f in last_final]), last_codes)
            last_final = None
        if terminated.all():
            for i, final in enumerate(info["final_obs"]):
                np.testing.assert_array_equal(final["features"], kept[i])
                assert final["t"].tolist() == [1.0] and not final["t"].flags.writeable
                assert set(final) == {"features", "code", "t"}, "a dict was reused"
                final["mine"] = i  # fresh dicts: what a caller adds stays in its own
            assert info["final_obs"][0] is not info["final_obs"][1]
            last_final = info["final_obs"]
            last_codes = np.stack([f["code"] for f in last_final]).copy()
    assert steps_per_image >= 1


@pytest.mark.parametrize("env_id", HASHGYM_IDS)
def test_pickled_vector_env_rebuilds_its_final_observations(env_id: str) -> None:
    kwargs = {"bank": BANK, "n_bits": 4, "bits_per_step": 4}
    venv = gym.make_vec(env_id, num_envs=3, **kwargs)
    venv.reset(seed=2)
    act = np.stack([venv.single_action_space.sample()] * 3)
    venv.step(act)  # builds the cached row views of the final observations
    clone = pickle.loads(pickle.dumps(venv))
    for _ in range(3):
        a, b = venv.step(act), clone.step(act)
        assert _equal(a, b)
        for i in range(3):  # the clone's final features are its own ended images', not stale
            np.testing.assert_array_equal(
                b[4]["final_obs"][i]["features"],
                clone.unwrapped.bank.features[b[4]["final_info"]["index"][i]].astype(np.float32))


def test_encode_streams_a_memory_mapped_bank(tmp_path) -> None:
    """Coding a memory-mapped bank reads it in batches (the env never loads the whole split)
    and gives the codes of the same bank in memory."""
    bank = make_hierarchical_bank(branching=(2, 3), n_per_class=20, dim=8, seed=1)
    mapped = FeatureBank.load(bank.save(tmp_path / "bank.npz"), mmap=True)
    assert isinstance(mapped.features, np.memmap)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:  # 3 bits from the features' signs
        return ((obs["features"][:, :3] > 0) * np.array([4, 2, 1])).sum(axis=1)

    codes = {}
    for name, source in (("memory", bank), ("mapped", mapped)):
        venv = gym.make_vec("HierHash-v0", num_envs=1, bank=source, split="database")
        codes[name] = venv.unwrapped.encode(act, batch_size=7)
        assert not venv.unwrapped.core.features_loaded  # never materialised
    np.testing.assert_array_equal(codes["memory"], codes["mapped"])
    assert len(np.unique(codes["memory"], axis=0)) > 1
