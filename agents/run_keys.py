"""The keys of a run's settings file: what ``hashgym train --config`` may hold, and the top-level
keys of a ``hashgym tune`` search space (all but ``validation``).

A library module of its own so that the tuner and the train command read one list without the
library importing its command line.
"""

from __future__ import annotations

__all__ = ["CONFIG_KEYS"]

#: What ``--config`` may hold: the options it stands for, and ``validation`` (hashgym tune's
#: record of how the setting scored, read by nobody).
CONFIG_KEYS = ("env", "algo", "bank", "protocol", "levels", "timesteps", "num_envs", "seed",
               "env_kwargs", "algo_kwargs", "validation")
