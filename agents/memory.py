"""Refreshing ``HierHash-v0``'s code memory with the agent's current greedy codes.

In memory mode (``docs/methods.md``, "Triplet mode and memory mode") the triplet reward of
DRLHIH eq. (1) reads other images' codes from a code memory. :class:`MemoryRefresh` rewrites the whole memory, every
``every`` environment steps, with the greedy (deterministic) codes the agent gives every training
image now, and starts a new memory generation. It is an option (``memory_refresh`` of
:func:`hashgym.agents.train.train`), off by default: the env's own memory generations
(``memory_generation``) move the memory without a callback, for any algorithm. Before the env
had generations, a refresh every 2,048 steps was what lifted the DQN off chance on the
50,000-image bank (``benchmarks/results/notes/hierhash-recipe-history.md``).

A refresh costs one encoding pass over the training images: about 0.35 s for 50,000 images on
one core with DQN (its greedy fast path in :mod:`hashgym.agents.encode`) and seconds with
algorithms that encode through ``model.predict``. The callback looks the env up at every
refresh, so it follows :class:`~hashgym.agents.curriculum.LevelCurriculum` from level to level.
"""

from __future__ import annotations

import logging

from stable_baselines3.common.callbacks import BaseCallback

from hashgym.agents.encode import encode_with_env
from hashgym.envs.sb3 import native_vector_env
from hashgym.errors import AgentError
from hashgym.validation import is_integer

__all__ = ["MemoryRefresh"]

logger = logging.getLogger(__name__)


class MemoryRefresh(BaseCallback):
    """Every ``every`` environment steps, set the env's code memory to the agent's greedy codes.

    :param every: environment steps (SB3's ``num_timesteps``) between refreshes; the refresh
        happens at the first vector step that crosses each multiple of ``every``.
    :param batch_size: images per encoding batch.
    :param verbose: SB3's verbosity (``>= 1`` logs each refresh).
    """

    def __init__(self, every: int, batch_size: int = 8192, verbose: int = 0) -> None:
        if not is_integer(every) or every < 1:
            raise AgentError(
                f"the refresh period must be a positive number of environment steps, got {every!r}")
        super().__init__(verbose)
        self.every = every
        self.batch_size = batch_size
        self.refreshes = 0

    def _on_step(self) -> bool:
        now = self.num_timesteps
        before = now - self.training_env.num_envs
        if now // self.every != before // self.every:
            self.refresh()
        return True

    def refresh(self) -> None:
        """Rewrite the memory of the model's current env with the model's greedy codes."""

        venv = self.model.get_env()
        env = native_vector_env(venv)
        if getattr(env, "mode", None) != "memory":
            raise AgentError(
                "MemoryRefresh needs HierHash in memory mode (the env has no code memory to "
                f"refresh: mode={getattr(env, 'mode', None)!r})"
            )
        codes = encode_with_env(self.model, venv, batch_size=self.batch_size)
        env.set_memory(codes)
        self.refreshes += 1
        self.logger.record("memory/refreshes", self.refreshes)
        if self.verbose >= 1:
            logger.info("code memory refreshed at step %d", self.num_timesteps)
