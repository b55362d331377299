"""encode(): the same codes as stepping the env by hand; codes files; safe model files."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from hashgym.agents import encode as encode_module
from hashgym.agents.encode import (
    EncodeError,
    coding_sample,
    encode,
    policy_act,
    prefix_unit,
)
from hashgym.agents.fast_act import recurrent_act
from hashgym.agents.saving import (
    MODEL_INFO,
    ModelFileError,
    load_model,
    read_model_info,
    resolve_class,
    save_model,
    space_from_json,
    space_to_json,
)
from hashgym.agents.train import train
from hashgym.cli import main
from hashgym.codefile import CodeFileError, load_codes, save_codes
from hashgym.envs.core import HashEnvError
from hashgym.envs.sb3 import make_sb3_vec_env
from hashgym.synthetic import make_hierarchical_bank, make_multilabel_bank

torch.set_num_threads(1)
BANK = make_hierarchical_bank(seed=0)
QUERY = BANK.indices("query")


def _by_hand(model, env_id: str, env_kwargs: dict, recurrent: bool = False) -> np.ndarray:
    """Code every query image by stepping the vector env with the deterministic policy."""
    venv = gym.make_vec(env_id, num_envs=len(QUERY), bank=BANK, split="query", **env_kwargs)
    obs, _ = venv.reset(seed=0, options={"indices": QUERY})
    state, starts = None, np.ones(len(QUERY), dtype=bool)
    for _ in range(venv.episode_steps):
        actions, state = model.predict(obs, state=state, episode_start=starts,
                                       deterministic=True)
        starts = np.zeros(len(QUERY), dtype=bool)
        obs, _, terminated, _, info = venv.step(actions)
    assert terminated.all()
    final = np.stack([o["code"] for o in info["final_obs"]])
    return (final > 0).astype(np.uint8)


def test_dqn_codes_match_stepping_the_env() -> None:
    model = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=512, num_envs=16,
                  levels=[0], algo_kwargs={"learning_starts": 64, "batch_size": 16}).model
    codes = encode(model, BANK, "query", batch_size=7)  # batches that do not divide the split
    np.testing.assert_array_equal(codes, _by_hand(model, "HierHash-v0", {}))
    assert len(np.unique(codes, axis=0)) > 1


@pytest.mark.parametrize("algo", ["dqn", "qrdqn"])
def test_greedy_fast_path_equals_predict(algo: str) -> None:
    """The Q-networks' encode path (features projected once per image) gives the codes of
    SB3's own ``predict``, on a network with large random weights, so that the greedy action
    changes from image to image and from step to step."""
    model = train(algo, "HierHash-v0", {"bank": BANK}, total_timesteps=256, num_envs=16,
                  levels=[1], algo_kwargs={"learning_starts": 10_000}).model
    _randomised(model, scale=1.0)
    _assert_encode_equals_predict(model)


def _randomised(model, scale: float) -> None:
    """Large random weights, so that actions change from image to image and step to step."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.policy.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


def _assert_encode_equals_predict(model) -> None:
    """encode() of the database gives the codes of the same model seen only through predict
    (encode's generic path), and they are not all alike."""

    class PredictOnly:
        predict = staticmethod(model.predict)
        observation_space, action_space = model.observation_space, model.action_space
        hashgym_info = model.hashgym_info

    rows = BANK.indices("database")
    codes = encode(model, BANK, indices=rows, batch_size=50)
    np.testing.assert_array_equal(codes, encode(PredictOnly(), BANK, indices=rows, batch_size=50))
    assert len(np.unique(codes, axis=0)) > 4


def test_recurrent_codes_match_stepping_the_env() -> None:
    env_kwargs = {"n_bits": 8, "bits_per_step": 2, "action_type": "probability"}
    model = train("recurrentppo", "CentralHash-v0", {"bank": BANK, **env_kwargs},
                  total_timesteps=256, num_envs=16,
                  algo_kwargs={"n_steps": 8, "batch_size": 64, "n_epochs": 1}).model
    codes = encode(model, BANK, "query")
    np.testing.assert_array_equal(codes, _by_hand(model, "CentralHash-v0", env_kwargs))


