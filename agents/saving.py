"""Saving and loading trained agents without unpickling.

A hashgym model file is Stable-Baselines3's ``.zip`` (so SB3 tools that trust the file can read
it) with one extra member, ``hashgym.json``: the algorithm's registry name, the policy, every
constructor argument as JSON (classes as ``"module:name"`` strings), the observation and action
spaces, the env id and kwargs it was trained on and the run's progress. :func:`load_model`
rebuilds the model from that JSON and reads the weights with ``torch.load(weights_only=True)``
(:meth:`~stable_baselines3.common.base_class.BaseAlgorithm.set_parameters`); it never touches
the cloudpickled entries SB3 also stores, so loading a file from elsewhere runs no code from it.
Classes named in the JSON are imported only from hashgym, stable_baselines3, sb3_contrib and
torch.

Replay buffers are saved as ``.npz`` arrays (:func:`save_replay_buffer`), not SB3's pickle.
Everything is written through :func:`hashgym.atomic.atomic_write`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import math
import os
import pickle
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import open_path
from torch.overrides import TorchFunctionMode

from hashgym.agents.registry import ALGORITHMS, TrainError, load_target, resolve_algorithm
from hashgym.atomic import atomic_write
from hashgym.devices import check_device
from hashgym.errors import AgentError
from hashgym.npyfile import check_declared_sizes
from hashgym.validation import is_integer, json_depth

logger = logging.getLogger(__name__)

__all__ = [
    "BUILD_BUDGET",
    "MAX_INFO_DEPTH",
    "MODEL_INFO",
    "ModelFileError",
    "class_ref",
    "from_json",
    "load_model",
    "load_replay_buffer",
    "read_model_info",
    "resolve_class",
    "save_model",
    "save_replay_buffer",
    "sb3_zip_objects",
    "space_from_json",
    "space_to_json",
    "to_json",
]

#: The zip member holding hashgym's description of the model.
MODEL_INFO = "hashgym.json"
_FORMAT = 1
#: The packages whose classes a model file may name: the algorithms, policies and buffers of SB3
#: and sb3-contrib, torch's layers, activations and optimisers, and hashgym's agents. Nothing
#: else is imported, and never a module named ``__main__`` or a private one (``_name``), whose
#: import could run a program's top-level code.
_TRUSTED_PREFIXES = ("hashgym.agents.", "stable_baselines3.", "sb3_contrib.", "torch.nn.",
                     "torch.optim.")


#: This module's name for :class:`~hashgym.errors.AgentError` (an alias).
ModelFileError = AgentError


# ---------------------------------------------------------------------- classes and JSON
def class_ref(cls: type) -> str:
    """``"module:qualname"`` of a class (how classes are written in ``hashgym.json``)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _untrusted(module_name: str) -> str | None:
    """Why a model file may not name classes of ``module_name`` (``None``: it may)."""
    private = [part for part in module_name.split(".") if part.startswith("_")]
    if private:
        return (f"model files may not name classes in {private[0]!r} modules (importing one "
                f"could run its code)")
    if not (module_name + ".").startswith(_TRUSTED_PREFIXES):
        return (f"model files may only name classes from "
                f"{', '.join(p.rstrip('.') for p in _TRUSTED_PREFIXES)}")
    return None


