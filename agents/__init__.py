"""hashgym's agents (installed as ``hashgym.agents``).

* :func:`~hashgym.agents.train.train`: any SB3 / sb3-contrib algorithm (or hashgym's own) on a
  hashgym env, with DRLHIH's level curriculum, checkpoints and resume.
* :mod:`~hashgym.agents.registry`: the algorithms ``train`` knows by name and how each is built.
* :mod:`~hashgym.agents.dqn`: DRLHIH's Q-network input layer
  (:class:`~hashgym.agents.dqn.HashQFeatures`) and DQN hyperparameters;
  :mod:`~hashgym.agents.curriculum`: its level curriculum for any algorithm
  (:class:`~hashgym.agents.curriculum.LevelCurriculum`); :func:`~hashgym.agents.train.
  hierarchical_dqn`: the DRLHIH front end of ``train``.
* :mod:`~hashgym.agents.reinforce`: SCIHCGRL's recurrent REINFORCE agent.
* :func:`~hashgym.agents.encode.encode`: a trained agent as a hash function over a bank split.
* :mod:`~hashgym.agents.saving`: model files that load without unpickling.

Typical use::

    from hashgym.agents.train import train
    from hashgym.agents.encode import encode

    result = train("dqn", "HierHash-v1", total_timesteps=100_000)
    codes = encode(result.model, split="query")

Importing this package is cheap: torch and SB3 load with the first attribute that needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["hierarchical_dqn", "load_model"]

# ``train`` and ``encode`` are modules named after their functions: import the functions from
# them (``from hashgym.agents.train import train``), as a package attribute would be shadowed by
# the submodule once it is imported.
_LAZY = {
    "hierarchical_dqn": "hashgym.agents.train",
    "load_model": "hashgym.agents.saving",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hashgym.agents' has no attribute {name!r}")
