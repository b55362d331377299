"""Recurrent REINFORCE (SCIHCGRL §2) on CentralHash-v0: learning, SB3 interface, save/load, errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.vec_env import DummyVecEnv

import hashgym  # noqa: F401  (registers the env ids)
from hashgym.agents.reinforce import RecurrentHashPolicy, RecurrentReinforce, ReinforceError
from hashgym.agents.saving import ModelFileError
from hashgym.codes import hamming_paired
from hashgym.envs.sb3 import make_sb3_vec_env
from hashgym.metrics import evaluate
from hashgym.synthetic import make_hierarchical_bank

torch.set_num_threads(1)

N_ENVS = 128


@pytest.fixture(scope="module")
def bank():
    return make_hierarchical_bank(branching=(4, 3), n_per_class=40, dim=32, seed=0)


def make_env(bank, **kwargs):
    kwargs.setdefault("n_bits", 16)
    return make_sb3_vec_env("CentralHash-v0", num_envs=N_ENVS, bank=bank, **kwargs)


def make_model(env, **kwargs):
    kwargs.setdefault("policy_kwargs", {"hidden_size": 64})
    kwargs.setdefault("seed", 0)
    return RecurrentReinforce("MultiInputPolicy", env, **kwargs)


def native(env):
    return env.unwrapped.vector_env


def encoder(model):
    """A stateful act function for ``env.encode`` (the hidden state carried between chunks)."""
    state = None

    def act(obs):
        nonlocal state
        actions, state = model.predict(obs, state=state, deterministic=True)
        return actions

    return act


def mean_map(model, env, bank) -> float:
    venv = native(env)
    q, d = bank.indices("query"), bank.indices("database")
    codes_q = venv.encode(encoder(model), indices=q)
    codes_d = venv.encode(encoder(model), indices=d)
    return evaluate(codes_q, codes_d, bank.labels[q, -1], bank.labels[d, -1],
                    metrics=["mAP@all"])["mAP@all"]


def greedy_reward(model, env, bank) -> float:
    """The env's mean episode return of the deterministic policy over every training image."""
    venv = native(env)
    rows = bank.indices("train")
    codes = venv.encode(encoder(model), indices=rows)
    centers = venv.image_centers[venv.core.position_of_row[rows]]
    eps = venv.core.epsilon
    h = hamming_paired(codes, centers).astype(float)
    k = venv.n_bits
    per_image = 1 - (h * np.log(1 / eps) + (k - h) * np.log(1 / (1 - eps))) / k
    return float(per_image.mean() * 2)  # global_weight = 1 doubles the single-step reward


def random_policy_reward(n_bits: int, eps: float = 1e-3) -> float:
    """Expected return of uniform random bits: half the bits wrong on average."""
    return 2 * (1 - 0.5 * (np.log(1 / eps) + np.log(1 / (1 - eps))))


# ------------------------------------------------------------------ learning
@pytest.mark.slow
def test_supervised_variant_learns_above_random(bank):
    env = make_env(bank)
    model = make_model(env)
    before = mean_map(model, env, bank)
    model.learn(N_ENVS * 100)
    after_map = mean_map(model, env, bank)
    reward = greedy_reward(model, env, bank)
    assert reward > random_policy_reward(16) + 4.0  # near the maximum of about 2
    assert after_map > 0.95 and after_map > before + 0.2
    assert model.num_timesteps == N_ENVS * 100


@pytest.mark.slow
def test_pure_rl_variant_improves(bank):
    env = make_env(bank, info_keys=())  # the pure-RL agent never reads the centers
    model = make_model(env, supervised_weight=0.0)
    start, start_map = greedy_reward(model, env, bank), mean_map(model, env, bank)
    model.learn(N_ENVS * 300)  # measured: return -4.6 -> 1.0 (random -4.9), mAP 0.74 -> 1.0
    end = greedy_reward(model, env, bank)
    assert end > start + 4.0
    assert end > random_policy_reward(16) + 4.0
    assert mean_map(model, env, bank) > start_map + 0.15


