"""hashgym's training recipe for ``HierHash-v0``, as plain data and two small functions (no torch).

The environment's own defaults carry the env side of the recipe (eq. (1) averaged over the
negative's class on class-mean distances, memory generations, large pools, anchor-only coding,
half sibling negatives, the code's shape and margin: see
:class:`hashgym.envs.hierhash.HierHashEnv`). What is left for the trainer is how many images to
step at once and how long to train, which is counted in **memory generations**: a level of the
curriculum learns against one frozen memory, and the memory moves on once per generation.

:func:`hashgym.agents.train.train` (and so ``hashgym train``), :func:`hashgym.agents.dqn.
hierarchical_dqn`, the benchmark suites and ``benchmarks/bench_agents.py`` all take their
defaults from here; ``tests/test_recipe.py`` checks that they resolve to the same settings. The
measurements behind the numbers are in ``benchmarks/results/notes/hierhash-learnable.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from hashgym.envs.hierhash import GENERATION_CODINGS, HierHashCore, default_bits_per_step
from hashgym.errors import AgentError
from hashgym.validation import is_integer

__all__ = [
    "FIRST_LEVEL_GENERATIONS",
    "NUM_ENVS",
    "TOTAL_GENERATIONS",
    "default_num_envs",
    "generation_steps",
    "recipe_budget",
    "recipe_level_timesteps",
]

#: Images stepped in parallel on ``HierHash-v0``: one DQN gradient step of 256 transitions per
#: 256 new ones.
NUM_ENVS = 256

#: Generations of every level of a curriculum but the last (the paper's coarse-to-fine order:
#: level 0 sets up the super-class structure, the last level refines it for the rest).
FIRST_LEVEL_GENERATIONS = 1

#: Generations of a whole run, whatever its levels (so a level-only variant gets the same
#: budget as the curriculum). Four generations of ``GENERATION_CODINGS`` codings per image: 12M
#: steps on the 50,000-image CIFAR-100 bank, where the curriculum's NDCG@20 has flattened.
TOTAL_GENERATIONS = 4


def default_num_envs(env_id: str) -> int:
    """Images per vector step when the caller gives none: :data:`NUM_ENVS` on ``HierHash-v0``,
    64 elsewhere (``CentralHash-v0``'s agents set their own)."""
    return NUM_ENVS if env_id == "HierHash-v0" else 64


def generation_steps(n_images: int, memory_generation: Any = "auto",
                     steps_per_image: int = 4) -> int:
    """Environment steps of one memory generation of ``HierHash-v0`` over ``n_images``.

    :param n_images: images of the training split.
    :param memory_generation: the env's argument: ``"auto"`` (``GENERATION_CODINGS`` codings of
        every image), a number of steps, or ``None`` (no generations: the budget still counts in
        ``"auto"`` generations).
    :param steps_per_image: ``T = n_bits / bits_per_step`` (4 at the default 12 bits, 3 per step; see
        :func:`hashgym.envs.hierhash.default_bits_per_step`).
    """
    if is_integer(memory_generation):
        return int(memory_generation)
    return GENERATION_CODINGS * int(steps_per_image) * int(n_images)


def recipe_level_timesteps(n_images: int, levels: Sequence[Any],
                           memory_generation: Any = "auto", steps_per_image: int = 4) -> list[int]:
    """The default steps per level: :data:`FIRST_LEVEL_GENERATIONS` generations for each level
    but the last, which gets the rest of :data:`TOTAL_GENERATIONS`.

    :param n_images: images of the training split.
    :param levels: the levels trained, in order.
    :param memory_generation: the env's ``memory_generation`` (see :func:`generation_steps`).
    :param steps_per_image: ``T`` (see :func:`generation_steps`).
    """
    if len(levels) == 0:
        raise AgentError("levels must name at least one level")
    gen = generation_steps(n_images, memory_generation, steps_per_image)
    first = min(FIRST_LEVEL_GENERATIONS, TOTAL_GENERATIONS // len(levels))
    counts = [first] * (len(levels) - 1)
    counts.append(TOTAL_GENERATIONS - sum(counts))
    return [c * gen for c in counts]


def recipe_budget(bank: Any, levels: Sequence[Any], env_kwargs: dict[str, Any]) -> list[int]:
    """:func:`recipe_level_timesteps` for a ``HierHash-v0`` run on ``bank`` with ``env_kwargs``
    (their ``split``, default ``"train"``, ``memory_generation``, ``n_bits`` and
    ``bits_per_step``): what :func:`hashgym.agents.train.train` trains when given no budget.

    :param bank: the :class:`~hashgym.bank.FeatureBank` the env reads.
    :param levels: the levels trained, in order.
    :param env_kwargs: the env's arguments.
    """
    n_images = len(bank.indices(env_kwargs.get("split", "train")))
    defaults = inspect.signature(HierHashCore).parameters
    n_bits = int(env_kwargs.get("n_bits", defaults["n_bits"].default))
    per_step = env_kwargs.get("bits_per_step", defaults["bits_per_step"].default)
    per_step = default_bits_per_step(n_bits) if per_step is None else int(per_step)
    return recipe_level_timesteps(n_images, levels, env_kwargs.get("memory_generation", "auto"),
                                  max(1, n_bits // max(1, per_step)))
