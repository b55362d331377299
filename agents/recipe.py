"""The settings of hashgym's DQN recipe for ``HierHash-v0``, as plain data (no torch import).

What was measured to choose them is in :mod:`hashgym.agents.dqn`'s module docstring;
:func:`hashgym.agents.dqn.hierarchical_dqn` uses them as defaults, and the benchmark protocols
and ``benchmarks/bench_agents.py`` read them from here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RECIPE_ENV", "RECIPE_TRAIN", "TRIPLETS_PER_IMAGE"]

#: Constraint-pool size per training image and level (200,000 triplets on the built-in bank's
#: 7,000 training images learned best).
TRIPLETS_PER_IMAGE = 30

#: The env settings: anchor-only coding, any other class as the level-``l`` negative.
RECIPE_ENV: dict[str, Any] = {"memory_roles": "anchor", "sibling_negatives": False}

#: The training settings of the recipe: 256 images per vector step and the code memory rewritten
#: with the greedy codes every 2,048 environment steps (:mod:`hashgym.agents.memory`).
RECIPE_TRAIN: dict[str, Any] = {"num_envs": 256, "memory_refresh": 2048}
