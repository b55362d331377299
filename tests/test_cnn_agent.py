"""A CNN inside the agent (hashgym.agents.cnn): on image observations a tiny CNN DQN learns
codes well above random in seconds, encodes as stepping does, saves and loads to the same codes,
starts from saved backbone weights, and refuses what it cannot use by name."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from hashgym.agents.cnn import ImageHashFeatures
from hashgym.agents.encode import encode
from hashgym.agents.saving import load_model
from hashgym.agents.train import TrainError, train
from hashgym.bank import FeatureBank
from hashgym.cli import main
from hashgym.datasets import load_cifar100_npz
from hashgym.features import extract_features
from hashgym.images import attach_images
from hashgym.metrics import evaluate
from hashgym.synthetic import make_class_images, make_hierarchical_bank

torch.set_num_threads(1)
SMALL = {"learning_starts": 256, "batch_size": 64, "buffer_size": 5000,
         "policy_kwargs": {"features_extractor_kwargs": {"projection_dim": 64}, "net_arch": [64]}}


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> FeatureBank:
    """The synthetic bank with 8x8 images whose pixels show their fine class."""
    base = make_hierarchical_bank(seed=0)
    path = tmp_path_factory.mktemp("images") / "images.npz"
    np.savez(path, images=make_class_images(base.labels, seed=0))
    return attach_images(base, path)


@pytest.fixture(scope="module")
def trained(bank: FeatureBank, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run")
    result = train("dqn", "HierHash-v0", {"bank": bank, "observation": "image"},
                   total_timesteps=40_000, num_envs=32, levels=[1], seed=0, algo_kwargs=SMALL,
                   out=out)
    return result, out


def _map(bank: FeatureBank, query: np.ndarray, db: np.ndarray) -> float:
    qi, di = bank.indices("query"), bank.indices("database")
    return evaluate(query, db, bank.labels[qi, 1], bank.labels[di, 1], ["mAP@all"])["mAP@all"]


@pytest.mark.slow
def test_a_tiny_cnn_agent_learns_codes_above_random(bank: FeatureBank, trained) -> None:
    result, _ = trained
    extractor = result.model.policy.q_net.features_extractor
    assert isinstance(extractor, ImageHashFeatures)  # chosen by train() for image observations
    query, db = encode(result.model, bank, "query"), encode(result.model, bank, "database")
    rng = np.random.default_rng(0)
    chance = _map(bank, rng.integers(0, 2, query.shape), rng.integers(0, 2, db.shape))
    assert _map(bank, query, db) > 1.8 * chance


@pytest.mark.slow
def test_encode_through_the_cnn_equals_stepping_the_env(bank: FeatureBank, trained) -> None:
    model = trained[0].model
    rows = bank.indices("query")
    venv = gym.make_vec("HierHash-v0", num_envs=len(rows), bank=bank, split="query",
                        observation="image")
    obs, _ = venv.reset(seed=0, options={"indices": rows})
    for _ in range(venv.unwrapped.episode_steps):
        obs, _, terminated, _, info = venv.step(model.predict(obs, deterministic=True)[0])
    assert terminated.all()
    by_hand = (np.stack([o["code"] for o in info["final_obs"]]) > 0).astype(np.uint8)
    np.testing.assert_array_equal(encode(model, bank, "query", batch_size=7), by_hand)


@pytest.mark.slow
def test_a_saved_image_model_loads_to_the_same_codes(bank: FeatureBank, trained) -> None:
    result, out = trained
    loaded, info = load_model(out / "model.zip")
    assert info["env_kwargs"]["observation"] == "image"
    np.testing.assert_array_equal(encode(loaded, bank, "database"),
                                  encode(result.model, bank, "database"))


def test_a_torchvision_body_starts_from_saved_weights(bank: FeatureBank, tmp_path: Path) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(3)
    state = resnet18(num_classes=4).state_dict()
    torch.save(state, tmp_path / "backbone.pt")
    space = gym.make("HierHash-v0", bank=bank, observation="image").observation_space
    extractor = ImageHashFeatures(space, backbone="resnet18", weights=str(tmp_path / "backbone.pt"))
    torch.testing.assert_close(extractor.body.body.state_dict()["conv1.weight"], state["conv1.weight"])
    obs = {k: torch.as_tensor(np.stack([v] * 2)) for k, v in space.sample().items()}
    obs["features"] = obs["features"].float() / 255
    assert extractor(obs).shape == (2, extractor.features_dim)


def test_hashgym_train_with_image_observations(bank: FeatureBank, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    path = bank.save(tmp_path / "bank.npz")
    args = ["train", "--bank", str(path), "--observation", "image", "--backbone", "small",
            "--timesteps", "256", "--num-envs", "16", "--levels", "0", "--no-progress",
            "--algo-kwargs", "learning_starts=64", "batch_size=16"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    model, _ = load_model(tmp_path / "run" / "model.zip")
    assert isinstance(model.policy.q_net.features_extractor, ImageHashFeatures)
    assert main(["train", "--bank", str(path), "--backbone", "resnet18", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "--backbone and --backbone-weights need --observation image" in capsys.readouterr().err
    assert main([*args[:6], "vgg1", *args[7:], "--out", str(tmp_path / "bad2")]) == 2
    assert "unknown backbone 'vgg1'; expected one of small, resnet18" in capsys.readouterr().err
    assert main(["train", "--env", "CentralHash-v0", "--algo", "reinforce", "--bank", str(path),
                 "--observation", "image", "--backbone", "small", "--n-bits", "8",
                 "--timesteps", "256", "--num-envs", "16", "--no-progress",
                 "--out", str(tmp_path / "reinforce")]) == 0
    model, _ = load_model(tmp_path / "reinforce" / "model.zip")
    assert model.policy.image_body is not None and model.policy.backbone == "small"


def test_extractor_errors(bank: FeatureBank) -> None:
    image_space = gym.make("HierHash-v0", bank=bank, observation="image").observation_space
    feature_space = gym.make("HierHash-v0", bank=bank).observation_space
    with pytest.raises(TrainError, match="needs the Dict observation of an env made with "
                                         "observation='image'"):
        ImageHashFeatures(feature_space)
    with pytest.raises(TrainError, match="the 'small' body has no pretrained weights"):
        ImageHashFeatures(image_space, weights="imagenet")
    with pytest.raises(TrainError, match="projection_dim must be a positive int, got 0"):
        ImageHashFeatures(image_space, projection_dim=0)
    with pytest.raises(TrainError, match="augment must be True or False, got 1"):
        ImageHashFeatures(image_space, augment=1)
    # the space the errors were about is accepted with valid arguments: [h(I), c_t, t]
    extractor = ImageHashFeatures(image_space, projection_dim=8)
    width = 8 + image_space["code"].shape[0] + 1
    assert extractor.features_dim == width
    obs = image_space.sample()
    batch = {"features": torch.as_tensor(obs["features"][None]).float() / 255,
             "code": torch.as_tensor(obs["code"][None]), "t": torch.as_tensor(obs["t"][None])}
    assert extractor(batch).shape == (1, width)


# ------------------------------------------------------------------ the recurrent REINFORCE agent
@pytest.fixture(scope="module")
def reinforce_run(bank: FeatureBank, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("reinforce")
    result = train("reinforce", "CentralHash-v0",
                   {"bank": bank, "observation": "image", "n_bits": 16, "bits_per_step": 8},
                   total_timesteps=25_600, num_envs=64, seed=0, out=out,
                   algo_kwargs={"policy_kwargs": {"net_arch": [64], "hidden_size": 32}})
    return result, out


@pytest.mark.slow
def test_reinforce_trains_its_cnn_end_to_end(bank: FeatureBank, reinforce_run) -> None:
    """SCIHCGRL eq. (10): the CNN body learns with the policy; the codes beat random codes."""
    result, _ = reinforce_run
    policy = result.model.policy
    assert policy.image_body is not None
    query, db = encode(result.model, bank, "query"), encode(result.model, bank, "database")
    rng = np.random.default_rng(0)
    chance = _map(bank, rng.integers(0, 2, query.shape), rng.integers(0, 2, db.shape))
    assert _map(bank, query, db) > 2 * chance


@pytest.mark.slow
def test_reinforce_image_codes_equal_stepping_and_survive_save_load(bank: FeatureBank,
                                                                    reinforce_run) -> None:
    result, out = reinforce_run
    model = result.model
    rows = bank.indices("query")
    venv = gym.make_vec("CentralHash-v0", num_envs=len(rows), bank=bank, split="query",
                        observation="image", n_bits=16, bits_per_step=8)
    obs, _ = venv.reset(seed=0, options={"indices": rows})
    state = None
    for _ in range(venv.unwrapped.episode_steps):
        actions, state = model.predict(obs, state=state, deterministic=True)
        obs, _, terminated, _, info = venv.step(actions)
    assert terminated.all()
    by_hand = (np.stack([o["code"] for o in info["final_obs"]]) > 0).astype(np.uint8)
    codes = encode(model, bank, "query", batch_size=5)
    np.testing.assert_array_equal(codes, by_hand)
    loaded, _ = load_model(out / "model.zip")
    np.testing.assert_array_equal(encode(loaded, bank, "query"), codes)


def test_an_agent_starts_from_the_backbone_its_bank_was_made_with(tmp_path: Path) -> None:
    """Backbone weights ``"bank"``: the state dict hashgym features saved with the bank (what the
    scihcgrl-e2e suite uses); a changed file, or a bank without one, is refused by name; the
    model file then loads without it."""
    fine = np.arange(24, dtype=np.int16) % 4
    np.savez(tmp_path / "c.npz", images=make_class_images(fine, size=16, seed=1),
             fine_labels=fine, coarse_labels=(fine // 2).astype(np.int16),
             fine_names=np.array(["a", "b", "c", "d"]), coarse_names=np.array(["x", "y"]))
    weights = tmp_path / "resnet18.pt"
    bank = extract_features(load_cifar100_npz(tmp_path / "c.npz"), train_epochs=1,
                            save_weights=weights, batch_size=8, progress=False, device="cpu")
    env_kwargs = {"bank": bank, "observation": "image", "n_bits": 8}
    policy_kwargs = {"backbone": "resnet18", "backbone_weights": "bank", "net_arch": [16],
                     "hidden_size": 8}
    result = train("reinforce", "CentralHash-v0", env_kwargs, total_timesteps=0, num_envs=4,
                   algo_kwargs={"policy_kwargs": policy_kwargs}, out=tmp_path / "run")
    body = result.model.policy.image_body.body
    state = torch.load(weights, weights_only=True)
    torch.testing.assert_close(body.state_dict()["conv1.weight"], state["conv1.weight"])
    assert result.info["algo_kwargs"]["policy_kwargs"]["backbone_weights"] == str(weights.resolve())
    saved = weights.read_bytes()
    weights.unlink()  # the model file holds the weights: loading does not need the start file
    loaded, _ = load_model(tmp_path / "run" / "model.zip")
    np.testing.assert_array_equal(encode(loaded, bank, "query"),
                                  encode(result.model, bank, "query"))
    weights.write_bytes(saved[:-1] + b"x")
    with pytest.raises(TrainError, match="changed since the bank was made"):
        train("reinforce", "CentralHash-v0", env_kwargs, total_timesteps=0, num_envs=4,
              algo_kwargs={"policy_kwargs": policy_kwargs})
    other = bank.replace(meta={k: v for k, v in bank.meta.items() if k != "saved_weights"})
    with pytest.raises(TrainError, match="need a bank made by hashgym features --save-weights"):
        train("reinforce", "CentralHash-v0", {**env_kwargs, "bank": other}, total_timesteps=0,
              num_envs=4, algo_kwargs={"policy_kwargs": policy_kwargs})
