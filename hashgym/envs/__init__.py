"""hashgym's Gymnasium environments; importing this package registers their ids.

==================  ==============================================  ==============================
id                  single environment (``gymnasium.make``)         vector (``gymnasium.make_vec``)
==================  ==============================================  ==============================
``HierHash-v0``     :class:`~hashgym.envs.hierhash.HierHashEnv`      :class:`~hashgym.envs.hierhash.HierHashVectorEnv`
``HierHash-v1``     the same classes, ``margin="quarter"``           the same
``CentralHash-v0``  :class:`~hashgym.envs.centralhash.CentralHashEnv`  :class:`~hashgym.envs.centralhash.CentralHashVectorEnv`
==================  ==============================================  ==============================

``HierHash-v1`` is ``HierHash-v0`` with one default changed: the triplet margin is a quarter of the
code (``margin="quarter"``) instead of ``3 · sqrt(n_bits / 12)``; the two are the same env at 12
bits. ``HierHash-v0`` keeps its behaviour (the version history is in the env's manual). Both
run with no arguments on the bank built into the package. :class:`hashgym.envs.sb3.SB3VecEnv`
presents a vector env to Stable-Baselines3.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from hashgym.envs.core import HashEnvError

__all__ = ["ENV_IDS", "ENV_KWARGS", "HIERHASH_IDS", "HashEnvError", "is_hierhash"]

ENV_IDS: dict[str, str] = {
    "HierHash-v0": "hashgym.envs.hierhash:HierHash",
    "HierHash-v1": "hashgym.envs.hierhash:HierHash",
    "CentralHash-v0": "hashgym.envs.centralhash:CentralHash",
}
"""Every registered id and the prefix of its classes (``<prefix>Env``, ``<prefix>VectorEnv``)."""

ENV_KWARGS: dict[str, dict[str, object]] = {"HierHash-v1": {"margin": "quarter"}}
"""The defaults an id sets on top of its classes' (a caller's keyword arguments still win)."""

HIERHASH_IDS: tuple[str, ...] = tuple(
    env_id for env_id, prefix in ENV_IDS.items() if prefix == "hashgym.envs.hierhash:HierHash")
"""The ids of the hierarchical env, oldest first."""


def is_hierhash(env_id: str) -> bool:
    """``True`` for an id of the hierarchical env (:data:`HIERHASH_IDS`)."""
    return env_id in HIERHASH_IDS


for _env_id, _prefix in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_prefix + "Env", vector_entry_point=_prefix + "VectorEnv",
                 kwargs=dict(ENV_KWARGS.get(_env_id, {})))
