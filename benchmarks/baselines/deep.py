"""Deep hashing heads on cached features: one network, one training loop, a loss per method.

The papers' deep baselines train a CNN end to end. hashgym compares every method on the same
cached features (``docs/methods.md``, "Feature banks"), so each deep baseline here is the same
small MLP head on top of the feature bank:

``x → standardise → [Linear → ReLU] × len(hidden) → Linear → z ∈ R^K``, and ``u = tanh(z)``

(HashNet uses ``tanh(β z)``). The code of an image is ``sign(z)``. Methods differ only in the loss
on ``u`` (and, for CNNH and CSQ, in per-image targets prepared before training).

Training (:meth:`DeepHasher._fit`): Adam, mini-batches drawn from a seeded permutation each
epoch (batches of at least ``batch_size`` images: the remainder is spread over the batches,
never a tiny last batch), on the CPU with ``torch.set_num_threads(num_threads)`` (1 by default,
restored afterwards). Pairwise and triplet losses use the pairs within a batch. Weights are
initialised under ``torch.manual_seed(seed)`` inside a forked RNG, so fitting never touches the
caller's global random state and the same seed gives identical codes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashgym.atomic import atomic_write
from hashgym.benchmarks.baselines.base import BaseHasher, BaselineError
from hashgym.benchmarks.baselines.labels import LabelSet, similarity
from hashgym.validation import check_int

__all__ = ["DeepHasher", "HashHead", "balanced_pair_weights", "pair_mask"]

logger = logging.getLogger(__name__)
_ENCODE_BATCH = 8192


class HashHead(nn.Module):
    """MLP from standardised features to ``n_bits`` real outputs ``z`` (the pre-activations).

    :param in_dim: feature dimension ``D``.
    :param hidden: widths of the hidden ReLU layers (may be empty: a linear head).
    :param n_bits: code length ``K``.
    """

    def __init__(self, in_dim: int, hidden: tuple[int, ...], n_bits: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_bits))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.scale)


def pair_mask(n: int) -> torch.Tensor:
    """``[n, n]`` bool mask of the off-diagonal pairs ``i != j`` of a batch."""
    return ~torch.eye(n, dtype=torch.bool)


def balanced_pair_weights(grades: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Class-balancing pair weights of HashNet eq. (7), for binary or graded similarity.

    The masked pairs are grouped by their similarity grade ``g`` (0/1 similarity, or the number
    of agreeing label levels of :func:`~.labels.graded_similarity`); every grade present in the
    batch gets the same total weight: ``w_ij = |S| / (G · |S_g|)`` with ``|S|`` the masked pairs,
    ``|S_g|`` those of grade ``g`` and ``G`` the number of grades present. The weights average 1
    over the masked pairs and are 0 elsewhere. For 0/1 similarity with both kinds present this
    is HashNet's ``|S| / |S₁|`` for similar and ``|S| / |S₀|`` for dissimilar pairs, halved (a
    common factor); with one kind only, every weight is 1.

    :param grades: ``[B, B]`` similarity grades (small non-negative integers, any dtype).
    :param mask: ``[B, B]`` bool mask of the pairs that count.
    :return: ``[B, B]`` float weights (dtype of ``grades`` when floating, else float32).
    """
    dtype = grades.dtype if grades.is_floating_point() else torch.float32
    weights = torch.zeros(grades.shape, dtype=dtype, device=grades.device)
    total = int(mask.sum())
    if total == 0:
        return weights
    present = torch.unique(grades[mask])
    for grade in present:
        group = mask & (grades == grade)
        weights[group] = total / (len(present) * float(group.sum()))
    return weights


