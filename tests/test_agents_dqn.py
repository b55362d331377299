"""DRLHIH's DQN agent: the Q-network's input layer, the level curriculum, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from hashgym.agents.curriculum import LevelCurriculum
from hashgym.agents.dqn import DQN_DEFAULTS, HashQFeatures
from hashgym.agents.encode import encode, encode_with_env
from hashgym.agents.registry import TrainError
from hashgym.agents.train import hierarchical_dqn, train
from hashgym.envs.constraints import TRIPLETS_PER_IMAGE
from hashgym.envs.core import observation_space
from hashgym.metrics import evaluate
from hashgym.synthetic import make_hierarchical_bank

torch.set_num_threads(1)
BANK = make_hierarchical_bank(seed=0)


def _ndcg(codes_q: np.ndarray, codes_db: np.ndarray) -> float:
    q, db = BANK.indices("query"), BANK.indices("database")
    return evaluate(codes_q, codes_db, BANK.labels[q], BANK.labels[db], metrics=["NDCG@20"],
                    relevance="hierarchy")["NDCG@20"]


def test_features_layout() -> None:
    space = observation_space(dim=5, code_length=6)
    extractor = HashQFeatures(space, projection_dim=4, normalize=False)
    assert extractor.features_dim == 4 + 6 + 1
    obs = {"features": torch.randn(3, 5), "code": torch.tensor([[1.0, -1, 0, 0, 0, 0]] * 3),
           "t": torch.full((3, 1), 1 / 3)}
    out = extractor(obs)
    assert out.shape == (3, 11)
    linear = extractor.project[0]
    expected = torch.relu(obs["features"] @ linear.weight.T + linear.bias)
    torch.testing.assert_close(out[:, :4], expected)
    torch.testing.assert_close(out[:, 4:10], obs["code"])
    torch.testing.assert_close(out[:, 10:], obs["t"])
    assert isinstance(HashQFeatures(space).project[0], torch.nn.LayerNorm)


def test_features_errors() -> None:
    with pytest.raises(TrainError, match="needs the Dict observation space"):
        HashQFeatures(spaces.Box(0, 1, (4,)))
    with pytest.raises(TrainError, match="projection_dim must be a positive int, got 0"):
        HashQFeatures(observation_space(4, 4), projection_dim=0)


def test_paper_defaults() -> None:
    assert DQN_DEFAULTS["gamma"] == 1.0
    assert DQN_DEFAULTS["policy_kwargs"]["features_extractor_class"] is HashQFeatures


@pytest.mark.slow
def test_hierarchical_dqn_learns_and_refines_level_by_level(monkeypatch) -> None:
    seen: list[tuple[int, np.ndarray]] = []

    def spy(model, venv):
        codes = encode_with_env(model, venv)
        seen.append((venv.get_attr("level")[0], codes))
        return codes

    monkeypatch.setattr("hashgym.agents.curriculum.encode_with_env", spy)
    rng = np.random.default_rng(0)
    n_q, n_db = len(BANK.indices("query")), len(BANK.indices("database"))
    random_ndcg = np.mean([_ndcg(rng.integers(0, 2, (n_q, 12)), rng.integers(0, 2, (n_db, 12)))
                           for _ in range(5)])
    result = train("dqn", "HierHash-v0", {"bank": BANK}, level_timesteps=[2000, 1000],
                   num_envs=16, seed=0, algo_kwargs={"learning_starts": 200,
                                                     "target_update_interval": 500})
    model = result.model
    assert result.info["trained_levels"] == [0, 1] and model.num_timesteps == 3008
    # level 1 started from the level-0 agent's codes of every training image
    assert len(seen) == 1 and seen[0][0] == 0
    assert seen[0][1].shape == (len(BANK.indices("train")), 12)
    env = model.get_env()
    assert env.get_attr("level")[0] == 1
    np.testing.assert_array_equal(env.get_attr("prev_codes")[0], seen[0][1])
    trained = _ndcg(encode(model, BANK, "query"), encode(model, BANK, "database"))
    assert trained > random_ndcg + 0.25, (trained, random_ndcg)


def test_curriculum_arguments() -> None:
    model = train("dqn", "HierHash-v0", {"bank": BANK}, total_timesteps=0, num_envs=2,
                  levels=[0]).model
    with pytest.raises(TrainError, match="at least one level"):
        LevelCurriculum(model, lambda *a: None, [], [])
    with pytest.raises(TrainError, match="one number per level: 2 levels, 1 numbers"):
        LevelCurriculum(model, lambda *a: None, [0, 1], [5])
    with pytest.raises(TrainError, match="must be >= 0"):
        LevelCurriculum(model, lambda *a: None, [0], [-5])


def test_hierarchical_dqn_front_end(tmp_path) -> None:
    result = hierarchical_dqn(BANK, n_bits=6, bits_per_step=2, n_constraints=(50, 20),
                              timesteps_per_level=(64, 32), num_envs=8, out=str(tmp_path),
                              learning_starts=16, buffer_size=500, batch_size=8)
    assert result.info["n_constraints"] == [50, 20] and result.info["levels"] == [0, 1]
    assert result.model.get_env().get_attr("memory_roles")[0] == "anchor"
    assert result.model.get_env().get_attr("constraints")[0].shape == (20, 3)
    assert result.info["algo_kwargs"]["gamma"] == 1.0
    assert encode(result.path, BANK, "query").shape == (len(BANK.indices("query")), 6)
    # default pools (the env's): TRIPLETS_PER_IMAGE per training image at every level
    default = hierarchical_dqn(BANK, n_bits=6, bits_per_step=2, timesteps_per_level=0,
                               num_envs=2, env_kwargs={"memory_roles": "all",
                                                       "sibling_negatives": True})
    n_train = len(BANK.indices("train"))
    env = default.model.get_env()
    assert env.get_attr("constraints")[0].shape == (TRIPLETS_PER_IMAGE * n_train, 3)
    assert env.get_attr("memory_roles")[0] == "all" and env.get_attr("level")[0] == 1
    labels = BANK.labels
    a, _, n = env.get_attr("constraints")[0].T
    assert np.all(labels[a, 0] == labels[n, 0])  # sibling negatives when asked for