@pytest.mark.parametrize(("env_id", "env_kwargs"), [
    ("HierHash-v0", {"bits_per_step": 2}),  # Discrete actions
    ("CentralHash-v0", {"n_bits": 8, "bits_per_step": 2, "action_type": "probability"}),  # Box
])
def test_recurrent_fast_path_equals_predict(env_id: str, env_kwargs: dict) -> None:
    """RecurrentPPO's encode path (features through the LSTM's input weights once per image)
    gives the codes of sb3-contrib's own ``predict``, carried state and all."""
    model = train("recurrentppo", env_id, {"bank": BANK, **env_kwargs}, total_timesteps=128,
                  num_envs=16, algo_kwargs={"n_steps": 8, "batch_size": 64, "n_epochs": 1}).model
    _randomised(model, scale=0.5)
    assert recurrent_act(model) is not None
    _assert_encode_equals_predict(model)


def test_recurrent_fast_path_restarts_only_the_new_episodes() -> None:
    """Rows whose ``t`` is 0 start from a fresh state while the others carry theirs, as in
    ``predict`` with ``episode_start``."""
    model = train("recurrentppo", "HierHash-v0", {"bank": BANK, "bits_per_step": 2},
                  total_timesteps=128, num_envs=16,
                  algo_kwargs={"n_steps": 8, "batch_size": 64, "n_epochs": 1}).model
    _randomised(model, scale=0.5)
    act = recurrent_act(model)
    venv = gym.make_vec("HierHash-v0", num_envs=12, bank=BANK, bits_per_step=2)
    obs, _ = venv.reset(seed=3)
    state, starts = None, np.ones(12, dtype=bool)
    rng, mixed = np.random.default_rng(0), 0
    for _ in range(10):
        mixed += bool(starts.any() and not starts.all())
        expected, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        np.testing.assert_array_equal(act(obs), expected)
        obs = {key: value.copy() for key, value in obs.items()}
        obs["features"] = obs["features"] + rng.normal(size=obs["features"].shape)
        obs["t"][:, 0] = np.where(rng.random(12) < 0.3, 0.0, obs["t"][:, 0] + 0.25)
        starts = obs["t"][:, 0] == 0
    assert mixed >= 5  # steps where some rows restarted and others carried on


def test_plain_sb3_model_without_hashgym_info() -> None:
    venv = make_sb3_vec_env("CentralHash-v0", num_envs=8, bank=BANK, n_bits=8)
    model = PPO("MultiInputPolicy", venv, n_steps=4, batch_size=32, seed=0).learn(32)
    codes = encode(model, BANK, "query")  # env inferred from the spaces
    np.testing.assert_array_equal(codes, _by_hand(model, "CentralHash-v0", {"n_bits": 8}))
    assert encode(model, BANK, indices=QUERY[:3]).shape == (3, 8)
    assert encode(model, BANK, "all").shape == (BANK.n, 8)


