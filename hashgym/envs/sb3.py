"""Stable-Baselines3 bridge: a native hashgym vector env presented as an SB3 ``VecEnv``.

SB3 steps vector environments through its own :class:`~stable_baselines3.common.vec_env.VecEnv`
API (reset returns only observations, ``step_wait`` returns a list of per-env info dicts,
``terminal_observation`` in the info of a finished episode). :class:`SB3VecEnv` translates a
:class:`gymnasium.vector.VectorEnv` with same-step autoreset — such as
:class:`~hashgym.envs.hierhash.HierHashVectorEnv` — into it, so every SB3 / sb3-contrib algorithm
(DQN, PPO, A2C, QRDQN, RecurrentPPO, MaskablePPO, ...) trains on thousands of images per step
without :class:`~stable_baselines3.common.vec_env.DummyVecEnv`'s per-environment Python loop::

    from stable_baselines3 import PPO
    from hashgym.envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("HierHash-v0", num_envs=1024)
    PPO("MultiInputPolicy", venv, n_steps=8).learn(100_000)

The native env is shared by all sub-environments, so ``env_method`` and ``set_attr`` act on it
once (``env_method`` then returns its result for each requested index), except
``env_method("action_masks")``, which returns each sub-environment's own mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from hashgym.envs.core import HashEnvError

__all__ = ["SB3VecEnv", "find_sb3_adapter", "make_sb3_vec_env", "native_vector_env"]

_RESERVED = ("final_obs", "final_info")


class SB3VecEnv(VecEnv):
    """A Stable-Baselines3 ``VecEnv`` over a Gymnasium vector env with same-step autoreset.

    * ``reset()`` uses the seed given by ``seed()`` (SB3 passes ``seed + i`` per sub-env; the
      native env takes the first) and the options of ``set_options()``.
    * ``step_wait()`` returns rewards as float32, ``dones = terminated | truncated`` and one info
      dict per sub-env holding the native env's per-env infos (``info_keys``). Where an episode
      ended, as with SB3's own ``DummyVecEnv``, that dict describes the **ended** episode (the
      native ``final_info``) plus ``terminal_observation`` (its final observation) and
      ``TimeLimit.truncated`` (``truncated and not terminated``); the infos of the episode that
      the returned observation starts are in ``reset_infos[i]``.
    * Observations are passed through as they are (see :mod:`hashgym.envs.core` on aliasing).

    :param vector_env: the native vector env (e.g. ``gymnasium.make_vec("HierHash-v0", 1024)``).
    :param info_keys: which per-env info keys to copy into SB3's info dicts; ``None`` = all.
        Every key costs a little per step and environment; pass ``()`` when no callback reads them.
    :raises HashEnvError: if the vector env does not declare same-step autoreset.
    """

    def __init__(self, vector_env: VectorEnv, info_keys: Sequence[str] | None = None) -> None:
        mode = vector_env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise HashEnvError(
                f"SB3VecEnv needs a vector env with metadata['autoreset_mode'] = "
                f"AutoresetMode.SAME_STEP, got {mode!r}"
            )
        self.vector_env = vector_env
        self.info_keys = None if info_keys is None else tuple(info_keys)
        self._actions: np.ndarray | None = None
        super().__init__(
            vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space
        )

    # ------------------------------------------------------------------ stepping
    def reset(self) -> VecEnvObs:
        """Reset every sub-environment (with the pending seed and options)."""
        options = self._options[0] or None
        obs, info = self.vector_env.reset(seed=self._seeds[0], options=options)
        self.reset_infos = self._split_infos(info)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step the native env once; translate its outputs to SB3's conventions."""
        obs, rewards, terminated, truncated, info = self.vector_env.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        infos = self._split_infos(info)
        if "final_obs" in info:
            final_obs, ended = info["final_obs"], info["_final_obs"]
            final_infos = self._split_infos(info.get("final_info", {}))
            time_limit = np.logical_and(truncated, np.logical_not(terminated)).tolist()
            # one pass of plain Python objects (hashgym's episodes all end together)
            for i in range(self.num_envs) if ended.all() else np.flatnonzero(ended).tolist():
                self.reset_infos[i] = infos[i]
                entry = infos[i] = final_infos[i]
                entry["terminal_observation"] = final_obs[i]
                entry["TimeLimit.truncated"] = time_limit[i]
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def _split_infos(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        keys = [k for k in info if not k.startswith("_") and k not in _RESERVED
                and (self.info_keys is None or k in self.info_keys)]
        if not keys:
            return [{} for _ in range(self.num_envs)]
        columns = [list(info[k]) for k in keys]
        return [dict(zip(keys, values)) for values in zip(*columns)]

    def action_masks(self) -> np.ndarray:
        """Every sub-environment's action mask, ``[num_envs, ...]`` (for MaskablePPO)."""
        return self.vector_env.action_masks()

    def close(self) -> None:
        """Close the native env."""
        self.vector_env.close()

    # ------------------------------------------------------------------ attributes
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The native env's attribute, once per requested index."""
        value = getattr(self.vector_env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the native env (shared by every sub-environment)."""
        setattr(self.vector_env, attr_name, value)

    def has_attr(self, attr_name: str) -> bool:
        """Whether the native env has the attribute."""
        return hasattr(self.vector_env, attr_name)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the native env once; ``action_masks`` is split per sub-environment."""
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Sub-environments are never wrapped by Gymnasium wrappers."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """No rendering."""
        return [None for _ in range(self.num_envs)]

    def _get_indices(self, indices: VecEnvIndices) -> Iterable[int]:
        return range(self.num_envs) if indices is None else super()._get_indices(indices)


def make_sb3_vec_env(
    env_id: str,
    num_envs: int = 1,
    monitor: bool = True,
    info_keys: Sequence[str] | None = None,
    **kwargs: Any,
) -> VecEnv:
    """Build a native hashgym vector env and present it to Stable-Baselines3.

    :param env_id: ``"HierHash-v0"`` or ``"CentralHash-v0"`` (any id with a same-step
        ``vector_entry_point``).
    :param num_envs: images stepped at once.
    :param monitor: wrap in :class:`~stable_baselines3.common.vec_env.VecMonitor` so SB3 logs
        episode returns (``rollout/ep_rew_mean``).
    :param info_keys: see :class:`SB3VecEnv`.
    :param kwargs: the environment's arguments (``bank``, ``n_bits``, ``mode``, ...).
    :return: the SB3 vector env; the native env is ``.unwrapped.vector_env``.
    """
    venv: VecEnv = SB3VecEnv(
        gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs),
        info_keys=info_keys,
    )
    return VecMonitor(venv) if monitor else venv


def find_sb3_adapter(venv: VecEnv) -> SB3VecEnv | None:
    """The :class:`SB3VecEnv` under SB3's wrappers (``VecMonitor``, ``VecNormalize``, ...), or
    ``None`` when ``venv`` does not wrap one."""
    inner: Any = venv
    while not isinstance(inner, SB3VecEnv):
        if not hasattr(inner, "venv"):
            return None
        inner = inner.venv
    return inner


def native_vector_env(venv: VecEnv) -> Any:
    """The hashgym vector env under SB3's wrappers and :class:`SB3VecEnv` (its ``memory``,
    ``encode``, ``set_level``, ...).

    :raises HashEnvError: when ``venv`` does not wrap an :class:`SB3VecEnv`.
    """
    adapter = find_sb3_adapter(venv)
    if adapter is None:
        raise HashEnvError(f"{type(venv).__name__} does not wrap a hashgym SB3VecEnv")
    return adapter.vector_env
