"""The recurrent hashing policy of SCIHCGRL §2 (Figs. 4–5, eqs. (6)–(9)), an SB3 policy.

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

The algorithm that trains it is :class:`hashgym.agents.reinforce.algorithm.RecurrentReinforce`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from hashgym.agents.cnn import ImageBody, image_space_channels
from hashgym.errors import AgentError
from hashgym.validation import is_integer, is_number

__all__ = [
    "HEADS",
    "RECURRENT_INITS",
    "IterationHeads",
    "RecurrentHashPolicy",
    "ReinforceError",
    "action_type_of",
    "check_observation_space",
]


#: The heads of SCIHCGRL eq. (8) :class:`RecurrentHashPolicy` offers.
HEADS = ("shared", "per_iteration")
#: How :class:`RecurrentHashPolicy` initialises the matrix ``W_ih + W_hh`` of SCIHCGRL eq. (7).
RECURRENT_INITS = ("default", "orthogonal")
#: The largest float32 below 1/2: a deterministic probability action for a 0 bit never exceeds it.
_BELOW_HALF = float(np.nextafter(np.float32(0.5), np.float32(0.0)))


#: This module's name for :class:`~hashgym.errors.AgentError` (an alias).
ReinforceError = AgentError


def action_type_of(action_space: spaces.Space) -> str:
    """``"binary"`` or ``"probability"`` for CentralHash's action spaces, else a clear error.

    :param action_space: the env's action space.
    :raises ReinforceError: for any other space.
    """
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


def check_observation_space(observation_space: spaces.Space) -> None:
    """Refuse an observation space without the hashgym ``Dict``'s ``features`` (a vector
    ``[D]``, or a ``uint8`` image with ``observation="image"``) and ``t``."""
    features = observation_space.spaces.get("features") if isinstance(
        observation_space, spaces.Dict) else None
    if not (
        isinstance(features, spaces.Box)
        and isinstance(observation_space.spaces.get("t"), spaces.Box)
        and (len(features.shape) == 1 or image_space_channels(features) is not None)
    ):
        raise ReinforceError(
            f"RecurrentReinforce needs the hashgym Dict observation with 'features' ([D], or a "
            f"uint8 image) and 't' entries; got {observation_space}"
        )


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
        (PyTorch's init); see "Deviations" in :mod:`hashgym.agents.reinforce.algorithm`.
    :param weight_decay: Adam's weight decay (L2) on every parameter (``optimizer_kwargs`` may
        override it).
    :param value_head: add the linear value head used by the ``"value"`` baseline.
    :param exploration_std: ``σ`` of the Gaussian exploration for probability actions.
    :param optimizer_kwargs: extra arguments of the Adam optimizer (besides ``lr``).
    :param backbone: with image observations (``observation="image"``), the CNN body that
        replaces the feature vector: one of :data:`hashgym.agents.cnn.IMAGE_BODIES` (default
        ``"small"``); it trains with the policy (SCIHCGRL eq. (10): ``θ_f`` follows the same
        objective). Unused on feature vectors.
    :param backbone_weights: the torchvision body's weights (``None``, ``"imagenet"`` or a
        state-dict file).
    :param augment: random crops and flips of the images during rollouts (the training
        forward pass); never when acting deterministically.
    :param normalize_images: unused (images are scaled by the body); accepted for SB3
        compatibility.
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
        backbone: str = "small",
        backbone_weights: str | None = None,
        augment: bool = True,
        normalize_images: bool = False,
    ) -> None:
        check_observation_space(observation_space)
        self.action_type = action_type_of(action_space)
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
        if not all(is_integer(w) and w >= 1 for w in net_arch):
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
        self.backbone, self.backbone_weights, self.augment = backbone, backbone_weights, augment
        layout = image_space_channels(observation_space["features"])
        self.image_layout = layout
        if layout is not None:
            try:
                self.image_body: ImageBody | None = ImageBody(backbone, backbone_weights,
                                                              layout[0], augment)
            except (TypeError, ValueError) as exc:
                raise ReinforceError(str(exc)) from exc
            dim = self.image_body.dim
        else:
            self.image_body = None
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
            backbone=self.backbone,
            backbone_weights=self.backbone_weights,
            augment=self.augment,
            lr_schedule=self._dummy_schedule,
        )
        return data

    # ------------------------------------------------------------------ the network
    @torch.no_grad()
    def fit_feature_stats(self, features: torch.Tensor) -> None:
        """Set the feature standardisation from a batch ``[n, D]`` (once; later calls are no-ops;
        images are normalised by their body instead)."""
        if bool(self.stats_ready) or self.image_body is not None:
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
        x = self.project(self.drop(self.mlp(self.encode_features(features))))
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

    def encode_features(self, features: torch.Tensor) -> torch.Tensor:
        """The vector the MLP reads: standardised features ``[n, D]``, or the CNN body's
        features of images (``[n, H, W, C]`` or ``[n, C, H, W]``, pixel values 0–255)."""
        if self.image_body is None:
            return (features - self.feature_mean) / self.feature_scale
        channels = self.image_layout[0]
        x = features if features.shape[1] == channels else features.permute(0, 3, 1, 2)
        return self.image_body(x / 255.0)

    def deterministic_action(self, z: torch.Tensor) -> torch.Tensor:
        """SCIHCGRL eq. (9): bit 1 iff ``a = tanh z ≥ 0``; probability actions emit ``p = σ(2z)``
        kept on the same side of 1/2 as the bit (float32 rounding could land on 0.5 exactly)."""
        if self.action_type == "binary":
            return (z >= 0).to(torch.int8)
        return self.probability_action(z)

    @staticmethod
    def probability_action(z: torch.Tensor) -> torch.Tensor:
        """The deterministic probability action ``p = σ(2z)`` for pre-activations ``z``, kept on
        the side of 1/2 that eq. (9)'s bit is on (float32 rounds ``σ(2z)`` to 1/2 for tiny
        negative ``z``)."""
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
        return self.probability_action(noisy), dist.log_prob(noisy).sum(dim=1)

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
        if self.image_body is None:
            single = feats.ndim == 1
            feats = feats.reshape(-1, self.features_dim) if feats.size else feats.reshape(
                0, self.features_dim)
        else:  # images: [H, W, C] alone or [n, H, W, C] (either channel layout)
            single = feats.ndim == 3
            feats = feats[None] if single else feats
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