def test_same_seed_same_weights(bank):
    models = []
    for _ in range(2):
        model = make_model(make_env(bank), baseline="batch")
        model.learn(N_ENVS * 5)
        models.append(model)
    for a, b in zip(models[0].policy.state_dict().values(), models[1].policy.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("baseline", ["value", "batch", "none"])
def test_baselines_log_their_losses(bank, baseline):
    model = make_model(make_env(bank), baseline=baseline, gamma=0.9)
    model.learn(N_ENVS * 2, log_interval=0)
    values = model.logger.name_to_value
    for key in ("train/policy_loss", "train/supervised_bce", "train/bit_error", "train/entropy"):
        assert np.isfinite(values[key])
    assert (values["train/value_loss"] > 0) == (baseline == "value")
    assert (model.policy.value is not None) == (baseline == "value")


# ------------------------------------------------------------------ the network
@pytest.mark.parametrize("head", ["shared", "per_iteration"])
def test_step_logits_match_the_equations_by_hand(bank, head):
    """SCIHCGRL eqs. (6)-(8) written out with the cell's own weights, one iteration at a time."""
    model = make_model(make_env(bank, bits_per_step=4), policy_kwargs={"hidden_size": 16, "head": head})
    policy = model.policy
    feats = torch.as_tensor(bank.features[:5], dtype=torch.float32)
    carried = torch.randn(5, 16)
    with torch.no_grad():
        z, h_last, h_first = policy.step_logits(feats, carried, None)
        x = policy.project(policy.mlp((feats - policy.feature_mean) / policy.feature_scale))
        cell = policy.cell
        h = torch.tanh(x @ cell.weight_ih.T + cell.bias_ih + carried @ cell.weight_hh.T + cell.bias_hh)
        expected = []
        for n in range(4):
            if n:  # eq. (7): the hidden state is both the input and the carried state
                h = torch.tanh(h @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh)
            if n == 0:
                first = h
            w = policy.head.weight[n if head == "per_iteration" else 0]
            b = policy.head.bias[n if head == "per_iteration" else 0]
            expected.append(h @ w + b)  # eq. (8) before the tanh
    torch.testing.assert_close(z, torch.stack(expected, dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_last, h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_first, first)
    assert policy.head.weight.shape == ((4, 16) if head == "per_iteration" else (1, 16))


def test_orthogonal_init_and_weight_decay(bank):
    policy = make_model(make_env(bank)).policy
    recurrence = (policy.cell.weight_ih + policy.cell.weight_hh).detach()
    torch.testing.assert_close(recurrence @ recurrence.T, torch.eye(64), rtol=0, atol=1e-5)
    assert policy.optimizer.param_groups[0]["weight_decay"] == 3e-3
    plain = make_model(make_env(bank), policy_kwargs={
        "hidden_size": 64, "recurrent_init": "default", "optimizer_kwargs": {"weight_decay": 0.0}}).policy
    recurrence = (plain.cell.weight_ih + plain.cell.weight_hh).detach()
    assert not torch.allclose(recurrence @ recurrence.T, torch.eye(64), atol=0.1)
    assert plain.optimizer.param_groups[0]["weight_decay"] == 0.0


def test_learning_rate_decays_linearly_to_zero(bank):
    model = make_model(make_env(bank), learning_rate=2e-3)
    seen = []

    class Record(BaseCallback):
        def _on_rollout_start(self) -> None:
            seen.append(None)

        def _on_rollout_end(self) -> None:
            seen[-1] = self.model.policy.optimizer.param_groups[0]["lr"]

        def _on_step(self) -> bool:
            return True

    model.learn(N_ENVS * 4, callback=Record())
    np.testing.assert_allclose(seen, [2e-3, 1.5e-3, 1e-3, 0.5e-3], rtol=1e-9)
    constant = make_model(make_env(bank), learning_rate=2e-3, lr_decay=False)
    constant.learn(N_ENVS * 3)
    assert constant.policy.optimizer.param_groups[0]["lr"] == 2e-3


def test_dropout_only_while_training(bank):
    env = make_env(bank)
    model = make_model(env, policy_kwargs={"hidden_size": 64, "dropout": 0.5})
    obs = env.reset()
    feats = torch.as_tensor(obs["features"])
    model.policy.set_training_mode(True)
    with torch.no_grad():
        assert not torch.equal(model.policy.step_logits(feats, None, None)[0],
                               model.policy.step_logits(feats, None, None)[0])
    first, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], first)


