"""Recurrent REINFORCE for ``CentralHash-v0`` (SCIHCGRL §2), as a Stable-Baselines3 algorithm.

The policy (:class:`RecurrentHashPolicy`, SCIHCGRL Figs. 4–5)
-------------------------------------------------------------
One :class:`torch.nn.RNNCell` is looped once per bit. At an environment step that asks for
``k = bits_per_step`` bits of an image with feature vector ``x``:

* the features are standardised (mean and std taken from the first rollout batch, stored as
  buffers) and passed through a ReLU MLP (``net_arch``, default one layer of 512), optional
  dropout (``dropout``, default 0) and a linear projection to the cell's width ``H``
  (``hidden_size``, default 128): ``x̃ = W_p MLP(x) + b_p``;
* the first iteration reads the projected feature and the carried hidden state (SCIHCGRL
  eq. (6)): ``h_1 = tanh(W_ih x̃ + b_ih + W_hh h_{t−1} + b_hh)``;
* every later iteration feeds the hidden state back as the input (eq. (7)):
  ``h_n = tanh(W_ih h_{n−1} + b_ih + W_hh h_{n−1} + b_hh)``, ``n = 2..k``, computed as one
  product with ``W_ih + W_hh`` (the same function and gradients, half the work);
* a linear layer gives ``a_n = tanh(w_hᵀ h_n + b)`` (eq. (8)): one layer shared by all
  iterations (``head="shared"``, the paper's single ``W_h``, default) or one per iteration
  (``head="per_iteration"``: ``w_n, b_n`` for the ``n``-th bit of a step).

``a_n ∈ (−1, 1)`` is read as the Bernoulli probability of bit ``n`` being 1 through the affine map
``p_n = (a_n + 1) / 2`` (SCIHCGRL eq. (1) with ``−1`` standing for a 0 bit); with
``z_n = w_hᵀ h_n + b`` this is ``p_n = σ(2 z_n)``, so the Bernoulli's logit is ``2 z_n``. The code
of an image thresholds ``a_n`` at 0 (eq. (9)): bit ``n`` is 1 iff ``a_n ≥ 0`` iff ``p_n ≥ 1/2``.
The hidden state after the last iteration, ``h_t = h_k``, is carried to the image's next step
(with ``bits_per_step < n_bits``) and reset to zero at the image's first step (``obs["t"] == 0``
or ``episode_start``). The observation's ``code`` entry is not read: the hidden state already
holds the history, as in the paper.

What is emitted and what is sampled
-----------------------------------
* ``action_type="binary"`` (``MultiBinary``): while training, bits are sampled,
  ``b_n ~ Bernoulli(p_n)``, and the log-probability of the step is ``Σ_n log P(b_n)`` (SCIHCGRL
  eq. (3)). ``predict(deterministic=True)`` emits the thresholded bits of eq. (9).
* ``action_type="probability"`` (``Box(0, 1)``): the action is a vector of probabilities and the
  environment's reward is the exact BCE of them. A Bernoulli sample would not change that
  reward, so the exploration lives in the pre-activation instead: while training the agent
  samples ``z'_n ~ N(z_n, σ²)`` (``σ = exploration_std``) and emits ``p'_n = (tanh z'_n + 1) / 2``;
  the log-probability is the Gaussian's. ``predict(deterministic=True)`` emits ``p_n`` itself,
  nudged to the correct side of 1/2 in float32 so the emitted bit always equals eq. (9).

Training (:class:`RecurrentReinforce`)
--------------------------------------
Each update rolls out ``episodes_per_update`` whole episodes in every sub-environment (every
episode codes one image in ``T = n_bits / bits_per_step`` steps; the default
``bits_per_step = n_bits`` makes it one step) and takes one gradient step on

``loss = −mean(A_t · log π(a_t | s_t)) + supervised_weight · BCE(p, c) + vf_coef · value_loss
− ent_coef · entropy``

* ``log π(a_t | s_t)`` sums the log-probabilities of the step's bits; ``A_t = G_t − b_t`` with the
  Monte-Carlo return ``G_t = Σ_{t' ≥ t} γ^{t'−t} r_{t'}`` (SCIHCGRL eqs. (15)–(17), the
  Monte-Carlo policy gradient; ``γ = 1`` by default, episodes are short).
* The baseline ``b_t`` (variance reduction, not in the paper): ``"value"`` (default) a learned
  linear value head on the step's first hidden state ``h_1`` (it sees the image), trained by
  squared error to ``G_t``; its input is detached, so the value loss (on the returns' scale)
  never pulls the policy's weights. ``"batch"``: the mean return of the batch at the same step
  index; ``"none"``. Advantages are normalised to unit variance by default.
* The paper's supervised global term (SCIHCGRL §2.B, eqs. (10)–(11), gradient descent on the
  BCE of the global reward): the binary cross-entropy between the bit probabilities ``p`` and the
  image's hash center ``c`` (``info["hash_center"]``), **summed** over the step's bits like the
  log-probability, so one bit's supervised and policy-gradient terms are on the same scale, and
  averaged over images and steps; weighted by ``supervised_weight``. ``supervised_weight=0``
  gives the pure-RL agent, which never reads the center.

The forward pass of the rollout is kept for the gradient (the policy acts and learns on the same
graph), so each image costs one forward and one backward pass; across an image's steps the
gradient flows through the carried hidden state.

Deviations from the paper and why the defaults are what they are
----------------------------------------------------------------
Measured on ``cifar100-csq`` at 24/32/48 bits against a CSQ head on the same features; every
number is in ``benchmarks/results/notes/reinforce-recipe.md``.

* **Orthogonal recurrence** (``recurrent_init="orthogonal"``; ``"default"`` keeps PyTorch's
  init): eq. (7) multiplies the hidden state by ``W_ih + W_hh`` at every iteration, and with
  PyTorch's init that matrix shrinks the image out of ``h_n`` by the late bits. ``W_hh`` starts
  as ``Q − W_ih`` with ``Q`` random orthogonal, so the sum starts as ``Q``; eqs. (6)–(7) are
  unchanged.
* **A ReLU layer before the projection** (``net_arch=(512,)``): on fixed features it plays the
  part of the paper's fine-tuned VGG-19 (the CSQ head has the same layer).
* **Supervised weight 5, weight decay 3e-3, linear lr decay to 0** (``supervised_weight``,
  ``policy_kwargs["weight_decay"]``, ``lr_decay``): on 5,000 training images the agent
  overfits without them; 3e-3 is the most even weight decay across code lengths and banks, and
  the decay makes the result depend less on when training stops.
* **H = 128** instead of 256: the same mAP within noise, half the training and encoding time.
* Tried and not adopted: a head per iteration, dropout, the supervised term alone, other
  learning rates. With ``supervised_weight=0`` (pure RL) the agent improves on random codes
  only slowly: one scalar reward per 32 bits.

Environment
-----------
The agent steps the environment it is given through SB3's ``VecEnv`` API, so SB3 wrappers
(``VecMonitor`` for ``rollout/ep_rew_mean``) and callbacks see every step. It must be a
``CentralHash-v0`` vector env under :class:`hashgym.envs.sb3.SB3VecEnv`
(:func:`hashgym.envs.sb3.make_sb3_vec_env`; a native Gymnasium vector env or an env id are wrapped
for you). Like SB3's own vector envs, it reports the ended episode's infos at a terminal step and
the new episode's in ``reset_infos``; the agent reads each observation's hash center from the
infos that describe that observation's image (``reset_infos[i]`` after an episode ended, the
step's infos otherwise). Other vector envs are refused.

Saving and loading
------------------
:meth:`RecurrentReinforce.save` writes SB3's zip format: the hyperparameters as JSON and the
state dicts of the policy and its optimizer as ``.pth`` files, which SB3 2.9's
``load_from_zip_file`` reads with ``torch.load(weights_only=True)``. SB3 would also cloudpickle
objects it cannot write as JSON (spaces, the policy class, schedules) and unpickle them on load;
:meth:`RecurrentReinforce.load` never does: it rebuilds the spaces from a JSON description
stored beside them, maps the policy class by name, and replaces any other pickled entry with
``None`` (with a warning) unless ``custom_objects`` provides it
(:func:`hashgym.agents.saving.sb3_zip_objects`, beside hashgym's other no-unpickle loaders). A
model file is therefore safe to load. A schedule passed as ``learning_rate`` is saved as its starting value.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from hashgym.agents.saving import sb3_zip_objects, space_to_json
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule, safe_mean
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from torch import nn
from typing_extensions import Self

from hashgym.envs.sb3 import SB3VecEnv, find_sb3_adapter, make_sb3_vec_env
from hashgym.errors import HashgymError
from hashgym.validation import check_number, is_integer, is_number

__all__ = ["BASELINES", "HEADS", "IterationHeads", "RecurrentHashPolicy", "RecurrentReinforce", "ReinforceError"]

logger = logging.getLogger(__name__)

SelfRecurrentReinforce = TypeVar("SelfRecurrentReinforce", bound="RecurrentReinforce")

#: The heads of SCIHCGRL eq. (8) :class:`RecurrentHashPolicy` offers.
HEADS = ("shared", "per_iteration")
#: How :class:`RecurrentHashPolicy` initialises the matrix ``W_ih + W_hh`` of SCIHCGRL eq. (7).
RECURRENT_INITS = ("default", "orthogonal")
#: The variance-reduction baselines :class:`RecurrentReinforce` offers.
BASELINES = ("value", "batch", "none")
#: The largest float32 below 1/2: a deterministic probability action for a 0 bit never exceeds it.
_BELOW_HALF = float(np.nextafter(np.float32(0.5), np.float32(0.0)))
_DEFAULT_NUM_ENVS = 256


class ReinforceError(HashgymError):
    """:class:`RecurrentReinforce` got a bad argument or environment; the message names it."""


def _action_type(action_space: spaces.Space) -> str:
    """``"binary"`` or ``"probability"`` for CentralHash's action spaces, else a clear error."""
    if isinstance(action_space, spaces.MultiBinary) and len(action_space.shape) == 1:
        return "binary"
    if (
        isinstance(action_space, spaces.Box)
        and len(action_space.shape) == 1
        and np.all(action_space.low == 0.0)
        and np.all(action_space.high == 1.0)
    ):
        return "probability"
    raise ReinforceError(
        f"RecurrentReinforce needs CentralHash-v0's actions, MultiBinary(k) (action_type='binary') "
        f"or Box(0, 1, (k,)) (action_type='probability'); got {action_space} (HierHash-v0's "
        f"Discrete chunks are for DQN-style agents)"
    )


