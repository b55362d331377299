"""The batched coding episode that ``HierHash-v0`` and ``CentralHash-v0`` share.

Hashing one image is an episode of ``T = n_bits / bits_per_step`` steps: at each step the agent
emits ``bits_per_step`` bits of the image's code (``docs/methods.md``, "Steps and actions"). This
module holds everything about that episode that does not depend on the reward:

* :class:`CodingCore` keeps ``num_envs`` episodes **in lockstep** in preallocated numpy arrays
  (episodes have a fixed length and every sub-environment is reset together, so one scalar step
  counter serves the whole batch). Subclasses add the images an episode codes, the rewards and
  the infos; nothing here loops over sub-environments in Python.
* :class:`CodingVectorEnv` turns a core into a :class:`gymnasium.vector.VectorEnv` with
  same-step autoreset (:attr:`~gymnasium.vector.AutoresetMode.SAME_STEP`).
* :class:`CodingEnv` turns a core with ``num_envs=1`` into a :class:`gymnasium.Env`.

Because the single environment *is* the batched core with a batch of one, the two give identical
observations and rewards for the same images and actions by construction.

Observations (both environments)
--------------------------------
A ``Dict`` with ``features`` (the image's feature vector, float32 ``[D]``), ``code`` (the bits
of the current image emitted so far as ±1, 0 where no bit has been emitted yet; with ``window=k``
only the last ``k`` emitted bits, oldest first, right-aligned and zero-padded) and ``t`` (the
fraction of the current image's steps already taken, ``[1]``).

Aliasing of returned arrays
---------------------------
The single environment returns fresh copies at every step. The vector environment returns fresh
``code`` and ``t`` arrays at every step, but its ``features`` batch is **one of two preallocated
buffers** that alternate per image: when the episodes move to a new image (every ``T`` steps,
or at ``reset()``) the features of the new images are gathered into the buffer the
image-before-last used. Allocating and filling ``num_envs × D`` fresh floats at every image
would cost more than the rest of the step (Gymnasium's ``SyncVectorEnv(copy=False)`` reuses its
buffers the same way). Hence:

* a ``features`` batch stays valid until the environment starts the image after the next one:
  always through the next ``step()``, which is what one-step look-back consumers need (SB3
  stores the previous observation when it receives the next one). Copy it to keep it longer;
* ``info["final_obs"]`` (same-step autoreset) is a fresh object array of fresh per-environment
  dicts, whose ``features`` are row views of the ended images' buffer, whose ``code`` rows
  view the code buffer paired with it (both with the lifetime above: building 4,096 fresh code
  arrays and their views at every step of one-step episodes cost a quarter of
  ``CentralHash-v0``'s step), and whose ``t`` rows view a shared **read-only** array of ones
  (the final ``t`` is always 1);
* infos are fresh copies.

Callers must not modify ``features``, or a final observation's ``code``, in place (the
buffers are shared by many observations).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hashgym.bank import FeatureBank
from hashgym.errors import EnvError
from hashgym.images import ImageError, bank_images, image_shape
from hashgym.protocols import resolve_bank
from hashgym.validation import check_choice, check_int, check_memory, is_integer

__all__ = ["CodingCore", "CodingEnv", "CodingVectorEnv", "HashEnvError", "observation_space"]

ObsDict = dict[str, np.ndarray]
#: A policy for :meth:`CodingCore.encode`: a batch of observations to a batch of actions.
ActFn = Callable[[ObsDict], np.ndarray]

_FEATURE_CACHE: weakref.WeakKeyDictionary[FeatureBank, dict[str, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


#: This module's name for :class:`~hashgym.errors.EnvError` (an alias).
HashEnvError = EnvError


def _split_features(bank: FeatureBank, split: str, rows: np.ndarray) -> np.ndarray:
    """The split's features as one contiguous float32 matrix, shared by every env on ``bank``.

    Converting once (float16 → float32) makes the per-episode gather a plain copy; the cache is
    keyed on the bank object, so many single environments over one bank (e.g. inside a
    :class:`gymnasium.vector.SyncVectorEnv`) hold one matrix, not one each.
    """
    per_bank = _FEATURE_CACHE.setdefault(bank, {})
    if split not in per_bank:
        feats = np.ascontiguousarray(np.asarray(bank.features[rows]), dtype=np.float32)
        feats.setflags(write=False)
        per_bank[split] = feats
    return per_bank[split]


def _split_images(bank: FeatureBank, split: str, rows: np.ndarray) -> np.ndarray:
    """The split's images, ``uint8 [n_images, H, W, C]``, shared by every env on ``bank``."""
    per_bank = _FEATURE_CACHE.setdefault(bank, {})
    key = f"{split}/images"
    if key not in per_bank:
        per_bank[key] = bank_images(bank, rows)
    return per_bank[key]