class DeepHasher(BaseHasher):
    """Base class of the deep baselines: the shared head, training loop, encoding and saving.

    Subclasses implement :meth:`_loss` and may override :meth:`_targets` (per-image training
    targets) and :meth:`_activate`.

    :param n_bits: code length ``K``.
    :param hidden: hidden layer widths of the MLP head.
    :param epochs: passes over the training set.
    :param batch_size: images per mini-batch (pairwise losses see ``batch_size²`` pairs).
    :param lr: Adam learning rate.
    :param weight_decay: Adam weight decay (L2).
    :param seed: seed of the initial weights and of the batch order.
    :param num_threads: torch CPU threads while fitting and encoding.
    :param device: torch device (``"cpu"``; ``"cuda"`` where available).
    :param progress: show a progress bar over epochs.
    """

    supervised = True

    def __init__(
        self,
        n_bits: int,
        *,
        hidden: tuple[int, ...] = (512,),
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        seed: int = 0,
        num_threads: int = 1,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        self.hidden = tuple(hidden)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.num_threads = num_threads
        self.device = device
        self.progress = progress
        super().__init__(n_bits, seed=seed)

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.epochs, "epochs", 1, BaselineError)
        check_int(self.batch_size, "batch_size", 2, BaselineError)
        check_int(self.num_threads, "num_threads", 1, BaselineError)
        if not all(isinstance(h, (int, np.integer)) and h >= 1 for h in self.hidden):
            raise BaselineError(f"hidden must be positive layer widths, got {self.hidden!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise BaselineError(f"{name} must be a finite non-negative number, got {value!r}")
        if self.lr == 0:
            raise BaselineError("lr must be positive, got 0")

    # ------------------------------------------------------------------ method hooks
    def _targets(self, labels: LabelSet, features: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image training targets, indexed by batch rows; default: the finest indicators."""
        return {"y": labels.finest.astype(np.float32)}

    def _activate(self, z: torch.Tensor, step: int) -> torch.Tensor:
        """Relaxed codes ``u`` from pre-activations ``z``; ``step`` counts optimiser steps."""
        return torch.tanh(z)

    def loss(self, u: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The method's loss on a batch of relaxed codes ``u`` ``[B, K]``."""
        raise NotImplementedError

    @staticmethod
    def _similarity(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Within-batch 0/1 similarity ``[B, B]`` (float) from the finest indicators."""
        y = batch["y"]
        return similarity(y, y).to(y.dtype)

    # ------------------------------------------------------------------ training loop
    def _fit(self, features: np.ndarray, labels: LabelSet | None) -> None:
        assert labels is not None
        threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            self._train(features, labels)
        finally:
            torch.set_num_threads(threads)

    def _train(self, features: np.ndarray, labels: LabelSet) -> None:
        device = torch.device(self.device)
        n, dim = features.shape
        targets = {k: torch.as_tensor(v, device=device) for k, v in
                   self._targets(labels, features).items()}
        x = torch.as_tensor(features, dtype=torch.float32, device=device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = HashHead(dim, self.hidden, self.n_bits)
        model.mean.copy_(x.mean(dim=0))
        model.scale.copy_(x.std(dim=0).clamp(min=1e-6) if n > 1 else torch.ones(dim))
        model.to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=self.lr,
                                     weight_decay=self.weight_decay)
        rng = np.random.default_rng(self.seed)
        n_batches = max(1, n // self.batch_size)
        history: list[float] = []
        step = 0
        bar = tqdm(range(self.epochs), desc=f"{self.name} fit", unit="epoch",
                   disable=not self.progress, leave=False)
        for epoch in bar:
            model.train()
            total = 0.0
            for rows in np.array_split(rng.permutation(n), n_batches):
                index = torch.as_tensor(rows, device=device)
                u = self._activate(model(x[index]), step)
                loss = self.loss(u, {k: v[index] for k, v in targets.items()})
                if not torch.isfinite(loss):
                    raise BaselineError(
                        f"{type(self).__name__} diverged: non-finite loss at epoch {epoch + 1} "
                        f"(try a smaller lr)"
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step += 1
                total += float(loss.detach())
            history.append(total / n_batches)
            bar.set_postfix(loss=f"{history[-1]:.4f}")
            logger.debug("%s epoch %d/%d loss %.5f", self.name, epoch + 1, self.epochs, history[-1])
        logger.info("%s: %d epochs on %d images, final loss %.5f", self.name, self.epochs, n,
                    history[-1])
        self.model_ = model.eval()
        self.loss_history_ = history

    def _project(self, features: np.ndarray) -> np.ndarray:
        threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        device = next(self.model_.parameters()).device
        out = []
        try:
            with torch.no_grad():
                for start in range(0, features.shape[0], _ENCODE_BATCH):
                    chunk = torch.as_tensor(features[start:start + _ENCODE_BATCH], device=device)
                    out.append(self.model_(chunk).cpu().numpy())
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(out, axis=0)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}

    def _set_state(self, state: dict[str, Any]) -> None:
        model = HashHead(int(state["mean"].shape[0]), self.hidden, self.n_bits)
        model.load_state_dict(state)
        self.model_ = model.to(torch.device(self.device)).eval()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the head's ``state_dict`` and the hyperparameters (JSON) atomically, via
        ``torch.save``; read back with ``torch.load(weights_only=True)``."""
        self._check_fitted()
        path = Path(path)
        payload = {**self._header(), "state": self._state(),
                   "loss_history": json.dumps(getattr(self, "loss_history_", []))}
        with atomic_write(path) as handle:
            torch.save(payload, handle)
        return path
