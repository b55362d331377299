"""A trained agent as a hash function: code every image of a bank split with its policy.

:func:`encode` rolls out the agent's **deterministic** policy (greedy Q-values for DQN, the mode
of the action distribution for policy-gradient agents, the 0.5 threshold of SCIHCGRL eq. (9) for
the recurrent REINFORCE agent) through the environment's batched
:meth:`~hashgym.envs.core.CodingCore.encode`: thousands of images per forward pass, ``T`` passes
per batch, the same observations and action decoding as in training, no reward, no random draw.
Recurrent policies (RecurrentPPO, the REINFORCE agent) get a fresh hidden state at the first step
of every image (``obs["t"] == 0``) and carry it through the image's steps.

:func:`hashgym.codefile.save_codes` / :func:`hashgym.codefile.load_codes` store the codes as
``.npz`` (atomic write, no pickle) with the bank rows, the split of each row, the labels and a
JSON ``meta`` (bank provenance and the model's description).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hashgym.agents.fast_act import greedy_q_act, recurrent_act
from hashgym.agents.flatten import flatten_observation
from hashgym.agents.reinforce.policy import RecurrentHashPolicy
from hashgym.agents.saving import load_model
from hashgym.bank import QUERY, FeatureBank
from hashgym.envs.sb3 import native_vector_env
from hashgym.errors import AgentError
from hashgym.protocols import is_bank_path, resolve_bank
from hashgym.validation import is_integer

__all__ = ["EncodeError", "check_prefix", "coding_sample", "encode", "encode_features",
           "encode_with_env", "policy_act", "prefix_unit", "recorded_bank"]

SPLITS = ("query", "database", "train", "all")
#: Env arguments that change the shape of observations or actions (all :func:`encode` keeps).
_SHAPE_KWARGS = ("n_bits", "bits_per_step", "window", "action_type", "observation")
#: Recorded env arguments a coding env also takes: without them it may not build
#: (``CentralHash-v0``'s 100 centres of 12 or 16 bits exist only at ``min_distance="auto"``),
#: though they do not change the codes.
_BUILD_KWARGS = ("min_distance", "center_seed")
#: Training images per class of the small bank :func:`encode`'s env is made over
#: (:func:`coding_sample`).
SAMPLE_PER_CLASS = 2
#: Rows :func:`coding_sample` reads at a time.
_SAMPLE_BLOCK = 1 << 16


#: This module's name for :class:`~hashgym.errors.AgentError` (an alias).
EncodeError = AgentError


def policy_act(model: Any, flatten: bool | None = None) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """The deterministic policy of ``model`` as ``act(obs_batch) -> actions`` for ``env.encode``.

    The hidden state of a recurrent model restarts where ``obs["t"] == 0`` and is carried
    between the steps of an image otherwise; non-recurrent models ignore it.

    :param model: anything with SB3's ``predict(obs, state, episode_start, deterministic)``.
    :param flatten: feed flat ``[features, code, t]`` rows (models trained through
        :class:`~hashgym.agents.flatten.FlattenDictObs`); default: when the model's
        observation space is a ``Box``.
    """
    if flatten is None:
        flatten = isinstance(getattr(model, "observation_space", None), spaces.Box)
    fast = None if flatten else (greedy_q_act(model) or recurrent_act(model))
    if fast is not None:
        return fast
    state: Any = None

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        nonlocal state
        starts = obs["t"][:, 0] == 0
        if starts.all():
            state = None
        if flatten:

            inputs: Any = flatten_observation(obs)
        else:
            inputs = obs
        actions, state = model.predict(inputs, state=state, episode_start=starts,
                                       deterministic=True)
        return actions

    return act


def encode_with_env(model: Any, venv: Any, indices: Any = None, batch_size: int = 8192) -> np.ndarray:
    """Codes ``[n, n_bits]`` uint8 of ``indices`` (default: the env's split) with ``venv``'s encoder.

    :param model: the agent.
    :param venv: a hashgym vector env, or an SB3 vector env over one (wrappers are looked
        through).
    :param indices: bank rows, in the order wanted.
    :param batch_size: images per batch.
    """
    env = venv if hasattr(venv, "encode") and not hasattr(venv, "venv") else (
        native_vector_env(venv))
    return env.encode(policy_act(model), indices=indices, batch_size=batch_size)


def _infer_env(model: Any) -> tuple[str, dict[str, Any]]:
    """The env id and shape kwargs a model without hashgym info was trained on, from its spaces."""
    obs_space = getattr(model, "observation_space", None)
    act_space = getattr(model, "action_space", None)
    if isinstance(obs_space, spaces.Dict) and "code" in obs_space.spaces:
        n_bits = int(obs_space["code"].shape[0])
    else:
        raise EncodeError(
            "cannot tell which env this model was trained on: pass env_id= and env_kwargs= "
            "(n_bits, bits_per_step, ...), or use a model trained by hashgym.agents.train"
        )
    if isinstance(act_space, spaces.Discrete):
        bits = round(math.log2(int(act_space.n)))
        return "HierHash-v0", {"n_bits": n_bits, "bits_per_step": bits}
    if isinstance(act_space, spaces.MultiBinary):
        return "CentralHash-v0", {"n_bits": n_bits, "bits_per_step": int(np.prod(act_space.n))}
    if isinstance(act_space, spaces.Box):
        return "CentralHash-v0", {"n_bits": n_bits, "bits_per_step": int(act_space.shape[0]),
                                  "action_type": "probability"}
    raise EncodeError(f"cannot infer the env of a model with action space {act_space}")


def _check_observations_fit(model: Any, env_space: Any) -> None:
    """Refuse, by name, a bank or env whose observations the model was not built for (a 128-d
    model on a 512-d bank would otherwise fail deep inside torch)."""
    model_space = getattr(model, "observation_space", None)
    if not isinstance(model_space, spaces.Dict) or not isinstance(env_space, spaces.Dict):
        return
    for key in ("features", "code"):
        if key in model_space.spaces and key in env_space.spaces:
            want, got = model_space[key].shape, env_space[key].shape
            if len(got) == 3 and want == (got[2], got[0], got[1]):
                continue  # images: SB3 moved the model's channels first (VecTransposeImage)
            if want != got:
                what = (f"a {want[0]}-entry code observation; this env gives {got[0]}"
                        if key == "code" else
                        f"{_describe(want)}; this env gives {_describe(got)}")
                raise EncodeError(f"the model was trained on {what}: pass the bank it was "
                                  f"trained on, or one with the same features (and the same "
                                  f"observation='features' or 'image')")


def _describe(shape: tuple[int, ...]) -> str:
    return f"{shape[0]}-d features" if len(shape) == 1 else f"images of shape {shape}"


def recorded_bank(info: dict[str, Any], model_path: str | os.PathLike[str] | None = None,
                  flag: str = "bank=") -> Any:
    """The bank a model was trained on, as its ``hashgym.json`` records it, for coding without
    naming the bank again.

    A preset name is returned as it is. A file path is looked for where it was given (relative
    to the current folder), then at ``bank_path`` (the absolute path recorded at training), then
    relative to the model file's folder: a model trained with ``--bank bank.npz`` can be coded
    from any folder while the bank stays where it was.

    :param info: the model's ``hashgym.json``.
    :param model_path: the model file, for the last place looked at and the message.
    :param flag: how the caller's override is spelled, for the message (``--bank``).
    :raises EncodeError: for an in-memory bank, or a bank file found in none of those places;
        the message says where the path came from and how to override it.
    """
    spec = info.get("env_kwargs", {}).get("bank")
    if isinstance(spec, dict):
        raise EncodeError(f"the model was trained on an in-memory bank: pass {flag}")
    if spec is None or not is_bank_path(spec) or Path(spec).is_file():
        return spec
    places = [Path(spec)]
    if info.get("bank_path"):
        places.append(Path(info["bank_path"]))
    if model_path is not None and not Path(spec).is_absolute():
        places.append(Path(model_path).parent / spec)
    for place in places[1:]:
        if place.is_file():
            return str(place)
    looked = ", ".join(str(p.absolute()) for p in places)
    raise EncodeError(f"the model's bank {spec!r} (recorded in its hashgym.json as "
                      f"env_kwargs.bank, as given at training) is not found; looked at {looked}. "
                      f"Pass {flag} with the bank's path")


def encode(
    model: Any,
    bank: FeatureBank | str | os.PathLike[str] | None = None,
    split: str = "query",
    *,
    indices: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 8192,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    bits: int | None = None,
) -> np.ndarray:
    """Code every image of a bank split with the agent's deterministic policy.

    Nested codes: an agent that emits its code in order (a chunk of ``bits_per_step`` bits per
    step on ``HierHash-v0``, or on ``CentralHash-v0`` with ``bits_per_step < n_bits``; one bit
    per iteration of its RNN for the recurrent REINFORCE agent, whatever ``bits_per_step``)
    decides its first bits before it sees its later ones, so the first ``K`` bits of its code
    are a ``K``-bit code of their own: ``bits=K`` returns them, and one 64-bit model serves
    12, 24, 32 and 48 bits too. The env stops after the steps that emit them (a 12-bit prefix
    of a 64-bit DQN at 4 bits per step costs 3 of its 16 steps). :func:`prefix_unit` gives the
    chunk every ``K`` must be a multiple of.

    :param model: a trained model (from :func:`hashgym.agents.train.train`, any SB3 model, the
        REINFORCE agent) or the path of a model file saved by hashgym.
    :param bank: the bank (object, path or preset name); default: the bank the model was trained
        on, when it was given by name or path.
    :param split: ``"query"``, ``"database"``, ``"train"`` or ``"all"`` (every row, bank order).
    :param indices: bank rows to code instead of a split, in the order wanted.
    :param batch_size: images per forward pass.
    :param env_id: the env the model acts in; default: recorded in the model (or inferred from
        its spaces).
    :param env_kwargs: the env's shape arguments (``n_bits``, ``bits_per_step``, ``window``,
        ``action_type``); default: recorded in the model (or inferred).
    :param device: torch device when ``model`` is a path.
    :param bits: code with only the first ``bits`` bits of the model's code (a positive
        multiple of :func:`prefix_unit`, at most the model's length); ``None``: all of them.
    :return: ``[n, n_bits]`` (or ``[n, bits]``) uint8 0/1 codes, rows in the split's bank order
        (or ``indices``'s).
    :raises EncodeError: for a ``bits`` longer than the model's code or not a multiple of its
        chunk.
    """
    if split not in SPLITS:
        raise EncodeError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    model, env, bank_obj, flatten = _coding_env(model, bank, env_id, env_kwargs, device)
    if indices is not None:
        rows = np.asarray(indices)
    elif split == "all":
        rows = np.arange(bank_obj.n)
    else:
        rows = bank_obj.indices(split)
    prefix = None if bits is None else check_prefix(bits, env.n_bits, prefix_unit(model, env))
    # the env stops after the steps that emit the prefix; a chunk larger than the prefix's unit
    # (the REINFORCE agent's whole code in one step) is coded in full and cut
    steps_prefix = prefix if prefix is not None and prefix % env.bits_per_step == 0 else None
    codes = env.encode(policy_act(model, flatten), indices=rows, batch_size=batch_size,
                       bank=bank_obj, prefix=steps_prefix)
    return codes if prefix is None else np.ascontiguousarray(codes[:, :prefix])


def encode_features(
    model: Any,
    features: np.ndarray,
    bank: FeatureBank | str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 8192,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Code feature vectors that are no bank's rows, e.g. a new picture's
    (:func:`hashgym.embed.embed_pictures`), as :func:`encode` codes a bank's.

    The rows are coded by the same env and policy as the bank's own: a feature vector equal to
    a bank row's gets that row's code.

    :param model: as in :func:`encode`.
    :param features: ``[n, D]`` features, ``D`` the bank's feature size; they are rounded to
        the bank's feature dtype first, as the bank's own features were.
    :param bank: the bank the model codes (object, path or preset name); default: the bank the
        model was trained on. Its layout and first images set up the env; its rows are not
        coded.
    :param batch_size, env_id, env_kwargs, device: as in :func:`encode`.
    :return: ``[n, n_bits]`` uint8 0/1 codes, in the order of ``features``.
    :raises EncodeError: for features of the wrong shape, or a model that observes images.
    """
    model, env, bank_obj, flatten = _coding_env(model, bank, env_id, env_kwargs, device)
    if len(env.single_observation_space["features"].shape) != 1:
        raise EncodeError("the model observes images (observation='image'), not features: "
                          "encode_features codes feature vectors only")
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != bank_obj.dim or not len(features):
        raise EncodeError(f"features must be [n >= 1, {bank_obj.dim}] (the bank's feature "
                          f"size), got shape {features.shape}")
    sample = coding_sample(bank_obj)
    n, m = sample.n, len(features)
    # the sample's rows with the new vectors after them: coding reads features only, so the
    # new rows borrow the first row's labels to make a valid bank
    carrier = FeatureBank(
        features=np.concatenate([sample.features, features.astype(sample.features.dtype)]),
        labels=np.concatenate([sample.labels, np.repeat(sample.labels[:1], m, axis=0)]),
        class_names=sample.class_names,
        split=np.concatenate([sample.split, np.full(m, QUERY, dtype=sample.split.dtype)]),
        train=None if sample.train is None else np.concatenate([sample.train,
                                                                np.zeros(m, dtype=bool)]),
        multi_hot=None if sample.multi_hot is None else np.concatenate(
            [sample.multi_hot, np.repeat(sample.multi_hot[:1], m, axis=0)]),
        concept_names=sample.concept_names,
        level_names=sample.level_names,
    )
    return env.encode(policy_act(model, flatten), indices=np.arange(n, n + m),
                      batch_size=batch_size, bank=carrier)


def _coding_env(model: Any, bank: FeatureBank | str | os.PathLike[str] | None,
                env_id: str | None, env_kwargs: dict[str, Any] | None, device: str
                ) -> tuple[Any, Any, FeatureBank, bool | None]:
    """The model, a coding env over a sample of its bank (:func:`coding_sample`), the bank, and
    whether to flatten observations: what :func:`encode` and :func:`encode_features` share."""
    info: dict[str, Any] = {}
    model_path = None
    if isinstance(model, (str, os.PathLike)):
        model_path = model
        model, info = load_model(model, device=device)
    else:
        info = dict(getattr(model, "hashgym_info", None) or {})
    if env_id is None and "env_id" in info:
        env_id = info["env_id"]
        recorded = info.get("env_kwargs", {})
        env_kwargs = {**{k: recorded[k] for k in (*_SHAPE_KWARGS, *_BUILD_KWARGS)
                         if k in recorded},
                      **(env_kwargs or {})}
        if bank is None:
            bank = recorded_bank(info, model_path)
            for key in ("protocol", "protocol_seed"):
                if key in recorded:
                    env_kwargs.setdefault(key, recorded[key])
    elif env_id is None:
        env_id, inferred = _infer_env(model)
        env_kwargs = {**inferred, **(env_kwargs or {})}
    env_kwargs = dict(env_kwargs or {})
    env_kwargs.pop("split", None)
    bank_obj = resolve_bank(bank, protocol=env_kwargs.pop("protocol", None),
                            seed=env_kwargs.pop("protocol_seed", 0))
    env = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point",
                       bank=coding_sample(bank_obj), split="train", **env_kwargs)
    _check_observations_fit(model, env.single_observation_space)
    return model, env, bank_obj, info.get("flatten_obs")


