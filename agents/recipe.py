"""hashgym's training recipe for ``HierHash`` (``-v1``, the default env), as plain data and two
small functions (no torch).

The environment's own defaults carry the env side of the recipe (eq. (1) averaged over the
negative's class on class-mean distances, memory generations, large pools, anchor-only coding,
half sibling negatives, the code's shape and margin: see
:class:`hashgym.envs.hierhash.HierHashEnv`). What is left for the trainer is how many images to
step at once and how long to train, which is counted in **memory generations**: a level of the
curriculum learns against one frozen memory, and the memory moves on once per generation. The
length of a generation is the env's: :func:`hashgym.agents.train.train` builds the env first and
reads its resolved ``steps_per_image`` and ``memory_generation``, so the code shape is defaulted
in one place, the env.

:func:`hashgym.agents.train.train` (and so ``hashgym train``), :func:`hashgym.agents.dqn.
hierarchical_dqn`, the benchmark suites and ``benchmarks/bench_agents.py`` all take their
defaults from here; ``tests/test_recipe.py`` checks that they resolve to the same settings. The
measurements behind the numbers are in ``benchmarks/results/notes/hierhash-learnable.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hashgym.envs import is_hierhash
from hashgym.envs.hierhash import GENERATION_CODINGS
from hashgym.errors import AgentError

__all__ = [
    "FIRST_LEVEL_GENERATIONS",
    "NUM_ENVS",
    "TOTAL_GENERATIONS",
    "default_num_envs",
    "generation_steps",
    "recipe_level_timesteps",
]

#: Images stepped in parallel on ``HierHash``: one DQN gradient step of 256 transitions per
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
    """Images per vector step when the caller gives none: :data:`NUM_ENVS` on ``HierHash``,
    64 elsewhere (``CentralHash-v0``'s agents set their own)."""
    return NUM_ENVS if is_hierhash(env_id) else 64


def generation_steps(n_images: int, steps_per_image: int,
                     memory_generation: int | None = None) -> int:
    """Environment steps of one memory generation of ``HierHash`` over ``n_images``.

    :param n_images: images of the training split.
    :param steps_per_image: the env's ``T = n_bits / bits_per_step``.
    :param memory_generation: the env's resolved steps per generation; ``None`` (an env
        without generations) counts the budget in the generations an env with them would
        have: ``GENERATION_CODINGS`` codings of every image.
    """
    if memory_generation is not None:
        return int(memory_generation)
    return GENERATION_CODINGS * int(steps_per_image) * int(n_images)


def recipe_level_timesteps(levels: Sequence[Any], generation: int) -> list[int]:
    """The default steps per level: :data:`FIRST_LEVEL_GENERATIONS` generations for each level
    but the last, which gets the rest of :data:`TOTAL_GENERATIONS`.

    :param levels: the levels trained, in order.
    :param generation: environment steps of one memory generation (:func:`generation_steps`).
    :raises AgentError: for no level.
    """
    if len(levels) == 0:
        raise AgentError("levels must name at least one level")
    first = min(FIRST_LEVEL_GENERATIONS, TOTAL_GENERATIONS // len(levels))
    counts = [first] * (len(levels) - 1)
    counts.append(TOTAL_GENERATIONS - sum(counts))
    return [c * int(generation) for c in counts]
