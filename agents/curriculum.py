"""DRLHIH's level curriculum (§3.2, eqs. (4)–(5)) for any SB3 algorithm on ``HierHash-v0``.

:class:`LevelCurriculum` trains one model level after level: level 0 on its constraint pool;
then, for each next level, the codes the model gives every training image become
``prev_codes``, a fresh ``HierHash-v0`` vector env at that level (its own pool, the
level-refinement reward ``r_l = ρ r + (1 − ρ) r_dist``) replaces the previous one, and the
same network keeps learning. The last level's model is the hash function. Choices the paper
leaves open, written down here:

* each level's env is seeded with ``seed + level``, so a level's constraint pool does not
  depend on how the run got there (a resumed run draws the same pool);
* the next level's code memory (``mode="memory"``) starts from ``prev_codes``, the
  agent's greedy codes at the end of the level (restarting level 1 from random bits was
  measured worse:
  ``benchmarks/results/notes/hierhash-recipe-history.md``), each class moved by the env's ``level_split``;
* an off-policy model's replay buffer is emptied at a level change: its transitions were
  rewarded by the previous level's reward;
* the ε-greedy schedule runs over the whole run (SB3's progress counts every level), so the
  later levels refine with little exploration.

:func:`hashgym.agents.train.train` runs it for every algorithm given ``levels``, with checkpoints
and resume; :func:`hashgym.agents.train.hierarchical_dqn` is DRLHIH's front end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecTransposeImage

from hashgym.agents.encode import encode_with_env
from hashgym.envs.sb3 import native_vector_env
from hashgym.errors import AgentError

__all__ = ["EnvFactory", "LevelCurriculum", "LevelState"]

logger = logging.getLogger(__name__)


@dataclass
class LevelState:
    """Where a level curriculum stands (what a checkpoint needs to resume it).

    :param index: the position in ``levels`` of the level being trained.
    :param level_start: ``model.num_timesteps`` when that level began.
    :param prev_codes: the previous level's codes of the training images (``None`` at the first
        level, unless the caller supplies them).
    :param memory: the env's memory state to start the level with
        (:meth:`hashgym.envs.hierhash.HierHashCore.memory_state`: the frozen memory, the latest
        codes and the generation counters; ``None``: the env's seeded start).
    """

    index: int = 0
    level_start: int = 0
    prev_codes: np.ndarray | None = None
    memory: dict[str, np.ndarray] | None = None
    done: bool = field(default=False)


#: Episodes per env between an off-policy algorithm's log dumps. SB3 counts its ``log_interval``
#: in episodes over all envs (4 by default), so with hundreds of envs ending their episodes in the
#: same vector step it wrote its logs dozens of times per step: 7 % of a DQN run's time on the
#: built-in bank, and as many CSV rows (``benchmarks/results/notes/quick-suite-time.md``).
LOG_EPISODES_PER_ENV = 4

#: Builds the SB3 vector env of one level: ``(level, prev_codes, seed) -> VecEnv``.
EnvFactory = Callable[[Any, Any, int], VecEnv]


class LevelCurriculum:
    """Train one SB3 model level by level on ``HierHash-v0`` (DRLHIH §3.2).

    Works with any SB3 / sb3-contrib algorithm whose action space fits; with DQN and
    :class:`HashQFeatures` it is DRLHIH's agent. See the module docstring for the choices made.

    :param model: the model, built on the first level's env (or any env with the same spaces).
    :param make_env: ``(level, prev_codes, seed) -> VecEnv`` builds a level's env (see
        :func:`hashgym.agents.train.train`, which passes the bank and the env's kwargs).
    :param levels: the levels to train, in order (e.g. ``(0, 1)``); ``[None]`` for an env
        without levels (``CentralHash-v0``: plain training with the same checkpoint hooks).
    :param timesteps: environment steps per level (same length as ``levels``).
    :param seed: level ``l``'s env is seeded with ``seed + l``.
    :param encode: ``(model, venv) -> codes`` of the training images (default:
        :func:`hashgym.agents.encode.encode_with_env`).
    """

    def __init__(
        self,
        model: BaseAlgorithm,
        make_env: EnvFactory,
        levels: Sequence[int | None],
        timesteps: Sequence[int],
        seed: int = 0,
        encode: Callable[[Any, VecEnv], np.ndarray] | None = None,
    ) -> None:
        if len(levels) == 0:
            raise AgentError("levels must name at least one level")
        if len(timesteps) != len(levels):
            raise AgentError(
                f"timesteps must give one number per level: {len(levels)} levels, "
                f"{len(timesteps)} numbers"
            )
        if any(t < 0 for t in timesteps):
            raise AgentError(f"timesteps must be >= 0, got {list(timesteps)}")
        self.model = model
        self.make_env = make_env
        self.levels = [None if lv is None else int(lv) for lv in levels]
        self.timesteps = [int(t) for t in timesteps]
        self.seed = int(seed)
        self._encode = encode_with_env if encode is None else encode
        self.state = LevelState()
        self.env: VecEnv | None = None

    @property
    def level(self) -> int | None:
        """The level being trained (the last one once done)."""
        return self.levels[min(self.state.index, len(self.levels) - 1)]

    @property
    def memory(self) -> dict[str, np.ndarray] | None:
        """The current env's memory state (``None`` before the first level starts)."""
        return None if self.env is None else native_vector_env(self.env).memory_state()

    def start_level(self, state: LevelState) -> VecEnv:
        """Build and seed the env of ``state``'s level and attach it to the model."""
        level = self.levels[state.index]
        if level is None and self.model.get_env() is not None:
            # no levels: train on the model's own env, which the model resets (and seeds) itself
            self.env, self.state = self.model.get_env(), state
            return self.env
        env_seed = self.seed + (level or 0)
        venv = self.make_env(level, state.prev_codes, env_seed)
        venv.seed(env_seed)
        venv.reset()  # seeded: draws the level's pool and a random memory
        if state.memory is not None:
            native_vector_env(venv).restore_memory_state(state.memory)
        obs = venv.reset()  # unseeded: new episodes that read the restored memory
        self.model.set_env(venv, force_reset=False)
        wrapped = self.model.get_env()
        if isinstance(wrapped, VecTransposeImage):  # image observations: SB3 moved channels first
            obs = wrapped.transpose_observations(obs)
        self.model._last_obs = obs  # continue from these observations, no further reset
        self.model._last_episode_starts = np.ones(venv.num_envs, dtype=bool)
        if isinstance(self.model, OffPolicyAlgorithm) and state.index > 0:
            self.model.replay_buffer.reset()  # old transitions carry the previous level's reward
        self.env = venv
        self.state = state
        logger.info("level %d (%d of %d): %d steps", level, state.index + 1, len(self.levels),
                    self.timesteps[state.index])
        return venv

    def run(
        self,
        resume: LevelState | None = None,
        callback: BaseCallback | None = None,
        progress_bar: bool = False,
        tb_log_name: str = "run",
    ) -> BaseAlgorithm:
        """Train every remaining level; return the model (the last level's hash function).

        :param resume: a saved :class:`LevelState` to continue from (its level's env is rebuilt
            with the saved ``prev_codes`` and memory; the model must already hold the saved
            weights, step count and replay buffer).
        :param callback: an SB3 callback called during every level's ``learn``.
        :param progress_bar: show SB3's progress bar.
        :param tb_log_name: the run's name in the logs.
        """
        state = resume or LevelState()
        while state.index < len(self.levels):
            self.start_level(state)
            remaining = self.timesteps[state.index] - (self.model.num_timesteps - state.level_start)
            if remaining > 0:
                fresh = self.levels[state.index] is None and self.model.num_timesteps == 0
                extra = ({"log_interval": LOG_EPISODES_PER_ENV * self.model.n_envs}
                         if isinstance(self.model, OffPolicyAlgorithm) else {})
                self.model.learn(remaining, callback=callback, progress_bar=progress_bar,
                                 reset_num_timesteps=fresh, tb_log_name=tb_log_name, **extra)
            if state.index + 1 == len(self.levels):
                break
            codes = self._encode(self.model, self.env)
            # the next level's memory starts from these codes too (the env's default at l >= 1)
            state = LevelState(index=state.index + 1, level_start=self.model.num_timesteps,
                               prev_codes=codes)
        self.state.done = True
        return self.model
