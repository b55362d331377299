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

import importlib
import io
import json
import logging
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from gymnasium import spaces
from hashgym.agents.registry import ALGORITHMS, TrainError, load_target, resolve_algorithm
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import open_path

from hashgym.atomic import atomic_write
from hashgym.devices import check_device
from hashgym.errors import HashgymError

logger = logging.getLogger(__name__)

__all__ = [
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


class ModelFileError(HashgymError):
    """A model, checkpoint or replay-buffer file is missing, malformed or not hashgym's."""


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
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(s) for k, s in data["spaces"].items()})
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        return spaces.Box(np.asarray(data["low"], dtype), np.asarray(data["high"], dtype),
                          tuple(data["shape"]), dtype)
    if kind == "Discrete":
        return spaces.Discrete(data["n"], start=data.get("start", 0))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(data["nvec"])
    if kind == "MultiBinary":
        return spaces.MultiBinary(data["n"])
    raise ModelFileError(f"unknown space type {kind!r} in model file")


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


#: The JSON types of ``hashgym.json`` entries that :func:`load_model` reads, where present.
_INFO_TYPES: dict[str, tuple[type, str]] = {
    "algo": (str, "a string (an algorithm's registry name)"),
    "algo_kwargs": (dict, "a JSON object (the algorithm's constructor arguments)"),
    "env_kwargs": (dict, "a JSON object (the env's arguments)"),
}
_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def read_model_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``hashgym.json`` of a model file.

    :raises ModelFileError: if the file is missing, not a zip, not written by hashgym, or its
        ``hashgym.json`` is not a JSON object of the supported format with an ``algo`` name
        (and, where present, ``algo_kwargs`` and ``env_kwargs`` objects).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
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
    try:
        info = json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelFileError(f"{path}: its {MODEL_INFO} is not valid JSON ({exc}); the file is "
                             f"damaged or was not written by hashgym") from exc
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: its {MODEL_INFO} must hold a JSON object, got "
                             f"{_JSON_KINDS.get(type(info), type(info).__name__)}")
    if info.get("format") != _FORMAT or "algo" not in info:
        raise ModelFileError(f"{path}: unsupported {MODEL_INFO} (format {info.get('format')!r})")
    for key, (kind, what) in _INFO_TYPES.items():
        if key in info and not isinstance(info[key], kind):
            raise ModelFileError(f"{path}: {MODEL_INFO} entry {key!r} must be {what}, got "
                                 f"{info[key]!r}")
    return info


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

    :param path: the model file.
    :param device: torch device.
    :param for_training: keep the saved replay-buffer size (else a one-transition buffer is
        allocated: enough to predict, and no memory wasted).
    :raises ModelFileError: naming the file, when it is missing, not hashgym's, damaged, names an
        unknown algorithm or an untrusted class, or its model cannot be rebuilt.
    :raises DeviceError: for a device this machine lacks (SB3 would load on the CPU instead).
    """
    check_device(device)
    info = read_model_info(path)
    cls = _model_class(path, info["algo"])
    if not _is_sb3(cls) or not cls.__module__.startswith(("stable_baselines3.", "sb3_contrib.")):
        model = cls.load(str(path), device=device)  # hashgym's own agents load safely themselves
        model.hashgym_info = info
        return model, info
    kwargs = _without_backbone_weights(dict(from_json(info.get("algo_kwargs", {}))))
    if not for_training and "buffer_size" in kwargs:
        kwargs["buffer_size"] = 1
    kwargs.pop("seed", None)
    try:
        model = cls(policy=info["policy"], env=None, device=device, _init_setup_model=False,
                    **kwargs)
        model.observation_space = space_from_json(info["observation_space"])
        model.action_space = space_from_json(info["action_space"])
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: cannot rebuild the {info['algo']} model: {exc}") from exc
    model.n_envs = 1
    # a few _setup_model()s read the spaces through self.env (SAC's "auto" target entropy)
    model.env = SimpleNamespace(observation_space=model.observation_space,
                                action_space=model.action_space, num_envs=1)
    try:
        model._setup_model()
    finally:
        model.env = None
    try:
        model.set_parameters(str(path), exact_match=True, device=device)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(f"{path}: the model's weights are damaged or hold Python objects, "
                             f"which hashgym never unpickles (torch.load(weights_only=True) "
                             f"refused them)") from exc
    except (RuntimeError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelFileError(f"{path}: the model's weights are damaged or not a model's "
                             f"({type(exc).__name__}: {first})") from exc
    model.num_timesteps = int(info.get("num_timesteps", 0))
    model.hashgym_info = info
    return model, info


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
    finally:
        if not hasattr(path, "read"):
            file.close()
        else:
            file.seek(0)
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

    :raises ModelFileError: if the saved buffer does not fit ``buffer``.
    """
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
