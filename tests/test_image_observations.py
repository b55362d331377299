"""Image observations (``observation="image"``): both envs show the bank's images, uint8
[H, W, C], pass Gymnasium's and SB3's checks, encode as stepping does, and refuse banks without
images by name; banks record and keep their image source (hashgym.images)."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from hashgym.bank import BankError, FeatureBank
from hashgym.envs import HashEnvError
from hashgym.images import ImageError, attach_images, bank_images, has_images, image_shape
from hashgym.protocols import resolve_bank
from hashgym.synthetic import make_hierarchical_bank

ENVS = [("HierHash-v0", {}), ("HierHash-v0", {"mode": "triplet"}),
        ("CentralHash-v0", {"n_bits": 8, "bits_per_step": 2})]


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random 8x8 RGB images, two more than the bank has, in a file of their own."""
    n = make_hierarchical_bank(seed=0).n
    images = np.random.default_rng(0).integers(0, 256, (n + 2, 8, 8, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("images") / "images.npz"
    np.savez(path, pixels=images)
    return path


@pytest.fixture(scope="module")
def bank(image_file: Path) -> FeatureBank:
    base = make_hierarchical_bank(seed=0)
    return attach_images(base, image_file, key="pixels", index=np.arange(base.n)[::-1] + 2)


@pytest.mark.parametrize(("env_id", "kwargs"), ENVS)
def test_image_envs_pass_gymnasium_and_sb3_checks(bank: FeatureBank, env_id: str,
                                                  kwargs: dict) -> None:
    env = gym.make(env_id, bank=bank, observation="image", **kwargs)
    space = env.observation_space["features"]
    assert space.dtype == np.uint8 and space.shape == (8, 8, 3)
    gym_check_env(env.unwrapped, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*minimal resolution for an image.*")
        sb3_check_env(gym.make(env_id, bank=bank, observation="image", **kwargs).unwrapped)


@pytest.mark.parametrize(("env_id", "kwargs"), ENVS)
def test_observations_are_the_images_of_the_episodes(bank: FeatureBank, image_file: Path,
                                                     env_id: str, kwargs: dict) -> None:
    pixels = np.load(image_file)["pixels"]
    venv = gym.make_vec(env_id, num_envs=5, bank=bank, observation="image", **kwargs)
    obs, info = venv.reset(seed=1)
    for _ in range(6):
        rows = info["index"]
        np.testing.assert_array_equal(obs["features"], pixels[bank.image_index[rows]])
        obs, _, _, _, info = venv.step(venv.action_space.sample())


def test_encode_reads_the_images_as_stepping_does(bank: FeatureBank) -> None:
    """A policy of the images' mean brightness: encode() equals coding each image by hand."""

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        level = obs["features"].reshape(len(obs["features"]), -1).mean(axis=1)
        return ((level + 40 * obs["t"][:, 0]) % 8).astype(np.int64)

    rows = bank.indices("train")[:7]
    venv = gym.make_vec("HierHash-v0", num_envs=len(rows), bank=bank, observation="image",
                        bits_per_step=3)
    codes = venv.unwrapped.encode(act, indices=rows, batch_size=3)
    obs, _ = venv.reset(seed=0, options={"indices": rows})
    for _ in range(venv.unwrapped.episode_steps):
        obs, _, terminated, _, info = venv.step(act(obs))
    assert terminated.all()
    by_hand = (np.stack([o["code"] for o in info["final_obs"]]) > 0).astype(np.uint8)
    np.testing.assert_array_equal(codes, by_hand)
    assert len(np.unique(codes, axis=0)) > 1


def test_banks_keep_their_image_source(bank: FeatureBank, tmp_path: Path) -> None:
    assert has_images(bank) and image_shape(bank) == (8, 8, 3)
    subset = bank.take(np.array([5, 2, 9]))
    np.testing.assert_array_equal(bank_images(subset, [0, 1, 2]), bank_images(bank, [5, 2, 9]))
    loaded = FeatureBank.load(bank.save(tmp_path / "bank.npz"))
    np.testing.assert_array_equal(loaded.image_index, bank.image_index)
    assert loaded.meta["image_source"] == bank.meta["image_source"]
    assert not has_images(make_hierarchical_bank(seed=0))


@pytest.mark.slow
def test_the_shared_cifar100_bank_finds_its_images(shared_data: Path) -> None:
    bank = resolve_bank("cifar100-trees-people")
    with np.load(shared_data / "cifar100" / "cifar100.npz") as archive:
        fine = archive["fine_labels"]
    assert image_shape(bank) == (32, 32, 3)
    np.testing.assert_array_equal(fine[bank.image_index], bank.labels[:, 1])


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda b, f: gym.make("HierHash-v0", bank=make_hierarchical_bank(seed=0),
                           observation="image"),
     HashEnvError, r"observation='image': this bank has no images"),
    (lambda b, f: gym.make("CentralHash-v0", bank=b, observation="pixels"),
     HashEnvError, r"unknown observation 'pixels'; expected one of features, image"),
    (lambda b, f: attach_images(b, f, key="pixels", index=np.arange(b.n) + 5),
     ImageError, r"has 242 images, but the bank's index reaches row 244"),
    (lambda b, f: attach_images(b, f, key="images"),
     ImageError, r"has no array 'images'; it has pixels"),
    (lambda b, f: attach_images(b, f, index=np.arange(3)),
     ImageError, r"index must give one image row per bank image \(240\)"),
    (lambda b, f: attach_images(b, f.with_name("nope.npz")),
     ImageError, r"nope.npz cannot be read"),
    (lambda b, f: image_shape(b.replace(meta={"image_source": {"kind": "lmdb"}})),
     ImageError, r"unknown image source kind 'lmdb'; expected one of npz, torchvision-cifar, nus"),
    (lambda b, f: image_shape(b.replace(meta={"image_source": {"kind": "nuswide-list",
                                                               "list": str(f)}})),
     ImageError, r"the image source .* has no 'root'"),
    (lambda b, f: image_shape(b.replace(meta={"image_source": {
        "kind": "torchvision-cifar", "root": str(f.parent), "name": "cifar100"}})),
     ImageError, r"torchvision CIFAR images cannot be read: cifar100 file missing"),
    (lambda b, f: b.replace(image_index=-np.ones(b.n, dtype=int)),
     BankError, r"image_index must hold one non-negative integer row per image \(240\)"),
])
def test_image_errors_are_named(bank: FeatureBank, image_file: Path, make, error,
                                message: str) -> None:
    with pytest.raises(error, match=message):
        make(bank, image_file)


def test_images_of_another_kind_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "floats.npz"
    np.savez(path, images=np.zeros((240, 4, 4, 3), dtype=np.float32))
    with pytest.raises(ImageError, match=r"must hold uint8 images \[M, H, W, C\]"):
        attach_images(make_hierarchical_bank(seed=0), path)
