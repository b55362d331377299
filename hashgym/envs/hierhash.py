"""``HierHash-v0``: DRLHIH's hierarchical image hashing as a Gymnasium environment.

The rewards are defined here and only here: :func:`triplet_reward` (DRLHIH eq. (1)) and
:func:`level_reward` (DRLHIH eqs. (4)–(5)). :class:`HierHashEnv` (one image at a time) and
:class:`HierHashVectorEnv` (a whole batch in numpy) are two views of the same
:class:`HierHashCore`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from hashgym.bank import FeatureBank

from hashgym.codes import as_bits, hamming_bits_paired, hamming_paired
from hashgym.envs.constraints import ConstraintSampler, default_n_constraints, sibling_fraction
from hashgym.envs.core import (
    CodingCore,
    CodingEnv,
    CodingVectorEnv,
    HashEnvError,
    _check_float,
    _check_int,
    _core_attribute,
)

__all__ = [
    "MEMORY_ROLES",
    "HierHashCore",
    "HierHashEnv",
    "HierHashVectorEnv",
    "MODES",
    "level_reward",
    "level_value",
    "triplet_reward",
    "triplet_value",
]

MODES = ("memory", "triplet")
#: ``memory_roles`` values: ``"all"`` codes the anchor, the positive or the negative of the drawn
#: triplet (one role drawn uniformly per episode); ``"anchor"`` codes the anchor only.
MEMORY_ROLES = ("all", "anchor")
#: Column order of ``positions`` for each role (0 anchor, 1 positive, 2 negative): the coded
#: image first, then the two images read from the memory.
_ROLE_ORDER = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
#: The inverse permutations: ``positions[_ROLE_TRIPLET[role]]`` is (anchor, positive, negative).
_ROLE_TRIPLET = np.argsort(_ROLE_ORDER, axis=1)


def triplet_reward(
    anchor: np.ndarray, positive: np.ndarray, negative: np.ndarray, margin: float
) -> np.ndarray:
    """DRLHIH eq. (1) for a batch: ``r = −max(0, β + H(b(I), b(I+)) − H(b(I), b(I−)))``.

    :param anchor: ``[n, k]`` codes (0/1 or ±1) of the anchors.
    :param positive: ``[n, k]`` codes of the positives.
    :param negative: ``[n, k]`` codes of the negatives.
    :param margin: ``β``, in bits.
    :return: ``[n]`` float64 rewards (``<= 0``).
    """
    return triplet_value(hamming_paired(anchor, positive), hamming_paired(anchor, negative), margin)


def triplet_value(d_pos: np.ndarray, d_neg: np.ndarray, margin: float) -> np.ndarray:
    """DRLHIH eq. (1) from the distances: ``−max(0, β + d_pos − d_neg)``.

    The one definition of the triplet reward: :func:`triplet_reward` and the environment (which
    accumulates the distances chunk by chunk) both call it.

    :param d_pos: ``[n]`` Hamming distances anchor–positive.
    :param d_neg: ``[n]`` Hamming distances anchor–negative.
    :param margin: ``β``, in bits.
    :return: ``[n]`` float64 rewards (``<= 0``).
    """
    return -np.maximum(0.0, margin + (d_pos - d_neg)) + 0.0  # + 0.0 turns -0.0 into 0.0


def level_reward(
    r: np.ndarray,
    codes: list[np.ndarray],
    previous: list[np.ndarray],
    lam: float,
    rho: float,
) -> np.ndarray:
    """DRLHIH eqs. (4)–(5): ``r_l = ρ · r + (1 − ρ) · r_dist``, ``r_dist = −λ · H(b_l(I), b_{l−1}(I))``.

    ``r_dist`` averages over the images given (the three images of a triplet in triplet mode, the
    anchor alone in memory mode).

    :param r: ``[n]`` triplet rewards (eq. (1)).
    :param codes: the level-``l`` codes ``[n, k]`` of each image.
    :param previous: the level-``(l−1)`` codes of the same images.
    :param lam: ``λ >= 0``.
    :param rho: ``ρ`` in ``[0, 1]``.
    """
    distance = sum(hamming_paired(c, p) for c, p in zip(codes, previous, strict=True))
    return level_value(r, distance, len(codes), lam, rho)


def level_value(r: np.ndarray, distance: np.ndarray, n_images: int, lam: float, rho: float
                ) -> np.ndarray:
    """DRLHIH eqs. (4)–(5) from the distances: ``ρ · r − (1 − ρ) · λ · distance / n_images``.

    The one definition of the level reward (see :func:`level_reward`).

    :param r: ``[n]`` triplet rewards (eq. (1)).
    :param distance: ``[n]`` summed Hamming distances ``H(b_l(I), b_{l−1}(I))`` over the images.
    :param n_images: how many images ``distance`` sums over (the mean's denominator).
    :param lam: ``λ >= 0``.
    :param rho: ``ρ`` in ``[0, 1]``.
    """
    return rho * r + (1.0 - rho) * (-lam * (distance / n_images))


def memory_role_distances(
    roles: np.ndarray, coded_first: np.ndarray, coded_second: np.ndarray, others: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The two distances of DRLHIH eq. (1) when the image in ``roles`` is coded, in memory mode.

    ``positions`` order the triplet as (coded image, first other, second other): for the anchor
    (anchor; positive, negative), for the positive (positive; anchor, negative), for the negative
    (negative; anchor, positive). ``H(b(I), b(I+))`` and ``H(b(I), b(I−))`` are then:

    * anchor coded: ``(H(b, m_p), H(b, m_n))``;
    * positive coded: ``(H(m_a, b), H(m_a, m_n))`` (eq. (1) only reads ``I+`` through
      ``H(b(I), b(I+))``, which is symmetric);
    * negative coded: ``(H(m_a, m_p), H(m_a, b))``.

    :param roles: ``[n]`` 0 anchor, 1 positive, 2 negative.
    :param coded_first: ``[n]`` distances coded code – first other's remembered code.
    :param coded_second: ``[n]`` distances coded code – second other's remembered code.
    :param others: ``[n]`` distances between the two remembered codes.
    :return: ``(d_pos, d_neg)``.
    """
    d_pos = np.where(roles == 2, others, coded_first)
    d_neg = np.where(roles == 0, coded_second, np.where(roles == 1, others, coded_first))
    return d_pos, d_neg


class HierHashCore(CodingCore):
    """The batched state and rewards of ``HierHash-v0`` (see :class:`HierHashEnv`)."""

    def __init__(
        self,
        bank: FeatureBank | str | None = None,
        *,
        num_envs: int = 1,
        split: str = "train",
        protocol: str | None = None,
        protocol_seed: int = 0,
        n_bits: int = 12,
        bits_per_step: int = 3,
        mode: str = "memory",
        memory_roles: str = "all",
        level: int = 0,
        prev_codes: np.ndarray | None = None,
        n_constraints: int | None = None,
        sibling_negatives: bool | float = True,
        margin: float | None = None,
        lam: float = 1.0,
        rho: float = 0.9,
        window: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise HashEnvError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        if memory_roles not in MEMORY_ROLES:
            raise HashEnvError(f"unknown memory_roles {memory_roles!r}; expected one of "
                               f"{', '.join(MEMORY_ROLES)}")
        self.mode = mode
        self.memory_roles = memory_roles
        self.slots = 3 if mode == "triplet" else 1
        super().__init__(
            bank=bank, protocol=protocol, protocol_seed=protocol_seed, split=split,
            n_bits=n_bits, bits_per_step=bits_per_step, window=window, num_envs=num_envs,
        )
        if self.bank.n_levels == 0:
            raise HashEnvError(
                "HierHash needs a bank with hierarchy labels; this bank has none (it is "
                "multi-label only: use CentralHash-v0)"
            )
        self.margin = self.n_bits / 4 if margin is None else _check_float(margin, "margin", 0.0)
        self.lam = _check_float(lam, "lam", 0.0)
        self.rho = _check_float(rho, "rho", 0.0, 1.0)
        self.sibling_negatives = sibling_negatives
        sibling_fraction(sibling_negatives)  # fail now, not at the first level change
        self.labels = self.bank.labels[self.rows]
        self._n_constraints_arg = n_constraints
        self.memory = np.zeros((self.rows.size, self.n_bits), dtype=np.uint8)
        self.pool = np.zeros((0, 3), dtype=np.int64)
        self._previous: np.ndarray | None = None
        n = self.num_envs
        self._episode_prev = np.zeros((n, self.slots, self.n_bits), dtype=np.uint8)
        self._episode_memory = np.zeros((n, 2, self.n_bits), dtype=np.uint8)
        self._value = np.zeros(n)
        # memory mode: the prefix distances coded-first other, coded-second other, coded-previous
        # code, first other-second other (see memory_role_distances)
        self._distances = np.zeros((4, n), dtype=np.int64)
        # (anchor, positive, negative) in triplet mode; (coded, other, other) in memory mode
        self.positions = np.zeros((n, 3), dtype=np.int64)
        self.roles = np.zeros(n, dtype=np.int64)  # memory mode: 0 anchor, 1 positive, 2 negative
        self._triplet_rows = self.rows[self.positions]
        self.set_level(level, prev_codes)
        self._chunk_table = (
            (np.arange(2**self.bits_per_step)[:, None] >> np.arange(self.bits_per_step)[::-1]) & 1
        ).astype(np.uint8)
        self.action_space = spaces.Discrete(2**self.bits_per_step)

    # ------------------------------------------------------------------ levels
    def set_level(self, level: int, prev_codes: np.ndarray | None = None) -> None:
        """Switch to hierarchy ``level``; at ``level >= 1`` the previous level's codes are needed.

        The constraint pool is redrawn (with the env's generator once seeded). When
        ``prev_codes`` is given at ``level >= 1``, the code memory is set to them: they are the
        latest codes the agent emitted for the split's images (METHODS.md, memory mode). Without
        ``prev_codes`` the memory is kept. Takes effect from the next episode (call ``reset()``).
        """
        level = _check_int(level, "level", 0)
        if level >= self.bank.n_levels:
            raise HashEnvError(
                f"level={level} is beyond the bank's {self.bank.n_levels} hierarchy level(s) "
                f"(valid: 0..{self.bank.n_levels - 1})"
            )
        if level >= 1 and prev_codes is None and self._previous is None:
            raise HashEnvError(
                f"level={level} needs the previous level's codes: pass prev_codes=[n_images, "
                f"n_bits] codes of split {self.split!r} (bank order), or set them first"
            )
        self.sampler = ConstraintSampler(self.labels, level, self.sibling_negatives)
        self.level = level
        self.n_constraints = _check_int(
            default_n_constraints(level) if self._n_constraints_arg is None
            else self._n_constraints_arg, "n_constraints", 1,
        )
        if prev_codes is not None:
            self.prev_codes = prev_codes
            if level >= 1:
                self.memory = self._previous.copy()
        if self.rng is not None:
            self.pool = self.sampler.pool(self.n_constraints, self.rng)

    @property
    def prev_codes(self) -> np.ndarray | None:
        """The previous level's codes of the split's images, ``[n_images, n_bits]`` uint8."""
        return self._previous

    @prev_codes.setter
    def prev_codes(self, codes: np.ndarray) -> None:
        arr = np.asarray(codes)
        expected = (self.rows.size, self.n_bits)
        if arr.shape != expected:
            raise HashEnvError(
                f"prev_codes must have shape {expected}: one {self.n_bits}-bit code per image of "
                f"split {self.split!r}, in bank order; got shape {arr.shape}"
            )
        self._previous = as_bits(arr, self.n_bits, name="prev_codes")

    # ------------------------------------------------------------------ hooks
    def reseed(self, rng: np.random.Generator) -> None:
        """Redraw the constraint pool from ``rng`` and reinitialise the code memory: random bits
        from ``rng`` at level 0, the previous level's codes at ``level >= 1``."""
        super().reseed(rng)
        self.pool = self.sampler.pool(self.n_constraints, rng)
        if self.level == 0:
            self.memory = rng.integers(0, 2, size=(self.rows.size, self.n_bits), dtype=np.uint8)
        else:
            self.memory = self._previous.copy()

    def sample(self) -> np.ndarray:
        triplets = self.pool[self.rng.integers(0, self.pool.shape[0], self.num_envs)]
        if self.mode == "triplet" or self.memory_roles == "anchor":
            self.roles.fill(0)
            return triplets
        self.roles = self.rng.integers(0, 3, self.num_envs)
        return np.take_along_axis(triplets, _ROLE_ORDER[self.roles], axis=1)

    def positions_from_rows(self, rows: np.ndarray) -> np.ndarray:
        """Anchors ``[num_envs]`` (positive and negative drawn as for the pool) or explicit
        triplets ``[num_envs, 3]``, as bank rows of the split."""
        pos = self.rows_to_positions(rows, "indices")
        if pos.shape == (self.num_envs,):
            bad = ~self.sampler.is_valid_anchor(pos)
            if bad.any():
                raise HashEnvError(
                    f"row {int(np.asarray(rows)[bad][0])} cannot anchor a level-{self.level} "
                    f"triplet (its class has no other image)"
                )
            positives, negatives = self.sampler.sample(pos, self.rng)
            pos = np.stack([pos, positives, negatives], axis=1)
        if pos.shape != (self.num_envs, 3):
            raise HashEnvError(
                f"indices must have shape ({self.num_envs},) (anchors) or ({self.num_envs}, 3) "
                f"(anchor, positive, negative), got {pos.shape}"
            )
        self.roles = np.zeros(self.num_envs, dtype=np.int64)  # pinned images are anchors
        return pos

    def on_episode_start(self) -> None:
        if self.mode == "memory":
            np.take(self.memory, self.positions[:, 1:3], axis=0, out=self._episode_memory,
                    mode="clip")
            self._value.fill(0.0)
            self._distances.fill(0)
        if self.level >= 1:
            np.take(self._previous, self.positions[:, : self.slots], axis=0,
                    out=self._episode_prev, mode="clip")
        triplets = np.take_along_axis(self.positions, _ROLE_TRIPLET[self.roles], axis=1)
        self._triplet_rows = self.rows[triplets]

    def reward(self, slot: int, step_in_image: int, probs: np.ndarray | None) -> np.ndarray:
        # Distances on trusted bits (the env's own and the validated memory / prev_codes) use
        # the unvalidated hamming_bits_paired; the formulas are triplet_value and level_value.
        if self.mode == "memory":
            # the prefix distances grow by the new chunk's distances (Hamming adds over bits)
            lo = step_in_image * self.bits_per_step
            hi = lo + self.bits_per_step
            chunk = self.bits[:, 0, lo:hi]
            d, memory = self._distances, self._episode_memory
            d[0] += hamming_bits_paired(chunk, memory[:, 0, lo:hi])
            d[1] += hamming_bits_paired(chunk, memory[:, 1, lo:hi])
            if self.memory_roles == "anchor":
                d_pos, d_neg = d[0], d[1]
            else:
                d[3] += hamming_bits_paired(memory[:, 0, lo:hi], memory[:, 1, lo:hi])
                d_pos, d_neg = memory_role_distances(self.roles, d[0], d[1], d[3])
            value = triplet_value(d_pos, d_neg, self.margin * hi / self.n_bits)
            if self.level >= 1:
                d[2] += hamming_bits_paired(chunk, self._episode_prev[:, 0, lo:hi])
                value = level_value(value, d[2], 1, self.lam, self.rho)
            reward = value - self._value
            self._value = value
            return reward
        if self.step_count < self.episode_steps:
            return np.zeros(self.num_envs)
        bits = self.bits
        value = triplet_value(hamming_bits_paired(bits[:, 0], bits[:, 1]),
                              hamming_bits_paired(bits[:, 0], bits[:, 2]), self.margin)
        if self.level >= 1:
            value = level_value(value, hamming_bits_paired(bits, self._episode_prev).sum(axis=1),
                                3, self.lam, self.rho)
        return value

    def on_episode_end(self) -> None:
        if self.mode == "memory":
            self.memory[self.positions[:, 0]] = self.bits[:, 0]

    def decode(self, actions: Any, n: int) -> tuple[np.ndarray, None]:
        arr = np.asarray(actions)
        if arr.shape != (n,):
            raise HashEnvError(f"actions must have shape ({n},) (one Discrete action per env), "
                               f"got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
                raise HashEnvError(f"actions must be integers in 0..{2**self.bits_per_step - 1}, "
                                   f"got dtype {arr.dtype}")
            arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= 2**self.bits_per_step):
            bad = arr[(arr < 0) | (arr >= 2**self.bits_per_step)][0]
            raise HashEnvError(f"action {bad} is outside the action space "
                               f"Discrete({2**self.bits_per_step})")
        return self._chunk_table[arr], None

    def action_masks(self, n: int) -> np.ndarray:
        return np.ones((n, 2**self.bits_per_step), dtype=bool)

    def info(self) -> dict[str, np.ndarray]:
        rows = self._triplet_rows  # the vector env copies infos
        if self.mode == "triplet":
            return {"index": rows[:, self.current_slot], "triplet": rows}
        return {"index": self.rows[self.positions[:, 0]], "triplet": rows, "role": self.roles}


class _HierHashAccess:
    """HierHash-specific attributes shared by the single and the vector environment."""

    _core: HierHashCore

    mode = _core_attribute("mode", '``"memory"`` or ``"triplet"``.')
    memory_roles = _core_attribute(
        "memory_roles", '``"all"`` or ``"anchor"``: which images of a triplet memory mode codes.')
    level = _core_attribute("level", "The hierarchy level the rewards are about (0 = coarsest).")
    margin = _core_attribute("margin", "The triplet margin ``β`` in bits.")
    memory = _core_attribute(
        "memory", "The code memory ``[n_images, n_bits]`` uint8 (memory mode), shared by all sub-envs."
    )

    @property
    def prev_codes(self) -> np.ndarray | None:
        """The previous level's codes ``[n_images, n_bits]`` of the split (bank order); settable."""
        return self._core.prev_codes

    @prev_codes.setter
    def prev_codes(self, codes: np.ndarray) -> None:
        self._core.prev_codes = codes

    @property
    def constraints(self) -> np.ndarray:
        """The constraint pool ``[n_constraints, 3]`` as bank rows (anchor, positive, negative)."""
        return self._core.rows[self._core.pool]

    def set_level(self, level: int, prev_codes: np.ndarray | None = None) -> None:
        """Move to hierarchy ``level`` (DRLHIH §3.2); see :meth:`HierHashCore.set_level`."""
        self._core.set_level(level, prev_codes)


_MANUAL = """
    ## Description

    DRLHIH (deep-RL hierarchical image hashing): an agent hashes an image by emitting its
    ``n_bits``-bit code ``bits_per_step`` bits at a time, and is rewarded by the triplet ranking
    reward of DRLHIH eq. (1) over Hamming distances. Labels come from a taxonomy; constraints at
    level ``l`` ask an image to be closer to an image of its own level-``l`` class than to a
    *sibling* class (same level-``(l−1)`` parent), and at levels ``l >= 1`` the codes are kept
    close to the previous level's codes (eqs. (4)–(5)). Train level 0 first, then continue the
    same agent at level 1 with ``set_level(1, prev_codes=...)``, and so on.

    Two modes decide where the codes of the positive ``I+`` and negative ``I−`` come from:

    * ``mode="memory"`` (default, faster: ``T`` steps per episode): one image of the drawn
      triplet is coded, and the codes of the other two are read from a **code memory** holding
      the latest code the agent emitted for every image of the split, written when an episode
      ends. At level 0 it starts as seeded random bits; at ``level >= 1`` it starts as
      ``prev_codes`` (the latest codes the agent emitted for these images are the previous
      level's): ``set_level(l, prev_codes)`` and ``reset(seed=...)`` both set it so. All
      sub-environments of a vector env share it. The memory rows are read when the episode
      starts.

      Which image is coded (``memory_roles``): with ``"all"`` (default) each episode draws the
      role uniformly — the anchor, the positive or the negative — and the coded image plays
      that role in eq. (1), the other two being read from the memory (``info["role"]``: 0, 1,
      2). So every image the reward reads is itself coded regularly and its remembered code
      follows the policy. With ``"anchor"`` only anchors are coded: the positives and negatives
      that never anchor a pool triplet keep their random initial codes for ever, and the reward
      is mostly noise (on the built-in bank's 7,000 training images a 4,000-triplet pool
      anchors 3,074 images and 56% of the positive/negative draws read a never-written row; a
      hierarchical DQN then fits the pool but not held-out triplets, NDCG@20 0.04 after 500k
      steps, versus 0.08 after 400k with ``"all"``).
    * ``mode="triplet"`` (the paper's meaning: ``3T`` steps): the anchor, then the positive, then
      the negative are coded with the same policy. The observation does not say which of the
      three is being coded (a hash function cannot depend on the image's role).

    ## Action Space

    ``Discrete(2 ** bits_per_step)`` (``Discrete(8)`` by default). Action ``a`` writes its
    ``bits_per_step`` bits most significant first: with 3 bits, ``a = 6`` emits ``1, 1, 0``.
    Anything else (out of range, non-integer, wrong shape) raises :class:`HashEnvError`.

    ## Observation Space

    ``Dict``: ``features`` float32 ``[D]`` (the image's feature vector, as cached in the bank),
    ``code`` float32 ``[n_bits]`` in ``[-1, 1]`` (the current image's bits emitted so far as ±1,
    0 where not yet emitted; with ``window=k``, ``[k]``: the last ``k`` emitted bits, oldest
    first, right-aligned), ``t`` float32 ``[1]`` (the fraction of the current image's ``T`` steps
    taken). In triplet mode ``code`` and ``t`` restart at each of the three images.

    ## Rewards

    ``γ = 1``. With ``H`` the Hamming distance and ``β = margin``:

    * eq. (1): ``r = −max(0, β + H(b(I), b(I+)) − H(b(I), b(I−)))``; in memory mode the coded
      image's code stands for its role's ``b`` and the memory for the other two (coding the
      positive: ``H(m(I), b(I+))`` and ``H(m(I), m(I−))``; coding the negative:
      ``H(m(I), m(I+))`` and ``H(m(I), b(I−))``; see :func:`memory_role_distances`);
    * at ``level >= 1``, eqs. (4)–(5): ``r_l = ρ · r + (1 − ρ) · (−λ · H(b_l(I), b_{l−1}(I)))``,
      with ``b_{l−1}`` from ``prev_codes``; in triplet mode the distance term averages over the
      three images, in memory mode it is the coded image's.
    * triplet mode: 0 at every step but the last, which gets ``r`` (``r_l``).
    * memory mode (dense): step ``t`` gets ``v_t − v_{t−1}`` where ``v_t`` is the same reward on
      the first ``t · bits_per_step`` bits only, with the margin scaled to ``β · t / T``
      (``v_0 = 0``). The rewards of an episode therefore sum to the terminal ``r`` (``r_l``).

    ## Starting State

    Each episode draws a triplet uniformly (with replacement) from the **constraint pool**: at
    level ``l``, ``n_constraints`` triplets ``(I, I+, I−)`` of the split's images, drawn with the
    env's seed. ``I+`` shares ``I``'s level-``l`` label; ``I−`` is a sibling (same
    level-``(l−1)`` label, different level-``l`` label; at level 0, or when the parent has no
    other child class, any other class). ``reset(seed=s)`` redraws the pool and reinitialises the
    memory (random bits at level 0, ``prev_codes`` at ``level >= 1``); ``reset()`` without a seed
    keeps them. ``reset(options={"indices": rows})`` pins the
    next episodes' images (bank rows of the split): ``[num_envs]`` anchors (positive and negative
    drawn as for the pool) or ``[num_envs, 3]`` explicit triplets, coded as anchors (memory
    mode) or in full (triplet mode); later episodes sample again (and draw roles again).

    ## Episode End

    Every episode lasts exactly ``T = n_bits / bits_per_step`` steps in memory mode and ``3T``
    steps in triplet mode (4 and 12 by default). The last step returns ``terminated=True`` (the
    code is complete); ``truncated`` is always ``False``. Stepping a single env after the end
    raises :class:`HashEnvError`; call ``reset()``.

    ## Arguments

    * ``bank``: a :class:`~hashgym.bank.FeatureBank`, a path or a preset name
      (:func:`hashgym.protocols.resolve_bank`); ``None`` = ``cifar100-mini``, built into the package.
    * ``protocol``, ``protocol_seed``: a protocol applied to the bank (e.g. ``"trees-people"``).
    * ``split="train"``: the images episodes (and the memory, the pool and ``prev_codes``) use.
    * ``n_bits=12``, ``bits_per_step=3`` (DRLHIH §4.1); ``bits_per_step`` must divide ``n_bits``.
    * ``mode="memory"``: or ``"triplet"`` (see Description).
    * ``memory_roles="all"``: memory mode codes the anchor, positive or negative (one drawn per
      episode); ``"anchor"``: the anchor only (see Description).
    * ``level=0``: the hierarchy level; must be below the bank's number of levels.
    * ``prev_codes=None``: required at ``level >= 1``: the previous level's codes of the split's
      images, ``[n_images, n_bits]`` 0/1 or ±1 in bank order (also a settable attribute).
    * ``n_constraints=None``: the pool size; default 4,000 at level 0 and 1,000 below (the
      paper's best CIFAR setting "(4K, 1K)").
    * ``sibling_negatives=True``: sibling negatives at ``level >= 1`` (``False``: any other
      class; a fraction in ``[0, 1]``: that share of the triplets gets a sibling negative, the
      rest any other class).
    * ``margin=None``: ``β`` in bits; default ``n_bits / 4`` (3 bits at 12 bits: the paper does
      not give ``β``; a quarter of the code leaves room for ranking without saturating).
    * ``lam=1.0``, ``rho=0.9``: ``λ`` and ``ρ`` of eqs. (4)–(5) (DRLHIH §4.1 defaults).
    * ``window=None``: keep only the last ``window`` bits in the ``code`` observation (the
      paper's window of ``k`` past codes).

    Methods and attributes: ``set_level(level, prev_codes)``, ``prev_codes`` (settable),
    ``memory``, ``constraints`` (bank rows), ``encode(act, indices=None)`` (code any images with
    a policy, deterministically, without touching the episode state; returns ``[n, n_bits]``
    uint8), ``action_masks()`` (all True, for MaskablePPO), ``split_rows``, ``episode_steps``.

    ## Vectorized environment

    ``gymnasium.make_vec("HierHash-v0", num_envs=n)`` builds :class:`HierHashVectorEnv`, which
    steps all ``n`` episodes at once in numpy over one bank, one constraint pool and one code
    memory; actions are ``MultiDiscrete([2 ** bits_per_step] * n)``. Episodes run in lockstep
    and autoreset on the same step (``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``):
    the final step returns the next episodes' first observations, with ``info["final_obs"]``
    and ``info["final_info"]``. Infos: ``index`` (bank row of the image being coded),
    ``triplet`` (bank rows of anchor, positive, negative) and, in memory mode, ``role`` (the
    coded image's role: 0 anchor, 1 positive, 2 negative). For Stable-Baselines3, wrap it with
    :class:`hashgym.envs.sb3.SB3VecEnv`.
    The ``features`` batch is one of two buffers reused image after image: it stays valid
    through the next ``step()``; copy it to keep it longer (see :mod:`hashgym.envs.core`).

    ## Version History

    * v0: initial version.
"""


class HierHashEnv(_HierHashAccess, CodingEnv):
    __doc__ = "``HierHash-v0``: hash one image at a time.\n" + _MANUAL
    core_class = HierHashCore


class HierHashVectorEnv(_HierHashAccess, CodingVectorEnv):
    __doc__ = "``HierHash-v0`` vectorized: hash ``num_envs`` images at once.\n" + _MANUAL
    core_class = HierHashCore