# ------------------------------------------------------------------ predict
def test_deterministic_predict_is_the_sign_rule(bank):
    env = make_env(bank)
    model = make_model(env)
    model.learn(N_ENVS * 3)
    obs = env.reset()
    actions, (hidden,) = model.predict(obs, deterministic=True)
    with torch.no_grad():
        z, h, _ = model.policy.step_logits(torch.as_tensor(obs["features"]), None, None)
    expected = (torch.tanh(z) >= 0).numpy().astype(np.int8)  # SCIHCGRL eq. (9)
    np.testing.assert_array_equal(actions, expected)
    np.testing.assert_allclose(hidden, h.numpy(), rtol=1e-6)
    assert actions.shape == (N_ENVS, 16) and env.action_space.contains(actions[0])
    single, _ = model.predict({k: v[0] for k, v in obs.items()}, deterministic=True)
    np.testing.assert_array_equal(single, expected[0])
    torch.manual_seed(1)
    sampled = np.stack([model.predict(obs)[0] for _ in range(3)])
    assert set(np.unique(sampled)) <= {0, 1} and not (sampled == sampled[0]).all()


def test_probability_actions_stay_on_the_side_of_the_bit():
    z = torch.tensor([[-20.0, -1e-9, -1e-30, 0.0, 1e-30, 1e-9, 20.0]])
    p = RecurrentHashPolicy.probability_action(z)
    assert p.dtype == torch.float32
    np.testing.assert_array_equal((p >= 0.5).numpy(), (z >= 0).numpy())
    assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0


@pytest.mark.slow
def test_probability_action_type_learns(bank):
    env = make_env(bank, action_type="probability")
    model = make_model(env, policy_kwargs={"hidden_size": 64, "exploration_std": 0.5})
    obs = env.reset()
    probs, _ = model.predict(obs, deterministic=True)
    bits, _ = make_model(make_env(bank)).predict(obs, deterministic=True)  # same seed, same net
    assert probs.dtype == np.float32 and ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_array_equal((probs >= 0.5).astype(np.int8), bits)
    noisy, _ = model.predict(obs)
    assert ((noisy >= 0) & (noisy <= 1)).all() and not np.array_equal(noisy, probs)
    model.learn(N_ENVS * 150)
    assert greedy_reward(model, env, bank) > random_policy_reward(16) + 4.0
    assert mean_map(model, env, bank) > 0.9


# ------------------------------------------------------------------ chunked episodes
def test_chunks_carry_the_hidden_state(bank):
    env = make_env(bank, bits_per_step=4)
    model = make_model(env)
    assert model.steps_per_image == 4
    obs0 = env.reset()
    first, state = model.predict(obs0, deterministic=True)
    obs1, _, dones, _ = env.step(first)
    assert not dones.any() and (obs1["t"] > 0).all()
    with pytest.raises(ReinforceError, match="pass the state returned"):
        model.predict(obs1, deterministic=True)
    # The carried state is used at later steps ...
    _carried, _ = model.predict(obs1, state=state)
    zero = (np.zeros_like(state[0]),)
    with torch.no_grad():
        z_carried, _, _ = model.policy.step_logits(
            torch.as_tensor(obs1["features"]), torch.as_tensor(state[0]), None)
        z_zero, _, _ = model.policy.step_logits(
            torch.as_tensor(obs1["features"]), torch.as_tensor(zero[0]), None)
    assert not torch.allclose(z_carried, z_zero)
    # ... and reset at an image's first step (t == 0) or where episode_start says so.
    garbage = (np.full_like(state[0], 0.7),)
    again, _ = model.predict(obs0, state=garbage, deterministic=True)
    np.testing.assert_array_equal(again, first)
    obs1_start = dict(obs1)
    restarted, _ = model.predict(obs1_start, state=garbage,
                                 episode_start=np.ones(N_ENVS, dtype=bool), deterministic=True)
    fresh, _ = model.predict({**obs1, "t": np.zeros_like(obs1["t"])}, deterministic=True)
    np.testing.assert_array_equal(restarted, fresh)


