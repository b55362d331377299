"""DRLHIH's hierarchical DQN agent: the Q-network's features extractor and the level curriculum.

The agent is Stable-Baselines3's :class:`~stable_baselines3.DQN`, plugged in at SB3's documented
seams: :class:`HashQFeatures` (a :class:`~stable_baselines3.common.torch_layers.BaseFeaturesExtractor`)
gives the network the shape of DRLHIH §3.1 / Fig. 2, and the policy's ``net_arch`` gives the
fully connected layers on top of it.

Q-network (DRLHIH §3.1, Fig. 2)
    The image feature ``x(I)`` is projected to a low dimension ``h(I)`` (a linear layer + ReLU),
    concatenated with the code window ``c_t`` (the ``code`` observation: the emitted bits as ±1,
    optionally only the last ``k`` with the env's ``window``) and the normalised time index ``t``,
    and passed through fully connected layers. The paper feeds the candidate action ``a_t`` into
    the network and reads one scalar ``Q̂(s_t, a_t)``; here, as in every DQN, the last layer reads
    all ``2 ** bits_per_step`` values at once. This is the same function class as a one-hot
    action joined at the last layer, and costs one forward pass per step instead of eight. The
    TD loss is DRLHIH eq. (3), with ε-greedy exploration and ``γ = 1`` (SB3's DQN with a target
    network and a replay buffer).

Hierarchical training (DRLHIH §3.2, eqs. (4)–(5))
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
      measured worse: the notes below), each class moved by the env's ``level_split``;
    * an off-policy model's replay buffer is emptied at a level change: its transitions were
      rewarded by the previous level's reward;
    * the ε-greedy schedule runs over the whole run (SB3's progress counts every level), so the
      later levels refine with little exploration.

Paper defaults (DRLHIH §4.1): 12 bits, 3 bits per step, ``γ = 1``, ``λ = 1``, ``ρ = 0.9``,
constraint pools of 4,000 and 1,000 triplets for CIFAR. The network, the code length and ``γ``
are hashgym's defaults too, and so is ``ρ``; the rest is ``hashgym.envs.hierhash.PAPER_SETTINGS``,
one argument set away from the env's defaults.

What makes it learn
    The paper's setting (a code memory that every episode rewrites, one sampled triplet per
    reward, 4,000 / 1,000 triplets) stays at chance on the 50,000-image CIFAR-100 bank. The
    environment's defaults fix the reward it learns from (class means of a memory frozen for a
    generation, started from one random code per class and split at a level change, large
    pools, half sibling negatives): see :class:`hashgym.envs.hierhash.HierHashEnv` and, for every
    measurement behind them, ``benchmarks/results/notes/hierhash-learnable.md`` (and the older
    ``benchmarks/results/notes/hierhash-recipe-history.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from hashgym.envs.sb3 import native_vector_env

__all__ = [
    "DQN_DEFAULTS",
    "HashQFeatures",
    "LevelCurriculum",
    "LevelState",
    "hierarchical_dqn",
]

logger = logging.getLogger(__name__)

class HashQFeatures(BaseFeaturesExtractor):
    """The input layer of DRLHIH's Q-network (§3.1, Fig. 2): ``[proj(x(I)), c_t, t]``.

    The ``features`` observation is (optionally) layer-normalised and projected to
    ``projection_dim`` with a linear layer and a ReLU; the ``code`` window and the time index
    ``t`` are appended unchanged. The fully connected layers that follow are the policy's
    ``net_arch``.

    :param observation_space: the ``Dict`` observation space of ``HierHash-v0`` /
        ``CentralHash-v0`` (keys ``features``, ``code``, ``t``).
    :param projection_dim: the dimension of the projected feature ``h(I)`` (256 by default; the
        paper gives no size. With 64, as in hashgym 0.3.0, the network trained *supervised* to
        emit DCH's codes reached only 0.555 NDCG@20 of DCH's 0.592: the capacity rung of
        ``benchmarks/diagnose_hierhash.py``).
    :param normalize: layer-normalise the features first (CNN features are non-negative with a
        large norm; normalising makes one learning rate fit every bank).
    """

    def __init__(
        self, observation_space: spaces.Dict, projection_dim: int = 256, normalize: bool = True
    ) -> None:
        if not isinstance(observation_space, spaces.Dict) or not {"features", "code", "t"} <= set(
            observation_space.spaces
        ):
            raise ValueError(
                "HashQFeatures needs the Dict observation space of a hashgym env (keys "
                f"'features', 'code', 't'), got {observation_space}"
            )
        if isinstance(projection_dim, bool) or not isinstance(projection_dim, int) or projection_dim < 1:
            raise ValueError(f"projection_dim must be a positive integer, got {projection_dim!r}")
        dim = int(observation_space["features"].shape[0])
        code = int(observation_space["code"].shape[0])
        super().__init__(observation_space, features_dim=projection_dim + code + 1)
        layers: list[nn.Module] = [nn.LayerNorm(dim)] if normalize else []
        layers += [nn.Linear(dim, projection_dim), nn.ReLU()]
        self.project = nn.Sequential(*layers)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[h(I), c_t, t]`` for a batch of observations."""
        return self.join(self.project(observations["features"]), observations["code"],
                         observations["t"])

    @staticmethod
    def join(projected: torch.Tensor, code: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's input ``[h(I), c_t, t]`` from an already projected ``h(I)`` (the one
        place the layout is written; the greedy encoder reuses ``h(I)`` across an image's steps).
        """
        return torch.cat([projected, code, t], dim=1)


#: The DQN hyperparameters hashgym uses for ``HierHash-v0`` unless told otherwise (``γ = 1`` as
#: in DRLHIH §4.1; the rest tuned on the built-in bank, see
#: ``benchmarks/results/notes/hierhash-recipe-history.md``). SB3 counts ``train_freq`` in
#: vector steps: with the recipe's 256 envs, one gradient step of 256 transitions per 256 new
#: ones. The network (a 256-d projection, two layers of 256) is four times 0.3.0's (64; 128,
#: 128), which capped what the agent could represent: on held-out training images of
#: ``cifar100-mini`` NDCG@20 went from 0.507 to 0.713 at 12 bits and from 0.657 to 0.816 at 48,
#: and on all of CIFAR-100 past DCH (``benchmarks/results/notes/hierhash-expected.md``).
DQN_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "buffer_size": 50_000,
    "learning_starts": 1_000,
    "batch_size": 256,
    "gamma": 1.0,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 2_000,
    "exploration_fraction": 0.1,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.05,
    "policy_kwargs": {
        "features_extractor_class": HashQFeatures,
        "features_extractor_kwargs": {"projection_dim": 256},
        "net_arch": [256, 256],
    },
}




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
            raise ValueError("levels must name at least one level")
        if len(timesteps) != len(levels):
            raise ValueError(
                f"timesteps must give one number per level: {len(levels)} levels, "
                f"{len(timesteps)} numbers"
            )
        if any(t < 0 for t in timesteps):
            raise ValueError(f"timesteps must be >= 0, got {list(timesteps)}")
        self.model = model
        self.make_env = make_env
        self.levels = [None if lv is None else int(lv) for lv in levels]
        self.timesteps = [int(t) for t in timesteps]
        self.seed = int(seed)
        if encode is None:
            from hashgym.agents.encode import encode_with_env

            encode = encode_with_env
        self._encode = encode
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
                self.model.learn(remaining, callback=callback, progress_bar=progress_bar,
                                 reset_num_timesteps=fresh, tb_log_name=tb_log_name)
            if state.index + 1 == len(self.levels):
                break
            codes = self._encode(self.model, self.env)
            # the next level's memory starts from these codes too (the env's default at l >= 1)
            state = LevelState(index=state.index + 1, level_start=self.model.num_timesteps,
                               prev_codes=codes)
        self.state.done = True
        return self.model


def hierarchical_dqn(
    bank: Any = None,
    *,
    n_bits: int = 12,
    bits_per_step: int | None = None,
    levels: Sequence[int] | None = None,
    timesteps_per_level: Sequence[int] | int | None = None,
    n_constraints: Sequence[int] | int | None = None,
    num_envs: int | None = None,
    memory_refresh: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    out: str | None = None,
    progress_bar: bool = False,
    **dqn_kwargs: Any,
) -> Any:
    """Train DRLHIH's hierarchical DQN hash function (DRLHIH §3–4).

    A thin front end of :func:`hashgym.agents.train.train` with ``algo="dqn"`` and
    ``env_id="HierHash-v0"``: the paper's network (:class:`HashQFeatures`), code length and
    ``γ = 1`` (:data:`DQN_DEFAULTS`), the env's defaults (the expected class-mean reward against a code
    memory that moves once per generation, from random class codes: pure RL) and the recipe's budget
    and parallel images (:mod:`hashgym.agents.recipe`). Every default is the one measured best;
    the measurements are in ``benchmarks/results/notes/hierhash-learnable.md`` and the
    three-seed table in ``benchmarks/results/drlhih``. The paper's own setting is
    ``env_kwargs=hashgym.envs.hierhash.PAPER_SETTINGS``.

    :param bank: a :class:`~hashgym.bank.FeatureBank`, path or preset name (default: built in).
    :param n_bits: code length (12 in the paper).
    :param bits_per_step: bits per action (default
        :func:`hashgym.envs.hierhash.default_bits_per_step`: 3 at 12 bits, the paper's).
    :param levels: the levels to train in order; default all levels of the bank.
    :param timesteps_per_level: environment steps per level (a number or one per level);
        default :func:`hashgym.agents.recipe.recipe_budget` (one memory generation per
        level but the last, four in all).
    :param n_constraints: constraint pool size per level, or one size for every level (default:
        the env's, 30 triplets per training image).
    :param num_envs: images coded in parallel (default :data:`hashgym.agents.recipe.NUM_ENVS`).
    :param memory_refresh: environment steps between rewrites of the code memory with the
        agent's greedy codes (:class:`hashgym.agents.memory.MemoryRefresh`); ``None`` (default)
        leaves the memory to the env's generations.
    :param env_kwargs: more ``HierHash-v0`` arguments (``lam``, ``rho``, ``estimator``,
        ``memory_generation``, ...).
    :param seed: the run's seed.
    :param out: a folder for the model, checkpoints and logs (``None``: nothing written).
    :param progress_bar: show a progress bar.
    :param dqn_kwargs: more :class:`~stable_baselines3.DQN` arguments (override
        :data:`DQN_DEFAULTS`).
    :return: the :class:`~hashgym.agents.train.TrainResult`.
    """
    from hashgym.agents.train import train

    return train(
        "dqn", "HierHash-v0",
        env_kwargs={"bank": bank, "n_bits": n_bits,
                    **({} if bits_per_step is None else {"bits_per_step": bits_per_step}),
                    **(env_kwargs or {})},
        levels=levels, n_constraints=n_constraints, level_timesteps=timesteps_per_level,
        num_envs=num_envs, seed=seed, out=out, progress_bar=progress_bar,
        memory_refresh=memory_refresh, algo_kwargs=dqn_kwargs,
    )