def prefix_unit(model: Any, env: Any) -> int:
    """The chunk, in bits, that ``model`` emits its code in, in order, in ``env`` (a hashgym
    env, or anything with its ``bits_per_step``): the bits every prefix
    (:func:`encode`'s ``bits``) is a multiple of.

    ``bits_per_step`` for every agent (each step's chunk is emitted after the previous ones,
    which it sees in the ``code`` observation), except the recurrent REINFORCE agent
    (:class:`~hashgym.agents.reinforce.policy.RecurrentHashPolicy`), whose RNN emits one bit
    per iteration from the bits before it: 1. An agent that emits its whole code in one step
    (``CentralHash-v0``'s default ``bits_per_step = n_bits``, other than REINFORCE) has no
    shorter prefix.
    """
    if isinstance(getattr(model, "policy", None), RecurrentHashPolicy):
        return 1
    return int(env.bits_per_step)


def check_prefix(bits: Any, n_bits: int, unit: int) -> int:
    """``bits`` as a prefix length of an ``n_bits`` code emitted ``unit`` bits at a time.

    :raises EncodeError: unless ``bits`` is a positive integer multiple of ``unit``, at most
        ``n_bits``, each case named.
    """
    if not is_integer(bits) or bits < 1:
        raise EncodeError(f"bits must be a positive number of bits, got {bits!r}")
    if bits > n_bits:
        raise EncodeError(f"bits={bits} is longer than the model's {n_bits}-bit code: a prefix "
                          f"has at most {n_bits} bits")
    if bits % unit:
        whole = (" (the model emits its whole code in one step: its bits are not emitted in "
                 "order)" if unit == n_bits else "")
        raise EncodeError(f"bits={bits} is not a multiple of the model's chunk of {unit} bits"
                          f"{whole}: a prefix is a whole number of the chunks the model emits "
                          f"in order (multiples of {unit} up to {n_bits})")
    return int(bits)