def _check_observation_space(observation_space: spaces.Space) -> None:
    if not (
        isinstance(observation_space, spaces.Dict)
        and isinstance(observation_space.spaces.get("features"), spaces.Box)
        and isinstance(observation_space.spaces.get("t"), spaces.Box)
        and len(observation_space["features"].shape) == 1
    ):
        raise ReinforceError(
            f"RecurrentReinforce needs the hashgym Dict observation with 'features' [D] and 't' "
            f"entries; got {observation_space}"
        )


# ====================================================================================== policy
class IterationHeads(nn.Module):
    """The linear part of SCIHCGRL eq. (8), ``z_n = w_nᵀ h_n + b_n``, for all iterations at once.

    ``n_heads = 1``: one head shared by every iteration (the paper's single ``W_h``);
    ``n_heads = k``: iteration ``n`` has its own ``(w_n, b_n)``.

    :param hidden_size: width ``H`` of the hidden states.
    :param n_heads: 1 or the number of iterations ``k``.
    """

    def __init__(self, hidden_size: int, n_heads: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_size)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n_heads, hidden_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_heads).uniform_(-bound, bound))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """``states`` ``[k, n, H]`` (``h_1 … h_k``) → pre-activations ``z`` ``[n, k]``."""
        if self.weight.shape[0] == 1:
            return (states @ self.weight[0]).T + self.bias[0]
        return torch.einsum("knh,kh->nk", states, self.weight) + self.bias


