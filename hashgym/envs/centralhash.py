"""``CentralHash-v0``: SCIHCGRL's sequential, center-rewarded hashing as a Gymnasium environment.

The reward is defined here and only here: :func:`center_reward` (SCIHCGRL eqs. (4.1)–(4.2), the
``1 − BCE`` against a hash center). Hash centers come from :mod:`hashgym.centers` (CSQ
Algorithm 1 = SCIHCGRL Algorithm 1). :class:`CentralHashEnv` (one image at a time) and
:class:`CentralHashVectorEnv` (a whole batch in numpy) are two views of one
:class:`CentralHashCore`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from hashgym.bank import FeatureBank
from hashgym.centers import hash_centers, multilabel_centers
from hashgym.codes import hamming_bits_paired
from hashgym.envs.core import (
    CodingCore,
    CodingEnv,
    CodingVectorEnv,
    HashEnvError,
    _core_attribute,
)
from hashgym.validation import check_choice, check_int, check_number

__all__ = [
    "ACTION_TYPES",
    "DEFAULT_EPSILON",
    "CentralHashCore",
    "CentralHashEnv",
    "CentralHashVectorEnv",
    "center_reward",
    "hard_center_reward",
]

ACTION_TYPES = ("binary", "probability")
#: Probabilities are clipped to ``[ε, 1 − ε]`` before the logarithms of the BCE.
DEFAULT_EPSILON = 1e-3


def center_reward(probs: np.ndarray, centers: np.ndarray, epsilon: float) -> np.ndarray:
    """SCIHCGRL eqs. (4.1)–(4.2) for a batch: ``1 − BCE(p, c)``, the BCE averaged over the bits.

    ``BCE(p, c) = −[c · ln p + (1 − c) · ln(1 − p)]`` per bit, with the emitted probability
    ``p`` clipped to ``[ε, 1 − ε]`` (a hard bit is ``p ∈ {0, 1}``: a matching bit then costs
    ``−ln(1 − ε) ≈ ε`` and a wrong one ``−ln ε``) and ``c`` the center's 0/1 bit.

    :param probs: ``[n, k]`` bit probabilities (or 0/1 bits).
    :param centers: ``[n, k]`` 0/1 center bits.
    :param epsilon: ``ε`` in ``(0, 0.5)``.
    :return: ``[n]`` float64 rewards, at most ``1 + ln(1 − ε) ≈ 1``.
    """
    p = np.clip(probs, epsilon, 1.0 - epsilon)
    q = np.where(centers == 1, p, 1.0 - p)
    return 1.0 + np.log(q).mean(axis=1)


def hard_center_reward(distance: np.ndarray, k: int, epsilon: float) -> np.ndarray:
    """:func:`center_reward` for hard 0/1 bits, from their Hamming distance ``h`` to the center.

    A hard bit clipped to ``[ε, 1 − ε]`` costs ``−ln(1 − ε)`` when it matches the center and
    ``−ln ε`` when not, so SCIHCGRL eqs. (4.1)–(4.2) reduce to
    ``1 + (h · ln ε + (k − h) · ln(1 − ε)) / k`` (equal to :func:`center_reward` up to
    floating-point rounding; no logarithm per bit).

    :param distance: ``[n]`` Hamming distances between the emitted bits and the center's.
    :param k: the number of bits compared.
    :param epsilon: ``ε`` in ``(0, 0.5)``.
    :return: ``[n]`` float64 rewards.
    """
    log_wrong, log_right = np.log(epsilon), np.log1p(-epsilon)
    return 1.0 + (distance * (log_wrong - log_right) + k * log_right) / k


class CentralHashCore(CodingCore):
    """The batched state and rewards of ``CentralHash-v0`` (see :class:`CentralHashEnv`)."""

    def __init__(
        self,
        bank: FeatureBank | str | None = None,
        *,
        num_envs: int = 1,
        split: str = "train",
        protocol: str | None = None,
        protocol_seed: int = 0,
        n_bits: int = 32,
        bits_per_step: int | None = None,
        action_type: str = "binary",
        global_weight: float = 1.0,
        epsilon: float = DEFAULT_EPSILON,
        level: int | None = None,
        multilabel: bool | None = None,
        center_seed: int = 0,
        min_distance: int | str | None = None,
        window: int | None = None,
        observation: str = "features",
    ) -> None:
        self.action_type = check_choice(action_type, "action_type", ACTION_TYPES, HashEnvError)
        bits_per_step = n_bits if bits_per_step is None else bits_per_step
        super().__init__(
            bank=bank, protocol=protocol, protocol_seed=protocol_seed, split=split,
            n_bits=n_bits, bits_per_step=bits_per_step, window=window, num_envs=num_envs,
            observation=observation,
        )
        self.global_weight = check_number(global_weight, "global_weight", 0.0, None, HashEnvError)
        self.epsilon = check_number(epsilon, "epsilon", 0.0, 0.5, HashEnvError)
        if not 0.0 < self.epsilon < 0.5:
            raise HashEnvError(f"epsilon must lie strictly between 0 and 0.5, got {self.epsilon}")
        bank = self.bank
        if multilabel is None:
            multilabel = bank.n_levels == 0
        self.multilabel = bool(multilabel)
        center_seed = check_int(center_seed, "center_seed", 0, HashEnvError)
        if self.multilabel:
            if bank.multi_hot is None:
                raise HashEnvError("multilabel=True needs a bank with multi_hot labels")
            if level is not None:
                raise HashEnvError("level applies to single-label banks; drop it or multilabel")
            self.level = None
            self.labels = bank.multi_hot[self.rows]
            n_classes = bank.multi_hot.shape[1]
            self.class_centers = hash_centers(n_classes, self.n_bits, seed=center_seed,
                                              min_distance=min_distance)
            self.image_centers = multilabel_centers(self.labels, self.class_centers, seed=center_seed)
        else:
            if bank.n_levels == 0:
                raise HashEnvError("this bank has no hierarchy labels; use multilabel=True")
            self.level = (bank.n_levels - 1 if level is None
                          else check_int(level, "level", 0, HashEnvError))
            if self.level >= bank.n_levels:
                raise HashEnvError(
                    f"level={self.level} is beyond the bank's {bank.n_levels} hierarchy level(s) "
                    f"(valid: 0..{bank.n_levels - 1})"
                )
            self.labels = bank.labels[self.rows, self.level].astype(np.int64)
            self.class_centers = hash_centers(bank.n_classes[self.level], self.n_bits,
                                              seed=center_seed, min_distance=min_distance)
            self.image_centers = self.class_centers[self.labels]
        n = self.num_envs
        self.probs = np.zeros((n, self.n_bits))
        self._distance = np.zeros(n, dtype=np.int64)  # binary actions: distance to the center
        self._episode_centers = self.image_centers[self.positions[:, 0]]
        if action_type == "binary":
            self.action_space = spaces.MultiBinary(self.bits_per_step)
        else:
            self.action_space = spaces.Box(0.0, 1.0, (self.bits_per_step,), np.float32)

    def sample(self) -> np.ndarray:
        return self.rng.integers(0, self.rows.size, (self.num_envs, 1))

    def on_episode_start(self) -> None:
        pos = self.positions[:, 0]
        self._episode_centers = self.image_centers[pos]
        self._episode_labels = self.labels[pos]
        self._episode_index = self.rows[pos]
        if self.action_type == "binary":
            self._distance.fill(0)
        else:
            self.probs.fill(0.0)

    def decode(self, actions: Any, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        arr = np.asarray(actions)
        shape = (n, self.bits_per_step)
        if arr.shape != shape:
            raise HashEnvError(f"actions must have shape {shape} ({self.bits_per_step} "
                               f"{self.action_type} values per env), got {arr.shape}")
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise HashEnvError(f"actions must be numeric, got dtype {arr.dtype}")
        if self.action_type == "binary":
            integer = np.issubdtype(arr.dtype, np.integer)
            if not integer or arr.size and (arr.max() > 1 or arr.dtype.kind == "i" and arr.min() < 0):
                bad = (arr != 0) & (arr != 1)  # also catches NaN
                if bad.any():
                    raise HashEnvError(f"action value {arr[bad][0]} is outside the action "
                                       f"space MultiBinary({self.bits_per_step}): bits must be "
                                       f"0 or 1")
            arr = arr.astype(np.uint8, copy=False)
            return arr, None  # hard bits: the reward needs only their distance to the center
        probs = arr.astype(np.float64)
        bad = ~((probs >= 0) & (probs <= 1))  # also catches NaN
        if bad.any():
            raise HashEnvError(f"action value {probs[bad][0]} is outside the action space "
                               f"Box(0, 1, ({self.bits_per_step},)): probabilities lie in [0, 1]")
        return (probs >= 0.5).astype(np.uint8), probs

    def reward(self, slot: int, step_in_image: int, probs: np.ndarray | None) -> np.ndarray:
        lo = step_in_image * self.bits_per_step
        hi = lo + self.bits_per_step
        if probs is None:  # binary actions: hard bits, rewards from Hamming distances
            h = hamming_bits_paired(self.bits[:, 0, lo:hi], self._episode_centers[:, lo:hi])
            local = hard_center_reward(h, self.bits_per_step, self.epsilon)
        else:
            self.probs[:, lo:hi] = probs
            local = center_reward(probs, self._episode_centers[:, lo:hi], self.epsilon)
        if self.step_count < self.episode_steps:
            if probs is None:
                self._distance += h
            return local
        if self.steps_per_image == 1:  # the chunk is the whole code
            return local * (1.0 + self.global_weight)
        if probs is None:
            self._distance += h
            total = hard_center_reward(self._distance, self.n_bits, self.epsilon)
        else:
            total = center_reward(self.probs, self._episode_centers, self.epsilon)
        return local + self.global_weight * total

    def action_masks(self, n: int) -> np.ndarray:
        if self.action_type != "binary":
            raise HashEnvError("action masks exist for action_type='binary' only")
        return np.ones((n, 2 * self.bits_per_step), dtype=bool)

    def info(self) -> dict[str, np.ndarray]:
        return {"hash_center": self._episode_centers, "label": self._episode_labels,
                "index": self._episode_index}


class _CentralHashAccess:
    """CentralHash-specific attributes shared by the single and the vector environment."""

    _core: CentralHashCore

    action_type = _core_attribute("action_type", '``"binary"`` or ``"probability"``.')
    class_centers = _core_attribute(
        "class_centers", "Hash centers per class (or concept), ``[n_classes, n_bits]`` uint8."
    )
    image_centers = _core_attribute(
        "image_centers", "The target center of every split image, ``[n_images, n_bits]`` uint8."
    )


_MANUAL = """
    ## Description

    SCIHCGRL (sequential and correlated hash codes with deep RL): an agent emits an image's
    ``n_bits``-bit code and is rewarded by how close the code is to the image's **hash center**,
    with ``1 − BCE`` (SCIHCGRL eqs. (4.1)–(4.2)). Centers follow CSQ Algorithm 1 (SCIHCGRL
    Algorithm 1, :func:`hashgym.centers.hash_centers`): Hadamard rows for ``m <= K`` classes,
    ``[H; −H]`` for ``m <= 2K``, else random balanced codes at a minimum distance; for
    multi-label banks each image's center is the sign of the mean of its labels' centers
    (:func:`hashgym.centers.multilabel_centers`). By default one step emits the whole code
    (``bits_per_step = n_bits``), so the recurrence of the paper's RNN lives in the agent; with
    smaller chunks the env provides it.

    ## Action Space

    * ``action_type="binary"``: ``MultiBinary(bits_per_step)``, the emitted bits.
    * ``action_type="probability"``: ``Box(0, 1, (bits_per_step,), float32)``, bit
      probabilities; the emitted bit is ``p >= 0.5`` and the reward is the BCE of ``p`` itself
      (the paper's loss), so continuous-action algorithms plug in.

    Values outside the space (a 2 in a binary action, a probability outside ``[0, 1]`` or NaN)
    or a wrong shape raise :class:`HashEnvError`.

    ## Observation Space

    The same ``Dict`` as ``HierHash-v0``: ``features`` float32 ``[D]`` (or the image, ``uint8
    [H, W, C]``, with ``observation="image"``), ``code`` float32
    ``[n_bits]`` (or ``[window]``) with the bits emitted so far as ±1 and 0 elsewhere, ``t``
    float32 ``[1]`` = steps taken / ``T``.

    ## Rewards

    With ``c`` the image's center and ``p`` the emitted probabilities (hard bits for binary
    actions), clipped to ``[ε, 1 − ε]``, ``ε = epsilon = 1e-3`` by default:

    * local reward at every step: ``1 − BCE(p_chunk, c_chunk)``, the BCE averaged over the
      chunk's bits;
    * at the last step, plus ``global_weight × (1 − BCE(p, c))`` over the whole code (SCIHCGRL
      eq. (11), ``G = L_g + R_g``; ``global_weight = 1``).

    For hard bits the BCE is affine in the Hamming distance ``h`` to the center:
    ``1 − BCE = 1 − (h · ln(1/ε) + (k − h) · ln(1/(1 − ε))) / k`` over ``k`` bits, i.e. about
    ``1 − 6.9 h / k`` at the default ``ε``. With the default single step the episode's return is
    ``(1 + global_weight)(1 − BCE(p, c))``.

    ## Starting State

    Each episode codes one image drawn uniformly (with replacement) from the split with the
    env's generator. ``reset(seed=s)`` reseeds it; ``reset(options={"indices": rows})`` pins the
    next episodes' images (bank rows of the split, ``[num_envs]``). Centers do not depend on the
    env's seed: they are fixed by ``center_seed`` (random centers only), like the CSQ baseline's.

    ## Episode End

    Every episode lasts exactly ``T = n_bits / bits_per_step`` steps (1 by default). The last
    step returns ``terminated=True``; ``truncated`` is always ``False``. Stepping a single env
    after the end raises :class:`HashEnvError`; call ``reset()``.
    Do not pass ``max_episode_steps`` to ``gymnasium.make``: Gymnasium applies it with its
    ``TimeLimit`` wrapper, which the environment never sees, and it would end episodes with
    codes half made (``gymnasium.make_vec`` refuses it with :class:`HashEnvError`).

    ## Arguments

    * ``bank``, ``protocol``, ``protocol_seed``, ``split="train"``: as for ``HierHash-v0``.
    * ``n_bits=32`` (SCIHCGRL reports 24, 32 and 48), ``bits_per_step=None`` (= ``n_bits``);
      ``bits_per_step`` must divide ``n_bits``.
    * ``action_type="binary"``: or ``"probability"``.
    * ``global_weight=1.0``: weight of the global reward at the last step.
    * ``epsilon=1e-3``: the clipping ``ε`` of the BCE, in ``(0, 0.5)``.
    * ``level=None``: the label level whose classes get centers (default: the finest);
      ``multilabel=None``: use the bank's multi-hot labels (default: when it has no levels).
    * ``center_seed=0``, ``min_distance=None``: passed to
      :func:`~hashgym.centers.hash_centers` (and the multi-label tie-breaking vector);
      ``min_distance="auto"`` takes the widest distance the centers can meet, which 100 classes
      need at 12 and 16 bits, where the default ``K // 4 + 1`` has no set.
    * ``window=None``: keep only the last ``window`` bits in the ``code`` observation.
    * ``observation="features"``: what the ``features`` entry shows: the bank's feature vector,
      or ``"image"``: the image itself, ``uint8 [H, W, C]`` (SB3's channel-last image layout,
      so ``VecTransposeImage`` and SB3's image checks apply), read from the bank's image source
      (:mod:`hashgym.images`), for an agent that trains its own CNN. A bank without images is
      refused by name.

    Methods and attributes: ``class_centers``, ``image_centers`` (per split image),
    ``encode(act, indices=None)`` (code any images with a policy without touching the episode
    state; ``[n, n_bits]`` uint8), ``action_masks()`` (binary actions: all True, for
    MaskablePPO), ``split_rows``, ``episode_steps``.

    ## Vectorized environment

    ``gymnasium.make_vec("CentralHash-v0", num_envs=n)`` builds :class:`CentralHashVectorEnv`:
    all ``n`` episodes step at once in numpy; same-step autoreset
    (``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``, with ``info["final_obs"]`` and
    ``info["final_info"]`` on the final step). Infos at every step: ``hash_center``
    (``[n, n_bits]`` uint8; an agent may use it for the paper's supervised global term, a pure
    RL agent ignores it), ``label`` (class id, or the multi-hot row) and ``index`` (bank row).
    For Stable-Baselines3, wrap it with :class:`hashgym.envs.sb3.SB3VecEnv`.
    The ``features`` batch is one of two buffers reused image after image: it stays valid
    through the next ``step()``; copy it to keep it longer (see :mod:`hashgym.envs.core`).

    ## Deviations from the paper

    * The reward's sign: the env rewards ``+J = 1 − BCE(p, c)``, where SCIHCGRL eq. (5) writes
      the rewards as ``R = −J``; with ``+J`` a reward maximiser moves towards the center.

    ## Version History

    From now on, any change to what this environment does (a default, the reward, a space)
    ships under a new id, ``CentralHash-v1``; ``CentralHash-v0`` stays registered and keeps its
    behaviour, so the same arguments and seed give the same codes.

    * hashgym 0.1.0: initial version.
    * 0.5.0: ``observation="image"`` added; the default is unchanged.
"""


class CentralHashEnv(_CentralHashAccess, CodingEnv):
    __doc__ = "``CentralHash-v0``: hash one image at a time.\n" + _MANUAL
    core_class = CentralHashCore


class CentralHashVectorEnv(_CentralHashAccess, CodingVectorEnv):
    __doc__ = "``CentralHash-v0`` vectorized: hash ``num_envs`` images at once.\n" + _MANUAL
    core_class = CentralHashCore
