"""hashgym's Gymnasium environments; importing this package registers their ids.

==================  ==============================================  ==============================
id                  single environment (``gymnasium.make``)         vector (``gymnasium.make_vec``)
==================  ==============================================  ==============================
``HierHash-v0``     :class:`~hashgym.envs.hierhash.HierHashEnv`      :class:`~hashgym.envs.hierhash.HierHashVectorEnv`
``CentralHash-v0``  :class:`~hashgym.envs.centralhash.CentralHashEnv`  :class:`~hashgym.envs.centralhash.CentralHashVectorEnv`
==================  ==============================================  ==============================

Both run with no arguments on the bank built into the package. :class:`hashgym.envs.sb3.SB3VecEnv`
presents a vector env to Stable-Baselines3.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from hashgym.envs.core import HashEnvError

__all__ = ["ENV_IDS", "HashEnvError"]

ENV_IDS: dict[str, str] = {
    "HierHash-v0": "hashgym.envs.hierhash:HierHash",
    "CentralHash-v0": "hashgym.envs.centralhash:CentralHash",
}

for _env_id, _prefix in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_prefix + "Env", vector_entry_point=_prefix + "VectorEnv")