def test_chunked_encode_matches_stepping_by_hand(bank):
    env = make_env(bank, bits_per_step=4)
    model = make_model(env)
    model.learn(N_ENVS * 4 * 3)
    venv = native(env)
    rows = venv.split_rows[:N_ENVS]
    codes = venv.encode(encoder(model), indices=rows, batch_size=50)
    obs, _ = venv.reset(options={"indices": rows})
    state, by_hand = None, []
    for _ in range(4):
        action, state = model.predict(obs, state=state, deterministic=True)
        by_hand.append(action)
        obs, *_ = venv.step(action)
    np.testing.assert_array_equal(codes, np.concatenate(by_hand, axis=1))


@pytest.mark.slow
def test_chunked_training_learns(bank):
    env = make_env(bank, bits_per_step=4)
    model = make_model(env, episodes_per_update=2)
    before = greedy_reward(model, env, bank)
    model.learn(N_ENVS * 4 * 2 * 60)
    assert greedy_reward(model, env, bank) > max(before, random_policy_reward(16)) + 3.0


# ------------------------------------------------------------------ SB3 interface
class CountSteps(BaseCallback):
    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.calls = 0
        self.rollouts = 0
        self.stop_after = stop_after
        self.started = self.ended = False

    def _on_training_start(self) -> None:
        self.started = True

    def _on_rollout_end(self) -> None:
        self.rollouts += 1

    def _on_step(self) -> bool:
        self.calls += 1
        assert "infos" in self.locals and len(self.locals["infos"]) == N_ENVS
        return self.stop_after is None or self.calls < self.stop_after

    def _on_training_end(self) -> None:
        self.ended = True


def test_callbacks_and_checkpoints(bank, tmp_path):
    env = make_env(bank, bits_per_step=8)
    model = make_model(env)
    counter = CountSteps()
    checkpoint = CheckpointCallback(save_freq=4, save_path=str(tmp_path), name_prefix="rr")
    model.learn(N_ENVS * 2 * 5, callback=[counter, checkpoint])
    assert counter.started and counter.ended
    assert counter.calls == 10 and counter.rollouts == 5
    saved = sorted((p.name for p in tmp_path.iterdir()), key=len)
    assert saved == [f"rr_{N_ENVS * 4}_steps.zip", f"rr_{N_ENVS * 8}_steps.zip"]
    loaded = RecurrentReinforce.load(tmp_path / saved[-1], env=env)
    assert loaded.num_timesteps == N_ENVS * 8
    stopper = CountSteps(stop_after=3)
    model.learn(N_ENVS * 100, callback=stopper, reset_num_timesteps=False)
    assert stopper.calls == 3 and model.num_timesteps == N_ENVS * 13


def test_save_load_identical_predictions(bank, tmp_path, monkeypatch):
    env = make_env(bank)
    model = make_model(env, learning_rate=lambda progress: 2e-3 * progress, supervised_weight=2.0,
                       lr_decay=False, policy_kwargs={"hidden_size": 64, "head": "per_iteration"})
    model.learn(N_ENVS * 10)
    path = tmp_path / "model.zip"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert {"data", "policy.pth", "policy.optimizer.pth"} <= set(archive.namelist())

    import cloudpickle

    def refuse(*args, **kwargs):
        raise AssertionError("load must not unpickle")

    monkeypatch.setattr(cloudpickle, "loads", refuse)
    loaded = RecurrentReinforce.load(path)
    assert loaded.env is None and loaded.learning_rate == pytest.approx(2e-3)
    obs = env.reset()
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0],
                                  model.predict(obs, deterministic=True)[0])
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key])
    venv = native(env)
    np.testing.assert_array_equal(venv.encode(encoder(loaded)), venv.encode(encoder(model)))
    resumed = RecurrentReinforce.load(str(path)[:-4], env=make_env(bank))  # SB3 adds ".zip"
    assert resumed.supervised_weight == 2.0 and resumed.lr_decay is False
    assert resumed.policy_kwargs == {"hidden_size": 64, "head": "per_iteration"}
    assert resumed.policy.head.weight.shape == (16, 64)
    resumed.learn(N_ENVS * 2, reset_num_timesteps=False)
    assert resumed.num_timesteps == N_ENVS * 12


