"""DRLHIH's DQN agent: the Q-network's input layer and hashgym's DQN hyperparameters.

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
    TD target is DRLHIH eq. (3)'s, with ε-greedy exploration and ``γ = 1`` (SB3's DQN with a
    target network and a replay buffer).

Deviation
    DRLHIH eq. (3) minimises the squared TD error; SB3's DQN minimises its Huber (smooth L1)
    loss, equal to half the square for errors below 1 and linear beyond, which bounds the
    gradient of a large error. hashgym keeps SB3's loss.

Hierarchical training (DRLHIH §3.2, eqs. (4)–(5))
    :class:`hashgym.agents.curriculum.LevelCurriculum` trains one model level after level (any
    algorithm); :func:`hashgym.agents.train.hierarchical_dqn` is the DRLHIH front end.

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

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from hashgym.errors import AgentError
from hashgym.validation import check_count

__all__ = ["DQN_DEFAULTS", "QRDQN_DEFAULTS", "HashQFeatures"]


class HashQFeatures(BaseFeaturesExtractor):
    """The input layer of DRLHIH's Q-network (§3.1, Fig. 2): ``[proj(x(I)), c_t, t]``.

    The ``features`` observation is (optionally) layer-normalised and projected to
    ``projection_dim`` with a linear layer and a ReLU; the ``code`` window and the time index
    ``t`` are appended unchanged. The fully connected layers that follow are the policy's
    ``net_arch``.

    :param observation_space: the ``Dict`` observation space of ``HierHash-v0`` /
        ``CentralHash-v0`` (keys ``features``, ``code``, ``t``).
    :param projection_dim: the dimension of the projected feature ``h(I)`` (256 by default; the
        paper gives no size. 0.3.0's 64 capped what the network could represent:
        ``benchmarks/results/notes/hierhash-expected.md``, the capacity rung).
    :param normalize: layer-normalise the features first (CNN features are non-negative with a
        large norm; normalising makes one learning rate fit every bank).
    """

    def __init__(
        self, observation_space: spaces.Dict, projection_dim: int = 256, normalize: bool = True
    ) -> None:
        if not isinstance(observation_space, spaces.Dict) or not {"features", "code", "t"} <= set(
            observation_space.spaces
        ):
            raise AgentError(
                "HashQFeatures needs the Dict observation space of a hashgym env (keys "
                f"'features', 'code', 't'), got {observation_space}"
            )
        check_count(projection_dim, "projection_dim", 1, AgentError)
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
#: 128), which capped what the agent could represent
#: (``benchmarks/results/notes/hierhash-expected.md``).
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

#: :data:`DQN_DEFAULTS` for sb3-contrib's QR-DQN, with 25 quantiles per action instead of its 200
#: (as the RL Zoo file has it): the quantile loss compares every pair of a batch's quantiles
#: (``256 × N × N``), which made 200 many times slower than DQN for no measured gain
#: (``benchmarks/results/notes/agents-suite.md``).
QRDQN_DEFAULTS: dict[str, Any] = {
    **DQN_DEFAULTS,
    "policy_kwargs": {**DQN_DEFAULTS["policy_kwargs"], "n_quantiles": 25},
}
