"""One run's settings, in one schema: :class:`RunConfig`.

The same keys serve every place a run is described:

* ``hashgym train --config FILE`` reads a file of them (the command line's options override it);
* :func:`hashgym.agents.train.train` writes them, resolved, to the run's ``config.json``, so
  ``hashgym train --config RUN/config.json --out OTHER`` trains that run again (same seed, same
  codes);
* ``hashgym tune`` searches a space whose top-level keys are these, and writes the best trial
  as a file of them (``best.json``);
* a benchmark suite's agent rows (:mod:`hashgym.benchmarks.suites`) give them as their
  ``params`` (beside the benchmark's own ``learning_curve``, ``curve_points`` and ``device``).

The keys are :func:`~hashgym.agents.train.train`'s arguments: ``algo``, ``env_id``,
``env_kwargs`` (the bank, its ``protocol`` and every env argument), ``algo_kwargs``,
``policy``, ``levels``, ``total_timesteps`` or ``level_timesteps``, ``n_constraints`` or
``triplets_per_image``, ``num_envs``, ``memory_refresh`` and ``seed``.

Older files used other names; they are still read: ``env`` is ``env_id``, ``timesteps`` is
``total_timesteps``, and a top-level ``bank`` or ``protocol`` is an entry of ``env_kwargs``.
A ``config.json`` also holds what the run recorded about itself (:data:`RECORD_KEYS`: the bank's
resolved path, the spaces, the resolved code shape); reading it takes the bank from
``bank_path`` and pins the code shape the run had (``resolved``'s ``n_bits`` and
``bits_per_step``), and ignores the rest.

This module imports no torch or SB3 (the ``hashgym`` command reads configs at start-up).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashgym.errors import AgentError
from hashgym.validation import is_integer

__all__ = ["DEFAULT_ENV_ID", "LEGACY_KEYS", "RECORD_KEYS", "RUN_KEYS", "RunConfig", "TrainError",
           "canonical_keys"]


#: A training request that cannot run (the message names the argument and what fits): this
#: module's name for :class:`~hashgym.errors.AgentError`.
TrainError = AgentError


#: The env a run trains when it names none: ``HierHash-v1``, the hierarchical env whose triplet
#: margin is a quarter of the code (the same env as ``HierHash-v0`` at 12 bits; at 48 and 64
#: bits v0's margin collapsed on the development bank: ``benchmarks/results/notes/lengths.md``).
DEFAULT_ENV_ID = "HierHash-v1"

#: Old names of run settings, read as the new ones.
LEGACY_KEYS = {"env": "env_id", "timesteps": "total_timesteps"}
#: Old top-level keys that are env arguments: moved into ``env_kwargs`` when read.
_ENV_ENTRIES = ("bank", "protocol")
#: What a run's ``config.json`` (or ``hashgym tune``'s ``best.json``) records beside its
#: settings; read and ignored, except ``bank_path`` and ``resolved`` (module docstring).
RECORD_KEYS = ("bank_path", "flatten_obs", "observation_space", "action_space", "num_timesteps",
               "trained_levels", "resolved", "validation")
#: Settings that only say how to reach the budget and the pool; a resolved run records
#: ``level_timesteps`` and ``n_constraints`` instead.
_INPUT_ONLY = ("total_timesteps", "triplets_per_image")


def _integers(value: Any, allow_none: bool = False) -> bool:
    return isinstance(value, (list, tuple)) and all(
        is_integer(v) or (allow_none and v is None) for v in value)


#: Each setting's JSON type: a check and its wording (``None`` means the default for every
#: setting but the two mappings).
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{key: (lambda v: isinstance(v, str), "a string") for key in ("algo", "env_id", "policy")},
    **{key: (is_integer, "an integer") for key in (
        "total_timesteps", "num_envs", "seed", "memory_refresh", "triplets_per_image")},
    "levels": (_integers, "a list of integers"),
    "level_timesteps": (lambda v: is_integer(v) or _integers(v),
                        "an integer or a list of integers"),
    "n_constraints": (lambda v: is_integer(v) or _integers(v, allow_none=True),
                      "an integer or a list of integers"),
    "env_kwargs": (lambda v: isinstance(v, dict), "a JSON object of env arguments"),
    "algo_kwargs": (lambda v: isinstance(v, dict), "a JSON object of algorithm arguments"),
    # the old names, checked as written (a top-level bank or protocol is a preset name or path)
}
_TYPES.update({old: _TYPES[new] for old, new in LEGACY_KEYS.items()})
_TYPES.update({key: (lambda v: isinstance(v, str), "a string") for key in _ENV_ENTRIES})


@dataclass(frozen=True)
class RunConfig:
    """The settings of one training run (module docstring): what
    :func:`hashgym.agents.train.train` takes and records.

    :param algo: an algorithm name of :data:`hashgym.agents.registry.ALGORITHMS`.
    :param env_id: a hashgym env id (:data:`hashgym.envs.ENV_IDS`); default
        :data:`DEFAULT_ENV_ID`.
    :param env_kwargs: the env's arguments, ``bank`` and ``protocol`` included.
    :param algo_kwargs: the algorithm's arguments (over hashgym's defaults).
    :param policy: the policy; ``None``: the algorithm's default.
    :param levels: HierHash levels trained in order; ``None``: every level of the bank.
    :param total_timesteps: environment steps in all (split equally over the levels).
    :param level_timesteps: steps per level, one number or one per level, instead.
    :param n_constraints: the constraint pool size, one or one per level.
    :param triplets_per_image: the pool size as a multiple of the training images, instead.
    :param num_envs: images stepped in parallel; ``None``: the recipe's.
    :param memory_refresh: steps between rewrites of the code memory; ``None``: never.
    :param seed: seeds the model and the envs.
    """

    algo: str = "dqn"
    env_id: str = DEFAULT_ENV_ID
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    policy: str | None = None
    levels: list[int] | None = None
    total_timesteps: int | None = None
    level_timesteps: int | list[int] | None = None
    n_constraints: int | list[int | None] | None = None
    triplets_per_image: int | None = None
    num_envs: int | None = None
    memory_refresh: int | None = None
    seed: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "the run config",
                     error: type[Exception] = TrainError) -> RunConfig:
        """The config a mapping of settings (or a run's record) describes, old names mapped.

        :param data: the settings (module docstring).
        :param where: names the mapping in messages (e.g. the file).
        :param error: the error class raised.
        :raises error: for unknown keys, or a value of the wrong type (naming the key).
        """
        for key, value in data.items():  # named as the mapping names them
            if key in _TYPES and not (value is None and not key.endswith("_kwargs")):
                check, wording = _TYPES[key]
                if not check(value):
                    raise error(f"{where}: {key} must be {wording}, got {value!r}")
        settings = canonical_keys(data, where, error, extra=RECORD_KEYS)
        env_kwargs = dict(settings.get("env_kwargs") or {})
        if data.get("bank_path"):  # the bank as the run found it, from any folder
            env_kwargs["bank"] = data["bank_path"]
        shape = data.get("resolved") or {}
        for key in ("n_bits", "bits_per_step"):  # the code shape the run had
            if shape.get(key) is not None:
                env_kwargs.setdefault(key, shape[key])
        settings["env_kwargs"] = env_kwargs
        fields = {f.name for f in dataclasses.fields(cls)}
        config = cls(**{k: v for k, v in settings.items() if k in fields and v is not None})
        config.check_exclusive(error)
        return config

    @classmethod
    def load(cls, path: str | os.PathLike[str], error: type[Exception] = TrainError) -> RunConfig:
        """Read a JSON file of settings (a ``--config`` file, ``best.json``, ``config.json``).

        :raises error: naming the file, when it is unreadable, not a JSON object, or has
            unknown keys or a value of the wrong type.
        """
        where = f"--config {os.fspath(path)}"
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise error(f"cannot read {where}: {exc}") from exc
        if not isinstance(data, dict):
            raise error(f"{where} must hold a JSON object of options")
        return cls.from_mapping(data, where, error)

    def check_exclusive(self, error: type[Exception] = TrainError) -> None:
        """Refuse two settings that give the same thing two ways (the budget, the pool).

        :raises error: ``"give A or B, not both"``.
        """
        for first, second in (("total_timesteps", "level_timesteps"),
                              ("n_constraints", "triplets_per_image")):
            if getattr(self, first) is not None and getattr(self, second) is not None:
                raise error(f"give {first} or {second}, not both")

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` (``None`` values leave a setting as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def train_kwargs(self) -> dict[str, Any]:
        """The settings as :func:`hashgym.agents.train.train`'s keyword arguments."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_record(self) -> dict[str, Any]:
        """The settings as a run records them (``config.json``): a resolved run's budget and
        pool are in ``level_timesteps`` and ``n_constraints``, so the two inputs that only
        lead there (``total_timesteps``, ``triplets_per_image``) are left out when unset."""
        record = self.train_kwargs()
        for key in _INPUT_ONLY:
            if record[key] is None:
                del record[key]
        return record


#: Every setting's name.
RUN_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig))