def test_codes_file_round_trip(tmp_path: Path) -> None:
    codes = np.random.default_rng(0).integers(0, 2, (len(QUERY), 8)).astype(np.uint8)
    path = save_codes(tmp_path / "c.npz", codes, BANK, QUERY, meta={"model": {"algo": "x"}})
    saved = load_codes(path)
    np.testing.assert_array_equal(saved["codes"], codes)
    np.testing.assert_array_equal(saved["rows"], QUERY)
    np.testing.assert_array_equal(saved["labels"], BANK.labels[QUERY])
    assert (saved["split"] == 1).all() and saved["meta"]["model"] == {"algo": "x"}
    with pytest.raises(CodeFileError, match="codes has 48 rows but rows has 3"):
        save_codes(tmp_path / "d.npz", codes, BANK, QUERY[:3])
    with pytest.raises(CodeFileError, match="does not exist"):
        load_codes(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(CodeFileError, match="not a hashgym codes file"):
        load_codes(tmp_path / "other.npz")


def test_encode_errors() -> None:
    venv = make_sb3_vec_env("CentralHash-v0", num_envs=2, bank=BANK, n_bits=8)
    model = PPO("MultiInputPolicy", venv, n_steps=4, batch_size=8)
    with pytest.raises(EncodeError, match="unknown split 'val'"):
        encode(model, BANK, "val")

    class NoSpaces:
        observation_space = gym.spaces.Box(0, 1, (3,))

    with pytest.raises(EncodeError, match="cannot tell which env"):
        encode(NoSpaces(), BANK)


def test_space_json_round_trip() -> None:
    for space in (gym.spaces.Discrete(8), gym.spaces.MultiBinary(5), gym.spaces.MultiDiscrete([2, 3]),
                  gym.spaces.Box(0.0, 1.0, (4,), np.float32)):
        assert space_from_json(json.loads(json.dumps(space_to_json(space)))) == space
    obs = make_sb3_vec_env("HierHash-v0", num_envs=1, bank=BANK).observation_space
    assert space_from_json(space_to_json(obs)) == obs


def test_model_files_load_without_unpickling(tmp_path: Path) -> None:
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a zip archive"):
        read_model_info(tmp_path / "junk.zip")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "none.zip")
    venv = make_sb3_vec_env("CentralHash-v0", num_envs=2, bank=BANK, n_bits=8)
    model = PPO("MultiInputPolicy", venv, n_steps=4, batch_size=8)
    model.save(tmp_path / "sb3.zip")
    with pytest.raises(ModelFileError, match="no hashgym.json: it was not saved by hashgym"):
        load_model(tmp_path / "sb3.zip")
    # a hashgym.json naming a class outside the trusted packages is refused before any import
    info = {"algo": "ppo", "policy": "MultiInputPolicy",
            "algo_kwargs": {"policy_kwargs": {"features_extractor_class": {"class": "os:system"}}},
            "observation_space": space_to_json(venv.observation_space),
            "action_space": space_to_json(venv.action_space)}
    save_model(model, tmp_path / "evil.zip", info)
    with pytest.raises(ModelFileError, match="refusing to import 'os'"):
        load_model(tmp_path / "evil.zip")
    with pytest.raises(ModelFileError, match="must look like 'module:Name'"):
        resolve_class("stable_baselines3.PPO")
    # only the allow-listed packages, never a __main__ or private module (importing
    # hashgym.agents.zoo.__main__ would run the zoo's command line)
    for ref, message in (
            ("hashgym.agents.zoo.__main__:X", "may not name classes in '__main__' modules"),
            ("torch._dynamo:X", "may not name classes in '_dynamo' modules"),
            ("hashgym.cli:main", "refusing to import 'hashgym.cli'"),
            ("torch.storage:TypedStorage", "refusing to import 'torch.storage'")):
        with pytest.raises(ModelFileError, match=message):
            resolve_class(ref)
    assert resolve_class("torch.nn.modules.activation:ReLU").__name__ == "ReLU"
    assert resolve_class("hashgym.agents.dqn:HashQFeatures").__name__ == "HashQFeatures"
    with pytest.raises(ModelFileError, match="cannot resolve class"):
        resolve_class("stable_baselines3:NoSuchThing")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MODEL_INFO, json.dumps({"format": 99, "algo": "ppo"}))
    (tmp_path / "future.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError, match="unsupported hashgym.json"):
        read_model_info(tmp_path / "future.zip")


def test_a_bank_of_other_features_is_refused_by_name() -> None:
    """A model trained on 32-d features, given a 16-d bank: an EncodeError, not a torch error."""
    result = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=0, num_envs=2)
    narrow = make_hierarchical_bank(dim=16, seed=1)
    assert BANK.features.shape[1] != 16
    with pytest.raises(EncodeError, match=rf"the model was trained on {BANK.features.shape[1]}-d "
                                          r"features; this env gives 16-d features"):
        encode(result.model, narrow, "query")
    with pytest.raises(EncodeError, match="a 12-entry code observation; this env gives 24"):
        encode(result.model, BANK, "query", env_id="HierHash-v0",
               env_kwargs={"n_bits": 24, "bits_per_step": 3})


@pytest.mark.parametrize("payload", [b"not a torch file at all", pickle.dumps({"x": 1})],
                         ids=["garbage", "pickle"])
def test_tampered_weights_are_a_model_file_error(tmp_path: Path, payload: bytes) -> None:
    result = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=0, num_envs=2)
    good = save_model(result.model, tmp_path / "m.zip", result.model.hashgym_info)
    bad = tmp_path / "tampered.zip"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, payload if item.filename == "policy.pth" else zin.read(item))
    with pytest.raises(ModelFileError, match="weights are damaged or hold Python objects, which "
                                             "hashgym never unpickles"):
        load_model(bad)


