"""Recurrent REINFORCE (SCIHCGRL §2, eqs. (10)–(17)), an SB3 algorithm that trains
:class:`~hashgym.agents.reinforce.policy.RecurrentHashPolicy` on ``CentralHash-v0``.

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
The measurements behind each are in ``benchmarks/results/notes/reinforce-recipe.md``.

* **Orthogonal recurrence** (``recurrent_init="orthogonal"``; ``"default"`` keeps PyTorch's
  init): ``W_hh`` starts as ``Q − W_ih`` with ``Q`` random orthogonal, so the matrix eq. (7)
  applies at every iteration starts as ``Q`` and the image does not fade from ``h_n`` by the late
  bits; eqs. (6)–(7) are unchanged.
* **A ReLU layer before the projection** (``net_arch=(512,)``): on fixed features it stands in
  for the paper's fine-tuned VGG-19 (the CSQ head has the same layer).
* **Supervised weight 5, weight decay 3e-3, linear lr decay to 0** (``supervised_weight``,
  ``policy_kwargs["weight_decay"]``, ``lr_decay``): without them the agent overfits a few
  thousand training images; the decay makes the result depend less on when training stops.
* **H = 128** hidden units (the paper gives no size): as accurate as 256, and cheaper to train
  and encode.

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
import sys
import time
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import LinearSchedule, safe_mean
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from torch import nn
from typing_extensions import Self

from hashgym.agents.reinforce.policy import (
    RecurrentHashPolicy,
    ReinforceError,
    action_type_of,
    check_observation_space,
)
from hashgym.agents.saving import sb3_zip_objects, space_to_json
from hashgym.envs.sb3 import SB3VecEnv, find_sb3_adapter, make_sb3_vec_env
from hashgym.validation import check_number, is_integer

__all__ = ["BASELINES", "RecurrentReinforce"]

logger = logging.getLogger(__name__)

SelfRecurrentReinforce = TypeVar("SelfRecurrentReinforce", bound="RecurrentReinforce")

#: The variance-reduction baselines :class:`RecurrentReinforce` offers.
BASELINES = ("value", "batch", "none")
#: Images per vector step when ``RecurrentReinforce`` is given an env id rather than an env.
_DEFAULT_NUM_ENVS = 256


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


class RecurrentReinforce(BaseAlgorithm):
    """Recurrent REINFORCE (SCIHCGRL §2) for ``CentralHash-v0``, an SB3 algorithm.

    See the module docstring for the loss and the choices the paper leaves open, and
    :mod:`hashgym.agents.reinforce.policy` for the policy.
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
        check_number(self._learning_rate_at_start(learning_rate), "learning_rate", 0.0, None,
                     ReinforceError, open_low=True)
        if not is_integer(episodes_per_update) \
                or episodes_per_update < 1:
            raise ReinforceError(f"episodes_per_update must be a positive integer, got {episodes_per_update!r}")
        check_number(gamma, "gamma", 0.0, 1.0, ReinforceError)
        if baseline not in BASELINES:
            raise ReinforceError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
        check_number(supervised_weight, "supervised_weight", 0.0, None, ReinforceError)
        check_number(vf_coef, "vf_coef", 0.0, None, ReinforceError)
        check_number(ent_coef, "ent_coef", 0.0, None, ReinforceError)
        if max_grad_norm is not None:
            check_number(max_grad_norm, "max_grad_norm", 0.0, None, ReinforceError, open_low=True)
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
        check_observation_space(env.observation_space)
        action_type_of(env.action_space)
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
        check_observation_space(self.observation_space)
        action_type_of(self.action_space)
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

    @property
    def steps_per_image(self) -> int:
        """``T = n_bits / bits_per_step`` of the env the agent drives: steps per episode."""
        return self._steps_per_image

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
