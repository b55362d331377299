"""Where HierHash-v0's code memory starts: random codes per class (``memory_init``) and the split
of the previous level's codes at a level change (``level_split``), checked image by image, with
their errors and the single and vector env agreeing."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hashgym  # noqa: F401
from hashgym.envs.core import HashEnvError
from hashgym.envs.hierhash import PAPER_SETTINGS, random_memory, split_memory
from hashgym.synthetic import make_hierarchical_bank

BANK = make_hierarchical_bank(branching=(3, 4), n_per_class=6, dim=16, seed=0)
TRAIN = BANK.indices("train")
LABELS = BANK.labels[TRAIN]


def _codes_by_class(memory: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """The distinct codes of each class's members."""
    return {int(c): np.unique(memory[labels == c], axis=0) for c in np.unique(labels)}


def test_class_init_gives_each_class_one_code() -> None:
    memory = random_memory(LABELS[:, 1], 12, np.random.default_rng(0), "class")
    per_class = _codes_by_class(memory, LABELS[:, 1])
    assert all(codes.shape[0] == 1 for codes in per_class.values())
    assert np.unique(np.concatenate(list(per_class.values())), axis=0).shape[0] > 1
    assert memory.dtype == np.uint8 and set(np.unique(memory)) <= {0, 1}


def test_image_init_is_independent_bits_per_image() -> None:
    memory = random_memory(LABELS[:, 0], 12, np.random.default_rng(3), "image")
    expected = np.random.default_rng(3).integers(0, 2, (TRAIN.size, 12), dtype=np.uint8)
    np.testing.assert_array_equal(memory, expected)


def test_random_memory_rejects_an_unknown_init() -> None:
    with pytest.raises(HashEnvError, match="unknown memory_init 'cluster'"):
        random_memory(LABELS[:, 0], 12, np.random.default_rng(0), "cluster")


@pytest.mark.parametrize("n_flip", [1, 2, 3])
def test_split_moves_every_class_and_keeps_siblings_apart(n_flip: int) -> None:
    """Every image moves exactly ``n_flip`` bits, all members of a class along the same bits, and
    the four siblings of a parent along disjoint bits (4 * n_flip <= 12)."""
    prev = random_memory(LABELS[:, 0], 12, np.random.default_rng(1), "class")
    out = split_memory(prev, LABELS[:, 1], LABELS[:, 0], n_flip, np.random.default_rng(2))
    flipped = out ^ prev
    assert (flipped.sum(axis=1) == n_flip).all()
    for parent in np.unique(LABELS[:, 0]):
        masks = [np.unique(flipped[LABELS[:, 1] == c], axis=0)
                 for c in np.unique(LABELS[LABELS[:, 0] == parent, 1])]
        assert all(m.shape[0] == 1 for m in masks)
        stacked = np.concatenate(masks)
        assert (stacked.sum(axis=0) <= 1).all()  # no bit moved by two siblings
        # siblings start 2 * n_flip bits apart
        codes = [np.unique(out[LABELS[:, 1] == c], axis=0)[0] for c in
                 np.unique(LABELS[LABELS[:, 0] == parent, 1])]
        assert all(np.sum(a != b) == 2 * n_flip for i, a in enumerate(codes)
                   for b in codes[i + 1:])


def test_split_reuses_bits_when_a_parent_has_more_children_than_bits() -> None:
    prev = np.zeros((TRAIN.size, 4), np.uint8)
    out = split_memory(prev, LABELS[:, 1], LABELS[:, 0], 2, np.random.default_rng(0))
    assert (out.sum(axis=1) == 2).all()  # four children of 2 bits each wrap around 4 bits
    zero = split_memory(prev, LABELS[:, 1], LABELS[:, 0], 0, np.random.default_rng(0))
    np.testing.assert_array_equal(zero, prev)
    assert zero is not prev


def test_default_level0_memory_has_one_code_per_class() -> None:
    env = gym.make("HierHash-v0", bank=BANK).unwrapped
    env.reset(seed=4)
    assert env.memory_init == "class" and env.level_split == 1
    assert all(c.shape[0] == 1 for c in _codes_by_class(env.memory, LABELS[:, 0]).values())
    paper = gym.make("HierHash-v0", bank=BANK, memory_init="image").unwrapped
    paper.reset(seed=4)
    assert any(c.shape[0] > 1 for c in _codes_by_class(paper.memory, LABELS[:, 0]).values())


@pytest.mark.parametrize("when", ["constructor", "set_level"])
def test_level_start_splits_prev_codes(when: str) -> None:
    """At level 1 the memory is ``prev_codes`` with every fine class moved one bit, while
    ``prev_codes`` themselves (eqs. (4)-(5)'s target) stay as given; ``level_split=0`` keeps the
    memory equal to them."""
    prev = random_memory(LABELS[:, 0], 12, np.random.default_rng(1), "class")
    if when == "constructor":
        env = gym.make("HierHash-v0", bank=BANK, level=1, prev_codes=prev).unwrapped
        env.reset(seed=0)
    else:
        env = gym.make("HierHash-v0", bank=BANK).unwrapped
        env.reset(seed=0)
        env.set_level(1, prev_codes=prev)
    np.testing.assert_array_equal(env.prev_codes, prev)
    moved = env.memory ^ prev
    assert (moved.sum(axis=1) == 1).all()
    assert all(m.shape[0] == 1 for m in _codes_by_class(moved, LABELS[:, 1]).values())
    np.testing.assert_array_equal(env.latest, env.memory)
    plain = gym.make("HierHash-v0", bank=BANK, level=1, prev_codes=prev, level_split=0).unwrapped
    plain.reset(seed=0)
    np.testing.assert_array_equal(plain.memory, prev)


def test_single_and_vector_env_start_from_the_same_memory() -> None:
    prev = random_memory(LABELS[:, 0], 12, np.random.default_rng(1), "class")
    kwargs = {"bank": BANK, "level": 1, "prev_codes": prev, "level_split": 2}
    env = gym.make("HierHash-v0", **kwargs).unwrapped
    venv = gym.make_vec("HierHash-v0", num_envs=3, **kwargs)
    env.reset(seed=9)
    venv.reset(seed=9)
    np.testing.assert_array_equal(env.memory, venv.unwrapped.memory)
    level0 = gym.make("HierHash-v0", bank=BANK).unwrapped
    vlevel0 = gym.make_vec("HierHash-v0", num_envs=3, bank=BANK)
    level0.reset(seed=9)
    vlevel0.reset(seed=9)
    np.testing.assert_array_equal(level0.memory, vlevel0.unwrapped.memory)


def test_paper_settings_start_from_per_image_bits_and_no_split() -> None:
    env = gym.make("HierHash-v0", bank=BANK, **PAPER_SETTINGS).unwrapped
    assert (env.memory_init, env.level_split) == ("image", 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_init": "cluster"}, "unknown memory_init 'cluster'; expected one of class, image"),
        ({"level_split": -1}, "level_split must be >= 0, got -1"),
        ({"level_split": 13}, "level_split must be <= n_bits (12), got 13"),
        ({"level_split": 1.5}, "level_split must be an integer"),
        ({"level_split": True}, "level_split must be an integer"),
        ({"mode": "triplet", "memory_init": "class"},
         "memory_init='class' and level_split need mode='memory'"),
        ({"mode": "triplet", "level_split": 1},
         "memory_init='class' and level_split need mode='memory'"),
    ],
)
def test_bad_memory_start_arguments_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(HashEnvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gym.make("HierHash-v0", bank=BANK, **kwargs)