def resolve_class(ref: str) -> type:
    """The class named by ``"module:qualname"``, imported only from trusted packages.

    The module must lie under hashgym.agents, stable_baselines3, sb3_contrib, torch.nn or
    torch.optim and be neither private nor a ``__main__``; the names after the colon may not be
    dunders (``__class__``); and what they lead to must be a class whose own module passes the
    same test (``hashgym.agents.saving:pickle.Unpickler`` reaches ``_pickle.Unpickler`` through
    a module-level import, and is refused).

    :raises ModelFileError: for a malformed name, an untrusted module, a dunder name, a missing
        class, something that is not a class, or a class from an untrusted module.
    """
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ModelFileError(f"class reference must look like 'module:Name', got {ref!r}")
    module_name, qualname = ref.split(":")
    reason = _untrusted(module_name)
    if reason is not None:
        raise ModelFileError(f"refusing to import {module_name!r}: {reason}")
    dunders = [part for part in qualname.split(".") if part.startswith("__")]
    if dunders:
        raise ModelFileError(f"refusing class reference {ref!r}: model files may not name "
                             f"dunder attributes ({dunders[0]!r})")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ModelFileError(f"cannot resolve class {ref!r}: {exc}") from exc
    if not isinstance(obj, type):
        raise ModelFileError(f"{ref!r} is not a class")
    home = getattr(obj, "__module__", None)
    reason = _untrusted(home) if isinstance(home, str) else "its module is unknown"
    if reason is not None:
        raise ModelFileError(f"refusing class reference {ref!r}: it leads to "
                             f"{home}:{obj.__qualname__}, and {reason}")
    return obj