def test_encode_codes_a_bank_through_an_env_over_a_small_sample() -> None:
    """encode() makes its env over coding_sample(bank) (two training images per class and one
    query), so the env's episode state does not grow with the bank; the codes of every row are
    those of an env made over the whole training split."""
    sample = coding_sample(BANK)
    finest = BANK.labels[BANK.indices("train"), -1]
    assert sample.n == 2 * len(np.unique(finest)) + 1 < BANK.n
    np.testing.assert_array_equal(np.unique(sample.labels[:, -1]), np.unique(finest))
    for env_id, env_kwargs, bank, algo, kwargs in (
            ("HierHash-v0", {}, BANK, "dqn", {"learning_starts": 32, "batch_size": 16}),
            ("CentralHash-v0", {"n_bits": 8, "multilabel": True},
             make_multilabel_bank(seed=2), "ppo", {"n_steps": 8, "batch_size": 64})):
        model = train(algo, env_id, {"bank": bank, **env_kwargs}, total_timesteps=256,
                      num_envs=16, seed=0, algo_kwargs=kwargs,
                      levels=[0] if env_id == "HierHash-v0" else None).model
        full = gym.make_vec(env_id, num_envs=1, bank=bank, split="train", **env_kwargs)
        expected = full.unwrapped.encode(policy_act(model), indices=np.arange(bank.n))
        np.testing.assert_array_equal(encode(model, bank, "all"), expected)
        assert len(np.unique(expected, axis=0)) > 1


@pytest.mark.parametrize("make", [lambda: BANK, lambda: make_multilabel_bank(seed=2)],
                         ids=["hierarchical", "multi-label"])
def test_coding_sample_reads_blocks_and_stops_early(make, monkeypatch: pytest.MonkeyPatch) -> None:
    bank = make()
    train = bank.indices("train")
    expected = [bank.indices("query")[:1]]  # brute force: the first query, the first two
    if bank.n_levels:  # training images of every class and of every concept, in bank order
        expected += [train[bank.labels[train, -1] == c][:2] for c in np.unique(bank.labels[train, -1])]
    if bank.multi_hot is not None:
        expected += [train[bank.multi_hot[train, c] > 0][:2] for c in range(bank.multi_hot.shape[1])]
    expected_bank = bank.take(np.unique(np.concatenate(expected)))
    monkeypatch.setattr(encode_module, "_SAMPLE_BLOCK", 7)
    read: list[int] = []
    split = bank.split

    class Counting(np.ndarray):
        def __getitem__(self, item):  # the blocks coding_sample reads of bank.split
            if isinstance(item, slice):
                read.append(item.start)
            return super().__getitem__(item)

    object.__setattr__(bank, "split", split.view(Counting))
    try:
        sample = coding_sample(bank)
    finally:
        object.__setattr__(bank, "split", split)
    np.testing.assert_array_equal(sample.features, expected_bank.features)
    np.testing.assert_array_equal(sample.labels, expected_bank.labels)
    assert read and max(read) < bank.n - 7  # stopped before the last block


def test_encode_from_another_bank_errors() -> None:
    env = gym.make_vec("HierHash-v0", num_envs=1, bank=coding_sample(BANK)).unwrapped
    act = lambda obs: np.zeros(len(obs["t"]), dtype=np.int64)
    with pytest.raises(HashEnvError, match=r"encode\(bank=...\) needs indices"):
        env.encode(act, bank=BANK)
    other = make_hierarchical_bank(dim=8, seed=1)
    with pytest.raises(HashEnvError, match="bank has 8-d features; the env's observations are 32-d"):
        env.encode(act, indices=[0], bank=other)
    with pytest.raises(HashEnvError, match=r"indices must be bank rows in 0\.\."):
        env.encode(act, indices=[BANK.n], bank=BANK)
    assert env.encode(act, indices=[0, BANK.n - 1], bank=BANK).shape == (2, 12)


