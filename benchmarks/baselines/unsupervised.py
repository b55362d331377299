"""Unsupervised baselines in numpy: LSH, spectral hashing (SH) and iterative quantization (ITQ).

All three centre the features with the training mean and hash a linear (LSH, ITQ) or
sinusoidal (SH) function of them. Labels passed to :meth:`fit` are checked and ignored.
"""

from __future__ import annotations

import numpy as np

from hashgym.benchmarks.baselines.base import BaseHasher, BaselineError
from hashgym.benchmarks.baselines.labels import LabelSet
from hashgym.validation import check_int

__all__ = ["ITQ", "LSH", "SpectralHashing", "principal_components"]


def principal_components(x: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the top principal directions of ``x``, with a fixed sign per direction.

    :param x: ``[N, D]`` data.
    :param n_components: number of directions ``p <= D``.
    :return: ``(mean [D], components [D, p])``, columns ordered by decreasing variance; each
        column's largest-magnitude entry is positive, so the result does not depend on the
        eigen-solver's sign choice.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / max(1, x.shape[0] - 1)
    _, vectors = np.linalg.eigh(cov)
    components = vectors[:, ::-1][:, :n_components]
    flip = np.sign(components[np.argmax(np.abs(components), axis=0), np.arange(n_components)])
    return mean, components * np.where(flip == 0, 1.0, flip)


class _LinearHasher(BaseHasher):
    """Hashers of the form ``b(x) = sign((x − μ) P)``; subclasses fit ``mean_`` and ``projection_``."""

    def _project(self, features: np.ndarray) -> np.ndarray:
        return (features.astype(np.float64) - self.mean_) @ self.projection_

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "projection": self.projection_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean_, self.projection_ = state["mean"], state["projection"]


class LSH(_LinearHasher):
    """Locality-sensitive hashing by random hyperplanes (Charikar, STOC 2002; Indyk & Motwani 1998).

    ``b(x) = sign(Wᵀ (x − μ))`` with ``W ∈ R^{D×K}`` drawn i.i.d. from ``N(0, 1)`` (seeded) and
    ``μ`` the training mean, so that each bit splits the data near its centre. Data-independent
    apart from ``μ``; labels are ignored.

    :param n_bits: code length ``K``.
    :param seed: seed of the projection.
    """

    name = "lsh"

    def _fit(self, features: np.ndarray, labels: LabelSet | None) -> None:
        rng = np.random.default_rng(self.seed)
        self.mean_ = features.astype(np.float64).mean(axis=0)
        self.projection_ = rng.standard_normal((features.shape[1], self.n_bits))


class SpectralHashing(BaseHasher):
    """Spectral hashing (Weiss, Torralba & Fergus, NIPS 2008), with the paper's box approximation.

    1. PCA to ``p = min(K, D)`` dimensions.
    2. Model the data as uniform on the box ``[a_d, b_d]`` spanned by each principal direction.
       The Laplacian eigenfunctions of a box that vary along one direction ``d`` are
       ``Φ_{d,m}(x) = sin(π/2 + m π (x_d − a_d) / (b_d − a_d))`` with eigenvalue growing with
       ``(m π / (b_d − a_d))²`` (paper eq. 6–7); ``m = 1, 2, …``.
    3. Keep the ``K`` one-dimensional eigenfunctions with the smallest eigenvalues (i.e. the
       lowest spatial frequencies ``m / (b_d − a_d)``) and threshold them at zero.

    Long directions get several bits (higher modes), short ones none, as in the paper. Ties in
    frequency are broken by direction order (higher variance first). Labels are ignored; ``seed``
    is unused (the method is deterministic) but kept for the common interface.

    :param n_bits: code length ``K``.
    :param seed: unused.
    """

    name = "sh"

    def _fit(self, features: np.ndarray, labels: LabelSet | None) -> None:
        p = min(self.n_bits, features.shape[1])
        mean, components = principal_components(features, p)
        projected = (features.astype(np.float64) - mean) @ components
        low, high = projected.min(axis=0), projected.max(axis=0)
        width = np.maximum(high - low, 1e-12)
        # Candidate modes m = 1..K on every direction; frequency m / width orders them.
        modes = np.arange(1, self.n_bits + 1, dtype=np.float64)
        freq = modes[None, :] / width[:, None]  # [p, K]
        order = np.argsort(freq.ravel(), kind="stable")[: self.n_bits]
        direction, mode_index = np.unravel_index(order, freq.shape)
        self.mean_, self.components_ = mean, components
        self.low_, self.width_ = low, width
        self.directions_ = direction.astype(np.int64)
        self.modes_ = modes[mode_index]

    def _project(self, features: np.ndarray) -> np.ndarray:
        projected = (features.astype(np.float64) - self.mean_) @ self.components_
        d = self.directions_
        phase = (projected[:, d] - self.low_[d]) / self.width_[d]
        return np.sin(np.pi / 2 + self.modes_ * np.pi * phase)

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "components": self.components_, "low": self.low_,
                "width": self.width_, "directions": self.directions_, "modes": self.modes_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean_, self.components_ = state["mean"], state["components"]
        self.low_, self.width_ = state["low"], state["width"]
        self.directions_, self.modes_ = state["directions"], state["modes"]


class ITQ(_LinearHasher):
    """Iterative quantization (Gong & Lazebnik, CVPR 2011), PCA-ITQ.

    1. Centre and project onto the top ``K`` principal directions: ``V = (X − μ) W`` (needs
       ``K <= D``).
    2. Start from a random orthogonal ``R`` (QR of a seeded Gaussian matrix) and alternate, for
       ``n_iter`` iterations (50 in the paper):
       ``B = sign(V R)``, then the orthogonal Procrustes step ``R = U Ŝᵀ`` from the SVD
       ``Vᵀ B = U Ω Ŝᵀ``, which minimises the quantization loss ``‖B − V R‖_F²`` (paper eq. 2)
       over orthogonal ``R``.
    3. ``b(x) = sign((x − μ) W R)``.

    :param n_bits: code length ``K`` (at most the feature dimension).
    :param n_iter: alternating iterations (paper: 50).
    :param seed: seed of the initial rotation.
    """

    name = "itq"

    def __init__(self, n_bits: int, *, n_iter: int = 50, seed: int = 0) -> None:
        self.n_iter = n_iter
        super().__init__(n_bits, seed=seed)

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.n_iter, "n_iter", 0, BaselineError)

    def _fit(self, features: np.ndarray, labels: LabelSet | None) -> None:
        if self.n_bits > features.shape[1]:
            raise BaselineError(
                f"ITQ needs n_bits <= feature dimension (it rotates K principal components), got "
                f"n_bits={self.n_bits} for {features.shape[1]}-d features"
            )
        mean, components = principal_components(features, self.n_bits)
        v = (features.astype(np.float64) - mean) @ components
        rng = np.random.default_rng(self.seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((self.n_bits, self.n_bits)))
        for _ in range(self.n_iter):
            b = np.where(v @ rotation >= 0, 1.0, -1.0)
            u, _, vt = np.linalg.svd(v.T @ b)
            rotation = u @ vt
        self.mean_ = mean
        self.projection_ = components @ rotation
