"""RL Baselines3 Zoo hyperparameters for hashgym's envs (``pip install hashgym[zoo]``).

One YAML file per zoo algorithm name (``ppo``, ``a2c``, ``dqn``, ``qrdqn``, ``trpo``,
``ppo_lstm``, ``ars``, ``sac``, ``td3``, ``tqc``), each with an entry for the env ids it fits:
the Discrete ones (``dqn``, ``qrdqn``) for ``HierHash-v0`` and ``-v1``, the continuous ones for
``CentralHash-v0`` with ``action_type="probability"`` (set through the file's ``env_kwargs``),
the rest for both. rl_zoo3 reads its own hyperparameter files unless given ``--conf-file``, so
point it at ours::

    python -m rl_zoo3.train --algo ppo --env HierHash-v1 --gym-packages hashgym \\
        --conf-file "$(python -m hashgym.agents.zoo ppo)" -n 2000

Note: the zoo steps one ``gymnasium.make`` env per sub-environment in a ``DummyVecEnv``; hashgym's
own :func:`hashgym.agents.train.train` steps the batched native vector env instead and is much
faster.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hashgym.errors import AgentError

__all__ = ["ZOO_ALGOS", "config_path"]

#: The zoo algorithm names with a hyperparameter file here.
ZOO_ALGOS = ("ppo", "a2c", "dqn", "qrdqn", "trpo", "ppo_lstm", "ars", "sac", "td3", "tqc")


def config_path(algo: str) -> Path:
    """The YAML file of ``algo`` (a zoo algorithm name), for rl_zoo3's ``--conf-file``.

    :raises AgentError: for an algorithm without a file.
    """
    if algo not in ZOO_ALGOS:
        raise AgentError(f"no zoo hyperparameters for {algo!r}; available: {', '.join(ZOO_ALGOS)}")
    return Path(str(resources.files(__name__).joinpath(f"{algo}.yml")))

