"""HierHash's code memory: the remembered code of every image of a split, which memory mode's
reward reads for the images an episode does not code.

:class:`CodeMemory` holds what the reward reads (``memory``), what episodes write (``latest``)
and the generations between them; :func:`random_memory` and :func:`split_memory` are where a
level's memory starts, and :class:`ClassMeans` the per-class means the class-mean estimators read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashgym.codes import CodeError, as_bits
from hashgym.envs.core import HashEnvError
from hashgym.validation import check_choice

__all__ = [
    "MEMORY_INITS",
    "ClassMeans",
    "CodeMemory",
    "random_memory",
    "resolve_memory_init",
    "split_memory",
]

#: ``memory_init`` values: how the code memory of a level without previous codes starts.
#: ``"class"``: one random code per class of the level, shared by its members; ``"image"``:
#: independent random bits per image (the paper's).
MEMORY_INITS = ("class", "image")


def random_memory(labels: np.ndarray, n_bits: int, rng: np.random.Generator,
                  init: str = "class") -> np.ndarray:
    """A random code memory for images with the class ``labels`` (one level's labels).

    :param labels: ``[n_images]`` class labels of the images.
    :param n_bits: code length.
    :param rng: the generator the bits are drawn from.
    :param init: ``"class"``: each class draws one uniformly random code, which all its members
        share; ``"image"``: every image draws its own bits (the paper's random memory).
    :return: ``[n_images, n_bits]`` uint8 0/1 codes.
    """
    labels = np.asarray(labels)
    if init == "image":
        return rng.integers(0, 2, size=(labels.size, n_bits), dtype=np.uint8)
    check_choice(init, "memory_init", MEMORY_INITS, HashEnvError)
    _, class_of = np.unique(labels, return_inverse=True)
    book = rng.integers(0, 2, size=(int(class_of.max(initial=-1)) + 1, n_bits), dtype=np.uint8)
    return book[class_of]


def resolve_memory_init(memory_init: str | None, mode: str = "memory") -> str:
    """``memory_init`` as the env uses it: the value given (checked), or by default ``"class"``
    in memory mode and ``"image"`` in triplet mode (which has no memory to start)."""
    if memory_init is None:
        return "class" if mode == "memory" else "image"
    return check_choice(memory_init, "memory_init", MEMORY_INITS, HashEnvError)


def split_memory(codes: np.ndarray, labels: np.ndarray, parents: np.ndarray, n_flip: int,
                 rng: np.random.Generator) -> np.ndarray:
    """The previous level's codes with every class of the new level moved ``n_flip`` bits away.

    Every class flips ``n_flip`` bits in all its members' codes. Siblings (classes with one
    parent) flip disjoint bits while there are enough: the parent draws a random permutation
    of the bits and its ``i``-th child flips bits ``i · n_flip, …, (i + 1) · n_flip − 1`` of it,
    modulo ``n_bits`` (a parent with more than ``n_bits / n_flip`` children reuses bits). Two
    siblings then start ``2 · n_flip`` bits apart and ``n_flip`` from their parent's code.

    :param codes: ``[n_images, n_bits]`` 0/1 codes (the previous level's).
    :param labels: ``[n_images]`` the new level's class labels.
    :param parents: ``[n_images]`` the previous level's labels (a class's parent is the parent
        label of its first image).
    :param n_flip: bits flipped per class, ``0 <= n_flip <= n_bits``.
    :param rng: the generator of the permutations.
    :return: ``[n_images, n_bits]`` uint8 codes (a new array).
    """
    out = np.array(codes, dtype=np.uint8, copy=True)
    n_bits = out.shape[1]
    if n_flip == 0 or out.shape[0] == 0:
        return out
    _, first, class_of = np.unique(labels, return_index=True, return_inverse=True)
    class_parent = np.asarray(parents)[first]
    flips = np.zeros((first.size, n_bits), dtype=np.uint8)
    for parent in np.unique(class_parent):
        children = np.flatnonzero(class_parent == parent)
        order = rng.permutation(n_bits)
        for i, child in enumerate(children):
            flips[child, order[(i * n_flip + np.arange(n_flip)) % n_bits]] = 1
    out ^= flips[class_of]
    return out


class ClassMeans:
    """The images of a split grouped by one level's labels, for per-class means of a memory."""

    def __init__(self, labels: np.ndarray) -> None:
        _, self.class_of = np.unique(labels, return_inverse=True)
        self.order = np.argsort(self.class_of, kind="stable")
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.class_of[self.order]) != 0])
        self.sizes = np.diff(np.r_[self.starts, labels.size])
        self.probs = np.zeros((self.sizes.size, 0))

    def update(self, memory: np.ndarray) -> None:
        """``probs[c, j]``: the fraction of class ``c``'s remembered codes whose bit ``j`` is 1."""
        sums = np.add.reduceat(memory[self.order], self.starts, axis=0, dtype=np.int64)
        self.probs = sums / self.sizes[:, None]

    def of(self, positions: np.ndarray) -> np.ndarray:
        """The class means of the images at split ``positions`` (any shape, bits last)."""
        return self.probs[self.class_of[positions]]