#: What the ``features`` entry of the observation holds: the bank's feature vector, or the image.
OBSERVATIONS = ("features", "image")


def observation_space(dim: int | tuple[int, ...], code_length: int) -> spaces.Dict:
    """The observation space of both environments (see the module docstring).

    :param dim: the feature dimension ``D``, or the image shape ``(H, W, C)`` (``uint8``).
    :param code_length: ``n_bits``, or ``window`` when a window is used.
    """
    first = (spaces.Box(0, 255, tuple(dim), np.uint8) if isinstance(dim, tuple)
             else spaces.Box(-np.inf, np.inf, (dim,), np.float32))
    return spaces.Dict(
        {
            "features": first,
            "code": spaces.Box(-1.0, 1.0, (code_length,), np.float32),
            "t": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
    )


class CodingCore:
    """``num_envs`` coding episodes in lockstep over one feature bank (no autoreset).

    An episode codes ``slots`` images one after the other (1, or 3 for HierHash's triplet mode),
    each in ``steps_per_image = n_bits / bits_per_step`` steps. Subclasses implement
    :meth:`reseed` (seeded state), :meth:`sample` (the images of new episodes), :meth:`decode`
    (actions to bits), :meth:`reward` and :meth:`info`.

    :param bank: a :class:`~hashgym.bank.FeatureBank`, a path or a preset name, resolved with
        :func:`hashgym.protocols.resolve_bank` (``None``: the bank built into the package).
    :param protocol: a protocol applied by :func:`~hashgym.protocols.resolve_bank`.
    :param protocol_seed: the protocol's seed.
    :param split: the images episodes draw from: ``"train"``, ``"database"`` or ``"query"``.
    :param n_bits: the code length.
    :param bits_per_step: bits emitted per step; must divide ``n_bits``.
    :param window: keep only the last ``window`` emitted bits in the ``code`` observation.
    :param num_envs: the batch size.
    :param observation: ``"features"`` (the bank's feature vector) or ``"image"`` (the image
        itself, ``uint8 [H, W, C]``, from the bank's image source: :mod:`hashgym.images`).
    :param slots: images coded per episode.
    """

    slots: int = 1

    def __init__(
        self,
        *,
        bank: FeatureBank | str | None,
        protocol: str | None,
        protocol_seed: int,
        split: str,
        n_bits: int,
        bits_per_step: int,
        window: int | None,
        num_envs: int,
        observation: str = "features",
    ) -> None:
        self.observation = check_choice(observation, "observation", OBSERVATIONS, HashEnvError)
        self.n_bits = check_int(n_bits, "n_bits", 1, HashEnvError)
        self.bits_per_step = check_int(bits_per_step, "bits_per_step", 1, HashEnvError)
        if self.n_bits % self.bits_per_step:
            raise HashEnvError(
                f"n_bits={self.n_bits} is not divisible by bits_per_step={self.bits_per_step}; "
                f"every step emits the same number of bits"
            )
        self.window = None if window is None else check_int(window, "window", 1, HashEnvError)
        if self.window is not None and self.window > self.n_bits:
            raise HashEnvError(f"window={self.window} exceeds n_bits={self.n_bits}")
        self.num_envs = check_int(num_envs, "num_envs", 1, HashEnvError)
        if split not in ("train", "database", "query"):
            raise HashEnvError(
                f"unknown split {split!r}; expected 'train', 'database' or 'query'"
            )
        protocol_seed = check_int(protocol_seed, "protocol_seed", 0, HashEnvError)
        self.bank = resolve_bank(bank, protocol=protocol, seed=protocol_seed)
        self.split = split
        self.rows = self.bank.indices(split)
        if self.rows.size == 0:
            raise HashEnvError(f"split {split!r} of the bank is empty")
        self._features: np.ndarray | None = None  # materialised by the first episode
        self.position_of_row = np.full(self.bank.n, -1, dtype=np.int64)
        self.position_of_row[self.rows] = np.arange(self.rows.size)
        self.steps_per_image = self.n_bits // self.bits_per_step
        self.episode_steps = self.slots * self.steps_per_image
        if self.observation == "image":
            try:
                self.obs_shape: tuple[int, ...] = image_shape(self.bank)
            except ImageError as exc:
                raise HashEnvError(f"observation='image': {exc}") from exc
            obs_dtype: Any = np.uint8
        else:
            self.obs_shape, obs_dtype = (self.bank.dim,), np.float32
        # before anything is allocated: the double buffer holds two observations per env, and
        # every env its code's bits (uint8, per slot) and signs (float32)
        check_memory(self.num_envs * 2 * math.prod(self.obs_shape) * np.dtype(obs_dtype).itemsize,
                     f"num_envs={self.num_envs:,}", HashEnvError)
        check_memory(self.num_envs * self.n_bits * (self.slots + 4), f"n_bits={self.n_bits:,}",
                     HashEnvError)
        self.observation_space = observation_space(
            self.obs_shape if self.observation == "image" else self.bank.dim,
            self.window or self.n_bits)
        self.rng: np.random.Generator | None = None
        self.action_space: spaces.Space = spaces.Discrete(2)  # set by subclasses
        n = self.num_envs
        self.step_count = 0
        self.started = False
        self.positions = np.zeros((n, self.slots), dtype=np.int64)
        self.bits = np.zeros((n, self.slots, self.n_bits), dtype=np.uint8)
        self.signs = np.zeros((n, self.n_bits), dtype=np.float32)
        # the double buffer of the features observation (see the module docstring)
        self.feature_buffers = np.zeros((2, n, *self.obs_shape), dtype=obs_dtype)
        self.feature_buffer = 0
        self.slot_features = self.feature_buffers[0]

    @property
    def features(self) -> np.ndarray:
        """The split's features, float32 ``[n_images, D]`` (with ``observation="image"``, its
        images, ``uint8 [n_images, H, W, C]``), read from the bank when the first episode needs
        them (:func:`_split_features`). :meth:`encode` does not need them: it
        reads bounded chunks of a memory-mapped bank, so coding a bank larger than memory
        keeps memory flat."""
        if self._features is None:
            read = _split_images if self.observation == "image" else _split_features
            self._features = read(self.bank, self.split, self.rows)
        return self._features

    @property
    def features_loaded(self) -> bool:
        """Whether :attr:`features` has been read into memory yet (:meth:`encode` never does)."""
        return self._features is not None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickling copies views, so point the observation back into the feature buffers
        self.__dict__.update(state)
        self.slot_features = self.feature_buffers[self.feature_buffer]

    # ------------------------------------------------------------------ subclass hooks
    def reseed(self, rng: np.random.Generator) -> None:
        """Adopt ``rng`` and rebuild every seeded piece of state (pools, memories)."""
        self.rng = rng

    def sample(self) -> np.ndarray:
        """Split positions ``[num_envs, >= slots]`` of the images of new episodes (column ``s`` is
        the image coded in slot ``s``; further columns are images the reward reads)."""
        raise NotImplementedError

    def positions_from_rows(self, rows: np.ndarray) -> np.ndarray:
        """Split positions ``[num_envs, slots]`` for images given as bank rows (``reset`` option).

        The default accepts ``[num_envs]`` or ``[num_envs, slots]`` rows of the env's split.
        """
        pos = self.rows_to_positions(rows, "indices")
        if pos.shape == (self.num_envs,):
            pos = pos[:, None]
        if pos.shape != (self.num_envs, self.slots):
            raise HashEnvError(
                f"indices must have shape ({self.num_envs},) or ({self.num_envs}, {self.slots}), "
                f"got {pos.shape}"
            )
        return pos

    def decode(self, actions: Any, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate a batch of ``n`` actions; return its bits ``[n, bits_per_step]`` uint8 and,
        for probability actions, the probabilities (else ``None``)."""
        raise NotImplementedError

    def reward(self, slot: int, step_in_image: int, probs: np.ndarray | None) -> np.ndarray:
        """Rewards ``[num_envs]`` float64 after the chunk at ``step_in_image`` of ``slot``."""
        raise NotImplementedError

    def on_episode_start(self) -> None:
        """Called once the new episodes' positions are set."""

    def on_episode_end(self) -> None:
        """Called when the last step of the episodes has been taken."""

    def info(self) -> dict[str, np.ndarray]:
        """Per-environment infos, each an array with the batch on axis 0."""
        return {"index": self.rows[self.positions[:, self.current_slot]]}

    # ------------------------------------------------------------------ shared machinery
    @property
    def current_slot(self) -> int:
        """The slot of the image the last observation shows."""
        if self.step_count >= self.episode_steps:
            return self.slots - 1
        return self.step_count // self.steps_per_image

    def rows_to_positions(self, rows: Any, name: str) -> np.ndarray:
        """Bank rows to positions in the env's split, with a clear error for foreign rows."""
        arr = np.asarray(rows)
        if not np.issubdtype(arr.dtype, np.integer):
            raise HashEnvError(f"{name} must be integer bank rows, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.bank.n):
            raise HashEnvError(f"{name} must be bank rows in 0..{self.bank.n - 1}")
        pos = self.position_of_row[arr]
        if (pos < 0).any():
            bad = int(arr[pos < 0].flat[0])
            raise HashEnvError(
                f"{name} must be rows of split {self.split!r}; row {bad} is not in it"
            )
        return pos

    def start(self, rows: Any = None) -> None:
        """Begin new episodes in every sub-environment, on sampled images or on ``rows``."""
        if self.rng is None:
            raise HashEnvError("call reset() before starting episodes")
        self.positions = self.sample() if rows is None else self.positions_from_rows(rows)
        self.bits.fill(0)
        self.signs.fill(0)
        self.step_count = 0
        self.load_features(self.positions[:, 0])
        self.started = True
        self.on_episode_start()

    def act(self, actions: Any) -> tuple[np.ndarray, bool]:
        """Apply one batch of actions; return the rewards and whether the episodes ended."""
        if not self.started or self.step_count >= self.episode_steps:
            raise HashEnvError("the episode has ended (or never started); call reset() first")
        chunk, probs = self.decode(actions, self.num_envs)
        slot, tau = divmod(self.step_count, self.steps_per_image)
        lo = tau * self.bits_per_step
        hi = lo + self.bits_per_step
        self.bits[:, slot, lo:hi] = chunk
        self.signs[:, lo:hi] = chunk
        self.signs[:, lo:hi] *= 2
        self.signs[:, lo:hi] -= 1
        self.step_count += 1
        rewards = self.reward(slot, tau, probs)
        done = self.step_count == self.episode_steps
        if done:
            self.on_episode_end()
        elif tau == self.steps_per_image - 1:  # the next image of the episode begins
            self.signs.fill(0)
            self.load_features(self.positions[:, slot + 1])
        return rewards, done

    def load_features(self, positions: np.ndarray) -> None:
        """Gather the features of the images at split ``positions`` into the other buffer.

        ``positions`` are trusted (sampled or validated), so the gather skips bounds checks
        (``mode="clip"``, which also lets :func:`numpy.take` write ``out`` unbuffered).
        """
        self.feature_buffer ^= 1
        buf = self.feature_buffers[self.feature_buffer]
        np.take(self.features, positions, axis=0, out=buf, mode="clip")
        self.slot_features = buf

    def code_observation(self, signs: np.ndarray, emitted: int) -> np.ndarray:
        """The ``code`` observation (a fresh float32 array) from ±1/0 ``signs``."""
        if self.window is None:
            return signs.copy()
        out = np.zeros((signs.shape[0], self.window), dtype=np.float32)
        keep = min(self.window, emitted)
        if keep:
            out[:, self.window - keep :] = signs[:, emitted - keep : emitted]
        return out

    def observe(self) -> ObsDict:
        """The current observations (see the module docstring for the aliasing guarantees)."""
        if self.step_count >= self.episode_steps:
            tau = self.steps_per_image
        else:
            tau = self.step_count % self.steps_per_image
        return {
            "features": self.slot_features,
            "code": self.code_observation(self.signs, tau * self.bits_per_step),
            "t": np.full((self.num_envs, 1), tau / self.steps_per_image, dtype=np.float32),
        }

    def action_masks(self, n: int) -> np.ndarray:
        """All-valid action masks ``[n, ...]`` in the layout sb3-contrib's MaskablePPO expects."""
        raise NotImplementedError

    def encode(self, act: ActFn, indices: Any = None, batch_size: int = 4096,
               bank: FeatureBank | None = None, prefix: int | None = None) -> np.ndarray:
        """Code images with a policy, without touching the episode state: ``[n, n_bits]`` uint8.

        Each image is coded in ``steps_per_image`` steps, exactly as in an episode (same
        observations, same action decoding), but no reward is computed, no memory is updated and
        no random number is drawn, so a deterministic policy gives deterministic codes. This is
        how a trained agent encodes the query and database splits.

        :param act: maps a batch of observations (the ``Dict`` layout, batch on axis 0) to a batch
            of actions, e.g. ``lambda obs: model.predict(obs, deterministic=True)[0]``. A
            recurrent policy should start a new sequence where ``obs["t"] == 0``.
        :param indices: bank rows to code (any split), in the order wanted; default: every image
            of the env's split, in bank order.
        :param batch_size: images coded per batch.
        :param bank: the bank whose rows ``indices`` names (then required), read in batches
            instead of the env's own; its observations must have the env's shape. This lets an
            env made over a small sample of a bank code all of it: an env's episode state grows
            with its split (hundreds of bytes per image for ``HierHash-v0``), coding does not.
        :param prefix: code only the first ``prefix`` bits, i.e. take only the first
            ``prefix / bits_per_step`` steps of every image (``[n, prefix]``; ``None``: all
            ``n_bits``). The chunks are emitted in order, so these are the first bits of the
            full code; ``prefix`` must be a positive multiple of ``bits_per_step``, at most
            ``n_bits``.
        """
        if prefix is None:
            prefix = self.n_bits
        elif not is_integer(prefix) or not 0 < prefix <= self.n_bits or prefix % self.bits_per_step:
            raise HashEnvError(
                f"prefix={prefix!r} must be a positive multiple of bits_per_step="
                f"{self.bits_per_step}, at most n_bits={self.n_bits} (the code is emitted "
                f"{self.bits_per_step} bits per step)")
        own = bank is None or bank is self.bank
        if not own:
            if indices is None:
                raise HashEnvError("encode(bank=...) needs indices: the rows of that bank to code")
            if bank.features.shape[1:] != self.bank.features.shape[1:]:
                raise HashEnvError(f"bank has {bank.features.shape[1]}-d features; the env's "
                                   f"observations are {self.bank.features.shape[1]}-d")
        source = self.bank if bank is None else bank
        rows = self.rows if indices is None else np.asarray(indices)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise HashEnvError(f"indices must be a 1-D array of bank rows, got {rows.dtype} {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= source.n):
            raise HashEnvError(f"indices must be bank rows in 0..{source.n - 1}")
        batch_size = check_int(batch_size, "batch_size", 1, HashEnvError)
        out = np.zeros((rows.size, prefix), dtype=np.uint8)
        bps, steps = self.bits_per_step, self.steps_per_image
        for start in range(0, rows.size, batch_size):
            chunk_rows = rows[start : start + batch_size]
            m = chunk_rows.size
            if (own and self._features is not None
                    and (pos := self.position_of_row[chunk_rows]).min() >= 0):
                feats = self._features[pos]  # already in memory for the episodes
            elif self.observation == "image":
                feats = bank_images(source, chunk_rows)
            else:  # a bounded read: memory-mapped banks stream
                feats = np.asarray(source.features[chunk_rows], dtype=np.float32)
            signs = np.zeros((m, self.n_bits), dtype=np.float32)
            for tau in range(prefix // bps):
                obs = {
                    "features": feats,
                    "code": self.code_observation(signs, tau * bps),
                    "t": np.full((m, 1), tau / steps, dtype=np.float32),
                }
                bits, _ = self.decode(act(obs), m)
                out[start : start + m, tau * bps : (tau + 1) * bps] = bits
                signs[:, tau * bps : (tau + 1) * bps] = bits.astype(np.float32) * 2 - 1
        return out


def _core_attribute(name: str, doc: str) -> property:
    """A read-only property that reads ``name`` from the environment's core."""
    return property(lambda self: getattr(self._core, name), doc=doc)


class _CoreAccess:
    """Public attributes shared by the single and the vector environments (read from the core)."""

    _core: CodingCore

    bank = _core_attribute("bank", "The feature bank the environment reads.")
    split = _core_attribute("split", "The split episodes draw their images from.")
    split_rows = _core_attribute(
        "rows", "Bank rows of the split in bank order: image ``i`` of per-image arrays."
    )
    n_bits = _core_attribute("n_bits", "Code length.")
    bits_per_step = _core_attribute("bits_per_step", "Bits emitted per step.")
    steps_per_image = _core_attribute("steps_per_image", "``T = n_bits / bits_per_step``.")
    episode_steps = _core_attribute("episode_steps", "The exact length of every episode.")

    @property
    def core(self) -> CodingCore:
        """The batched core this environment steps (a batch of one for the single env).

        For inspection: its episode state (``positions``, ``pool``, ``sampler``, ...) is what
        the environment observes and rewards. Changing it bypasses the environment's checks.
        """
        return self._core

    def encode(self, act: ActFn, indices: Any = None, batch_size: int = 4096,
               bank: FeatureBank | None = None, prefix: int | None = None) -> np.ndarray:
        """See :meth:`CodingCore.encode`."""
        return self._core.encode(act, indices, batch_size, bank, prefix)

    def _pinned_rows(self, seed: int | None, options: dict[str, Any] | None) -> Any:
        """After ``super().reset(seed=seed)``: check the reset options, reseed the core when a
        seed was given (or on first use) and return the pinned bank rows (``None`` if none)."""
        if options is not None and not isinstance(options, Mapping):
            raise HashEnvError(f"reset options must be a dict such as {{'indices': rows}} or "
                               f"None, got {type(options).__name__} {options!r}")
        options = dict(options or {})
        rows = options.pop("indices", None)
        if options:
            raise HashEnvError(f"unknown reset options {sorted(options)}; expected 'indices'")
        if seed is not None or self._core.rng is None:
            self._core.reseed(self.np_random)  # type: ignore[attr-defined]
        return rows


def _describe_action(space: spaces.Space) -> str:
    """What one env's action is, for messages."""
    if isinstance(space, spaces.Discrete):
        return f"one integer in 0..{int(space.n) - 1}"
    kind = "binary" if isinstance(space, spaces.MultiBinary) else "probability"
    return f"{math.prod(space.shape)} {kind} values"


class CodingEnv(_CoreAccess, gym.Env[ObsDict, Any]):
    """A :class:`gymnasium.Env` over a :class:`CodingCore` with a batch of one."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    #: The core class a subclass steps (with a batch of one).
    core_class: ClassVar[type[CodingCore]]

    def __init__(
        self, bank: FeatureBank | str | None = None, render_mode: str | None = None, **kwargs: Any
    ) -> None:
        if render_mode is not None:
            raise HashEnvError(f"render_mode={render_mode!r} is not supported (no rendering)")
        if kwargs.pop("num_envs", 1) != 1:
            raise HashEnvError(
                "num_envs is not an argument of the single env: for a batch of episodes use "
                "gymnasium.make_vec(env_id, num_envs=n, ...) or, for Stable-Baselines3, "
                "hashgym.envs.sb3.make_sb3_vec_env")
        self._core = core = self.core_class(bank, num_envs=1, **kwargs)
        self.observation_space = core.observation_space
        self.action_space = core.action_space
        self.render_mode = render_mode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsDict, dict[str, Any]]:
        """Start an episode; ``options={"indices": rows}`` pins its image(s) (bank rows)."""
        super().reset(seed=seed)
        rows = self._pinned_rows(seed, options)
        if rows is not None:
            rows = np.asarray(rows)[None]
        self._core.start(rows)
        return self._observation(), self._unbatch(self._core.info())

    def step(self, action: Any) -> tuple[ObsDict, float, bool, bool, dict[str, Any]]:
        """Emit one chunk of bits; see the class docstring for rewards and episode end."""
        action = np.asarray(action)
        expected = self.action_space.shape
        if action.shape != expected:  # the core's message would give the batch's shape
            raise HashEnvError(f"the action must be {_describe_action(self.action_space)} "
                               f"(shape {expected}), got an array of shape {action.shape}")
        rewards, done = self._core.act(action[None])
        return self._observation(), float(rewards[0]), done, False, self._unbatch(self._core.info())

    def action_masks(self) -> np.ndarray:
        """All actions are always valid: an all-True mask (for sb3-contrib's MaskablePPO)."""
        return self._core.action_masks(1)[0]

    def _observation(self) -> ObsDict:
        # Unlike the vector env, the single env copies ``features`` too: it costs little here.
        return {key: value[0].copy() for key, value in self._core.observe().items()}

    @staticmethod
    def _unbatch(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return {key: np.array(value[0]) if value.ndim > 1 else value[0]
                for key, value in batch.items()}


class CodingVectorEnv(_CoreAccess, VectorEnv[ObsDict, np.ndarray, np.ndarray]):
    """A :class:`gymnasium.vector.VectorEnv` over a :class:`CodingCore`, same-step autoreset.

    Every sub-environment starts together and episodes have a fixed length, so all of them end
    at the same step. That step returns the first observation of the next episodes, and
    ``info["final_obs"]`` (an object array of per-environment observation dicts) and
    ``info["final_info"]`` (a dict of batched arrays) describe the episodes that ended, each with
    its ``_final_obs`` / ``_final_info`` mask, following Gymnasium's
    :attr:`~gymnasium.vector.AutoresetMode.SAME_STEP` convention. Same-step autoreset wastes no
    step on resets (with next-step autoreset, one step in ``T + 1`` would be a no-op).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    #: The core class a subclass steps.
    core_class: ClassVar[type[CodingCore]]

    def __init__(
        self,
        num_envs: int = 1,
        bank: FeatureBank | str | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        if render_mode is not None:
            raise HashEnvError(f"render_mode={render_mode!r} is not supported (no rendering)")
        if max_episode_steps is not None:
            raise HashEnvError("max_episode_steps is not supported: episodes have a fixed length")
        self._core = core = self.core_class(bank, num_envs=num_envs, **kwargs)
        #: per feature buffer: its code buffer and the final-observation dicts viewing both
        self._final_rows: tuple[np.ndarray, list[list[dict[str, np.ndarray]]]] | None = None
        self.num_envs = core.num_envs
        self.render_mode = render_mode
        self.single_observation_space = core.observation_space
        self.observation_space = batch_space(core.observation_space, core.num_envs)
        self.single_action_space = core.action_space
        self.action_space = batch_space(core.action_space, core.num_envs)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsDict, dict[str, Any]]:
        """Start new episodes everywhere; ``options={"indices": rows}`` pins their images."""
        super().reset(seed=seed)
        self._core.start(self._pinned_rows(seed, options))
        return self._core.observe(), self._with_masks(self._core.info())

    def step(
        self, actions: Any
    ) -> tuple[ObsDict, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Emit one chunk of bits in every sub-environment (same-step autoreset at episode end)."""
        rewards, done = self._core.act(actions)
        n = self.num_envs
        terminated = np.full(n, done)
        truncated = np.zeros(n, dtype=bool)
        if not done:
            return self._core.observe(), rewards, terminated, truncated, self._with_masks(
                self._core.info()
            )
        final_obs = self._final_observations()
        final_info = self._with_masks(self._core.info())
        self._core.start()
        infos = self._with_masks(self._core.info())
        infos["final_obs"], infos["_final_obs"] = final_obs, np.ones(n, dtype=bool)
        infos["final_info"], infos["_final_info"] = final_info, np.ones(n, dtype=bool)
        return self._core.observe(), rewards, terminated, truncated, infos

    def action_masks(self) -> np.ndarray:
        """All-True action masks for every sub-environment (for sb3-contrib's MaskablePPO)."""
        return self._core.action_masks(self.num_envs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_final_rows"] = None  # views: rebuilt against the unpickled buffers
        return state

    def _final_observations(self) -> np.ndarray:
        """The ended episodes' last observations as Gymnasium's object array of per-env dicts.

        Called at the final step, before the next episodes start. Per feature buffer, the
        dicts of row views (``features`` of the buffer, ``code`` of its paired code buffer,
        ``t`` of a read-only array of ones) are built once; each call writes the final codes
        into the code buffer and returns shallow copies of the dicts (fresh dicts, the same
        views). Why: building them anew at every step was a quarter of a step's time
        (``benchmarks/results/notes/retrieval-speed-0.5.md``).
        """
        core = self._core
        if self._final_rows is None:
            ones = np.ones((self.num_envs, 1), dtype=np.float32)
            ones.setflags(write=False)
            code_dim = core.observation_space["code"].shape[0]
            code_buffers = np.zeros((len(core.feature_buffers), self.num_envs, code_dim),
                                    dtype=np.float32)
            dicts = [[{"features": f, "code": c, "t": t}
                      for f, c, t in zip(features, codes, ones, strict=True)]
                     for features, codes in zip(core.feature_buffers, code_buffers, strict=True)]
            self._final_rows = (code_buffers, dicts)
        code_buffers, dicts = self._final_rows
        np.copyto(code_buffers[core.feature_buffer],
                  core.code_observation(core.signs, core.steps_per_image * core.bits_per_step))
        return np.fromiter(map(dict.copy, dicts[core.feature_buffer]), dtype=object,
                           count=self.num_envs)

    def _with_masks(self, info: dict[str, np.ndarray]) -> dict[str, Any]:
        """Fresh copies of the batched infos, each with its all-True ``_key`` mask."""
        out: dict[str, Any] = {}
        for key, value in info.items():
            out[key] = value.copy()
            out[f"_{key}"] = np.ones(self.num_envs, dtype=bool)
        return out
