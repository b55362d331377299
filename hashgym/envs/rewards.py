"""HierHash's rewards: DRLHIH eq. (1) (:func:`triplet_reward`) and eqs. (4)–(5)
(:func:`level_reward`), defined here and only here, and the estimators with which memory mode
reads them against the code memory (:class:`MemoryReward`).

The formulas are functions of Hamming distances (:func:`triplet_value`, :func:`level_value`), so
the environment, which accumulates the distances chunk by chunk, and the batch functions share
one definition. ``docs/methods.md`` ("DRLHIH and HierHash-v0") states the paper's equations.
"""

from __future__ import annotations

import numpy as np

from hashgym.codes import hamming_bits_paired, hamming_paired
from hashgym.envs.code_memory import ClassMeans
from hashgym.envs.core import HashEnvError
from hashgym.validation import check_choice, check_int, check_number

__all__ = [
    "ESTIMATORS",
    "MARGIN_RULES",
    "MemoryReward",
    "default_margin",
    "expected_hamming",
    "level_reward",
    "level_value",
    "memory_role_distances",
    "quarter_margin",
    "resolve_margin",
    "triplet_episode_reward",
    "triplet_reward",
    "triplet_value",
]

#: ``estimator`` values: how memory mode reads the codes of the images it does not code.
#: ``"sample"``: the drawn images' remembered codes (one sample of eq. (1)); ``"class-mean"``:
#: each image stands for its level-``l`` class, and eq. (1) reads the expected Hamming distances
#: to that class's remembered codes (the class's per-bit means); ``"expected"``: as
#: ``"class-mean"``, and eq. (1) is averaged over the negative's class under the constraint
#: distribution instead of read for the one drawn negative.
ESTIMATORS = ("expected", "class-mean", "sample")


def default_margin(n_bits: int) -> float:
    """The triplet margin ``β`` when none is given: ``3 · sqrt(n_bits / 12)`` bits.

    3 bits at the paper's 12 (which does not give ``β``: a quarter of the code), scaled like the
    spread of the distance between two random codes (standard deviation ``sqrt(n_bits) / 2``)
    rather than like the code: 4.2 bits at 24, 6 at 48. Why: a margin of ``n_bits / 4``
    saturates at longer codes, where it asks every anchor to sit on its class's code
    (``benchmarks/results/notes/hierhash-v0-versions.md``).

    :param n_bits: the code length, ``>= 1``.
    """
    return 3.0 * float(np.sqrt(check_int(n_bits, "n_bits", 1, HashEnvError) / 12))


def quarter_margin(n_bits: int) -> float:
    """The triplet margin ``β`` of ``HierHash-v1``: ``n_bits / 4`` bits, a quarter of the code.

    3 bits at 12, the same as :func:`default_margin` there; 12 at 48, 16 at 64. Why: class codes
    of ``n_bits`` bits lie about ``n_bits / 2`` apart, so a margin that grows only like
    ``sqrt(n_bits)`` is met by most negatives of a long code and eq. (1) stops asking for the
    extra bits; on the development bank at 48 and 64 bits ``3 · sqrt(n_bits / 12)`` collapsed to
    a handful of codes where ``n_bits / 4`` learned (``benchmarks/results/notes/lengths.md``).

    :param n_bits: the code length, ``>= 1``.
    """
    return check_int(n_bits, "n_bits", 1, HashEnvError) / 4


#: ``margin`` rules by name (``HierHash(margin=...)`` takes a number of bits or one of these):
#: ``"sqrt"`` is :func:`default_margin` (``HierHash-v0``'s default), ``"quarter"`` is
#: :func:`quarter_margin` (``HierHash-v1``'s).
MARGIN_RULES = {"sqrt": default_margin, "quarter": quarter_margin}


def resolve_margin(margin: float | str | None, n_bits: int) -> float:
    """The margin ``β`` in bits for a code of ``n_bits``.

    :param margin: a number of bits ``>= 0``, or the name of a rule in :data:`MARGIN_RULES`;
        ``None`` is ``"sqrt"``, ``HierHash-v0``'s default.
    :param n_bits: the code length.
    :raises HashEnvError: for a negative or non-finite number or an unknown rule, by name.
    """
    if margin is None:
        margin = "sqrt"
    if isinstance(margin, str):
        return MARGIN_RULES[check_choice(margin, "margin", tuple(MARGIN_RULES), HashEnvError)](
            n_bits)
    return check_number(margin, "margin", 0.0, None, HashEnvError)


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


