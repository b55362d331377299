"""The algorithms :func:`hashgym.agents.train.train` knows by name, and how each is built.

:data:`ALGORITHMS` maps a name (``"dqn"``, ``"ppo"``, ``"reinforce"``, …) to an :class:`AlgoSpec`:
the class to import, the action spaces it takes, its default policy and hashgym's default
constructor arguments on hashgym's envs (for ``dqn`` and ``qrdqn``: DRLHIH's Q-network and
hyperparameters, :data:`hashgym.agents.dqn.DQN_DEFAULTS`). :func:`register_algorithm` adds more.
The classes are imported on first use, so an uninstalled extra costs nothing until asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from hashgym.agents.config import TrainError
from hashgym.agents.dqn import DQN_DEFAULTS, QRDQN_DEFAULTS

__all__ = [
    "ALGORITHMS",
    "AlgoSpec",
    "TrainError",
    "algorithm_class",
    "check_fits",
    "load_target",
    "merge_defaults",
    "register_algorithm",
    "resolve_algorithm",
]

_ALL = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Box)
_ON_POLICY_SMALL = {"n_steps": 16, "batch_size": 256}
# RecurrentPPO: one 256-unit LSTM (sb3-contrib's size) shared by the actor and the critic instead
# of one each: as accurate as two and faster; smaller LSTMs squeeze the 512-d features
# (benchmarks/results/notes/agents-suite.md)
_RECURRENT = {**_ON_POLICY_SMALL, "policy_kwargs": {"lstm_hidden_size": 256,
                                                    "enable_critic_lstm": False,
                                                    "shared_lstm": True}}
_OFF_POLICY_BOX = {"buffer_size": 50_000, "learning_starts": 1_000, "batch_size": 256}


@dataclasses.dataclass(frozen=True)
class AlgoSpec:
    """How :func:`hashgym.agents.train.train` builds one algorithm.

    :param target: ``"module:Class"`` of the algorithm (imported on first use).
    :param action_spaces: the action-space types it supports.
    :param policy: the default policy alias.
    :param defaults: default constructor arguments on hashgym's envs (overridden by
        ``algo_kwargs``); a ``policy_kwargs`` entry is merged key by key.
    :param flatten_obs: feed flat observations (:class:`~hashgym.agents.flatten.FlattenDictObs`).
    :param needs_infos: the algorithm reads the env's infos (e.g. ``hash_center``).
    """

    target: str
    action_spaces: tuple[type[spaces.Space], ...]
    policy: str | None = "MultiInputPolicy"
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    flatten_obs: bool = False
    needs_infos: bool = False


ALGORITHMS: dict[str, AlgoSpec] = {
    "dqn": AlgoSpec("stable_baselines3:DQN", (spaces.Discrete,), defaults=DQN_DEFAULTS),
    "qrdqn": AlgoSpec("sb3_contrib:QRDQN", (spaces.Discrete,), defaults=QRDQN_DEFAULTS),
    "ppo": AlgoSpec("stable_baselines3:PPO", _ALL, defaults=_ON_POLICY_SMALL),
    "a2c": AlgoSpec("stable_baselines3:A2C", _ALL, defaults={"n_steps": 8}),
    "trpo": AlgoSpec("sb3_contrib:TRPO", _ALL, defaults=_ON_POLICY_SMALL),
    # MultiBinary is left out: sb3-contrib 2.9's recurrent rollout buffer keeps int8 actions,
    # and the Bernoulli log-probability then fails (use action_type="probability" or HierHash)
    "recurrentppo": AlgoSpec("sb3_contrib:RecurrentPPO",
                             (spaces.Discrete, spaces.MultiDiscrete, spaces.Box),
                             policy="MultiInputLstmPolicy", defaults=_RECURRENT),
    "maskableppo": AlgoSpec("sb3_contrib:MaskablePPO",
                            (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
                            defaults=_ON_POLICY_SMALL),
    "ars": AlgoSpec("sb3_contrib:ARS", (spaces.Discrete, spaces.Box), policy="MlpPolicy",
                    defaults={"n_delta": 8}, flatten_obs=True),
    "sac": AlgoSpec("stable_baselines3:SAC", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "td3": AlgoSpec("stable_baselines3:TD3", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "ddpg": AlgoSpec("stable_baselines3:DDPG", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "tqc": AlgoSpec("sb3_contrib:TQC", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "reinforce": AlgoSpec("hashgym.agents.reinforce:RecurrentReinforce",
                          (spaces.MultiBinary, spaces.Box), needs_infos=True),
}
"""Every algorithm :func:`train` knows by name (lower case)."""


def register_algorithm(name: str, spec: AlgoSpec) -> None:
    """Make ``name`` usable in :func:`train` (and the ``hashgym train --algo`` option)."""
    ALGORITHMS[name.lower()] = spec


def resolve_algorithm(algo: str | type) -> tuple[str, AlgoSpec]:
    """The registry name and spec of ``algo``: a name (any case, ``-``/``_`` ignored) or an SB3
    algorithm class (a class the registry does not know gets a spec that accepts every space).

    :raises TrainError: for an unknown name or a class that is not an SB3 ``BaseAlgorithm``.
    """
    if isinstance(algo, type):
        for name, spec in ALGORITHMS.items():
            if spec.target == f"{algo.__module__}:{algo.__qualname__}" or (
                spec.target.split(":")[1] == algo.__name__ and load_target(spec.target) is algo
            ):
                return name, spec
        if not issubclass(algo, BaseAlgorithm):
            raise TrainError(f"algo class {algo.__name__} is not an SB3 BaseAlgorithm")
        name = algo.__name__.lower()
        spec = AlgoSpec(f"{algo.__module__}:{algo.__qualname__}", _ALL)
        return name, spec
    if not isinstance(algo, str):
        raise TrainError(f"algo must be a name or an algorithm class, got {algo!r}")
    key = algo.lower().replace("-", "").replace("_", "")
    if key not in ALGORITHMS:
        raise TrainError(f"unknown algorithm {algo!r}; known: {', '.join(sorted(ALGORITHMS))} "
                         f"(or pass an SB3 algorithm class)")
    return key, ALGORITHMS[key]


def load_target(target: str) -> type:
    """The class a spec's ``"module:Class"`` names, imported now.

    :raises TrainError: when the module or the class is missing (e.g. an uninstalled extra).
    """
    module_name, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise TrainError(f"algorithm {target} is not available: {exc}") from exc


def algorithm_class(algo: str | type) -> type:
    """The class behind a registry name (or the class itself)."""
    if isinstance(algo, type):
        return algo
    _, spec = resolve_algorithm(algo)
    return load_target(spec.target)


def _fit_hint(spec: AlgoSpec) -> str:
    hints = []
    if spaces.Discrete in spec.action_spaces:
        hints.append("HierHash (Discrete)")
    if spaces.MultiBinary in spec.action_spaces:
        hints.append("CentralHash-v0 (MultiBinary)")
    if spaces.Box in spec.action_spaces:
        hints.append("CentralHash-v0 with action_type='probability' (Box)")
    return " or ".join(hints) or "none of hashgym's envs"


def check_fits(name: str, spec: AlgoSpec, space: spaces.Space, env_id: str) -> None:
    """Refuse an algorithm whose spec does not take ``space``, naming the envs that fit it.

    :raises TrainError: when ``space`` is not one of the spec's action spaces.
    """
    if not isinstance(space, spec.action_spaces):
        kinds = ", ".join(t.__name__ for t in spec.action_spaces)
        raise TrainError(
            f"algorithm {name!r} supports {kinds} action spaces, but {env_id} with these "
            f"kwargs has {space}; use {_fit_hint(spec)}"
        )


def merge_defaults(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by ``overrides``; a ``policy_kwargs`` entry is merged key by key."""
    out = {**defaults, **overrides}
    if "policy_kwargs" in defaults and "policy_kwargs" in overrides:
        out["policy_kwargs"] = {**defaults["policy_kwargs"], **overrides["policy_kwargs"]}
    return out
