"""The RL Zoo files carry the same DQN hyperparameters and network as ``DQN_DEFAULTS``."""

from __future__ import annotations

import re

import pytest

from hashgym.agents.dqn import DQN_DEFAULTS, QRDQN_DEFAULTS
from hashgym.agents.registry import ALGORITHMS
from hashgym.agents.zoo import ZOO_ALGOS, config_path

SCALARS = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "gamma", "train_freq",
           "gradient_steps", "target_update_interval", "exploration_fraction",
           "exploration_final_eps")


def _hierhash_entry(algo: str) -> dict[str, str]:
    """The ``key: value`` lines of the file's ``HierHash-v0`` block, as strings."""
    entry: dict[str, str] = {}
    inside = False
    for line in config_path(algo).read_text().splitlines():
        if not line.startswith(" "):
            inside = line.startswith("HierHash-v0:")
        elif inside and (match := re.fullmatch(r"  (\w+): (.+)", line)):
            entry[match[1]] = match[2]
    return entry


@pytest.mark.parametrize("algo", ["dqn", "qrdqn"])
def test_zoo_dqn_files_match_the_recipe(algo: str) -> None:
    entry = _hierhash_entry(algo)
    for key in SCALARS:
        assert float(entry[key].replace("!!float ", "")) == pytest.approx(DQN_DEFAULTS[key]), key
    policy = DQN_DEFAULTS["policy_kwargs"]
    projection = policy["features_extractor_kwargs"]["projection_dim"]
    assert f"features_extractor_kwargs=dict(projection_dim={projection})" in entry["policy_kwargs"]
    assert f"net_arch={policy['net_arch']}" in entry["policy_kwargs"]
    if algo == "qrdqn":
        quantiles = QRDQN_DEFAULTS["policy_kwargs"]["n_quantiles"]
        assert f"n_quantiles={quantiles}" in entry["policy_kwargs"]
        assert ALGORITHMS["qrdqn"].defaults == QRDQN_DEFAULTS


def test_zoo_lstm_file_has_the_registry_lstm() -> None:
    policy = ALGORITHMS["recurrentppo"].defaults["policy_kwargs"]
    want = "dict(" + ", ".join(f"{key}={value}" for key, value in policy.items()) + ")"
    assert _hierhash_entry("ppo_lstm")["policy_kwargs"] == f'"{want}"'
    assert config_path("ppo_lstm").read_text().count(f'policy_kwargs: "{want}"') == 2  # both envs


def test_every_zoo_algorithm_has_a_file() -> None:
    assert all(config_path(algo).is_file() for algo in ZOO_ALGOS)
    with pytest.raises(ValueError, match="no zoo hyperparameters for 'nope'; available: ppo"):
        config_path("nope")


@pytest.mark.parametrize("algo", ZOO_ALGOS)
def test_every_hierhash_id_has_the_same_entry(algo: str) -> None:
    """A file that fits HierHash fits both of its ids, with one set of hyperparameters."""
    yaml = pytest.importorskip("yaml")
    entries = yaml.safe_load(config_path(algo).read_text())
    hier = [key for key in entries if key.startswith("HierHash")]
    assert hier in ([], ["HierHash-v0", "HierHash-v1"]), hier
    if hier:
        assert entries["HierHash-v1"] == entries["HierHash-v0"]
        assert entries["HierHash-v0"]["n_timesteps"] > 0