class CodeMemory:
    """The code memory of ``n_images`` images and its generations.

    Episodes write their code to :attr:`latest` when they end (:meth:`record`). The reward reads
    :attr:`memory`: without generations (``generation=None``, the paper's) the two are one array,
    so every episode's code is read by the next episodes; with generations :attr:`memory` is a
    frozen copy that takes :attr:`latest`'s codes once every ``generation`` environment steps,
    the role a DQN's target network plays for its Q-values.

    :param n_images: images of the split (rows of the memory, in bank order).
    :param n_bits: the code length.
    :param generation: environment steps per generation, or ``None``.
    :param split: the split's name, for error messages.
    """

    def __init__(self, n_images: int, n_bits: int, generation: int | None, split: str) -> None:
        self.n_bits = n_bits
        self.generation = generation
        self.split = split
        self.memory = np.zeros((n_images, n_bits), dtype=np.uint8)
        self.latest = self.memory if generation is None else self.memory.copy()
        self.generation_steps = 0  # environment steps taken in the current generation
        self.generations = 0  # generations completed since the memory was last set

    def set(self, codes: Any) -> None:
        """Set :attr:`memory` (and :attr:`latest`) to ``codes`` and start a new generation:
        ``[n_images, n_bits]`` 0/1 or ±1 codes of the split's images, bank order."""
        arr = np.asarray(codes)
        if arr.shape != self.memory.shape:
            raise HashEnvError(
                f"the code memory must have shape {self.memory.shape}: one {self.n_bits}-bit "
                f"code per image of split {self.split!r}, in bank order; got shape {arr.shape}")
        try:
            self.memory[:] = as_bits(arr, self.n_bits, name="memory")
        except CodeError as exc:
            raise HashEnvError(str(exc)) from exc
        if self.latest is not self.memory:
            self.latest[:] = self.memory
        self.generation_steps = 0
        self.generations = 0

    def state(self) -> dict[str, np.ndarray]:
        """Everything a checkpoint needs to continue exactly: ``memory``, ``latest`` and the
        generation counters, as arrays (``np.savez``-ready)."""
        return {"memory": self.memory.copy(), "latest": self.latest.copy(),
                "generation_steps": np.asarray(self.generation_steps),
                "generations": np.asarray(self.generations)}

    def restore_latest(self, state: dict[str, np.ndarray]) -> None:
        """Continue :meth:`state`'s ``latest`` codes and counters, once its ``memory`` is set
        (:meth:`set`); without them, a new generation."""
        if "latest" in state and self.latest is not self.memory:
            latest = np.asarray(state["latest"])
            if latest.shape != self.latest.shape:
                raise HashEnvError(f"the latest codes must have shape {self.latest.shape}, got "
                                   f"{latest.shape}")
            try:
                self.latest[:] = as_bits(latest, self.n_bits, name="latest")
            except CodeError as exc:
                raise HashEnvError(str(exc)) from exc
        self.generation_steps = int(state.get("generation_steps", 0))
        self.generations = int(state.get("generations", 0))

    def record(self, positions: np.ndarray, codes: np.ndarray, steps: int) -> bool:
        """Write the ended episodes' ``codes`` at split ``positions`` into :attr:`latest` and
        count their ``steps``; return whether a generation ended (:meth:`end_generation`)."""
        self.latest[positions] = codes
        if self.generation is None:
            return False
        self.generation_steps += steps
        if self.generation_steps < self.generation:
            return False
        self.end_generation()
        return True

    def end_generation(self) -> None:
        """:attr:`memory` takes the codes of :attr:`latest`."""
        self.memory[:] = self.latest
        self.generations += 1
        self.generation_steps = 0
