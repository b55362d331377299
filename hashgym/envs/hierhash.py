"""``HierHash-v1`` and ``HierHash-v0``: DRLHIH's hierarchical image hashing as a Gymnasium
environment (the two ids differ in one default, the triplet margin: see the Version History).

:class:`HierHashEnv` (one image at a time) and :class:`HierHashVectorEnv` (a whole batch in
numpy) are two views of the same :class:`HierHashCore`, which holds the episodes, the levels and
their constraint pools. The rewards and their estimators are in :mod:`hashgym.envs.rewards`, the
code memory in :mod:`hashgym.envs.code_memory`; their public names are importable from here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from hashgym.bank import FeatureBank
from hashgym.codes import CodeError, as_bits
from hashgym.envs.code_memory import (
    MEMORY_INITS,
    ClassMeans,
    CodeMemory,
    random_memory,
    resolve_memory_init,
    split_memory,
)
from hashgym.envs.constraints import (
    PAPER_N_CONSTRAINTS,
    ConstraintSampler,
    default_n_constraints,
    sibling_fraction,
)
from hashgym.envs.core import (
    CodingCore,
    CodingEnv,
    CodingVectorEnv,
    HashEnvError,
    _core_attribute,
)
from hashgym.envs.rewards import (
    ESTIMATORS,
    MemoryReward,
    default_margin,
    expected_hamming,
    level_reward,
    level_value,
    memory_role_distances,
    quarter_margin,
    resolve_margin,
    triplet_episode_reward,
    triplet_reward,
    triplet_value,
)
from hashgym.validation import check_choice, check_int, check_memory, check_number, is_integer

__all__ = [
    "ESTIMATORS",
    "GENERATION_CODINGS",
    "MAX_BITS_PER_STEP",
    "MAX_DEFAULT_BITS_PER_STEP",
    "MEMORY_INITS",
    "MEMORY_ROLES",
    "MODES",
    "PAPER_SETTINGS",
    "HierHashCore",
    "HierHashEnv",
    "HierHashVectorEnv",
    "default_bits_per_step",
    "default_margin",
    "expected_hamming",
    "level_reward",
    "level_value",
    "memory_role_distances",
    "quarter_margin",
    "random_memory",
    "resolve_margin",
    "resolve_memory_init",
    "split_memory",
    "triplet_reward",
    "triplet_value",
]

MODES = ("memory", "triplet")
#: ``memory_roles`` values: ``"all"`` codes the anchor, the positive or the negative of the drawn
#: triplet (one role drawn uniformly per episode); ``"anchor"`` codes the anchor only.
MEMORY_ROLES = ("all", "anchor")
#: The most bits one ``Discrete(2 ** bits_per_step)`` action may emit: 65,536 actions, already a
#: large Q-network head (2 ** 24 would need gigabytes for the action table alone).
MAX_BITS_PER_STEP = 16
#: The most bits per step :func:`default_bits_per_step` picks: ``Discrete(256)``, past which
#: ε-greedy barely tries the actions (``benchmarks/results/notes/hierhash-v0-versions.md``).
MAX_DEFAULT_BITS_PER_STEP = 8
#: ``memory_generation="auto"`` codes every image of the split this many times per generation
#: (``GENERATION_CODINGS × T`` environment steps per image, ``T = n_bits / bits_per_step``: 3M
#: steps on a 50,000-image split at 12 bits). Why: enough for a DQN to catch up with its frozen
#: memory, and counted in codings so longer codes get as many passes over the images
#: (``benchmarks/results/notes/hierhash-v0-versions.md``).
GENERATION_CODINGS = 15
#: DRLHIH's own setting (``docs/methods.md``, "DRLHIH and HierHash-v0"): ``HierHash-v0`` with
#: these arguments is the paper's environment (hashgym 0.1.0's defaults); the defaults differ
#: where the paper's setting does not learn (``benchmarks/results/notes/hierhash-learnable.md``).
PAPER_SETTINGS: dict[str, Any] = {
    "estimator": "sample",
    "memory_generation": None,
    "memory_init": "image",
    "level_split": 0,
    "memory_roles": "all",
    "sibling_negatives": 1.0,
    "n_constraints": PAPER_N_CONSTRAINTS,
    "rho": 0.9,
}
#: Column order of ``positions`` for each role (0 anchor, 1 positive, 2 negative): the coded
#: image first, then the two images read from the memory.
_ROLE_ORDER = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
#: The inverse permutations: ``positions[_ROLE_TRIPLET[role]]`` is (anchor, positive, negative).
_ROLE_TRIPLET = np.argsort(_ROLE_ORDER, axis=1)


def default_bits_per_step(n_bits: int) -> int:
    """``bits_per_step`` when none is given: the largest divisor of ``n_bits`` that is at most
    ``n_bits / 4`` and at most :data:`MAX_DEFAULT_BITS_PER_STEP` (at least 1).

    Four steps per code is the paper's shape (12 bits, 3 per step); longer codes keep it up to
    ``Discrete(256)``, then take more steps: 12 → 3, 16 → 4, 24 → 6, 32 → 8, 48 → 8 (six steps),
    64 → 8. Why: fewer bits per step mean more decisions per code, more mean an action space
    that exploration cannot cover (``benchmarks/results/notes/hierhash-v0-versions.md``).

    :param n_bits: the code length, ``>= 1``.
    """
    n_bits = check_int(n_bits, "n_bits", 1, HashEnvError)
    cap = max(1, min(MAX_DEFAULT_BITS_PER_STEP, n_bits // 4))
    return max(d for d in range(1, cap + 1) if n_bits % d == 0)


def _resolve_estimator(mode: str, memory_roles: str, estimator: str | None,
                       memory_generation: Any, memory_init: str | None,
                       level_split: int | None) -> str:
    """Check that the mode's arguments fit together; return ``estimator``, by default the best
    reward each mode and role setting can have."""
    check_choice(mode, "mode", MODES, HashEnvError)
    check_choice(memory_roles, "memory_roles", MEMORY_ROLES, HashEnvError)
    if estimator is not None:
        check_choice(estimator, "estimator", ESTIMATORS, HashEnvError)
    if mode == "triplet" and estimator in ("class-mean", "expected"):
        raise HashEnvError(f"estimator={estimator!r} needs mode='memory' (triplet mode codes "
                           "all three images, so there is no remembered code to average)")
    if estimator == "expected" and memory_roles != "anchor":
        raise HashEnvError("estimator='expected' needs memory_roles='anchor' (it averages over "
                           "the anchor's negatives); give estimator='class-mean' or 'sample' "
                           "to code other roles")
    if mode == "triplet" and memory_generation not in (None, "auto"):
        raise HashEnvError("memory_generation needs mode='memory' (triplet mode has no code "
                           "memory)")
    if mode == "triplet" and (memory_init == "class" or level_split):
        raise HashEnvError("memory_init='class' and level_split need mode='memory' (triplet "
                           "mode has no code memory)")
    if estimator is None:
        return "sample" if mode == "triplet" else (
            "expected" if memory_roles == "anchor" else "class-mean")
    return estimator


def _generation_steps(memory_generation: Any, mode: str, steps_per_image: int,
                      n_images: int) -> int | None:
    """``memory_generation`` in environment steps (``None``: no generations; ``"auto"``:
    :data:`GENERATION_CODINGS` codings of every image)."""
    if mode == "triplet" or memory_generation is None:
        return None
    if memory_generation == "auto":
        return GENERATION_CODINGS * steps_per_image * n_images
    if isinstance(memory_generation, str):
        raise HashEnvError(f"memory_generation must be a number of environment steps, "
                           f"'auto' or None, got {memory_generation!r}")
    return check_int(memory_generation, "memory_generation", 1, HashEnvError)


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
        bits_per_step: int | None = None,
        mode: str = "memory",
        memory_roles: str = "anchor",
        estimator: str | None = None,
        memory_generation: int | str | None = "auto",
        memory_init: str | None = None,
        level_split: int | None = None,
        level: int = 0,
        prev_codes: np.ndarray | None = None,
        n_constraints: int | tuple[int, ...] | None = None,
        sibling_negatives: float = 0.5,
        margin: float | str | None = None,
        lam: float = 1.0,
        rho: float = 0.9,
        coarse_weight: float = 0.0,
        window: int | None = None,
        observation: str = "features",
    ) -> None:
        if bits_per_step is None:
            bits_per_step = default_bits_per_step(n_bits)
        if (is_integer(bits_per_step)
                and bits_per_step > MAX_BITS_PER_STEP):
            raise HashEnvError(
                f"bits_per_step={bits_per_step} would need Discrete(2**{bits_per_step}) = "
                f"{2**int(bits_per_step):,} actions; HierHash-v0 allows at most "
                f"{MAX_BITS_PER_STEP} bits per step ({2**MAX_BITS_PER_STEP:,} actions)")
        self.estimator = _resolve_estimator(mode, memory_roles, estimator, memory_generation,
                                            memory_init, level_split)
        self.mode = mode
        self.memory_roles = memory_roles
        self.memory_init = resolve_memory_init(memory_init, mode)
        self.slots = 3 if mode == "triplet" else 1
        super().__init__(
            bank=bank, protocol=protocol, protocol_seed=protocol_seed, split=split,
            n_bits=n_bits, bits_per_step=bits_per_step, window=window, num_envs=num_envs,
            observation=observation,
        )
        if self.bank.n_levels == 0:
            raise HashEnvError(
                "HierHash needs a bank with hierarchy labels; this bank has none (it is "
                "multi-label only: use CentralHash-v0)"
            )
        self.level_split = (0 if mode == "triplet" else 1) if level_split is None else (
            check_int(level_split, "level_split", 0, HashEnvError))
        if self.level_split > self.n_bits:
            raise HashEnvError(f"level_split must be <= n_bits ({self.n_bits}), got "
                               f"{self.level_split}")
        self.margin = resolve_margin(margin, self.n_bits)
        self.lam = check_number(lam, "lam", 0.0, None, HashEnvError)
        self.rho = check_number(rho, "rho", 0.0, 1.0, HashEnvError)
        self.coarse_weight = check_number(coarse_weight, "coarse_weight", 0.0, None, HashEnvError)
        if self.coarse_weight and mode != "memory":
            raise HashEnvError("coarse_weight needs mode='memory'")
        if self.coarse_weight and self.estimator == "expected":
            raise HashEnvError("coarse_weight needs estimator='class-mean' or 'sample' (its "
                               "level-(l-1) term reads the drawn negative)")
        # a fraction (True / False still mean 1 / 0); checked now, not at the first level change
        self.sibling_negatives = sibling_fraction(sibling_negatives)
        self.labels = self.bank.labels[self.rows]
        self._n_constraints_arg = n_constraints
        self.memory_generation = _generation_steps(memory_generation, mode,
                                                   self.steps_per_image, self.rows.size)
        self.codes = CodeMemory(self.rows.size, self.n_bits, self.memory_generation, self.split)
        self._fine: ClassMeans | None = None  # level-l classes (class-mean)
        self._coarse: ClassMeans | None = None  # level-(l-1) classes (coarse_weight)
        self.pool = np.zeros((0, 3), dtype=np.int64)
        self._previous: np.ndarray | None = None
        n = self.num_envs
        self._episode_prev = np.zeros((n, self.slots, self.n_bits), dtype=np.uint8)
        self.rewards = MemoryReward(n, self.n_bits, estimator=self.estimator,
                                    memory_roles=self.memory_roles, margin=self.margin,
                                    lam=self.lam, rho=self.rho, coarse_weight=self.coarse_weight)
        # each anchor class's negative-class weights (estimator="expected"), set with the level
        self._negative_weights = np.zeros((0, 0))
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
        latest codes the agent emitted for the split's images (``docs/methods.md``, "Triplet mode
        and memory mode"). Without ``prev_codes`` the memory is kept. Takes effect from the next episode (call ``reset()``).
        """
        level = check_int(level, "level", 0, HashEnvError)
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
        self.n_constraints = self._pool_size(level)
        self._fine = ClassMeans(self.labels[:, level])
        if self.estimator == "expected":  # read from the next episode on, like the pool
            self._negative_weights = self.sampler.negative_class_weights()
        self._coarse = ClassMeans(self.labels[:, level - 1]) if level >= 1 else None
        if prev_codes is not None:
            self.prev_codes = prev_codes
        if self.rng is not None:
            self.pool = self.sampler.pool(self.n_constraints, self.rng)
        if prev_codes is not None and level >= 1:
            self.set_memory(self._level_start())  # updates the new level's class means too
        else:
            self._update_class_probs()

    def _level_start(self) -> np.ndarray:
        """The memory a level ``>= 1`` starts from: ``prev_codes``, split by ``level_split``
        once the env is seeded (before that, :meth:`reseed` splits them)."""
        if not self.level_split or self.rng is None:  # level_split is 0 in triplet mode
            return self._previous
        return split_memory(self._previous, self.labels[:, self.level],
                            self.labels[:, self.level - 1], self.level_split, self.rng)

    def _pool_size(self, level: int) -> int:
        """``n_constraints`` at ``level``: one size, one per level, or the default."""
        arg = self._n_constraints_arg
        if arg is None:
            return default_n_constraints(self.rows.size)
        if isinstance(arg, (tuple, list)):
            if len(arg) != self.bank.n_levels:
                raise HashEnvError(
                    f"n_constraints gives {len(arg)} pool sizes; give one number, or one per "
                    f"level of the bank ({self.bank.n_levels})")
            size = [check_int(size, "n_constraints", 1, HashEnvError) for size in arg][level]
        else:
            size = check_int(arg, "n_constraints", 1, HashEnvError)
        # the pool holds three int64 rows per triplet
        check_memory(24 * size, f"n_constraints={size:,}", HashEnvError)
        return size

    # ------------------------------------------------------------------ memory
    memory = property(lambda self: self.codes.memory,
                      doc="The code memory the reward reads ``[n_images, n_bits]`` uint8.")
    latest = property(lambda self: self.codes.latest,
                      doc="The latest code each image received in an episode.")
    generations = property(lambda self: self.codes.generations,
                           doc="Memory generations completed since the memory was last set.")
    generation_steps = property(lambda self: self.codes.generation_steps,
                                doc="Environment steps taken in the current generation.")

    def set_memory(self, codes: np.ndarray) -> None:
        """Set the code memory (and the episodes' latest codes) to ``codes`` and start a new
        generation: ``[n_images, n_bits]`` 0/1 or ±1 codes of the split's images, bank order."""
        self.codes.set(codes)
        self._update_class_probs()

    def memory_state(self) -> dict[str, np.ndarray]:
        """Everything a checkpoint needs to continue the memory exactly: ``memory``, ``latest``
        and the generation counters, as arrays (``np.savez``-ready)."""
        return self.codes.state()

    def restore_memory_state(self, state: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`memory_state`'s arrays (``memory`` alone: a new generation)."""
        if "memory" not in state:
            raise HashEnvError(f"a memory state needs 'memory', got {sorted(state)}")
        self.set_memory(state["memory"])
        self.codes.restore_latest(state)

    def _update_class_probs(self) -> None:
        """The per-bit means of the memory's codes in every class the reward reads."""
        if self.estimator == "sample" or self.mode != "memory" or self._fine is None:
            return
        self._fine.update(self.memory)
        if self._coarse is not None and self.coarse_weight:
            self._coarse.update(self.memory)

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
        try:
            self._previous = as_bits(arr, self.n_bits, name="prev_codes")
        except CodeError as exc:
            raise HashEnvError(str(exc)) from exc

    # ------------------------------------------------------------------ hooks
    def reseed(self, rng: np.random.Generator) -> None:
        """Redraw the constraint pool from ``rng`` and reinitialise the code memory: random codes
        from ``rng`` at level 0 (:func:`random_memory` with ``memory_init``), the previous
        level's codes split by ``level_split`` (:func:`split_memory`) at ``level >= 1``."""
        super().reseed(rng)
        self.pool = self.sampler.pool(self.n_constraints, rng)
        if self.level == 0:
            self.set_memory(random_memory(self.labels[:, 0], self.n_bits, rng, self.memory_init))
        else:
            self.set_memory(self._level_start())

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
            if self.memory_generation is None:  # the memory changed at the last episode end
                self._update_class_probs()
            self.rewards.start(self.positions, self.roles, self.memory, self._fine, self._coarse,
                               self._negative_weights, self.level)
        if self.level >= 1:
            np.take(self._previous, self.positions[:, : self.slots], axis=0,
                    out=self._episode_prev, mode="clip")
        triplets = np.take_along_axis(self.positions, _ROLE_TRIPLET[self.roles], axis=1)
        self._triplet_rows = self.rows[triplets]

    def reward(self, slot: int, step_in_image: int, probs: np.ndarray | None) -> np.ndarray:
        previous = self._episode_prev if self.level >= 1 else None
        if self.mode == "memory":
            lo = step_in_image * self.bits_per_step
            hi = lo + self.bits_per_step
            return self.rewards.step(self.bits[:, 0, lo:hi], lo, hi, self.roles,
                                     None if previous is None else previous[:, 0])
        if self.step_count < self.episode_steps:
            return np.zeros(self.num_envs)
        return triplet_episode_reward(self.bits, previous, self.margin, self.lam, self.rho)

    def on_episode_end(self) -> None:
        if self.mode == "memory" and self.codes.record(
                self.positions[:, 0], self.bits[:, 0], self.num_envs * self.episode_steps):
            self._update_class_probs()  # a generation ended: the reward reads new codes

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
    estimator = _core_attribute(
        "estimator", '``"class-mean"`` or ``"sample"``: how memory mode reads the other images.')
    memory_init = _core_attribute(
        "memory_init", '``"class"`` or ``"image"``: how the level-0 memory starts (memory mode).')
    level_split = _core_attribute(
        "level_split", "Bits each class moves away from ``prev_codes`` when a level >= 1 starts.")
    memory_generation = _core_attribute(
        "memory_generation",
        "Environment steps per memory generation (``None``: the memory changes at every episode).")
    generations = _core_attribute(
        "generations", "Memory generations completed since the memory was last set.")
    latest = _core_attribute(
        "latest", "The latest code each image received in an episode ``[n_images, n_bits]`` "
        "(the ``memory`` itself without generations).")
    level = _core_attribute("level", "The hierarchy level the rewards are about (0 = coarsest).")
    margin = _core_attribute("margin", "The triplet margin ``β`` in bits.")
    lam = _core_attribute("lam", "``λ`` of eqs. (4)–(5).")
    rho = _core_attribute("rho", "``ρ`` of eqs. (4)–(5): the triplet term's share at level >= 1.")
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

    def set_memory(self, codes: np.ndarray) -> None:
        """Replace the code memory and start a new generation; see
        :meth:`HierHashCore.set_memory`."""
        self._core.set_memory(codes)

    def memory_state(self) -> dict[str, np.ndarray]:
        """The memory, the latest codes and the generation counters (for checkpoints)."""
        return self._core.memory_state()

    def restore_memory_state(self, state: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`memory_state`'s arrays."""
        self._core.restore_memory_state(state)


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
      triplet is coded, and the codes of the other two are read from a **code memory** of
      every image of the split. All sub-environments of a vector env share it. The memory is
      read when an episode starts.

      **Where the memory starts** (``memory_init``, ``level_split``). At level 0 it is seeded
      random: with ``"class"`` (default) each level-0 class draws one random code for all its
      members (:func:`random_memory`); with ``"image"`` (the paper's) every image draws its own
      bits. At ``level >= 1`` it starts from ``prev_codes`` (the latest codes the agent emitted
      for these images are the previous level's), with every level-``l`` class moved
      ``level_split`` bits away from them, siblings along different bits (:func:`split_memory`;
      ``0``: the previous codes as they are, the paper's). ``set_level(l, prev_codes)`` and
      ``reset(seed=...)`` both set it so, and ``set_memory(codes)`` sets it to any codes.

      Both break a symmetry the class-mean reward cannot break by itself: two classes whose
      remembered codes are alike get the same expected distances from any code, so nothing
      rewards pulling them apart. Per-image random bits leave all class means near 0.5 and the
      first generation merges similar classes; at a level change every class starts with its
      siblings' code (what that cost in distinct class codes:
      ``benchmarks/results/notes/hierhash-v0-versions.md``).

      **Memory generations** (``memory_generation``). Each episode writes its code to
      ``latest`` when it ends. By default the reward reads a *frozen* memory, which takes the
      codes of ``latest`` once every ``memory_generation`` environment steps (counted over all
      sub-environments; ``"auto"``: 15 codings of every image of the split, ``15 T`` steps per
      image) — the role a DQN's target network plays for its Q-values, played for the codes the
      reward reads. Within a generation the agent learns a fixed target; each new generation
      then starts from what the agent learned. ``generations`` counts them. With
      ``memory_generation=None`` (the paper's) there is one array: every episode's code is
      read by the next episodes.

      **The other images** (``estimator``). With ``"class-mean"`` the two images not coded
      stand for their level-``l`` classes: eq. (1) reads the expected Hamming distance to a
      random member of each class, i.e. to the per-bit means of the class's remembered codes
      (:func:`expected_hamming`). This is eq. (1) taken in expectation over the positive and
      the negative of the drawn classes, with none of the noise of one sampled pair. With
      ``"expected"`` (default) the negative's class is not drawn either: eq. (1) is averaged
      over every class the constraint sampler could give the anchor's negative, each weighted
      by how likely it is (:meth:`~hashgym.envs.constraints.ConstraintSampler.
      negative_class_weights`). One episode then asks the code to stay clear of every nearby
      class, not of one random class that is usually far already. It is eq. (1) in expectation
      over the constraint distribution, and it codes anchors only (``memory_roles="anchor"``).
      With ``"sample"`` (the paper's) the two drawn images' remembered codes are read.

      Which image is coded (``memory_roles``): with ``"anchor"`` (default) the anchor; with
      ``"all"`` each episode draws the role uniformly — the anchor, the positive or the
      negative — and the coded image plays that role in eq. (1), the other two being read from
      the memory (``info["role"]``: 0, 1, 2). ``"all"`` matters with small pools: with
      ``"anchor"`` a 4,000-triplet pool never codes most of the positives and negatives, whose
      remembered codes then stay random. The default pools (30 triplets per image) anchor every
      image many times.
    * ``mode="triplet"`` (the paper's meaning: ``3T`` steps): the anchor, then the positive, then
      the negative are coded with the same policy. The observation does not say which of the
      three is being coded (a hash function cannot depend on the image's role).

    ## Action Space

    ``Discrete(2 ** bits_per_step)`` (``Discrete(8)`` by default). Action ``a`` writes its
    ``bits_per_step`` bits most significant first: with 3 bits, ``a = 6`` emits ``1, 1, 0``.
    Anything else (out of range, non-integer, wrong shape) raises :class:`HashEnvError`.

    ## Observation Space

    ``Dict``: ``features`` float32 ``[D]`` (the image's feature vector, as cached in the bank;
    with ``observation="image"`` the image itself, ``uint8 [H, W, C]``),
    ``code`` float32 ``[n_bits]`` in ``[-1, 1]`` (the current image's bits emitted so far as ±1,
    0 where not yet emitted; with ``window=k``, ``[k]``: the last ``k`` emitted bits, oldest
    first, right-aligned), ``t`` float32 ``[1]`` (the fraction of the current image's ``T`` steps
    taken). In triplet mode ``code`` and ``t`` restart at each of the three images.

    ## Rewards

    ``γ = 1``. With ``H`` the Hamming distance and ``β = margin``:

    * eq. (1): ``r = −max(0, β + H(b(I), b(I+)) − H(b(I), b(I−)))``; in memory mode the coded
      image's code stands for its role's ``b`` and the memory for the other two (coding the
      positive: ``H(m(I), b(I+))`` and ``H(m(I), m(I−))``; coding the negative:
      ``H(m(I), m(I+))`` and ``H(m(I), b(I−))``; see :func:`memory_role_distances`); with
      ``estimator="class-mean"`` each ``H`` involving a remembered code is its expectation over
      the members of that image's level-``l`` class in the memory (the class includes the coded
      image itself, and with two remembered images of one class, every pair of its members);
      with ``estimator="expected"`` the distances are the class-mean ones and ``r`` is
      ``Σ_c w_c · (−max(0, β + H(b, I+) − H(b, class c)))`` over the negative's possible classes
      ``c``, ``w_c`` their probabilities for the anchor's class (a drawn or pinned negative is
      then only reported in ``info["triplet"]``);
    * at ``level >= 1``, eqs. (4)–(5): ``r_l = ρ · r + (1 − ρ) · (−λ · H(b_l(I), b_{l−1}(I)))``,
      with ``b_{l−1}`` from ``prev_codes``; in triplet mode the distance term averages over the
      three images, in memory mode it is the coded image's.
    * ``coarse_weight=w > 0`` (memory mode, ``level >= 1``): ``r`` becomes ``r + w · r_coarse``,
      where ``r_coarse`` is eq. (1) of the level-``(l−1)`` triplet: the anchor against its own
      level-``(l−1)`` class and the negative's, when the negative is of another level-``(l−1)``
      class (0 otherwise, and 0 in episodes that do not code the anchor). With
      ``estimator="class-mean"`` the distances are to those classes' means, with ``"sample"``
      to the positive's and the negative's remembered codes. It keeps the coarser level's
      structure asked for while the finer level is learned, as hierarchical hashing losses
      that sum their levels do.
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
    memory (random codes at level 0, split ``prev_codes`` at ``level >= 1``); ``reset()`` without
    a seed keeps them. ``reset(options={"indices": rows})`` pins the
    next episodes' images (bank rows of the split): ``[num_envs]`` anchors (positive and negative
    drawn as for the pool) or ``[num_envs, 3]`` explicit triplets, coded as anchors (memory
    mode) or in full (triplet mode); later episodes sample again (and draw roles again).

    ## Episode End

    Every episode lasts exactly ``T = n_bits / bits_per_step`` steps in memory mode and ``3T``
    steps in triplet mode (4 and 12 by default). The last step returns ``terminated=True`` (the
    code is complete); ``truncated`` is always ``False``. Stepping a single env after the end
    raises :class:`HashEnvError`; call ``reset()``.
    Do not pass ``max_episode_steps`` to ``gymnasium.make``: Gymnasium applies it with its
    ``TimeLimit`` wrapper, which the environment never sees, and it would end episodes with
    codes half made (``gymnasium.make_vec`` refuses it with :class:`HashEnvError`).

    ## Arguments

    * ``bank``: a :class:`~hashgym.bank.FeatureBank`, a path or a preset name
      (:func:`hashgym.protocols.resolve_bank`); ``None`` = ``cifar100-mini``, built into the package.
    * ``protocol``, ``protocol_seed``: a protocol applied to the bank (e.g. ``"trees-people"``).
    * ``split="train"``: the images episodes (and the memory, the pool and ``prev_codes``) use.
    * ``n_bits=12`` (DRLHIH §4.1).
    * ``bits_per_step=None``: :func:`default_bits_per_step`: four steps per code (3 bits at 12
      bits, the paper's; 6 at 24) up to 8 bits per step (``Discrete(256)``; 48 bits take six
      steps of 8). Given, it must divide ``n_bits`` and be at most ``MAX_BITS_PER_STEP`` = 16
      (``Discrete(65536)``).
    * ``mode="memory"``: or ``"triplet"`` (see Description).
    * ``memory_roles="anchor"``: memory mode codes the anchor only; ``"all"``: the anchor,
      positive or negative, one drawn per episode (see Description).
    * ``estimator=None``: ``"expected"`` in memory mode coding anchors, ``"class-mean"`` with
      ``memory_roles="all"``, ``"sample"`` in triplet mode (the only one there); see
      Description. ``"expected"`` because it learns the most of the three
      (``benchmarks/results/notes/hierhash-v0-versions.md``).
    * ``memory_generation="auto"``: environment steps per memory generation (``"auto"``:
      ``GENERATION_CODINGS`` = 15 codings of every image of the split, i.e. ``15 T`` steps per
      image), or ``None`` (the memory changes at
      every episode end). Memory mode only.
    * ``memory_init=None``: ``"class"`` in memory mode (random codes per level-0 class; the
      class-mean reward then has distinct class codes to start from) or ``"image"`` (random bits
      per image, the paper's). Memory mode only.
    * ``level_split=None``: 1 in memory mode: bits each level-``l`` class is moved away from
      ``prev_codes`` when a level ``>= 1`` starts (one bit keeps a class next to its parent's
      code and two bits from each sibling); ``0`` is the paper's. Memory mode only.
    * ``level=0``: the hierarchy level; must be below the bank's number of levels.
    * ``prev_codes=None``: required at ``level >= 1``: the previous level's codes of the split's
      images, ``[n_images, n_bits]`` 0/1 or ±1 in bank order (also a settable attribute).
    * ``n_constraints=None``: the pool size, one number or one per level of the bank; default
      30 triplets per image of the split (``PAPER_N_CONSTRAINTS`` = (4000, 1000) is the paper's
      best CIFAR setting "(4K, 1K)", for a split of a few thousand images).
    * ``sibling_negatives=0.5``: the share of level-``>= 1`` triplets whose negative is a
      sibling (the rest take any other class), a number in ``[0, 1]``; 1.0 is the paper's, 0
      any other class only (``True`` and ``False`` are read as 1.0 and 0.0). Half and half:
      sibling negatives are what splits a super-class's children, the others keep the
      super-classes apart (sibling-only triplets never ask for that, and the level-0 structure
      erodes).
    * ``margin``: ``β`` in bits, or a rule of :data:`~hashgym.envs.rewards.MARGIN_RULES` that
      gives it from the code length: ``"quarter"`` (:func:`quarter_margin`, ``n_bits / 4``),
      ``HierHash-v1``'s default, or ``"sqrt"`` (:func:`default_margin`,
      ``3 · sqrt(n_bits / 12)``), ``HierHash-v0``'s (and the class's, ``None``). Both give 3
      bits at 12, where the paper does not give ``β``; at 48 bits 12 against 6. Why a quarter:
      class codes of ``n`` bits lie about ``n / 2`` apart, and a margin that grows only like
      ``sqrt(n)`` is met by most negatives of a long code, so eq. (1) stops asking for the extra
      bits; on the development bank v0's margin collapsed at 48 and 64 bits where the quarter
      learned (``benchmarks/results/notes/lengths.md``).
    * ``lam=1.0``, ``rho=0.9``: ``λ`` and ``ρ`` of eqs. (4)–(5), the paper's ``ρ`` (DRLHIH
      §4.1). The pull towards the previous level's codes is what keeps siblings near their
      parent's code, i.e. the hierarchy in the codes; ``ρ = 1`` drops it.
    * ``coarse_weight=0.0``: the weight ``w`` of the level-``(l−1)`` triplet term at
      ``level >= 1`` (see Rewards; 0 is the paper's reward).
    * ``window=None``: keep only the last ``window`` bits in the ``code`` observation (the
      paper's window of ``k`` past codes).
    * ``observation="features"``: what the ``features`` entry shows: the bank's feature vector,
      or ``"image"``: the image itself, ``uint8 [H, W, C]`` (SB3's channel-last image layout,
      so ``VecTransposeImage`` and SB3's image checks apply), read from the bank's image source
      (:mod:`hashgym.images`), for an agent that trains its own CNN. A bank without images is
      refused by name.

    **The paper's environment** is ``gym.make("HierHash-v0", **PAPER_SETTINGS)``, with
    ``from hashgym.envs.hierhash import PAPER_SETTINGS`` (``estimator="sample"``, ``memory_generation=None``, ``memory_init="image"``,
    ``level_split=0``, ``memory_roles="all"``, ``sibling_negatives=1.0``,
    ``n_constraints=(4000, 1000)``, ``rho=0.9``). The defaults
    differ where the paper's setting was measured not to learn on a 50,000-image split; the
    measurements are in ``benchmarks/results/notes/hierhash-learnable.md``.

    Methods and attributes: ``set_level(level, prev_codes)``, ``prev_codes`` (settable),
    ``memory`` (what the reward reads; change it with ``set_memory``), ``latest``,
    ``set_memory(codes)``, ``memory_state()`` / ``restore_memory_state(state)`` (checkpoints),
    ``generations``, ``constraints`` (bank rows), ``encode(act, indices=None)`` (code any images
    with a policy, deterministically, without touching the episode state; returns
    ``[n, n_bits]`` uint8), ``action_masks()`` (all True, for MaskablePPO), ``split_rows``,
    ``episode_steps``.

    ## Vectorized environment

    ``gymnasium.make_vec("HierHash-v0", num_envs=n)`` builds :class:`HierHashVectorEnv`, which
    steps all ``n`` episodes at once in numpy over one bank, one constraint pool and one code
    memory; actions are ``MultiDiscrete([2 ** bits_per_step] * n)``. Episodes run in lockstep
    and autoreset on the same step (``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``):
    the final step returns the next episodes' first observations, with ``info["final_obs"]``
    and ``info["final_info"]``. Infos: ``index`` (bank row of the image being coded),
    ``triplet`` (bank rows of anchor, positive, negative) and, in memory mode, ``role`` (the
    coded image's role: 0 anchor, 1 positive, 2 negative). For Stable-Baselines3, wrap it with
    :class:`hashgym.envs.sb3.SB3VecEnv` (:func:`hashgym.envs.sb3.make_sb3_vec_env`).
    Its sub-environments share one code memory and count one generation together. Separate
    ``gymnasium.make`` instances (e.g. in SB3's ``DummyVecEnv`` or RL Zoo) each keep their own
    memory and count their own steps: divide ``memory_generation`` by their number (the zoo
    files in :mod:`hashgym.agents.zoo` do).
    The ``features`` batch is one of two buffers reused image after image: it stays valid
    through the next ``step()``; copy it to keep it longer (see :mod:`hashgym.envs.core`).

    ## Deviations from the paper

    * The DQN loss: Stable-Baselines3's DQN, hashgym's agent for this env, minimises the Huber
      (smooth L1) loss of the TD error, where DRLHIH eq. (3) minimises its square.

    ## Version History

    Any change to what this environment does (a default, the reward, a space) ships under a new
    id; the old id stays registered and keeps its behaviour, so the same arguments and seed give
    the same codes. The classes' own defaults are ``HierHash-v0``'s; a later id sets its changed
    defaults in its registration (``hashgym.envs.ENV_KWARGS``). Before this rule the id did not
    move: ``HierHash-v0`` changed four times under the same id, three times in its defaults
    and once by a new argument (what each release meant, why, and the measurements:
    ``benchmarks/results/notes/hierhash-v0-versions.md``).

    * hashgym 0.1.0: initial version, the paper's setting (today's ``PAPER_SETTINGS``).
    * 0.2.0: ``estimator="class-mean"``, ``memory_generation="auto"``,
      ``memory_roles="anchor"``, ``sibling_negatives=False``, 30 triplets per image, ``rho=1.0``.
    * 0.3.0: ``memory_init="class"``, ``level_split=1``, ``sibling_negatives=0.5``,
      ``rho=0.9``; ``"auto"`` generations count codings of every image (unchanged at 12 bits).
    * 0.4.0: ``estimator="expected"`` when coding anchors; ``bits_per_step`` and ``margin``
      follow the code length (unchanged at 12 bits).
    * 0.5.0: ``observation="image"`` added; the default is unchanged.
    * ``HierHash-v1`` (after 0.5.0): ``margin="quarter"``, ``n_bits / 4``, where v0 keeps
      ``3 · sqrt(n_bits / 12)``. The same env at 12 bits (3 bits either way), so DRLHIH's
      setting and every 12-bit result hold for both ids; 6 bits wider at 24, 12 bits wider at
      48 and 64. Chosen on the development bank, where v0's margin collapsed to a few codes at
      48 and 64 bits (``benchmarks/results/notes/lengths.md``). hashgym's agents, ``hashgym
      train`` and the RL Zoo files use v1; v0 stays for the records measured on it.
"""


class HierHashEnv(_HierHashAccess, CodingEnv):
    __doc__ = "``HierHash-v1`` / ``HierHash-v0``: hash one image at a time.\n" + _MANUAL
    core_class = HierHashCore


class HierHashVectorEnv(_HierHashAccess, CodingVectorEnv):
    __doc__ = ("``HierHash-v1`` / ``HierHash-v0`` vectorized: hash ``num_envs`` images at once.\n"
               + _MANUAL)
    core_class = HierHashCore