class RecurrentHashPolicy(BasePolicy):
    """The recurrent hashing policy of SCIHCGRL eqs. (6)–(9) (see the module docstring).

    :param observation_space: the env's ``Dict`` observation space (``features``, ``code``, ``t``).
    :param action_space: ``MultiBinary(k)`` or ``Box(0, 1, (k,))``; ``k`` bits per step.
    :param lr_schedule: learning-rate schedule (its value at progress 1 sets the optimizer's rate).
    :param hidden_size: width ``H`` of the RNN cell (and of the projected feature).
    :param net_arch: widths of the ReLU layers before the projection (default one of 512; ``()``
        makes the projection linear, as in the paper).
    :param head: ``"shared"`` (one linear layer for every iteration, eq. (8)) or
        ``"per_iteration"`` (a linear layer per iteration of a step).
    :param dropout: dropout probability on the MLP's output while training (0: none).
    :param recurrent_init: ``"orthogonal"`` (``W_ih + W_hh`` starts orthogonal) or ``"default"``
        (PyTorch's init); see the module docstring.
    :param weight_decay: Adam's weight decay (L2) on every parameter (``optimizer_kwargs`` may
        override it).
    :param value_head: add the linear value head used by the ``"value"`` baseline.
    :param exploration_std: ``σ`` of the Gaussian exploration for probability actions.
    :param optimizer_kwargs: extra arguments of the Adam optimizer (besides ``lr``).
    :param normalize_images: unused (there are no images); accepted for SB3 compatibility.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        hidden_size: int = 128,
        net_arch: Sequence[int] = (512,),
        head: str = "shared",
        dropout: float = 0.0,
        recurrent_init: str = "orthogonal",
        weight_decay: float = 3e-3,
        value_head: bool = True,
        exploration_std: float = 0.5,
        optimizer_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = False,
    ) -> None:
        _check_observation_space(observation_space)
        self.action_type = _action_type(action_space)
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=torch.optim.Adam,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,
        )
        if not is_integer(hidden_size) or hidden_size < 1:
            raise ReinforceError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        net_arch = list(net_arch)
        if not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in net_arch):
            raise ReinforceError(f"net_arch must be a list of positive layer widths, got {net_arch!r}")
        if not (math.isfinite(exploration_std) and exploration_std > 0):
            raise ReinforceError(f"exploration_std must be a positive number, got {exploration_std!r}")
        if head not in HEADS:
            raise ReinforceError(f"unknown head {head!r}; expected one of {', '.join(HEADS)}")
        if not is_number(dropout) or not 0.0 <= dropout < 1.0:
            raise ReinforceError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.hidden_size = int(hidden_size)
        self.net_arch = [int(w) for w in net_arch]
        if recurrent_init not in RECURRENT_INITS:
            raise ReinforceError(
                f"unknown recurrent_init {recurrent_init!r}; expected one of {', '.join(RECURRENT_INITS)}"
            )
        if not is_number(weight_decay) \
                or not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise ReinforceError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
        self.head_kind = head
        self.dropout = float(dropout)
        self.recurrent_init = recurrent_init
        self.weight_decay = float(weight_decay)
        self.exploration_std = float(exploration_std)
        self.bits_per_step = int(action_space.shape[0])
        dim = int(observation_space["features"].shape[0])
        self.features_dim = dim
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_scale", torch.ones(dim))
        self.register_buffer("stats_ready", torch.zeros((), dtype=torch.bool))
        layers: list[nn.Module] = []
        width = dim
        for w in self.net_arch:
            layers += [nn.Linear(width, w), nn.ReLU()]
            width = w
        self.mlp = nn.Sequential(*layers)
        self.drop = nn.Dropout(self.dropout)
        self.project = nn.Linear(width, self.hidden_size)
        self.cell = nn.RNNCell(self.hidden_size, self.hidden_size, nonlinearity="tanh")
        if recurrent_init == "orthogonal":
            with torch.no_grad():  # W_ih + W_hh, the matrix of eq. (7), starts orthogonal
                self.cell.weight_hh.copy_(nn.init.orthogonal_(torch.empty_like(self.cell.weight_hh))
                                          - self.cell.weight_ih)
        self.head = IterationHeads(self.hidden_size, self.bits_per_step if head == "per_iteration" else 1)
        self.value = nn.Linear(self.hidden_size, 1) if value_head else None
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **{"weight_decay": self.weight_decay, **self.optimizer_kwargs}
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            hidden_size=self.hidden_size,
            net_arch=self.net_arch,
            head=self.head_kind,
            dropout=self.dropout,
            recurrent_init=self.recurrent_init,
            weight_decay=self.weight_decay,
            value_head=self.value is not None,
            exploration_std=self.exploration_std,
            optimizer_kwargs=self.optimizer_kwargs,
            lr_schedule=self._dummy_schedule,
        )
        return data

    # ------------------------------------------------------------------ the network
    @torch.no_grad()
    def fit_feature_stats(self, features: torch.Tensor) -> None:
        """Set the feature standardisation from a batch ``[n, D]`` (once; later calls are no-ops)."""
        if bool(self.stats_ready):
            return
        self.feature_mean.copy_(features.mean(dim=0))
        if features.shape[0] > 1:
            self.feature_scale.copy_(features.std(dim=0).clamp(min=1e-6))
        self.stats_ready.fill_(True)

    def step_logits(
        self, features: torch.Tensor, hidden: torch.Tensor | None, episode_start: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One environment step of the policy: SCIHCGRL eqs. (6)–(8) for ``k`` bits.

        :param features: ``[n, D]`` image features.
        :param hidden: ``[n, H]`` carried hidden state ``h_{t−1}`` (``None``: zeros).
        :param episode_start: ``[n]`` bool, rows whose hidden state restarts at zero.
        :return: pre-activations ``z`` ``[n, k]`` (``a = tanh z``, ``p = σ(2z)``), the hidden
            state after the last iteration ``h_t`` ``[n, H]``, and the first iteration's ``h_1``
            ``[n, H]`` (read by the value head).
        """
        n = features.shape[0]
        if hidden is None:
            hidden = features.new_zeros((n, self.hidden_size))
        elif episode_start is not None:
            hidden = hidden * (~episode_start).to(hidden.dtype).unsqueeze(1)
        x = self.project(self.drop(self.mlp((features - self.feature_mean) / self.feature_scale)))
        h = self.cell(x, hidden)  # eq. (6)
        first = h
        states = [h]
        if self.bits_per_step > 1:
            # eq. (7) feeds h_{n-1} as both input and hidden state: W_ih h + W_hh h in one product.
            cell = self.cell
            weight, bias = cell.weight_ih + cell.weight_hh, cell.bias_ih + cell.bias_hh
            for _ in range(self.bits_per_step - 1):
                h = torch.tanh(F.linear(h, weight, bias))  # eq. (7)
                states.append(h)
        return self.head(torch.stack(states)), h, first  # eq. (8), before the tanh

    def deterministic_action(self, z: torch.Tensor) -> torch.Tensor:
        """SCIHCGRL eq. (9): bit 1 iff ``a = tanh z ≥ 0``; probability actions emit ``p = σ(2z)``
        kept on the same side of 1/2 as the bit (float32 rounding could land on 0.5 exactly)."""
        if self.action_type == "binary":
            return (z >= 0).to(torch.int8)
        return self._probability_action(z)

    @staticmethod
    def _probability_action(z: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(2.0 * z).float()
        return torch.where(z >= 0, p.clamp(min=0.5), p.clamp(max=_BELOW_HALF))

    def sample(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample a training action from pre-activations ``z`` ``[n, k]``.

        :return: the action (int8 bits or float32 probabilities, no gradient) and the step's
            log-probability ``[n]`` (summed over its bits; differentiable in ``z``).
        """
        if self.action_type == "binary":
            dist = torch.distributions.Bernoulli(logits=2.0 * z)
            bits = dist.sample().detach()
            return bits.to(torch.int8), dist.log_prob(bits).sum(dim=1)
        dist = torch.distributions.Normal(z, self.exploration_std)
        noisy = dist.sample().detach()
        return self._probability_action(noisy), dist.log_prob(noisy).sum(dim=1)

    def _predict(self, observation: Any, deterministic: bool = False) -> torch.Tensor:
        """Actions for observations at the first step of an image (no carried hidden state)."""
        z, _, _ = self.step_logits(observation["features"].float(), None, None)
        return self.deterministic_action(z) if deterministic else self.sample(z)[0]

    # ------------------------------------------------------------------ SB3 predict
    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Actions for a batch of observations (or one), carrying the RNN's hidden state.

        The hidden state restarts at zero where ``episode_start`` is True or ``obs["t"] == 0``
        (an image's first step); when every row restarts, ``state`` is ignored (so a batch of new
        images may differ in size from the last one). With ``bits_per_step < n_bits``, pass back
        the returned ``state`` at the image's later steps, as with sb3-contrib's ``RecurrentPPO``.

        :param observation: the ``Dict`` observation, batch on axis 0 (or a single one).
        :param state: ``(hidden [n, H],)`` as returned by the previous call, or ``None``.
        :param episode_start: ``[n]`` bool, where a new episode begins.
        :param deterministic: eq. (9)'s thresholded bits (else sampled actions).
        :return: the actions ``[n, k]`` (int8 bits or float32 probabilities) and the new state.
        :raises ReinforceError: for a malformed observation, or a later step without ``state``.
        """
        self.set_training_mode(False)
        if not isinstance(observation, dict) or "features" not in observation or "t" not in observation:
            raise ReinforceError("observation must be the env's Dict observation with 'features' and 't'")
        feats = np.asarray(observation["features"], dtype=np.float32)
        single = feats.ndim == 1
        feats = feats.reshape(-1, self.features_dim) if feats.size else feats.reshape(0, self.features_dim)
        n = feats.shape[0]
        t = np.asarray(observation["t"], dtype=np.float32).reshape(-1)
        if t.shape[0] != n:
            raise ReinforceError(f"observation 't' has {t.shape[0]} rows but 'features' has {n}")
        starts = t == 0
        if episode_start is not None:
            starts = starts | np.asarray(episode_start, dtype=bool).reshape(-1)
        hidden = None
        if state is not None and not starts.all():
            hidden_np = np.asarray(state[0], dtype=np.float32).reshape(-1, self.hidden_size)
            if hidden_np.shape[0] != n:
                raise ReinforceError(f"state holds {hidden_np.shape[0]} hidden states for {n} observations")
            hidden = torch.as_tensor(hidden_np, device=self.device)
        elif not starts.all():
            raise ReinforceError(
                "observation is not at an image's first step (t > 0) but no state was given: "
                "pass the state returned by the previous predict() call"
            )
        with torch.no_grad():
            z, h, _ = self.step_logits(
                torch.as_tensor(feats, device=self.device),
                hidden,
                torch.as_tensor(starts, device=self.device),
            )
            action = self.deterministic_action(z) if deterministic else self.sample(z)[0]
        actions = action.cpu().numpy()
        hidden_out = h.cpu().numpy()
        if single:
            return actions[0], (hidden_out[0],)
        return actions, (hidden_out,)


# ====================================================================================== the algorithm
def _native_adapter(env: VecEnv) -> SB3VecEnv:
    """The :class:`SB3VecEnv` under SB3 wrappers, or a clear error."""
    inner = find_sb3_adapter(env)
    if inner is None:
        raise ReinforceError(
            f"RecurrentReinforce needs a CentralHash-v0 vector env presented by "
            f"hashgym.envs.sb3.SB3VecEnv (e.g. make_sb3_vec_env('CentralHash-v0', num_envs=256)); "
            f"got {type(env).__name__}"
        )
    return inner


def _check_number(value: Any, name: str, low: float, high: float = math.inf, *, open_low: bool = False) -> float:
    return check_number(value, name, low, high, ReinforceError, open_low=open_low)


class RecurrentReinforce(BaseAlgorithm):
    """Recurrent REINFORCE (SCIHCGRL §2) for ``CentralHash-v0``, an SB3 algorithm.

    See the module docstring for the policy, the loss and the choices the paper leaves open.
    ``learn``, ``predict``, ``save``/``load``, callbacks (``CheckpointCallback``, ``EvalCallback``,
    ``ProgressBarCallback``) and SB3's logger (``tensorboard_log``; TensorBoard must be
    installed to use it) work as for any SB3 algorithm::

        from hashgym.agents.reinforce import RecurrentReinforce
        from hashgym.envs.sb3 import make_sb3_vec_env

        env = make_sb3_vec_env("CentralHash-v0", num_envs=512, n_bits=32)
        model = RecurrentReinforce("MultiInputPolicy", env, supervised_weight=1.0, seed=0)
        model.learn(200_000, progress_bar=True)
        codes = env.unwrapped.vector_env.encode(lambda o: model.predict(o, deterministic=True)[0])

    One timestep is one environment step of one sub-environment (``num_envs`` per vector step);
    one update consumes ``episodes_per_update × T × num_envs`` timesteps.

    :param policy: ``"MultiInputPolicy"`` (= :class:`RecurrentHashPolicy`) or the class.
    :param env: a ``CentralHash-v0`` env under :class:`~hashgym.envs.sb3.SB3VecEnv`, a native
        ``gymnasium`` vector env (wrapped in ``SB3VecEnv`` + ``VecMonitor``), or an env id (built
        with :func:`~hashgym.envs.sb3.make_sb3_vec_env` and 256 sub-environments); ``None`` for
        prediction only (``load``).
    :param learning_rate: Adam learning rate, or a schedule of the remaining progress.
    :param episodes_per_update: whole episodes per sub-environment in each update's batch.
    :param gamma: discount ``γ`` of the Monte-Carlo returns, in ``[0, 1]``.
    :param baseline: ``"value"`` (learned), ``"batch"`` (batch mean per step) or ``"none"``.
    :param normalize_advantage: scale the advantages to unit standard deviation.
    :param supervised_weight: weight of the supervised BCE to ``info["hash_center"]`` (0 = pure RL).
    :param lr_decay: with a constant ``learning_rate``, decay it linearly to 0 over each
        :meth:`learn` call (a schedule passed as ``learning_rate`` is used as given).
    :param vf_coef: weight of the value head's squared error (``baseline="value"``).
    :param ent_coef: weight of the bits' Bernoulli entropy bonus.
    :param max_grad_norm: gradient-norm clip (``None``: no clipping).
    :param stats_window_size: episodes averaged in ``rollout/ep_rew_mean``.
    :param tensorboard_log: TensorBoard log folder (``None``: no TensorBoard).
    :param policy_kwargs: :class:`RecurrentHashPolicy` arguments (``hidden_size``, ``net_arch``,
        ``exploration_std``, ``optimizer_kwargs``); JSON-serialisable values only.
    :param verbose: 0 silent, 1 prints SB3's log table.
    :param seed: seed of torch, numpy and the env.
    :param device: torch device (``"auto"``: CUDA when available).
    :raises ReinforceError: for a bad hyperparameter or an env this agent cannot drive.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MultiInputPolicy": RecurrentHashPolicy,
        "RecurrentHashPolicy": RecurrentHashPolicy,
    }
    policy: RecurrentHashPolicy

    def __init__(
        self,
        policy: str | type[RecurrentHashPolicy] = "MultiInputPolicy",
        env: GymEnv | str | None = None,
        learning_rate: float | Schedule = 1e-3,
        episodes_per_update: int = 1,
        gamma: float = 1.0,
        baseline: str = "value",
        normalize_advantage: bool = True,
        supervised_weight: float = 5.0,
        lr_decay: bool = True,
        vf_coef: float = 0.5,
        ent_coef: float = 0.0,
        max_grad_norm: float | None = 1.0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if not isinstance(lr_decay, bool):
            raise ReinforceError(f"lr_decay must be True or False, got {lr_decay!r}")
        self.lr_decay = lr_decay
        if isinstance(policy, str) and policy not in self.policy_aliases:
            raise ReinforceError(
                f"unknown policy {policy!r}; expected one of {', '.join(self.policy_aliases)}"
            )
        if isinstance(env, str):
            env = make_sb3_vec_env(env, num_envs=_DEFAULT_NUM_ENVS)
        if _init_setup_model:
            self._check_hyperparameters(
                learning_rate, episodes_per_update, gamma, baseline, supervised_weight, vf_coef,
                ent_coef, max_grad_norm, policy_kwargs,
            )
        super().__init__(
            policy=policy,
            env=env,
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            monitor_wrapper=True,
            seed=seed,
        )
        self.episodes_per_update = episodes_per_update
        self.gamma = gamma
        self.baseline = baseline
        self.normalize_advantage = normalize_advantage
        self.supervised_weight = supervised_weight
        self.lr_decay = lr_decay
        self.vf_coef = vf_coef
        self.ent_coef = ent_coef
        self.max_grad_norm = max_grad_norm
        self._initial_learning_rate = float(self._learning_rate_at_start(learning_rate))
        self._steps_into_episode = 0
        self._last_centers: np.ndarray | None = None
        if self.env is not None:
            self._attach_env(self.env)
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ checks and setup
    @staticmethod
    def _learning_rate_at_start(learning_rate: float | Schedule) -> float:
        return learning_rate(1.0) if callable(learning_rate) else learning_rate

    def _check_hyperparameters(
        self,
        learning_rate: float | Schedule,
        episodes_per_update: int,
        gamma: float,
        baseline: str,
        supervised_weight: float,
        vf_coef: float,
        ent_coef: float,
        max_grad_norm: float | None,
        policy_kwargs: dict[str, Any] | None,
    ) -> None:
        _check_number(self._learning_rate_at_start(learning_rate), "learning_rate", 0.0, open_low=True)
        if not is_integer(episodes_per_update) \
                or episodes_per_update < 1:
            raise ReinforceError(f"episodes_per_update must be a positive integer, got {episodes_per_update!r}")
        _check_number(gamma, "gamma", 0.0, 1.0)
        if baseline not in BASELINES:
            raise ReinforceError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
        _check_number(supervised_weight, "supervised_weight", 0.0)
        _check_number(vf_coef, "vf_coef", 0.0)
        _check_number(ent_coef, "ent_coef", 0.0)
        if max_grad_norm is not None:
            _check_number(max_grad_norm, "max_grad_norm", 0.0, open_low=True)
        if policy_kwargs is not None:
            try:
                json.dumps(policy_kwargs)
            except TypeError as exc:
                raise ReinforceError(
                    f"policy_kwargs must be JSON-serialisable (so a saved model loads without "
                    f"unpickling): {exc}"
                ) from exc

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """Present ``env`` to SB3: a native vector env gets ``SB3VecEnv`` (+ ``VecMonitor``);
        anything not driven by ``SB3VecEnv`` is refused with :class:`ReinforceError`."""
        if isinstance(env, gym.vector.VectorEnv):
            env = SB3VecEnv(env)
            if monitor_wrapper:
                env = VecMonitor(env)
        elif not isinstance(env, VecEnv):
            raise ReinforceError(
                f"RecurrentReinforce steps a whole batch of images at once: pass "
                f"make_sb3_vec_env('CentralHash-v0', num_envs=...) or "
                f"gymnasium.make_vec('CentralHash-v0', num_envs=...), not a single {type(env).__name__}"
            )
        _native_adapter(env)
        return env

    def _attach_env(self, env: VecEnv) -> None:
        """Validate the env's spaces and read the episode layout from it."""
        _check_observation_space(env.observation_space)
        _action_type(env.action_space)
        adapter = _native_adapter(env)
        steps = adapter.get_attr("steps_per_image")[0] if adapter.has_attr("steps_per_image") else None
        if steps is None or not adapter.has_attr("image_centers"):
            raise ReinforceError(
                f"RecurrentReinforce drives CentralHash-v0 (hash centers and fixed-length episodes); "
                f"{type(adapter.vector_env).__name__} is not a CentralHash vector env"
            )
        self._adapter = adapter
        self._steps_per_image = int(steps)
        self._n_bits = int(adapter.get_attr("n_bits")[0])
        keys = adapter.info_keys
        self._has_centers = keys is None or "hash_center" in keys

    def _setup_lr_schedule(self) -> None:
        """SB3's schedule, or (``lr_decay``, a constant ``learning_rate``) a linear decay from it to 0
        over each :meth:`learn` call."""
        super()._setup_lr_schedule()
        if getattr(self, "lr_decay", False) and not callable(self.learning_rate):
            self.lr_schedule = LinearSchedule(float(self.learning_rate), 0.0, 1.0)

    def _setup_model(self) -> None:
        """Build the policy (and its optimizer) from the spaces and hyperparameters."""
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        _check_observation_space(self.observation_space)
        _action_type(self.action_space)
        self._observation_space_spec = space_to_json(self.observation_space)
        self._action_space_spec = space_to_json(self.action_space)
        kwargs = dict(self.policy_kwargs)
        kwargs["value_head"] = self.baseline == "value"
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, **kwargs
        ).to(self.device)
        if self.supervised_weight > 0 and self.env is not None and not self._has_centers:
            raise ReinforceError(
                "supervised_weight > 0 needs info['hash_center'], but the SB3VecEnv drops it "
                "(its info_keys exclude 'hash_center'); pass info_keys=None or set supervised_weight=0"
            )

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """Replace the environment (same spaces and ``num_envs``); see SB3's ``set_env``."""
        super().set_env(env, force_reset)
        self._attach_env(self.env)  # type: ignore[arg-type]
        if force_reset:
            self._steps_into_episode = 0

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "_adapter",
            "_last_obs",
            "_last_episode_starts",
            "_last_original_obs",
            "_last_centers",
            "_steps_into_episode",
            "_steps_per_image",
            "_n_bits",
            "_has_centers",
            "ep_info_buffer",
            "ep_success_buffer",
            "lr_schedule",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    # ------------------------------------------------------------------ rollout + update
    def _next_infos(self, infos: Sequence[dict[str, Any]], done: np.ndarray) -> list[dict[str, Any]]:
        """The infos of the images the next observations show: a new episode's where one ended."""
        reset_infos = self._adapter.reset_infos
        return [reset_infos[i] if ended else info for i, (ended, info) in enumerate(zip(done, infos))]

    def _centers_from_infos(self, infos: Sequence[dict[str, Any]]) -> np.ndarray | None:
        if not self._has_centers or not infos or "hash_center" not in infos[0]:
            return None
        return np.stack([info["hash_center"] for info in infos]).astype(np.float32)

    def _reset_env(self) -> None:
        assert self.env is not None
        self._last_obs = self.env.reset()  # type: ignore[assignment]
        self._last_episode_starts = np.ones(self.env.num_envs, dtype=bool)
        self._last_centers = self._centers_from_infos(self._adapter.reset_infos)
        self._steps_into_episode = 0

    def _collect_and_train(self, callback: Any) -> bool:
        """Roll out whole episodes with the sampling policy, then take one gradient step.

        :return: ``False`` if a callback asked to stop (the partial batch is discarded).
        """
        assert self.env is not None
        policy = self.policy
        if self._steps_into_episode or self._last_centers is None and self._has_centers:
            self._reset_env()  # a batch always starts at the images' first step
        policy.set_training_mode(True)
        self._update_learning_rate(policy.optimizer)
        device = self.device
        n_steps = self.episodes_per_update * self._steps_per_image
        callback.on_rollout_start()
        hidden: torch.Tensor | None = None
        log_probs, rewards, dones, values, sup_terms, entropies, bit_errors = [], [], [], [], [], [], []
        for _ in range(n_steps):
            obs = self._last_obs
            assert isinstance(obs, dict)
            feats = torch.as_tensor(np.asarray(obs["features"], dtype=np.float32), device=device)
            if not bool(policy.stats_ready):
                policy.fit_feature_stats(feats)
            starts = torch.as_tensor(self._last_episode_starts, device=device)
            z, hidden, first = policy.step_logits(feats, hidden, starts)
            action, log_prob = policy.sample(z)
            new_obs, reward, done, infos = self.env.step(action.cpu().numpy())
            self.num_timesteps += self.env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, done)
            log_probs.append(log_prob)
            rewards.append(torch.as_tensor(reward, dtype=torch.float32, device=device))
            dones.append(torch.as_tensor(done, dtype=torch.float32, device=device))
            if policy.value is not None:
                values.append(policy.value(first.detach()).squeeze(1))
            logits = 2.0 * z
            entropies.append(torch.distributions.Bernoulli(logits=logits).entropy().mean(dim=1))
            if self._last_centers is not None:  # this step's chunk of the image's center
                lo = self._steps_into_episode * policy.bits_per_step
                chunk = self._last_centers[:, lo : lo + policy.bits_per_step]
                centers = torch.as_tensor(chunk, device=device)
                sup_terms.append(
                    F.binary_cross_entropy_with_logits(logits, centers, reduction="none").sum(dim=1)
                )
                emitted = (action.float() >= 0.5).float()
                bit_errors.append((emitted != centers).float().mean(dim=1).detach())
            self._last_obs = new_obs
            self._last_episode_starts = done
            self._last_centers = self._centers_from_infos(self._next_infos(infos, done))
            self._steps_into_episode = (self._steps_into_episode + 1) % self._steps_per_image
        callback.update_locals(locals())
        callback.on_rollout_end()

        # Monte-Carlo returns, episode by episode (SCIHCGRL eq. (14)).
        returns = [torch.zeros(0)] * n_steps
        running = torch.zeros_like(rewards[0])
        for t in reversed(range(n_steps)):
            running = rewards[t] + self.gamma * running * (1.0 - dones[t])
            returns[t] = running
        ret = torch.stack(returns)  # [n_steps, n_envs]
        logp = torch.stack(log_probs)
        if self.baseline == "value":
            value = torch.stack(values)
            advantage = ret - value.detach()
            value_loss = F.mse_loss(value, ret)
        else:
            advantage = ret - ret.mean(dim=1, keepdim=True) if self.baseline == "batch" else ret
            value_loss = torch.zeros((), device=device)
        if self.normalize_advantage and advantage.numel() > 1:
            advantage = advantage / (advantage.std() + 1e-8)
        policy_loss = -(advantage * logp).mean()  # SCIHCGRL eqs. (15)-(17)
        entropy = torch.stack(entropies).mean()
        loss = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy
        supervised = torch.stack(sup_terms).mean() if sup_terms else None
        if self.supervised_weight > 0:
            if supervised is None:
                raise ReinforceError("supervised_weight > 0 but the env's infos carry no 'hash_center'")
            loss = loss + self.supervised_weight * supervised  # SCIHCGRL eqs. (10)-(11)
        policy.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = None
        if self.max_grad_norm is not None:
            grad_norm = float(nn.utils.clip_grad_norm_(policy.parameters(), self.max_grad_norm))
        policy.optimizer.step()
        self._n_updates += 1

        record = self.logger.record
        record("train/n_updates", self._n_updates, exclude="tensorboard")
        record("train/loss", float(loss.detach()))
        record("train/policy_loss", float(policy_loss.detach()))
        record("train/value_loss", float(value_loss.detach()))
        record("train/entropy", float(entropy.detach()))
        record("train/step_reward_mean", float(torch.stack(rewards).mean()))
        record("train/return_mean", float(ret[0].mean()))
        if supervised is not None:
            record("train/supervised_bce", float(supervised.detach()))
            record("train/bit_error", float(torch.stack(bit_errors).mean()))
        if grad_norm is not None:
            record("train/grad_norm", grad_norm)
        return True

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "RecurrentReinforce",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> Self:
        """Train for at least ``total_timesteps`` env steps (whole updates; see SB3's ``learn``).

        :param total_timesteps: env steps to train on, counted per sub-environment.
        :param callback: SB3 callback(s); ``on_step`` runs after every vector step.
        :param log_interval: updates between two dumps of the logger (``None`` or 0: never).
        :param tb_log_name: the TensorBoard run name.
        :param reset_num_timesteps: restart the timestep counter (``False`` to continue).
        :param progress_bar: show SB3's progress bar (needs ``tqdm`` and ``rich``).
        :return: ``self``.
        """
        if self.env is None:
            raise ReinforceError("this model has no environment: pass env= to load() or call set_env()")
        if not is_integer(total_timesteps) \
                or total_timesteps < 0:
            raise ReinforceError(f"total_timesteps must be a non-negative integer, got {total_timesteps!r}")
        if reset_num_timesteps:
            self._steps_into_episode = 0
            self._last_centers = None
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        self._last_centers = self._centers_from_infos(self._adapter.reset_infos) \
            if reset_num_timesteps else self._last_centers
        callback.on_training_start(locals(), globals())
        iteration = 0
        while self.num_timesteps < total_timesteps:
            if not self._collect_and_train(callback):
                break
            iteration += 1
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            if log_interval and iteration % log_interval == 0:
                self.dump_logs(iteration)
        callback.on_training_end()
        return self

    def dump_logs(self, iteration: int = 0) -> None:
        """Record the time and episode statistics and write the logger (as SB3's on-policy algos)."""
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / elapsed)
        if iteration:
            self.logger.record("time/iterations", iteration, exclude="tensorboard")
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", safe_mean([e["r"] for e in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([e["l"] for e in self.ep_info_buffer]))
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """See :meth:`RecurrentHashPolicy.predict` (``deterministic=True`` is SCIHCGRL eq. (9))."""
        return self.policy.predict(observation, state, episode_start, deterministic)

    # ------------------------------------------------------------------ safe loading
    @classmethod
    def load(  # type: ignore[override]
        cls,
        path: Any,
        env: GymEnv | None = None,
        device: torch.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> Self:
        """Load a model saved by :meth:`save`, without unpickling anything (module docstring).

        Same arguments as SB3's ``BaseAlgorithm.load``.
        :raises ModelFileError: if the file is not a RecurrentReinforce model.
        """
        objects = sb3_zip_objects(path, RecurrentHashPolicy, "a RecurrentReinforce model")
        objects.update(custom_objects or {})
        model = super().load(
            path, env=env, device=device, custom_objects=objects,
            print_system_info=print_system_info, force_reset=force_reset, **kwargs,
        )
        if callable(model.learning_rate):
            model.learning_rate = model._initial_learning_rate
        if env is not None:
            model._steps_into_episode = 0
            model._last_centers = None
        return model