def coding_sample(bank: FeatureBank, per_class: int = SAMPLE_PER_CLASS) -> FeatureBank:
    """The small bank :func:`encode` makes its env over: the first ``per_class`` training images
    of every finest class (of every concept for a multi-label bank) and the first query image.

    An env's episode state grows with its split (``HierHash-v0`` keeps a code memory, class
    statistics and constraint pools of its training images: about 240 bytes per image, and 800
    at its peak while being built), while coding only needs the observation and action layout;
    the env then codes the rows of ``bank`` itself (:meth:`hashgym.envs.core.CodingCore.encode`
    with ``bank=``), so the memory :func:`encode` needs beyond its codes does not grow with the
    bank (``benchmarks/results/bench_scale_encode.txt``). The bank is read in blocks of
    :data:`_SAMPLE_BLOCK` rows until every class and concept has its images, so coding a large
    bank range by range does not rescan it at every call.

    :param bank: the bank to code.
    :param per_class: training images kept per class (2: a positive for every anchor).
    """
    classes = np.zeros(bank.n_classes[-1] if bank.n_levels else 0, dtype=np.int64)
    concepts = np.zeros(0 if bank.multi_hot is None else bank.multi_hot.shape[1], dtype=np.int64)
    parts: list[np.ndarray] = []
    query_found = False
    for start in range(0, bank.n, _SAMPLE_BLOCK):
        stop = min(bank.n, start + _SAMPLE_BLOCK)
        rows = np.arange(start, stop)
        if not query_found:
            parts.append(rows[bank.split[start:stop] == QUERY][:1])
            query_found = parts[-1].size > 0
        train = rows[bank.train_mask_in(slice(start, stop))]
        if classes.size:
            parts.append(_first_of_each(train, bank.labels[train, -1], classes, per_class))
        for c in range(concepts.size):
            hot = train[np.asarray(bank.multi_hot[train, c]) > 0]
            parts.append(hot[: max(0, per_class - concepts[c])])
            concepts[c] += parts[-1].size
        if query_found and (classes >= per_class).all() and (concepts >= per_class).all():
            break
    keep = np.unique(np.concatenate(parts))
    return bank if keep.size == bank.n else bank.take(keep)


def _first_of_each(rows: np.ndarray, labels: np.ndarray, counts: np.ndarray,
                   per_class: int) -> np.ndarray:
    """The ``rows`` (in order) that bring each class's ``counts`` up to ``per_class``; updates
    ``counts`` in place."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    first = np.searchsorted(sorted_labels, sorted_labels)  # each row's rank within its class
    rank = np.arange(order.size) - first + counts[sorted_labels]
    taken = order[rank < per_class]
    np.add.at(counts, labels[taken], 1)
    return rows[np.sort(taken)]