def expected_hamming(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``E[H(x, y)]`` for independent codes with per-bit probabilities ``p`` and ``q`` of a 1.

    ``Σ_j p_j (1 − q_j) + q_j (1 − p_j)`` over the last axis: the plain Hamming distance when
    both are 0/1 bits, the expected distance to a random member of a class when one is the
    class's per-bit mean (``estimator="class-mean"``).

    :param p: ``[n, k]`` bits or probabilities.
    :param q: ``[n, k]`` bits or probabilities.
    :return: ``[n]`` float64.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    return (p + q - 2.0 * p * q).sum(axis=-1)


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


def triplet_episode_reward(bits: np.ndarray, previous: np.ndarray | None, margin: float,
                           lam: float, rho: float) -> np.ndarray:
    """Triplet mode's reward at an episode's last step: eq. (1) on the three codes, and at
    ``level >= 1`` eqs. (4)–(5) with the distance term averaged over the three images.

    :param bits: ``[n, 3, n_bits]`` 0/1 codes of (anchor, positive, negative).
    :param previous: ``[n, 3, n_bits]`` their previous level's codes, or ``None`` at level 0.
    :param margin: ``β``, in bits.
    :param lam: ``λ >= 0``.
    :param rho: ``ρ`` in ``[0, 1]``.
    """
    value = triplet_value(hamming_bits_paired(bits[:, 0], bits[:, 1]),
                          hamming_bits_paired(bits[:, 0], bits[:, 2]), margin)
    if previous is not None:
        value = level_value(value, hamming_bits_paired(bits, previous).sum(axis=1), 3, lam, rho)
    return value


class MemoryReward:
    """Memory mode's dense reward for ``num_envs`` episodes, each coding one image.

    Step ``t`` is paid ``v_t − v_{t−1}``, where ``v_t`` is eq. (1) (and eqs. (4)–(5) at
    ``level >= 1``) on the code's first ``t · bits_per_step`` bits, with the margin scaled to
    ``β · t / T``; the rewards of an episode sum to the reward of the whole code. The distances
    grow chunk by chunk (Hamming distance adds over bits). How the two images not coded are
    read is the ``estimator``:

    * ``"sample"``: their remembered codes;
    * ``"class-mean"``: the per-bit means of their level-``l`` classes' remembered codes
      (expected distances to a random member of each class);
    * ``"expected"``: as ``"class-mean"``, and eq. (1) averaged over the negative's class under
      the constraint distribution (anchors only).

    :param num_envs: episodes run at once.
    :param n_bits: the code length.
    :param estimator: one of :data:`ESTIMATORS`.
    :param memory_roles: ``"anchor"`` or ``"all"`` (which image of the triplet is coded).
    :param margin: ``β``, in bits.
    :param lam: ``λ`` of eqs. (4)–(5).
    :param rho: ``ρ`` of eqs. (4)–(5).
    :param coarse_weight: the weight of the level-``(l−1)`` triplet term (0: none).
    """

    def __init__(self, num_envs: int, n_bits: int, *, estimator: str, memory_roles: str,
                 margin: float, lam: float, rho: float, coarse_weight: float) -> None:
        n = num_envs
        self.n_bits = n_bits
        self.estimator = estimator
        self.memory_roles = memory_roles
        self.margin = margin
        self.lam = lam
        self.rho = rho
        self.coarse_weight = coarse_weight
        # the codes read for the two images not coded, as per-bit probabilities of a 1 (the
        # remembered bits themselves with estimator="sample", class means otherwise)
        self.episode_memory = np.zeros((n, 2, n_bits))
        self.value = np.zeros(n)
        # the prefix distances coded-first other, coded-second other, coded-previous code,
        # first other-second other (see memory_role_distances), then coded-anchor's and
        # coded-negative's level-(l-1) classes; expected distances with estimator="class-mean",
        # so float
        self.distances = np.zeros((6, n))
        # coarse_weight: the codes read for the anchor's and the negative's level-(l-1) classes,
        # and where the negative is of another level-(l-1) class than the anchor (coded anchors)
        self.episode_coarse = np.zeros((n, 2, n_bits))
        self.coarse_mask = np.zeros(n)
        # estimator="expected": the prefix's expected distances to every level-l class, the
        # class means they read (frozen for the episode) and each anchor's negative-class weights
        self.class_distances = np.zeros((n, 0))
        self.episode_probs = np.zeros((0, n_bits))
        self.episode_weights = np.zeros((n, 0))

    def start(self, positions: np.ndarray, roles: np.ndarray, memory: np.ndarray,
              fine: ClassMeans, coarse: ClassMeans | None, negative_weights: np.ndarray,
              level: int) -> None:
        """Read what the new episodes' rewards need and zero their prefix values.

        :param positions: ``[num_envs, 3]`` split positions (coded image, other, other).
        :param roles: ``[num_envs]`` the coded image's role (0 anchor, 1 positive, 2 negative).
        :param memory: the code memory the reward reads ``[n_images, n_bits]``.
        :param fine: the level-``l`` class means of ``memory`` (not read with ``"sample"``).
        :param coarse: the level-``(l−1)`` class means (``coarse_weight`` at ``level >= 1``).
        :param negative_weights: ``[classes, classes]`` the negative-class weights of each
            anchor class (``"expected"``).
        :param level: the hierarchy level.
        """
        others = positions[:, 1:3]
        if self.estimator == "sample":
            self.episode_memory[:] = memory[others]
        else:
            self.episode_memory[:] = fine.of(others)
        if self.estimator == "expected":
            self.episode_probs = fine.probs  # replaced, never written, by updates
            self.episode_weights = negative_weights[fine.class_of[positions[:, 0]]]
            self.class_distances = np.zeros(self.episode_weights.shape)
        if level >= 1 and self.coarse_weight:
            # anchor episodes: (anchor, positive, negative); the positive shares the anchor's
            # level-(l-1) class, so with "sample" it stands for that class
            parent = coarse.class_of
            self.coarse_mask[:] = ((roles == 0) & (parent[positions[:, 0]]
                                                   != parent[positions[:, 2]]))
            if self.estimator == "sample":
                self.episode_coarse[:] = self.episode_memory
            else:
                self.episode_coarse[:] = coarse.of(positions[:, [0, 2]])
        self.value.fill(0.0)
        self.distances.fill(0)

    def step(self, chunk: np.ndarray, lo: int, hi: int, roles: np.ndarray,
             previous: np.ndarray | None) -> np.ndarray:
        """The rewards ``[num_envs]`` of the chunk of bits ``[lo, hi)`` just emitted.

        :param chunk: ``[num_envs, hi − lo]`` 0/1 bits of the coded images.
        :param lo: the chunk's first bit.
        :param hi: one past its last bit.
        :param roles: ``[num_envs]`` the coded images' roles.
        :param previous: ``[num_envs, n_bits]`` the coded images' previous level's codes, or
            ``None`` at level 0.
        """
        # Distances on trusted bits (the env's own and the validated memory / prev_codes) use
        # the unvalidated hamming_bits_paired; the formulas are triplet_value and level_value.
        d, memory = self.distances, self.episode_memory
        d[0] += expected_hamming(chunk, memory[:, 0, lo:hi])
        margin = self.margin * hi / self.n_bits
        if self.estimator == "expected":
            value = self._expected_value(chunk, lo, hi, d[0], margin)
        else:
            d[1] += expected_hamming(chunk, memory[:, 1, lo:hi])
            if self.memory_roles == "anchor":
                d_pos, d_neg = d[0], d[1]
            else:
                d[3] += expected_hamming(memory[:, 0, lo:hi], memory[:, 1, lo:hi])
                d_pos, d_neg = memory_role_distances(roles, d[0], d[1], d[3])
            value = triplet_value(d_pos, d_neg, margin)
        if previous is not None and self.coarse_weight:
            coarse = self.episode_coarse
            d[4] += expected_hamming(chunk, coarse[:, 0, lo:hi])
            d[5] += expected_hamming(chunk, coarse[:, 1, lo:hi])
            value = value + self.coarse_weight * self.coarse_mask * triplet_value(
                d[4], d[5], self.margin * hi / self.n_bits)
        if previous is not None:
            d[2] += hamming_bits_paired(chunk, previous[:, lo:hi])
            value = level_value(value, d[2], 1, self.lam, self.rho)
        reward = value - self.value
        self.value = value
        return reward

    def _expected_value(self, chunk: np.ndarray, lo: int, hi: int, d_pos: np.ndarray,
                        margin: float) -> np.ndarray:
        """``estimator="expected"``: eq. (1) on the prefix ``[0, hi)``, averaged over the
        negative's class: ``−Σ_c w_{y,c} max(0, β + E[H(b, I+)] − E[H(b, m_c)])``, with
        ``w_y`` the anchor's row of :meth:`ConstraintSampler.negative_class_weights` and ``m_c``
        the per-bit means of class ``c``'s remembered codes. Adds the chunk ``[lo, hi)`` to the
        distances to every class first.
        """
        probs = self.episode_probs[:, lo:hi]
        chunk = chunk.astype(np.float64)
        # E[H] = Σ_j b_j + p_j − 2 b_j p_j over the chunk's bits, for every (env, class) pair
        self.class_distances += (chunk.sum(axis=1)[:, None] + probs.sum(axis=1)[None, :]
                                 - 2.0 * chunk @ probs.T)
        hinge = np.maximum(0.0, margin + d_pos[:, None] - self.class_distances)
        return -(hinge * self.episode_weights).sum(axis=1) + 0.0