def canonical_keys(data: Mapping[str, Any], where: str, error: type[Exception] = TrainError,
                   extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` with old names mapped (:data:`LEGACY_KEYS`; a top-level ``bank`` or
    ``protocol`` moved into ``env_kwargs``); values are not checked (a search space holds
    dimensions where a config holds values).

    :param extra: more keys ``data`` may hold, kept as they are.
    :raises error: for unknown keys, or a setting given under both its old and new name.
    """
    known = (*RUN_KEYS, *LEGACY_KEYS, *_ENV_ENTRIES, *extra)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise error(f"{where} has unknown keys {unknown}; known: {', '.join(known)}")
    out = dict(data)
    for old, new in LEGACY_KEYS.items():
        if old in out:
            if new in out:
                raise error(f"{where} gives both {old!r} and {new!r} (the same setting; "
                            f"{old!r} is its old name)")
            out[new] = out.pop(old)
    moved = {key: out.pop(key) for key in _ENV_ENTRIES if key in out}
    if moved:
        env_kwargs = out.get("env_kwargs")
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise error(f"{where}: env_kwargs must be a JSON object of env arguments, got "
                        f"{env_kwargs!r}")
        for key, value in moved.items():
            if value is not None and (env_kwargs or {}).get(key) is not None:
                raise error(f"{where} gives {key} twice: at the top level and in env_kwargs")
        out["env_kwargs"] = {**(env_kwargs or {}),
                             **{k: v for k, v in moved.items() if v is not None}}
    return out