def to_json(value: Any) -> Any:
    """Arguments as JSON: classes become ``{"class": "module:name"}``, tuples lists."""
    if isinstance(value, type):
        return {"class": class_ref(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelFileError(
        f"cannot store {type(value).__name__} {value!r} in a model file: pass JSON values or "
        f"classes as arguments (schedules and other callables are not supported)"
    )


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json` (classes resolved with :func:`resolve_class`)."""
    if isinstance(value, dict):
        if set(value) == {"class"}:
            return resolve_class(value["class"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A Dict/Box/Discrete/MultiDiscrete/MultiBinary space as JSON."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(),
                "shape": list(space.shape), "dtype": str(space.dtype)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": to_json(space.n)}
    raise ModelFileError(f"cannot store a {type(space).__name__} space in a model file")


def space_from_json(data: dict[str, Any]) -> spaces.Space:
    """The inverse of :func:`space_to_json`.

    :raises ModelFileError: for anything but a JSON object of a known space type.
    """
    if not isinstance(data, dict):
        raise ModelFileError(f"a space in a model file must be a JSON object, got {data!r}")
    kind = data.get("type")
    if kind not in ("Dict", "Box", "Discrete", "MultiDiscrete", "MultiBinary"):
        raise ModelFileError(f"unknown space type {kind!r} in model file")
    try:
        return _space_from_json(kind, data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"malformed {kind} space in model file ({type(exc).__name__}: "
                             f"{exc})") from exc


def _space_from_json(kind: str, data: dict[str, Any]) -> spaces.Space:
    """:func:`space_from_json` of a known ``kind``. A Box's bounds must hold one value per
    element of its shape, so its size is what the file holds, not only what it declares."""
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(s) for k, s in data["spaces"].items()})
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        shape = tuple(_positive_ints(data["shape"], "Box shape"))
        low, high = np.asarray(data["low"], dtype), np.asarray(data["high"], dtype)
        if low.shape != shape or high.shape != shape:
            raise ModelFileError(f"a Box space in the model file declares shape {shape} but its "
                                 f"bounds have shapes {low.shape} and {high.shape}")
        return spaces.Box(low, high, shape, dtype)
    if kind == "Discrete":
        (n,) = _positive_ints([data["n"]], "Discrete n")
        start = data.get("start", 0)
        if not is_integer(start):
            raise ModelFileError(f"Discrete start in the model file must be an integer, got "
                                 f"{start!r}")
        return spaces.Discrete(n, start=start)
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(_positive_ints(data["nvec"], "MultiDiscrete nvec"))
    n = data["n"]
    if isinstance(n, list):
        return spaces.MultiBinary(_positive_ints(n, "MultiBinary n"))
    return spaces.MultiBinary(_positive_ints([n], "MultiBinary n")[0])


def _positive_ints(values: Any, what: str) -> list[int]:
    """``values`` (a JSON list) if they are all positive integers; else :class:`ModelFileError`."""
    if not isinstance(values, list) or not all(
            is_integer(v) and v > 0 for v in values):
        raise ModelFileError(f"{what} in the model file must be positive integers, got "
                             f"{values!r}")
    return values


# ---------------------------------------------------------------------- models
def _model_bytes(model: Any) -> bytes:
    """``model.save`` into memory (falls back to a temporary file for path-only savers)."""
    buffer = io.BytesIO()
    try:
        model.save(buffer)
        return buffer.getvalue()
    except (TypeError, AttributeError):
        pass
    with tempfile.TemporaryDirectory(prefix="hashgym-save-") as tmp:
        target = Path(tmp) / "model.zip"
        model.save(str(target))
        if not target.exists():  # a saver that appended the suffix itself
            target = next(Path(tmp).iterdir())
        return target.read_bytes()


def save_model(model: Any, path: str | os.PathLike[str], info: dict[str, Any]) -> Path:
    """Save ``model`` (SB3 ``.zip``) with ``info`` as its ``hashgym.json``, atomically.

    :param model: an SB3 / sb3-contrib model, or any model with SB3's ``save``.
    :param path: the file to write (``.zip`` is not appended).
    :param info: JSON-able description: at least ``algo`` (registry name); :func:`load_model`
        also reads ``policy``, ``algo_kwargs``, ``observation_space`` and ``action_space``.
    :return: the path written.
    """
    data = _model_bytes(model)
    payload = json.dumps({"format": _FORMAT, **to_json(info)}, indent=2, sort_keys=True)
    buffer = io.BytesIO(data)
    try:
        with zipfile.ZipFile(buffer, mode="a") as archive:
            archive.writestr(MODEL_INFO, payload)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{type(model).__name__}.save did not write a zip file") from exc
    target = Path(path)
    with atomic_write(target) as handle:
        handle.write(buffer.getvalue())
    return target


#: The JSON types of ``hashgym.json`` entries that :func:`load_model` and
#: :func:`hashgym.agents.encode.encode` read, where present: a dotted key is an entry of an
#: entry (``algo_kwargs.policy_kwargs``).
_INFO_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "algo": ((str,), "a string (an algorithm's registry name)"),
    "algo_kwargs": ((dict,), "a JSON object (the algorithm's constructor arguments)"),
    "algo_kwargs.policy_kwargs": ((dict, type(None)),
                                  "a JSON object (the policy's arguments) or null"),
    "env_kwargs": ((dict,), "a JSON object (the env's arguments)"),
    "env_kwargs.bank": ((str, dict, type(None)),
                        "a bank path or preset name, an in-memory bank's record, or null"),
    "env_id": ((str,), "a string (a registered env id)"),
    "policy": ((str, dict), 'a policy name or {"class": "module:Name"}'),
    "num_timesteps": ((int,), "a non-negative integer (the steps trained)"),
    "flatten_obs": ((bool, type(None)), "true, false or null"),
    "observation_space": ((dict,), "a JSON object (a space)"),
    "action_space": ((dict,), "a JSON object (a space)"),
}
#: The deepest nesting of lists and objects a ``hashgym.json`` may have (hashgym writes a few
#: levels); deeper files are refused before Python's recursion limit is reached.
MAX_INFO_DEPTH = 100
_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def read_model_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``hashgym.json`` of a model file.

    :raises ModelFileError: if the path is missing, a folder or unreadable, the file is not a
        zip or not written by hashgym, or its ``hashgym.json`` is not a JSON object of the
        supported format with an ``algo`` name, is nested deeper than :data:`MAX_INFO_DEPTH`,
        or has an entry of another JSON type than :data:`_INFO_TYPES` gives for it (the
        message names the entry).
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file: give the model's .zip "
                             f"(a training run's folder holds it as model.zip)")
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise ModelFileError(f"cannot read model file {path}: permission denied")
    try:
        with zipfile.ZipFile(path) as archive:
            if MODEL_INFO not in archive.namelist():
                raise ModelFileError(
                    f"{path} has no {MODEL_INFO}: it was not saved by hashgym (an SB3 zip from "
                    f"elsewhere can be loaded with the algorithm's own .load if you trust it)"
                )
            raw = archive.read(MODEL_INFO)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{path} is not a model file (not a zip archive)") from exc
    except PermissionError as exc:
        raise ModelFileError(f"cannot read model file {path}: permission denied") from exc
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from exc
    try:
        info = json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelFileError(f"{path}: its {MODEL_INFO} is not valid JSON ({exc}); the file is "
                             f"damaged or was not written by hashgym") from exc
    except RecursionError:
        raise ModelFileError(f"{path}: its {MODEL_INFO} is nested more than {MAX_INFO_DEPTH} "
                             f"levels deep; the file is damaged or crafted") from None
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: its {MODEL_INFO} must hold a JSON object, got "
                             f"{_JSON_KINDS.get(type(info), type(info).__name__)}")
    if info.get("format") != _FORMAT or "algo" not in info:
        raise ModelFileError(f"{path}: unsupported {MODEL_INFO} (format {info.get('format')!r})")
    _check_info(path, info)
    return info


def _check_info(path: Path, info: dict[str, Any]) -> None:
    """Refuse a ``hashgym.json`` nested too deep or with an entry of the wrong JSON type
    (:data:`_INFO_TYPES`), naming the entry."""
    if json_depth(info) > MAX_INFO_DEPTH:
        raise ModelFileError(f"{path}: its {MODEL_INFO} is nested more than {MAX_INFO_DEPTH} "
                             f"levels deep; the file is damaged or crafted")
    for key, (kinds, what) in _INFO_TYPES.items():
        parent, _, child = key.rpartition(".")
        holder = info.get(parent) if parent else info
        if not isinstance(holder, dict) or child not in holder:
            continue
        value = holder[child]
        wrong = not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool))
        if key == "num_timesteps" and not wrong:
            wrong = value < 0
        if wrong:
            shown = repr(value)
            raise ModelFileError(f"{path}: {MODEL_INFO} entry {key!r} must be {what}, got "
                                 f"{shown[:80] + '…' if len(shown) > 80 else shown}")


def _without_backbone_weights(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Algorithm arguments with a CNN body's starting weights dropped (``None``): the model
    file's state dict holds the trained weights, so loading never needs the file (or the
    download) the body started from (:mod:`hashgym.agents.cnn`)."""
    policy_kwargs = kwargs.get("policy_kwargs")
    if not isinstance(policy_kwargs, dict):
        return kwargs
    policy_kwargs = dict(policy_kwargs)
    if policy_kwargs.get("backbone_weights") is not None:
        policy_kwargs["backbone_weights"] = None
    extractor = policy_kwargs.get("features_extractor_kwargs")
    if isinstance(extractor, dict) and extractor.get("weights") is not None:
        policy_kwargs["features_extractor_kwargs"] = {**extractor, "weights": None}
    return {**kwargs, "policy_kwargs": policy_kwargs}


def _model_class(path: Path | str | os.PathLike[str], algo: str) -> type:
    """The class of the algorithm a model file names, as :class:`ModelFileError` if unknown."""
    try:
        _, spec = resolve_algorithm(algo)
    except TrainError as exc:
        raise ModelFileError(
            f"{path}: {MODEL_INFO} names the unknown algorithm {algo!r}; known: "
            f"{', '.join(sorted(ALGORITHMS))} (an algorithm added with register_algorithm must "
            f"be registered again before its models load)") from exc
    try:
        return load_target(spec.target)
    except TrainError as exc:
        raise ModelFileError(f"{path}: cannot load a {algo} model: {exc}") from exc


def load_model(path: str | os.PathLike[str], device: str = "cpu",
               for_training: bool = False) -> tuple[Any, dict[str, Any]]:
    """Load a model saved by :func:`save_model`; return ``(model, info)``.

    SB3 / sb3-contrib models are rebuilt from ``hashgym.json`` and get their weights from the
    zip's ``.pth`` members (``torch.load(weights_only=True)``); models of other classes (the
    recurrent REINFORCE agent) are loaded with their own ``load``.

    Sizes that ``hashgym.json`` declares (layer widths, the number of actions) are trusted only
    as far as the weights file backs them: while the model is built, torch tensors may not add
    up to more than :data:`BUILD_BUDGET` times the values in its ``policy.pth`` (plus a
    mebibyte of values), so a file declaring ``net_arch=[10**12]`` is refused before anything
    is allocated, and a moderate but wrong width before tens of GB are.

    :param path: the model file.
    :param device: torch device.
    :param for_training: keep the saved replay-buffer size (else a one-transition buffer is
        allocated: enough to predict, and no memory wasted).
    :raises ModelFileError: naming the file, when it is missing, a folder, unreadable, not
        hashgym's, damaged, has an entry of the wrong type, declares sizes its weights do not
        back, names an unknown algorithm or an untrusted class, or its model cannot be rebuilt.
    :raises DeviceError: for a device this machine lacks (SB3 would load on the CPU instead).
    """
    check_device(device)
    info = read_model_info(path)
    cls = _model_class(path, info["algo"])
    budget = BUILD_BUDGET * _weight_count(path) + 2**20
    if not _is_sb3(cls) or not cls.__module__.startswith(("stable_baselines3.", "sb3_contrib.")):
        with _building(path, info["algo"], budget):  # hashgym's own agents load safely themselves
            model = cls.load(str(path), device=device)
        model.hashgym_info = info
        return model, info
    kwargs = _without_backbone_weights(dict(from_json(info.get("algo_kwargs", {}))))
    if not for_training and "buffer_size" in kwargs:
        kwargs["buffer_size"] = 1
    kwargs.pop("seed", None)
    policy = info.get("policy")
    if isinstance(policy, dict):
        if set(policy) != {"class"}:
            raise ModelFileError(f"{path}: {MODEL_INFO} entry 'policy' must be a policy name or "
                                 f"{{\"class\": \"module:Name\"}}, got {policy!r}")
        policy = resolve_class(policy["class"])
    try:
        model = cls(policy=policy, env=None, device=device, _init_setup_model=False, **kwargs)
        model.observation_space = space_from_json(info["observation_space"])
        model.action_space = space_from_json(info["action_space"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: cannot rebuild the {info['algo']} model: {exc}") from exc
    model.n_envs = 1
    # a few _setup_model()s read the spaces through self.env (SAC's "auto" target entropy)
    model.env = SimpleNamespace(observation_space=model.observation_space,
                                action_space=model.action_space, num_envs=1)
    try:
        with _building(path, info["algo"], budget):
            model._setup_model()
    finally:
        model.env = None
    with _reading_weights(path):
        model.set_parameters(str(path), exact_match=True, device=device)
    model.num_timesteps = int(info.get("num_timesteps", 0))
    model.hashgym_info = info
    return model, info


#: While a model file's model is built, its torch tensors may hold at most this many times the
#: values of its weights file (the policy and its target networks; optimiser state is created
#: later, when training).
BUILD_BUDGET = 4
#: torch's factory functions whose arguments give the shape of a new tensor.
_FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand,
                        torch.randn})


class _BuildBudget(TorchFunctionMode):
    """Counts the values of the tensors torch's factories create and refuses, before the
    allocation, one that takes the total beyond ``limit``."""

    def __init__(self, limit: int, refuse: Any) -> None:
        super().__init__()
        self.limit, self.refuse, self.total = limit, refuse, 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _FACTORIES:
            size = kwargs.get("size", args[0] if args else ())
            dims = (size if isinstance(size, (tuple, list, torch.Size))
                    else args if func is not torch.full else (size,))
            if all(isinstance(d, int) for d in dims):
                self.total += math.prod(dims)
                if self.total > self.limit:
                    self.refuse(tuple(dims), self.total, self.limit)
        return func(*args, **kwargs)


@contextlib.contextmanager
def _building(path: Path | str | os.PathLike[str], algo: str, limit: int) -> Iterator[None]:
    """Build a model file's model within :class:`_BuildBudget`; a model that cannot be built
    (a wrong argument type, memory) becomes :class:`ModelFileError` naming the file."""

    def refuse(shape: tuple[int, ...], total: int, allowed: int) -> None:
        raise ModelFileError(
            f"{path}: {MODEL_INFO} declares a larger model than its weights back: building it "
            f"would create a tensor of shape {shape}, {total:,} values in all so far, while the "
            f"weights file holds {(allowed - 2**20) // BUILD_BUDGET:,}; the file is damaged or "
            f"crafted (check the policy's net_arch and the spaces)")

    try:
        with _BuildBudget(limit, refuse):
            yield
    except ModelFileError:
        raise
    except (MemoryError, TypeError, ValueError, KeyError, AttributeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelFileError(f"{path}: cannot rebuild the {algo} model from {MODEL_INFO} "
                             f"({type(exc).__name__}: {first})") from exc


@contextlib.contextmanager
def _reading_weights(path: Path | str | os.PathLike[str]) -> Iterator[None]:
    """Turn the errors of reading a model file's weights into :class:`ModelFileError`."""
    try:
        yield
    except pickle.UnpicklingError as exc:
        raise ModelFileError(f"{path}: the model's weights are damaged or hold Python objects, "
                             f"which hashgym never unpickles (torch.load(weights_only=True) "
                             f"refused them)") from exc
    except ModelFileError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelFileError(f"{path}: the model's weights are damaged or not a model's "
                             f"({type(exc).__name__}: {first})") from exc


def _weight_count(path: Path | str | os.PathLike[str]) -> int:
    """The number of values in a model file's ``policy.pth`` (read with
    ``torch.load(weights_only=True)``, which unpickles nothing but tensors and containers)."""
    with _reading_weights(path), zipfile.ZipFile(path) as archive:
        if "policy.pth" not in archive.namelist():
            raise ModelFileError(f"{path} holds no policy weights (policy.pth): it is damaged "
                                 f"or not a model file")
        state = torch.load(io.BytesIO(archive.read("policy.pth")), map_location="cpu",
                           weights_only=True)
    count, stack = 0, [state]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            count += item.numel()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


def sb3_zip_objects(path: Any, policy_class: type, what: str) -> dict[str, Any]:
    """``custom_objects`` for SB3's ``BaseAlgorithm.load`` that replace every cloudpickled
    entry of an SB3 zip file, so that loading it unpickles nothing.

    The spaces come from the JSON descriptions the model saved beside them
    (``_observation_space_spec``, ``_action_space_spec``: :func:`space_to_json`), the policy
    class is ``policy_class``, a pickled ``learning_rate`` becomes the saved
    ``_initial_learning_rate``, and any other pickled entry ``None`` (with a warning).

    :param path: the model file (a path or an open binary file).
    :param policy_class: the policy class the model is loaded with.
    :param what: what the file should be, for messages (``"a RecurrentReinforce model"``).
    :raises ModelFileError: for a file that is not a zip, has no ``data`` entry, or lacks the
        space descriptions.
    """
    file = open_path(path, "r", verbose=0, suffix="zip")
    try:
        with zipfile.ZipFile(file) as archive:
            if "data" not in archive.namelist():
                raise ModelFileError(f"{path} holds no 'data' entry: not an SB3 model file")
            data = json.loads(archive.read("data").decode())
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{path} is not a zip file (not an SB3 model)") from exc
    except ModelFileError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFileError(f"{path}: its 'data' entry is not valid JSON ({type(exc).__name__}"
                             f"); the file is damaged or was not written by SB3") from exc
    finally:
        if not hasattr(path, "read"):
            file.close()
        else:
            file.seek(0)
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: its 'data' entry must hold a JSON object, got "
                             f"{_JSON_KINDS.get(type(data), type(data).__name__)}")
    for key in ("_observation_space_spec", "_action_space_spec"):
        if not isinstance(data.get(key), dict):
            raise ModelFileError(f"{path} is not {what} (no {key})")
    objects: dict[str, Any] = {
        "observation_space": space_from_json(data["_observation_space_spec"]),
        "action_space": space_from_json(data["_action_space_spec"]),
        "policy_class": policy_class,
    }
    if isinstance(data.get("policy_class"), dict):
        name = data["policy_class"].get(":type:", "")
        if policy_class.__name__ not in str(data["policy_class"]) and name:
            logger.warning("model %s names policy class %s; loading %s", path, name,
                           policy_class.__name__)
    for key, value in data.items():
        if key in objects or not (isinstance(value, dict) and ":serialized:" in value):
            continue
        if key == "learning_rate":
            objects[key] = data.get("_initial_learning_rate", 1e-3)
        else:
            logger.warning("not unpickling %r from %s; it is set to None", key, path)
            objects[key] = None
    if isinstance(data.get("policy_kwargs"), dict):  # the saved state dict holds the weights
        objects["policy_kwargs"] = _without_backbone_weights(
            {"policy_kwargs": data["policy_kwargs"]})["policy_kwargs"]
    return objects


def _is_sb3(cls: type) -> bool:

    return issubclass(cls, BaseAlgorithm)


# ---------------------------------------------------------------------- replay buffers
def save_replay_buffer(buffer: Any, path: str | os.PathLike[str]) -> Path:
    """Save an SB3 (Dict)ReplayBuffer's filled part as ``.npz`` (no pickle), atomically."""
    n = buffer.buffer_size if buffer.full else buffer.pos
    arrays: dict[str, np.ndarray] = {
        "pos": np.asarray(buffer.pos), "full": np.asarray(buffer.full),
        "buffer_size": np.asarray(buffer.buffer_size), "n_envs": np.asarray(buffer.n_envs),
    }
    for name in ("actions", "rewards", "dones", "timeouts"):
        arrays[name] = getattr(buffer, name)[:n]
    for name in ("observations", "next_observations"):
        value = getattr(buffer, name, None)
        if isinstance(value, dict):
            for key, arr in value.items():
                arrays[f"{name}.{key}"] = arr[:n]
        elif value is not None:
            arrays[name] = value[:n]
    target = Path(path)
    with atomic_write(target) as handle:
        np.savez(handle, **arrays)
    return target


def load_replay_buffer(buffer: Any, path: str | os.PathLike[str]) -> None:
    """Fill ``buffer`` (already allocated with the same sizes) from :func:`save_replay_buffer`.

    :raises ModelFileError: if the saved buffer does not fit ``buffer``, or an array declares
        more bytes than the file holds.
    """
    check_declared_sizes(path, ModelFileError, "replay buffer")
    with np.load(path, allow_pickle=False) as data:
        if int(data["buffer_size"]) != buffer.buffer_size or int(data["n_envs"]) != buffer.n_envs:
            raise ModelFileError(
                f"replay buffer {path} holds {int(data['buffer_size'])} x {int(data['n_envs'])} "
                f"slots, the model's has {buffer.buffer_size} x {buffer.n_envs}"
            )
        for key in data.files:
            if key in ("pos", "full", "buffer_size", "n_envs"):
                continue
            name, _, sub = key.partition(".")
            target = getattr(buffer, name)
            target = target[sub] if sub else target
            values = data[key]
            if values.shape[1:] != target.shape[1:]:
                raise ModelFileError(f"replay buffer {path}: {key} has shape {values.shape}, "
                                     f"expected (*, {', '.join(map(str, target.shape[1:]))})")
            target[: len(values)] = values
        buffer.pos = int(data["pos"])
        buffer.full = bool(data["full"])
