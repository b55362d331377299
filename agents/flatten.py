"""Flat observations for algorithms whose policies take one vector (sb3-contrib's ARS).

The hashgym envs observe a ``Dict`` (``features``, ``code``, ``t``). ARS has no
``MultiInputPolicy``, so :class:`FlattenDictObs` presents the observation as the concatenation
``[features, code, t]`` (that fixed order, not Gymnasium's sorted-key order, so the layout reads
like the paper's network input), and :func:`flatten_observation` does the same for the batches
:func:`hashgym.agents.encode.encode` feeds a model.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from hashgym.errors import AgentError

__all__ = ["KEYS", "FlattenDictObs", "flat_space", "flatten_observation"]

#: The order of the ``Dict`` keys in a flat observation.
KEYS = ("features", "code", "t")


def flat_space(space: spaces.Dict) -> spaces.Box:
    """The ``Box`` of flat observations of a hashgym ``Dict`` observation space."""
    parts = [space[k] for k in KEYS]
    return spaces.Box(
        np.concatenate([p.low.ravel() for p in parts]).astype(np.float32),
        np.concatenate([p.high.ravel() for p in parts]).astype(np.float32),
        dtype=np.float32,
    )


def flatten_observation(obs: dict[str, np.ndarray]) -> np.ndarray:
    """A batch of ``Dict`` observations as ``[n, D + code + 1]`` float32 rows."""
    return np.concatenate([np.asarray(obs[k], dtype=np.float32) for k in KEYS], axis=1)


class FlattenDictObs(VecEnvWrapper):
    """A ``VecEnvWrapper`` that flattens hashgym's ``Dict`` observations (see the module docstring).

    :param venv: an SB3 vector env over ``HierHash-v0`` or ``CentralHash-v0``.
    """

    def __init__(self, venv: VecEnv) -> None:
        if not isinstance(venv.observation_space, spaces.Dict):
            raise AgentError(f"FlattenDictObs needs a Dict observation space, got "
                            f"{venv.observation_space}")
        super().__init__(venv, observation_space=flat_space(venv.observation_space))

    def reset(self) -> VecEnvObs:
        """Reset and flatten."""
        return flatten_observation(self.venv.reset())

    def step_wait(self) -> VecEnvStepReturn:
        """Step and flatten (terminal observations in the infos too)."""
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                terminal = info["terminal_observation"]
                info["terminal_observation"] = flatten_observation(
                    {k: np.asarray(terminal[k])[None] for k in KEYS})[0]
        return flatten_observation(obs), rewards, dones, infos
