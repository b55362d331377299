"""Refreshing ``HierHash-v0``'s code memory with the agent's current codes.

In memory mode (METHODS.md, ``HierHash-v0``) the triplet reward of DRLHIH eq. (1) reads the
positive's and the negative's codes from a code memory that holds the code each training image
last received *in its own episode*. On a large bank each image is coded rarely, so most of the
memory is written by old, more exploratory policies: the reward then chases codes the agent no
longer gives, and learning stalls. On the shared CIFAR-100 bank (50,000 training images, 12 bits,
level 0, 300k steps) the DQN stays at chance (NDCG@20 0.053; chance ≈ 0.02) without a refresh.

:class:`MemoryRefresh` rewrites the whole memory, every ``every`` environment steps, with the
greedy (deterministic) codes the agent gives every training image now — the role a target
network plays for the Q-values, played here for the codes the reward reads. Between refreshes the
env keeps updating the memory at the end of each episode, as METHODS.md specifies. With a
refresh every 1,600 steps the same run reaches NDCG@20 0.125; with 256 images per vector step and
a refresh every 2,048 steps, 0.141 (see ``benchmarks/results/bench_agents.txt`` for the current
numbers). A refresh costs one encoding pass over the training images: about 0.35 s for 50,000
images on one core with DQN (its greedy fast path in :mod:`hashgym.agents.encode`), about 1 s
with PPO, 3 s with QR-DQN and 9 s with RecurrentPPO (through ``model.predict``), which then
dominates their training time at a refresh every 2,048 steps.

The callback looks the env up at every refresh, so it follows
:class:`~hashgym.agents.dqn.LevelCurriculum` from level to level; it works with any algorithm
whose model :func:`hashgym.agents.encode.encode_with_env` can run.
"""

from __future__ import annotations

import logging

from stable_baselines3.common.callbacks import BaseCallback

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
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(
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
        from hashgym.agents.dqn import _native
        from hashgym.agents.encode import encode_with_env

        venv = self.model.get_env()
        env = _native(venv)
        if getattr(env, "mode", None) != "memory":
            raise ValueError(
                "MemoryRefresh needs HierHash-v0 in memory mode (the env has no code memory to "
                f"refresh: mode={getattr(env, 'mode', None)!r})"
            )
        codes = encode_with_env(self.model, venv, batch_size=self.batch_size)
        env.memory[:] = codes
        self.refreshes += 1
        self.logger.record("memory/refreshes", self.refreshes)
        if self.verbose >= 1:
            logger.info("code memory refreshed at step %d", self.num_timesteps)
