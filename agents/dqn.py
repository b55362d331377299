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
    * the code memory (``mode="memory"``) carries over from level to level: it holds the
      agent's latest codes, which beat the random codes a fresh env starts with;
    * an off-policy model's replay buffer is emptied at a level change: its transitions were
      rewarded by the previous level's reward;
    * the ε-greedy schedule runs over the whole run (SB3's progress counts every level), so the
      later levels refine with little exploration.

Paper defaults (DRLHIH §4.1): 12 bits, 3 bits per step, ``γ = 1``, ``λ = 1``, ``ρ = 0.9``,
constraint pools of 4,000 and 1,000 triplets for CIFAR (the env's defaults; see
:func:`hierarchical_dqn`).

What makes it learn on real features (measured on ``cifar100-mini``: 7,000 training images,
128-d; level 0, 12 bits, 64 parallel images, NDCG@20 with graded relevance, query vs database;
chance 0.023, LSH 0.16, ITQ 0.28)
    * **The reward must read codes the policy wrote.** In memory mode with anchor-only coding
      (the env's old behaviour) a 4,000-triplet pool anchors 3,074 of the 7,000 images, so 56%
      of the positives/negatives the reward reads keep their random initial codes; the agent
      then fits the pool (pool reward −3.1 → −1.7) but not held-out triplets (−3.16) and NDCG@20
      falls to 0.04 after 500k steps. The env now codes the anchor, positive or negative of the
      drawn triplet (``memory_roles="all"``): held-out reward −2.3, NDCG@20 0.08.
    * **The DQN itself is not the bottleneck.** With the memory frozen to ITQ's codes and fresh
      triplets, the same network reaches NDCG@20 0.14 in 100k steps. PPO through the old env
      was as close to chance as DQN (NDCG@20 0.058–0.062 at 20k–100k steps): the reward, not
      the learner, was the problem.
    * **Large pools beat the paper's 4,000 on many images.** With 200,000 triplets (about one
      fresh triplet per episode) every image anchors often, nothing can be memorised, and
      anchor-only coding is fastest: NDCG@20 0.12 at 300k steps, 0.13–0.14 at 450k–600k, the
      level-0 reward (−1.1) beating ITQ's codes on the same triplets (−1.55). NDCG@20 stays
      below ITQ's because level-0 triplets only ask for super-class structure.
    * **Level 1 with any other class as the negative.** Sibling-only level-1 triplets (the
      paper's "palm vs oak") never ask to keep other super-classes away and erode level 0:
      300k + 150k steps give NDCG@20 0.081 (0.134 with ``ρ = 0.5``) against 0.137 for level 0
      alone (one seed each); with ``sibling_negatives=False`` 0.165. Over seeds, at 300k + 300k
      steps the hierarchical agent (0.142, 0.134, 0.131 for seeds 0–2) ties level 0 alone at
      the same 600k steps (0.145, 0.133 for seeds 0–1) on NDCG@20, with a slightly higher
      fine-class mAP (0.063–0.066 vs 0.057–0.063).
    * **Shorter exploration**: ``exploration_fraction=0.1`` (was 0.3) reaches the same NDCG in
      about half the steps (ε-greedy codes are written to the memory, so long random phases
      keep it noisy). More gradient steps per vector step (4, 8, 16), a lower learning rate,
      larger batches, a longer target update and fewer parallel envs did not help.

What it takes on the full bank (the shared CIFAR-100 bank: 50,000 training images, 512-d;
level 0, 12 bits, one seed, NDCG@20 as above; chance ≈ 0.02, ITQ 0.30)
    * **A stale memory stalls learning.** The recipe above stays at chance here (0.053 after
      300k steps, 0.050 after 2.5M): each image is coded a handful of times per run, so the codes
      the reward reads were written by old, exploratory policies. Rewriting the whole memory with
      the current greedy codes every ~2,000 steps (:class:`hashgym.agents.memory.MemoryRefresh`,
      ``memory_refresh`` of :func:`hashgym.agents.train.train`) lifts the same run to 0.117 (a
      refresh every 6,400 steps) and 0.125 (every 1,600 steps).
    * **More images per vector step**: 256 parallel images with a refresh every 2,048 steps
      (one gradient step of 256 transitions per 256 new ones) reach 0.141 at 300k steps and
      0.156–0.162 at 400k–1M; 1,024 images are slower to start (0.113 at 1M), and 64 images with
      twice the gradient steps slower still.
    * **Level 1 does not add fine-class structure yet.** 400k + 400k steps give 0.147 (ρ = 0.9)
      and 0.141 (ρ = 1) against 0.141 for level 0 alone after its 400k; sibling negatives at
      level 1 erode level 0 even with the refresh (0.084 with ρ = 0.9, 0.122 with ρ = 0.5), and
      so does a mixture (``sibling_negatives=0.5``: 0.119, ``0.25``: 0.130); a longer level 1
      does not help (400k + 1.2M: 0.141). Level 1 alone (fine-class triplets from scratch) keeps
      climbing slowly: 0.098–0.112 after 400k, 0.131 after 800k, 0.153 after 1.6M.
    * Did not help: a projection of 256 instead of 64 (0.086 at 300k), learning rate 5·10⁻⁴ with
      ε ending at 0.01 (0.090 at 400k).
    The agent thus learns the super-class structure (NDCG@20 about half of ITQ's) but not the
    fine classes within them that ITQ's unsupervised codes keep from the features.
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

from hashgym.agents.recipe import RECIPE_ENV, RECIPE_TRAIN, TRIPLETS_PER_IMAGE

__all__ = [
    "DQN_DEFAULTS",
    "TRIPLETS_PER_IMAGE",
    "HashQFeatures",
    "LevelCurriculum",
    "LevelState",
    "RECIPE_ENV",
    "RECIPE_TRAIN",
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
    :param projection_dim: the dimension of the projected feature ``h(I)``.
    :param normalize: layer-normalise the features first (CNN features are non-negative with a
        large norm; normalising makes one learning rate fit every bank).
    """

    def __init__(
        self, observation_space: spaces.Dict, projection_dim: int = 64, normalize: bool = True
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
        return torch.cat(
            [self.project(observations["features"]), observations["code"], observations["t"]],
            dim=1,
        )


#: The DQN hyperparameters hashgym uses for ``HierHash-v0`` unless told otherwise (``γ = 1`` as
#: in DRLHIH §4.1; the rest tuned on the built-in bank with 64 parallel images per step: see the
#: module docstring for what was measured). SB3 counts ``train_freq`` and
#: ``target_update_interval`` in vector steps / env steps as documented by SB3: with 64 envs,
#: one gradient step of 256 transitions per 64 new ones.
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
        "features_extractor_kwargs": {"projection_dim": 64},
        "net_arch": [128, 128],
    },
}




@dataclass
class LevelState:
    """Where a level curriculum stands (what a checkpoint needs to resume it).

    :param index: the position in ``levels`` of the level being trained.
    :param level_start: ``model.num_timesteps`` when that level began.
    :param prev_codes: the previous level's codes of the training images (``None`` at the first
        level, unless the caller supplies them).
    :param memory: the code memory to start the level's env with (``None``: the env's seeded
        random memory).
    """

    index: int = 0
    level_start: int = 0
    prev_codes: np.ndarray | None = None
    memory: np.ndarray | None = None
    done: bool = field(default=False)


#: Builds the SB3 vector env of one level: ``(level, prev_codes, seed) -> VecEnv``.
EnvFactory = Callable[[Any, Any, int], VecEnv]


def _native(venv: VecEnv) -> Any:
    """The hashgym vector env under SB3 wrappers (``VecMonitor`` / ``SB3VecEnv``)."""
    env: Any = venv
    while not hasattr(env, "vector_env"):
        if not hasattr(env, "venv"):
            raise TypeError(f"{type(venv).__name__} does not wrap a hashgym SB3VecEnv")
        env = env.venv
    return env.vector_env


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
    def memory(self) -> np.ndarray | None:
        """The current env's code memory (``None`` before the first level starts)."""
        return None if self.env is None else np.array(_native(self.env).memory)

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
            _native(venv).memory[:] = state.memory
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
            state = LevelState(index=state.index + 1, level_start=self.model.num_timesteps,
                               prev_codes=codes, memory=self.memory)
        self.state.done = True
        return self.model


def hierarchical_dqn(
    bank: Any = None,
    *,
    n_bits: int = 12,
    bits_per_step: int = 3,
    levels: Sequence[int] | None = None,
    n_constraints: Sequence[int] | int | None = None,
    memory_roles: str = RECIPE_ENV["memory_roles"],
    sibling_negatives: bool = RECIPE_ENV["sibling_negatives"],
    timesteps_per_level: Sequence[int] | int = 300_000,
    lam: float = 1.0,
    rho: float = 0.9,
    gamma: float = 1.0,
    exploration_final_eps: float = 0.05,
    num_envs: int = RECIPE_TRAIN["num_envs"],
    memory_refresh: int | None = RECIPE_TRAIN["memory_refresh"],
    seed: int = 0,
    out: str | None = None,
    progress_bar: bool = False,
    **dqn_kwargs: Any,
) -> Any:
    """Train DRLHIH's hierarchical DQN hash function (DRLHIH §3–4).

    A thin front end of :func:`hashgym.agents.train.train` with ``algo="dqn"`` and
    ``env_id="HierHash-v0"``. The paper's network, code length, ``γ``, ``λ`` and ``ρ`` are the
    defaults; the constraint pools, the coded roles, the level-1 negatives, the parallel images
    and the memory refresh default to what learned best (module docstring):
    :data:`TRIPLETS_PER_IMAGE` triplets per training image and level, anchor-only coding, any
    other class as the level-``l`` negative, 256 images per vector step, the code memory
    rewritten with the greedy codes every 2,048 steps (NDCG@20 0.158 ± 0.010 over three seeds on
    the 50,000-image shared bank in 400k + 400k steps, against 0.043 without the refresh; ITQ
    0.307; ``benchmarks/results/drlhih``). The paper's setting
    is ``n_constraints=(4000, 1000), memory_roles="all", sibling_negatives=True,
    memory_refresh=None`` (NDCG@20 0.053 with 150k + 150k steps on the built-in bank, at chance
    on the shared one).

    :param bank: a :class:`~hashgym.bank.FeatureBank`, path or preset name (default: built in).
    :param n_bits: code length (12 in the paper).
    :param bits_per_step: bits per action (3 in the paper).
    :param levels: the levels to train in order; default all levels of the bank.
    :param n_constraints: constraint pool size per level, or one size for every level;
        default :data:`TRIPLETS_PER_IMAGE` × the number of training images (``(4000, 1000)``
        is the paper's best CIFAR setting, for a split of a few thousand images).
    :param memory_roles: which image of a triplet a memory-mode episode codes (the env's
        ``memory_roles``): ``"anchor"`` (default: fastest with large pools, where every image
        anchors often) or ``"all"`` (needed with small pools: see the env's manual).
    :param sibling_negatives: the env's ``sibling_negatives``: negatives at level ``l >= 1``
        share the anchor's level-``(l−1)`` label (the paper's "palm vs oak"). Off by default:
        sibling-only constraints never ask to keep other super-classes away, and the level-0
        structure erodes (NDCG@20 0.165 without, 0.081 with, on the built-in bank, 300k +
        150k steps, one seed).
    :param timesteps_per_level: environment steps per level (a number or one per level).
    :param lam: ``λ`` of DRLHIH eq. (4).
    :param rho: ``ρ`` of DRLHIH eq. (5).
    :param gamma: the discount (1 in the paper).
    :param exploration_final_eps: ε of the ε-greedy policy at the end of its schedule.
    :param num_envs: images coded in parallel.
    :param memory_refresh: environment steps between rewrites of the code memory with the
        agent's greedy codes (:class:`hashgym.agents.memory.MemoryRefresh`); ``None`` leaves the
        memory to the episodes, as METHODS.md specifies.
    :param seed: the run's seed.
    :param out: a folder for the model, checkpoints and logs (``None``: nothing written).
    :param progress_bar: show a progress bar.
    :param dqn_kwargs: more :class:`~stable_baselines3.DQN` arguments (override
        :data:`DQN_DEFAULTS`).
    :return: the :class:`~hashgym.agents.train.TrainResult`.
    """
    from hashgym.agents.train import train

    if n_constraints is None:
        from hashgym.protocols import resolve_bank

        n_constraints = TRIPLETS_PER_IMAGE * len(resolve_bank(bank).indices("train"))
    return train(
        "dqn", "HierHash-v0",
        env_kwargs={"bank": bank, "n_bits": n_bits, "bits_per_step": bits_per_step,
                    "lam": lam, "rho": rho, "memory_roles": memory_roles,
                    "sibling_negatives": sibling_negatives},
        levels=levels, n_constraints=n_constraints, level_timesteps=timesteps_per_level,
        num_envs=num_envs, seed=seed, out=out, progress_bar=progress_bar,
        memory_refresh=memory_refresh,
        algo_kwargs={"gamma": gamma, "exploration_final_eps": exploration_final_eps,
                     **dqn_kwargs},
    )