def test_a_prefix_is_the_first_bits_of_the_full_code(tmp_path: Path) -> None:
    """A 64-bit DQN (8 bits per step): its 24-bit codes, from an env that stops after three
    steps, are the first 24 bits of its 64-bit codes, from the API and from the CLI; its
    prefixes are the chunks in order (so 12 bits is refused)."""
    result = train("dqn", "HierHash-v0", {"bank": BANK, "n_bits": 64}, total_timesteps=256,
                   num_envs=16, levels=[1], algo_kwargs={"learning_starts": 10_000})
    model = result.model
    _randomised(model, scale=1.0)  # codes that change from step to step
    full = encode(model, BANK, "database")
    assert full.shape[1] == 64 and len(np.unique(full[:, 24:], axis=0)) > 4
    for bits in (8, 24, 56, 64):
        np.testing.assert_array_equal(encode(model, BANK, "database", bits=bits),
                                      full[:, :bits])
    with pytest.raises(EncodeError, match="bits=12 is not a multiple of the model's chunk of 8"):
        encode(model, BANK, "database", bits=12)
    with pytest.raises(EncodeError, match="bits=72 is longer than the model's 64-bit code"):
        encode(model, BANK, "database", bits=72)

    path = save_model(model, tmp_path / "model.zip", model.hashgym_info)
    bank_path = BANK.save(tmp_path / "bank.npz")
    for bits, name in ((None, "full.npz"), (24, "prefix.npz")):
        argv = ["encode", str(path), "--bank", str(bank_path), "--split", "database",
                "--out", str(tmp_path / name)]
        assert main(argv + ([] if bits is None else ["--bits", str(bits)])) == 0
    prefix, whole = load_codes(tmp_path / "prefix.npz"), load_codes(tmp_path / "full.npz")
    np.testing.assert_array_equal(whole["codes"], full)
    np.testing.assert_array_equal(prefix["codes"], full[:, :24])
    assert prefix["meta"]["prefix_bits"] == 24


def test_the_prefix_unit_of_each_kind_of_agent() -> None:
    """The REINFORCE agent's RNN emits one bit after another, so any prefix of its one-step code
    is one; another agent that emits its whole code in one step has no shorter prefix."""
    reinforce = train("reinforce", "CentralHash-v0", {"bank": BANK, "n_bits": 16},
                      total_timesteps=64, num_envs=16).model
    env = gym.make_vec("CentralHash-v0", num_envs=1, bank=BANK, n_bits=16).unwrapped
    assert prefix_unit(reinforce, env) == 1
    full = encode(reinforce, BANK, "query")
    np.testing.assert_array_equal(encode(reinforce, BANK, "query", bits=5), full[:, :5])
    venv = make_sb3_vec_env("CentralHash-v0", num_envs=8, bank=BANK, n_bits=16)
    ppo = PPO("MultiInputPolicy", venv, n_steps=4, batch_size=32, seed=0)
    assert prefix_unit(ppo, env) == 16
    with pytest.raises(EncodeError, match=r"chunk of 16 bits \(the model emits its whole code "
                                          r"in one step: its bits are not emitted in order\)"):
        encode(ppo, BANK, "query", bits=8)
    assert encode(ppo, BANK, "query", bits=16).shape == (len(QUERY), 16)


def test_a_model_trained_with_auto_centres_codes_without_being_told(tmp_path: Path) -> None:
    """100 classes have 16-bit centres only at ``min_distance="auto"``: the coding env takes it
    (and the centre seed) from the model's record, as it takes the code's shape."""
    bank = make_hierarchical_bank(branching=(10, 10), n_per_class=3, dim=8, seed=0)
    result = train("reinforce", "CentralHash-v0",
                   {"bank": bank, "n_bits": 16, "min_distance": "auto", "center_seed": 3},
                   total_timesteps=64, num_envs=16)
    codes = encode(result.model, bank, "query")
    assert codes.shape == (len(bank.indices("query")), 16)
    path = save_model(result.model, tmp_path / "model.zip", result.model.hashgym_info)
    np.testing.assert_array_equal(encode(path, bank, "query"), codes)


def test_env_encode_prefix_errors() -> None:
    env = gym.make_vec("HierHash-v0", num_envs=1, bank=BANK, n_bits=12).unwrapped
    act = lambda obs: np.zeros(len(obs["t"]), dtype=np.int64)
    assert env.encode(act, indices=[0, 1], prefix=6).shape == (2, 6)
    for prefix in (0, 4, 15, 6.0):
        with pytest.raises(HashEnvError, match=rf"prefix={prefix!r} must be a positive multiple "
                                               r"of bits_per_step=3, at most n_bits=12"):
            env.encode(act, indices=[0], prefix=prefix)