def test_env_id_and_native_vector_env_are_accepted(bank):
    model = make_model(gym.make_vec("CentralHash-v0", num_envs=16, bank=bank, n_bits=8))
    model.learn(32)
    assert model.n_envs == 16 and model.num_timesteps == 32
    assert len(model.ep_info_buffer) == 32  # VecMonitor added: episodes are recorded
    by_id = RecurrentReinforce("MultiInputPolicy", "CentralHash-v0", policy_kwargs={"hidden_size": 8})
    assert by_id.n_envs == 256


# ------------------------------------------------------------------ errors
def test_refuses_environments_it_cannot_drive(bank):
    with pytest.raises(ReinforceError, match="Discrete chunks"):
        make_model(make_sb3_vec_env("HierHash-v0", num_envs=4, bank=bank))
    with pytest.raises(ReinforceError, match="not a single CentralHashEnv"):
        make_model(gym.make("CentralHash-v0", bank=bank).unwrapped)
    with pytest.raises(ReinforceError, match="SB3VecEnv"):
        make_model(DummyVecEnv([lambda: gym.make("CentralHash-v0", bank=bank)]))
    with pytest.raises(ReinforceError, match="info_keys exclude 'hash_center'"):
        make_model(make_env(bank, info_keys=("index",)))
    model = make_model(make_env(bank))
    obs = model.env.reset()
    with pytest.raises(ReinforceError, match="'features' and 't'"):
        model.predict(obs["features"])
    with pytest.raises(ReinforceError, match="'t' has 1 rows"):
        model.predict({"features": obs["features"], "t": obs["t"][:1]})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 1.5}, "gamma must be a finite number in"),
        ({"baseline": "ema"}, "unknown baseline 'ema'"),
        ({"episodes_per_update": 0}, "episodes_per_update must be a positive integer"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number in"),
        ({"supervised_weight": -1.0}, "supervised_weight must be a finite number"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be a finite number"),
        ({"vf_coef": float("nan")}, "vf_coef must be a finite number"),
        ({"policy_kwargs": {"net_arch": [object()]}}, "policy_kwargs must be JSON-serialisable"),
        ({"policy_kwargs": {"hidden_size": 0}}, "hidden_size must be a positive integer"),
        ({"policy_kwargs": {"net_arch": [8, -1]}}, "net_arch must be a list of positive"),
        ({"policy_kwargs": {"exploration_std": 0.0}}, "exploration_std must be a positive"),
        ({"policy_kwargs": {"head": "per_bit"}}, "unknown head 'per_bit'"),
        ({"policy_kwargs": {"dropout": 1.0}}, r"dropout must be a number in \[0, 1\)"),
        ({"policy_kwargs": {"recurrent_init": "eye"}}, "unknown recurrent_init 'eye'"),
        ({"policy_kwargs": {"weight_decay": -1e-3}}, "weight_decay must be a non-negative number"),
        ({"lr_decay": "linear"}, "lr_decay must be True or False"),
    ],
)
def test_bad_hyperparameters(bank, kwargs, match):
    with pytest.raises(ReinforceError, match=match):
        make_model(make_env(bank), **kwargs)


def test_bad_policy_learn_and_load_arguments(bank, tmp_path):
    with pytest.raises(ReinforceError, match="unknown policy 'MlpPolicy'"):
        RecurrentReinforce("MlpPolicy", make_env(bank))
    model = make_model(make_env(bank))
    with pytest.raises(ReinforceError, match="total_timesteps must be a non-negative integer"):
        model.learn(-5)
    path = tmp_path / "model.zip"
    model.save(path)
    with pytest.raises(ReinforceError, match="no environment"):
        RecurrentReinforce.load(path).learn(10)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a zip file"):
        RecurrentReinforce.load(bad)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("data", "{}")
    with pytest.raises(ModelFileError, match="not a RecurrentReinforce model"):
        RecurrentReinforce.load(foreign)
    assert Path(path).exists()
