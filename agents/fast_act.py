"""Fast deterministic act paths for :func:`hashgym.agents.encode.policy_act`.

``env.encode`` codes a batch of images in ``T`` steps and passes the same ``features`` array at
every step of the batch. The two paths here use that to do the image's share of the network's
work once per batch instead of once per step, and are otherwise the model's own modules, so they
return what ``model.predict(obs, deterministic=True)`` returns:

* :func:`greedy_q_act`: DQN and QR-DQN with :class:`~hashgym.agents.dqn.HashQFeatures` project
  each image's features once;
* :func:`recurrent_act`: RecurrentPPO on dict observations multiplies the features into the
  LSTM's input gates once, then runs the LSTM step (sb3-contrib's, written out) per step.

Each returns ``None`` for a model it does not cover; :func:`~hashgym.agents.encode.policy_act`
then falls back to ``model.predict``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import CombinedExtractor
from stable_baselines3.dqn.policies import DQNPolicy

from hashgym.agents.dqn import HashQFeatures

__all__ = ["LSTM_BLOCK", "greedy_q_act", "recurrent_act"]

#: Rows of a batch whose LSTM step :func:`recurrent_act` computes at once: a block's gates
#: (4 MB at 256 units) stay in cache between the matrix product and the cell update
#: (``benchmarks/results/notes/retrieval-speed-0.5.md``).
LSTM_BLOCK = 1024


def greedy_q_act(model: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """The greedy policy of a DQN or QR-DQN with :class:`~hashgym.agents.dqn.HashQFeatures`,
    projecting each image's features once instead of at each of its ``T`` steps (``None`` for
    other models).

    ``env.encode`` passes the same ``features`` array at every step of a batch of images, so the
    projection ``h(I)`` is kept while that array object is (a reference is held, so its identity
    cannot be reused). The rest is the model's own modules on the same batch: ``argmax_a Q(s, a)``
    (for QR-DQN, of the mean over its quantiles), exactly what ``model.predict(obs,
    deterministic=True)`` returns (timings: ``benchmarks/results/notes/retrieval-speed-0.5.md``).
    """

    policy = getattr(model, "policy", None)
    if isinstance(policy, DQNPolicy):
        net, head = policy.q_net, policy.q_net.q_net

        def values(x: torch.Tensor) -> torch.Tensor:
            return head(x)
    elif isinstance(policy, QRDQNPolicy):
        net, head = policy.quantile_net, policy.quantile_net.quantile_net
        n_quantiles, n_actions = net.n_quantiles, int(net.action_space.n)

        def values(x: torch.Tensor) -> torch.Tensor:
            return head(x).view(-1, n_quantiles, n_actions).mean(dim=1)
    else:
        return None
    extractor = net.features_extractor
    if type(extractor) is not HashQFeatures:
        return None
    device = policy.device
    cache: dict[str, Any] = {"features": None, "projected": None}

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        policy.set_training_mode(False)
        with torch.inference_mode():
            if obs["features"] is not cache["features"]:
                cache["features"] = obs["features"]
                cache["projected"] = extractor.project(
                    torch.as_tensor(np.asarray(obs["features"], dtype=np.float32), device=device))
            x = extractor.join(cache["projected"],
                               torch.as_tensor(obs["code"], dtype=torch.float32, device=device),
                               torch.as_tensor(obs["t"], dtype=torch.float32, device=device))
            return values(x).argmax(dim=1).cpu().numpy()

    return act


def recurrent_act(model: Any) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """The deterministic policy of a RecurrentPPO on dict observations, with each image's
    ``features`` entering the LSTM's input gates once instead of at each of its ``T`` steps
    (``None`` for other models).

    An LSTM's gates are ``W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``; ``x_t`` is the concatenation
    of the flattened ``code``, ``features`` and ``t`` entries, and ``env.encode`` passes the same
    ``features`` array at every step of a batch, so the columns of ``W_ih`` that meet it are
    multiplied once per batch (about 3/4 of the input gates' work at 512-d features and 256
    units). The cell update, the actor's MLP and the distribution's mode are the model's own
    modules, as in ``model.predict(obs, state, episode_start, deterministic=True)``, which this
    returns up to float rounding of the split sum (tests/test_encode.py compares the codes; the
    timings are in ``benchmarks/results/notes/retrieval-speed-0.5.md``).

    Only single-layer, unidirectional LSTMs behind SB3's ``CombinedExtractor`` of ``Box``
    entries (no squashed actions) take this path; others keep ``model.predict``.
    """
    policy = getattr(model, "policy", None)
    if not isinstance(policy, RecurrentActorCriticPolicy):
        return None
    lstm, extractor = policy.lstm_actor, policy.pi_features_extractor
    obs_space, action_space = policy.observation_space, policy.action_space
    if (lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size
            or type(extractor) is not CombinedExtractor
            or policy.squash_output
            or not isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete,
                                              spaces.MultiBinary, spaces.Box))
            or any(type(module) is not torch.nn.Flatten
                   or not isinstance(obs_space[key], spaces.Box)
                   for key, module in extractor.extractors.items())):
        return None
    keys = list(extractor.extractors)
    if "features" not in keys:
        return None
    widths = [get_flattened_obs_dim(obs_space[key]) for key in keys]
    start = sum(widths[: keys.index("features")])
    stop = start + widths[keys.index("features")]
    w_ih = lstm.weight_ih_l0.detach()
    w_features = w_ih[:, start:stop]
    w_rest = torch.cat([w_ih[:, :start], w_ih[:, stop:]], dim=1)
    rest_keys = [key for key in keys if key != "features"]
    bias = ((lstm.bias_ih_l0 + lstm.bias_hh_l0).detach() if lstm.bias
            else torch.zeros(4 * lstm.hidden_size, device=policy.device))
    w_step = torch.cat([w_rest, lstm.weight_hh_l0.detach()], dim=1)  # [rest entries, h] -> gates
    device = policy.device
    cache: dict[str, Any] = {"features": None, "gates": None, "h": None, "c": None}

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        policy.set_training_mode(False)
        with torch.inference_mode():
            n = len(obs["t"])
            if obs["features"] is not cache["features"]:
                cache["features"] = obs["features"]
                cache["gates"] = torch.addmm(bias, tensor(obs["features"]).reshape(n, -1),
                                             w_features.T)
            rest = [tensor(obs[key]).reshape(n, -1) for key in rest_keys]
            h, c = cache["h"], cache["c"]
            starts = torch.as_tensor(obs["t"][:, 0] == 0, device=device)
            fresh = h is None or h.shape[0] != n or bool(starts.all())
            if not fresh and bool(starts.any()):
                keep = (~starts).float()[:, None]
                h, c = h * keep, c * keep
            rest = torch.cat(rest, dim=1)
            h_next = torch.empty(n, lstm.hidden_size, device=device)
            c_next = torch.empty(n, lstm.hidden_size, device=device)
            for block in range(0, n, LSTM_BLOCK):
                rows = slice(block, block + LSTM_BLOCK)
                if fresh:  # h is 0: W_hh adds nothing
                    gates = torch.addmm(cache["gates"][rows], rest[rows], w_rest.T)
                else:
                    gates = torch.addmm(cache["gates"][rows], torch.cat([rest[rows], h[rows]], 1),
                                        w_step.T)
                # the cell update in place on the block's gates, which no one else holds
                i, f, g, o = gates.chunk(4, dim=1)
                i.sigmoid_()
                g.tanh_()
                o.sigmoid_()
                if fresh:
                    torch.mul(i, g, out=c_next[rows])
                else:
                    torch.mul(f.sigmoid_(), c[rows], out=c_next[rows]).add_(i.mul_(g))
                torch.tanh(c_next[rows], out=h_next[rows]).mul_(o)
            h, c = h_next, c_next
            cache["h"], cache["c"] = h, c
            latent = policy.mlp_extractor.forward_actor(h)
            actions = policy._get_action_dist_from_latent(latent).get_actions(deterministic=True)
            actions = actions.cpu().numpy().reshape((-1, *action_space.shape))
            if isinstance(action_space, spaces.Box):  # as predict does for unsquashed policies
                actions = np.clip(actions, action_space.low, action_space.high)
            return actions

    return act
