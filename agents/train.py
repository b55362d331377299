"""Train any Stable-Baselines3 / sb3-contrib algorithm (or hashgym's own agents) on a hashgym env.

:func:`train` is the one entry point: an algorithm name (or class), an env id with its kwargs,
a step budget. It builds the env as a native vector env presented to SB3
(:func:`hashgym.envs.sb3.make_sb3_vec_env`), checks that the algorithm fits the env's action
space, trains, and, given an output folder, writes checkpoints, logs and the final model::

    from hashgym.agents import train

    result = train("dqn", "HierHash-v0", total_timesteps=200_000, out="runs/dqn")  # DRLHIH
    result = train("ppo", "CentralHash-v0", {"n_bits": 32}, total_timesteps=100_000)
    result = train("sac", "CentralHash-v0", {"action_type": "probability"}, total_timesteps=20_000)

Algorithms (:data:`ALGORITHMS`; :func:`register_algorithm` adds more)

=================  ====================================  =============================================
name               class                                 action spaces (env settings that give them)
=================  ====================================  =============================================
``dqn``            ``stable_baselines3.DQN``             Discrete (HierHash-v0)
``qrdqn``          ``sb3_contrib.QRDQN``                 Discrete (HierHash-v0)
``ppo``, ``a2c``   ``stable_baselines3.PPO`` / ``A2C``   all
``trpo``           ``sb3_contrib.TRPO``                  all
``recurrentppo``   ``sb3_contrib.RecurrentPPO``          Discrete, MultiDiscrete, Box (not MultiBinary:
                                                         sb3-contrib 2.9 fails on its int8 actions)
``maskableppo``    ``sb3_contrib.MaskablePPO``           Discrete, MultiDiscrete, MultiBinary
``ars``            ``sb3_contrib.ARS``                   Discrete, Box (observations flattened)
``sac``, ``td3``,  ``stable_baselines3.SAC`` / ``TD3`` / Box (CentralHash-v0 with
``ddpg``, ``tqc``  ``DDPG``, ``sb3_contrib.TQC``         ``action_type="probability"``)
``reinforce``      ``hashgym.agents.reinforce.           MultiBinary, Box (CentralHash-v0; SCIHCGRL)
                   RecurrentReinforce``
=================  ====================================  =============================================

Levels (``HierHash-v0`` only)
    ``levels=(0, 1)`` trains DRLHIH's curriculum with :class:`hashgym.agents.dqn.LevelCurriculum`
    (any algorithm, not only DQN): the steps are split equally between levels unless
    ``level_timesteps`` says otherwise, and ``n_constraints`` may give one pool size per level.
    By default every level of the bank is trained, coarsest first (DRLHIH's hierarchical agent);
    ``levels=(0,)`` is the level-0-only variant; ``levels=(1,)`` the level-1-only variant, whose
    code memory then starts from random codes seeded by ``seed``, drawn as the env's
    ``memory_init`` says for the level's classes, and whose reward is eq. (1) alone (``rho=1``
    unless ``env_kwargs`` sets it: there is no previous level to refine). Pass ``prev_codes``
    in ``env_kwargs`` to start it from other codes.

Output folder, checkpoints and resume
    With ``out=DIR``: ``DIR/model.zip`` (the final model, :mod:`hashgym.agents.saving`),
    ``DIR/config.json``, ``DIR/logs/from-<step>/`` (SB3's CSV log, and TensorBoard event files
    when the ``tensorboard`` package is installed) and ``DIR/checkpoints/``: every
    ``checkpoint_every`` steps the model, the curriculum's state (level, ``prev_codes``, code
    memory) and, for off-policy algorithms, the replay buffer (``.npz``), then ``state.json``
    pointing at them — each file written atomically, ``state.json`` last, so a run killed at any
    moment leaves a complete checkpoint. Calling :func:`train` again with the same arguments
    (``resume=True``) continues from it: same level, same step count, same replay buffer,
    optimiser state and target network; the level's constraint pool is redrawn from the same seed.
    Arguments that change the run (anything but the step budget) must match, or
    :class:`TrainError` says which differ. The random-number states of torch, numpy and the envs
    are not checkpointed: a resumed run explores and samples differently after the resume, so
    its codes are not bit-identical to an uninterrupted run's (an uninterrupted run with the
    same seed is). Each attempt logs to its own ``logs/from-<step>`` folder (``.2``, ``.3`` when
    a step repeats); no attempt's log is overwritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import logging
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from hashgym.agents.recipe import default_num_envs, recipe_budget
from hashgym.agents.saving import space_to_json

from hashgym.atomic import atomic_write
from hashgym.bank import FeatureBank
from hashgym.envs.hierhash import HierHashCore, random_memory, resolve_memory_init
from hashgym.errors import HashgymError
from hashgym.protocols import resolve_bank

__all__ = [
    "ALGORITHMS",
    "AlgoSpec",
    "TrainError",
    "TrainResult",
    "algorithm_class",
    "register_algorithm",
    "train",
]

logger = logging.getLogger(__name__)

_ALL = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Box)
_ON_POLICY_SMALL = {"n_steps": 16, "batch_size": 256}
_OFF_POLICY_BOX = {"buffer_size": 50_000, "learning_starts": 1_000, "batch_size": 256}


class TrainError(HashgymError):
    """A training request that cannot run; the message names the argument and what fits."""


@dataclasses.dataclass(frozen=True)
class AlgoSpec:
    """How :func:`train` builds one algorithm.

    :param target: ``"module:Class"`` of the algorithm (imported on first use).
    :param action_spaces: the action-space types it supports.
    :param policy: the default policy alias.
    :param defaults: default constructor arguments on hashgym's envs (overridden by
        ``algo_kwargs``); a ``policy_kwargs`` entry is merged key by key.
    :param flatten_obs: feed flat observations (:class:`~hashgym.agents.flatten.FlattenDictObs`).
    :param needs_infos: the algorithm reads the env's infos (e.g. ``hash_center``).
    """

    target: str
    action_spaces: tuple[type[spaces.Space], ...]
    policy: str | None = "MultiInputPolicy"
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    flatten_obs: bool = False
    needs_infos: bool = False


def _dqn_defaults() -> dict[str, Any]:
    from hashgym.agents.dqn import DQN_DEFAULTS

    return DQN_DEFAULTS


ALGORITHMS: dict[str, AlgoSpec] = {
    "dqn": AlgoSpec("stable_baselines3:DQN", (spaces.Discrete,), defaults={"__dqn__": True}),
    "qrdqn": AlgoSpec("sb3_contrib:QRDQN", (spaces.Discrete,), defaults={"__dqn__": True}),
    "ppo": AlgoSpec("stable_baselines3:PPO", _ALL, defaults=_ON_POLICY_SMALL),
    "a2c": AlgoSpec("stable_baselines3:A2C", _ALL, defaults={"n_steps": 8}),
    "trpo": AlgoSpec("sb3_contrib:TRPO", _ALL, defaults=_ON_POLICY_SMALL),
    # MultiBinary is left out: sb3-contrib 2.9's recurrent rollout buffer keeps int8 actions,
    # and the Bernoulli log-probability then fails (use action_type="probability" or HierHash)
    "recurrentppo": AlgoSpec("sb3_contrib:RecurrentPPO",
                             (spaces.Discrete, spaces.MultiDiscrete, spaces.Box),
                             policy="MultiInputLstmPolicy", defaults=_ON_POLICY_SMALL),
    "maskableppo": AlgoSpec("sb3_contrib:MaskablePPO",
                            (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
                            defaults=_ON_POLICY_SMALL),
    "ars": AlgoSpec("sb3_contrib:ARS", (spaces.Discrete, spaces.Box), policy="MlpPolicy",
                    defaults={"n_delta": 8}, flatten_obs=True),
    "sac": AlgoSpec("stable_baselines3:SAC", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "td3": AlgoSpec("stable_baselines3:TD3", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "ddpg": AlgoSpec("stable_baselines3:DDPG", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "tqc": AlgoSpec("sb3_contrib:TQC", (spaces.Box,), defaults=_OFF_POLICY_BOX),
    "reinforce": AlgoSpec("hashgym.agents.reinforce:RecurrentReinforce",
                          (spaces.MultiBinary, spaces.Box), needs_infos=True),
}
"""Every algorithm :func:`train` knows by name (lower case)."""


def register_algorithm(name: str, spec: AlgoSpec) -> None:
    """Make ``name`` usable in :func:`train` (and the ``hashgym train --algo`` option)."""
    ALGORITHMS[name.lower()] = spec


def _spec_for(algo: str | type) -> tuple[str, AlgoSpec]:
    if isinstance(algo, type):
        for name, spec in ALGORITHMS.items():
            if spec.target == f"{algo.__module__}:{algo.__qualname__}" or (
                spec.target.split(":")[1] == algo.__name__ and _load(spec.target) is algo
            ):
                return name, spec
        from stable_baselines3.common.base_class import BaseAlgorithm

        if not issubclass(algo, BaseAlgorithm):
            raise TrainError(f"algo class {algo.__name__} is not an SB3 BaseAlgorithm")
        name = algo.__name__.lower()
        spec = AlgoSpec(f"{algo.__module__}:{algo.__qualname__}", _ALL)
        return name, spec
    if not isinstance(algo, str):
        raise TrainError(f"algo must be a name or an algorithm class, got {algo!r}")
    key = algo.lower().replace("-", "").replace("_", "")
    if key not in ALGORITHMS:
        raise TrainError(f"unknown algorithm {algo!r}; known: {', '.join(sorted(ALGORITHMS))} "
                         f"(or pass an SB3 algorithm class)")
    return key, ALGORITHMS[key]


def _load(target: str) -> type:
    module_name, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise TrainError(f"algorithm {target} is not available: {exc}") from exc


def algorithm_class(algo: str | type) -> type:
    """The class behind a registry name (or the class itself)."""
    if isinstance(algo, type):
        return algo
    _, spec = _spec_for(algo)
    return _load(spec.target)


def _fit_hint(spec: AlgoSpec) -> str:
    hints = []
    if spaces.Discrete in spec.action_spaces:
        hints.append("HierHash-v0 (Discrete)")
    if spaces.MultiBinary in spec.action_spaces:
        hints.append("CentralHash-v0 (MultiBinary)")
    if spaces.Box in spec.action_spaces:
        hints.append("CentralHash-v0 with action_type='probability' (Box)")
    return " or ".join(hints) or "none of hashgym's envs"


def _check_fits(name: str, spec: AlgoSpec, space: spaces.Space, env_id: str) -> None:
    if not isinstance(space, spec.action_spaces):
        kinds = ", ".join(t.__name__ for t in spec.action_spaces)
        raise TrainError(
            f"algorithm {name!r} supports {kinds} action spaces, but {env_id} with these "
            f"kwargs has {space}; use {_fit_hint(spec)}"
        )


def _merge(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = {**defaults, **overrides}
    if "policy_kwargs" in defaults and "policy_kwargs" in overrides:
        out["policy_kwargs"] = {**defaults["policy_kwargs"], **overrides["policy_kwargs"]}
    return out


def _bank_fingerprint(bank: FeatureBank) -> str:
    digest = hashlib.sha256()
    for arr in (bank.features, bank.labels, bank.split, bank.train_mask):
        digest.update(str(arr.shape).encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()[:16]


def _bank_record(spec: Any, bank: FeatureBank) -> Any:
    """How the bank is written in the config: its name/path, or a fingerprint for an object."""
    if spec is None or isinstance(spec, (str, os.PathLike)):
        return None if spec is None else str(spec)
    return {"fingerprint": _bank_fingerprint(bank), "images": bank.n, "dim": bank.dim,
            "meta": bank.meta}


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    :param model: the trained model (its ``hashgym_info`` attribute describes it for
        :func:`hashgym.agents.encode.encode`).
    :param info: the model's description (algorithm, env, kwargs, levels, steps).
    :param path: the final model file (``None`` without ``out``).
    :param wall_time: seconds spent in this call.
    :param timesteps: environment steps taken in total (over every resume).
    :param resumed_from: the step count of the checkpoint this call resumed from, if any.
    """

    model: Any
    info: dict[str, Any]
    path: Path | None
    wall_time: float
    timesteps: int
    resumed_from: int | None = None


def _split_steps(total: int, n: int) -> list[int]:
    base = [total // n] * n
    base[-1] += total - sum(base)
    return base


def _per_level(value: Any, levels: list[int], name: str) -> list[Any]:
    if value is None or isinstance(value, (int, np.integer)):
        return [value] * len(levels)
    values = list(value)
    if len(values) < len(levels):
        raise TrainError(f"{name} gives {len(values)} values for {len(levels)} levels {levels}")
    # a per-level tuple is indexed by level number when it covers every level (paper's (4K, 1K))
    return [values[lv] if len(values) > max(levels) else values[i] for i, lv in enumerate(levels)]


def train(
    algo: str | type,
    env_id: str = "HierHash-v0",
    env_kwargs: dict[str, Any] | None = None,
    total_timesteps: int | None = None,
    num_envs: int | None = None,
    seed: int = 0,
    *,
    algo_kwargs: dict[str, Any] | None = None,
    policy: str | None = None,
    levels: Sequence[int] | None = None,
    level_timesteps: int | Sequence[int] | None = None,
    n_constraints: int | Sequence[int] | None = None,
    out: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    save_replay_buffer: bool = True,
    progress_bar: bool = False,
    tensorboard: bool | None = None,
    callback: Any = None,
    memory_refresh: int | None = None,
    device: str = "cpu",
    verbose: int = 0,
) -> TrainResult:
    """Train ``algo`` on ``env_id`` through the native vector env; see the module docstring.

    :param algo: a name of :data:`ALGORITHMS` (case and ``-``/``_`` ignored) or an SB3
        algorithm class.
    :param env_id: ``"HierHash-v0"`` or ``"CentralHash-v0"``.
    :param env_kwargs: the env's arguments (``bank``, ``n_bits``, ``mode``, ``action_type``,
        ...); ``bank`` may be a :class:`~hashgym.bank.FeatureBank`, a path or a preset name.
    :param total_timesteps: environment steps in total (split over levels). Without it (and
        without ``level_timesteps``), ``HierHash-v0`` trains the recipe's budget
        (:func:`hashgym.agents.recipe.recipe_budget`: four memory generations).
    :param num_envs: images stepped in parallel (default
        :func:`hashgym.agents.recipe.default_num_envs`: 256 on ``HierHash-v0``, else 64).
    :param seed: seeds the model and the envs.
    :param algo_kwargs: constructor arguments of the algorithm (override the defaults).
    :param policy: the policy (alias or class); default per algorithm.
    :param levels: HierHash levels to train in order; default every level of the bank.
    :param level_timesteps: steps per level (one number for all, or one per level) instead of
        ``total_timesteps``.
    :param n_constraints: HierHash constraint pool size, one for all levels or one per level
        (indexed by level when it covers them all, e.g. ``(4000, 1000)``).
    :param out: folder for the model, config, logs and checkpoints (``None``: nothing written).
    :param checkpoint_every: steps between checkpoints (needs ``out``; default: a tenth of the
        budget, at least 10,000 steps).
    :param resume: continue from ``out``'s last checkpoint when there is one.
    :param save_replay_buffer: include an off-policy algorithm's replay buffer in checkpoints
        (resume then continues exactly; without it the buffer refills from scratch).
    :param progress_bar: show SB3's progress bar.
    :param tensorboard: write TensorBoard logs under ``out/logs`` (``None``: when the
        ``tensorboard`` package is installed).
    :param callback: an SB3 callback (or list) called during training.
    :param memory_refresh: ``HierHash-v0`` in memory mode only: every this many environment
        steps, set the code memory to the agent's greedy codes of every training image
        (:class:`hashgym.agents.memory.MemoryRefresh`; ``None``: the memory changes only as
        episodes end, as METHODS.md specifies).
    :param device: torch device.
    :param verbose: SB3's verbosity.
    :raises TrainError: for an unknown algorithm, one that does not fit the env's action space,
        inconsistent step budgets, or a checkpoint of a different run in ``out``.
    """
    started = time.perf_counter()
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise TrainError(f"out={os.fspath(out)!r} is a file: a run writes a folder (model.zip, "
                         f"config.json, logs/, checkpoints/); give a folder path")
    name, spec = _spec_for(algo)
    cls = _load(spec.target)
    if env_id not in ("HierHash-v0", "CentralHash-v0") and env_id not in gym.registry:
        raise TrainError(f"unknown env id {env_id!r}; expected 'HierHash-v0' or 'CentralHash-v0'")
    env_kwargs = dict(env_kwargs or {})
    for reserved in ("num_envs", "n_constraints"):
        if reserved in env_kwargs:
            raise TrainError(f"pass {reserved} as train()'s own argument, not in env_kwargs")
    bank_spec = env_kwargs.pop("bank", None)
    bank = resolve_bank(bank_spec, protocol=env_kwargs.pop("protocol", None),
                        seed=env_kwargs.pop("protocol_seed", 0))
    hier = env_id == "HierHash-v0"
    initial_prev = env_kwargs.pop("prev_codes", None)
    env_level = env_kwargs.pop("level", None)
    if hier:
        if levels is None:
            levels = [env_level] if env_level is not None else list(range(bank.n_levels))
        levels = [int(lv) for lv in levels]
        if not levels or min(levels) < 0 or max(levels) >= bank.n_levels:
            raise TrainError(f"levels={levels} must be levels of the bank (0..{bank.n_levels - 1})")
        if levels[0] >= 1 and initial_prev is None:
            # a level-l-only run (DRLHIH's ablation): the memory starts from random codes of
            # the level's classes, as level 0's does; there is no previous level to refine, so
            # rho = 1 (eq. (1) alone) unless the caller asks otherwise
            env_kwargs.setdefault("rho", 1.0)
            n_bits = env_kwargs.get("n_bits", inspect.signature(HierHashCore).parameters[
                "n_bits"].default)
            split_labels = bank.labels[bank.indices(env_kwargs.get("split", "train"))]
            init = resolve_memory_init(env_kwargs.get("memory_init"),
                                       env_kwargs.get("mode", "memory"))
            initial_prev = random_memory(split_labels[:, levels[0]], int(n_bits),
                                         np.random.default_rng(seed), init)
        pools = _per_level(n_constraints, levels, "n_constraints")
    else:
        if levels is not None or n_constraints is not None:
            raise TrainError(f"levels and n_constraints apply to HierHash-v0, not {env_id}")
        levels, pools = [None], [None]  # type: ignore[list-item]
    if level_timesteps is not None:
        if total_timesteps is not None:
            raise TrainError("give total_timesteps or level_timesteps, not both")
        steps = [int(t) for t in _per_level(level_timesteps, levels, "level_timesteps")]
    elif total_timesteps is not None:
        if int(total_timesteps) < 0:
            raise TrainError(f"total_timesteps must be >= 0, got {int(total_timesteps)}")
        steps = _split_steps(int(total_timesteps), len(levels))
    elif hier:
        steps = recipe_budget(bank, levels, env_kwargs)
    else:
        raise TrainError("give a step budget: total_timesteps (or level_timesteps)")
    if num_envs is None:
        num_envs = default_num_envs(env_id)
    if any(s < 0 for s in steps):
        raise TrainError(f"step budgets must be >= 0, got {steps}")
    refresher = None
    if memory_refresh is not None:
        if not hier or env_kwargs.get("mode", "memory") != "memory":
            raise TrainError("memory_refresh applies to HierHash-v0 in memory mode only (it "
                             "rewrites the env's code memory)")
        from hashgym.agents.memory import MemoryRefresh

        try:
            refresher = MemoryRefresh(memory_refresh)
        except ValueError as exc:
            raise TrainError(f"memory_refresh: {exc}") from exc

    def make_env(level: int | None, prev_codes: np.ndarray | None, env_seed: int) -> Any:
        from hashgym.envs.sb3 import make_sb3_vec_env

        kwargs = dict(env_kwargs)
        if hier:
            kwargs["level"] = level
            if prev_codes is not None:
                kwargs["prev_codes"] = prev_codes
            if pools[levels.index(level)] is not None:
                kwargs["n_constraints"] = int(pools[levels.index(level)])
        venv = make_sb3_vec_env(env_id, num_envs=num_envs, bank=bank,
                                info_keys=None if spec.needs_infos else (), **kwargs)
        if spec.flatten_obs:
            from hashgym.agents.flatten import FlattenDictObs

            venv = FlattenDictObs(venv)
        return venv

    first_env = make_env(levels[0], initial_prev, seed + (levels[0] or 0))
    _check_fits(name, spec, first_env.action_space, env_id)

    kwargs = _merge(_dqn_defaults() if spec.defaults.get("__dqn__") else spec.defaults,
                    dict(algo_kwargs or {}))
    policy = policy or spec.policy
    info: dict[str, Any] = {
        "algo": name,
        "policy": policy,
        "algo_kwargs": kwargs,
        "env_id": env_id,
        "env_kwargs": {"bank": _bank_record(bank_spec, bank), **env_kwargs},
        "levels": levels if hier else None,
        "level_timesteps": steps,
        "n_constraints": pools if hier else None,
        "num_envs": num_envs,
        "memory_refresh": memory_refresh,
        "seed": seed,
        "flatten_obs": spec.flatten_obs,
        "observation_space": None,
        "action_space": None,
    }
    from hashgym.agents.saving import from_json, to_json

    info = to_json(info)  # fail early on arguments that cannot be recorded
    model = _build(cls, policy, first_env, from_json(kwargs), seed, device, verbose)
    info["observation_space"] = space_to_json(model.observation_space)
    info["action_space"] = space_to_json(model.action_space)

    run = _Run(Path(out), info, max(10_000, sum(steps) // 10) if checkpoint_every is None
               else checkpoint_every,
               save_replay_buffer) if out is not None else None
    from hashgym.agents.dqn import LevelCurriculum, LevelState

    curriculum = LevelCurriculum(model, make_env, levels, steps, seed=seed)
    state: LevelState | None = None
    resumed_from = None
    if run is not None:
        if resume:
            state = run.restore(model)
            if state is not None:
                resumed_from = model.num_timesteps
        else:
            run.clear()
        # opened once the step is known, in a folder no earlier attempt wrote: a resume never
        # truncates the log of the run it continues
        model.set_logger(run.logger(tensorboard, verbose, model.num_timesteps))
        run.write_config()
    if state is None:
        state = LevelState(prev_codes=initial_prev)
    callbacks = [c for c in ([callback] if not isinstance(callback, list) else callback) if c]
    if refresher is not None:
        callbacks.insert(0, refresher)  # the caller's callbacks see the refreshed memory
    if run is not None:
        callbacks.append(run.callback(curriculum))
    from stable_baselines3.common.callbacks import CallbackList

    model = curriculum.run(resume=state, callback=CallbackList(callbacks),
                           progress_bar=progress_bar, tb_log_name=name)
    info["num_timesteps"] = int(model.num_timesteps)
    info["trained_levels"] = levels if hier else None
    model.hashgym_info = info
    path = None
    if run is not None:
        run.checkpoint(curriculum, final=True)
        path = run.save_final(model)
    wall = time.perf_counter() - started
    return TrainResult(model, info, path, wall, int(model.num_timesteps), resumed_from)


def _build(cls: type, policy: str | None, venv: Any, kwargs: dict[str, Any], seed: int,
           device: str, verbose: int) -> Any:
    args = dict(kwargs)
    try:
        if policy is None:
            return cls(env=venv, seed=seed, device=device, verbose=verbose, **args)
        return cls(policy, venv, seed=seed, device=device, verbose=verbose, **args)
    except (TypeError, ValueError) as exc:  # unknown keywords; values torch or SB3 refuse
        raise TrainError(f"bad arguments for {cls.__name__}: {exc}") from exc


class _Run:
    """The output folder of a run: config, logs, checkpoints, final model."""

    def __init__(self, folder: Path, info: dict[str, Any], every: int, save_buffer: bool) -> None:
        self.folder = folder
        self.ckpt_dir = folder / "checkpoints"
        self.info = info
        self.every = int(every)
        if self.every < 1:
            raise TrainError(f"checkpoint_every must be >= 1, got {every}")
        self.save_buffer = save_buffer
        self.model: Any = None

    # -------------------------------------------------------------- config
    def _identity(self, info: dict[str, Any]) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed (everything but the step budget)."""
        skip = {"level_timesteps", "num_timesteps", "observation_space", "action_space",
                "trained_levels"}
        return {k: v for k, v in info.items() if k not in skip}

    def write_config(self) -> None:
        with atomic_write(self.folder / "config.json") as handle:
            handle.write(json.dumps(self.info, indent=2, sort_keys=True).encode())

    def logger(self, tensorboard: bool | None, verbose: int, step: int) -> Any:
        from stable_baselines3.common.logger import configure

        formats = ["csv"] + (["stdout"] if verbose else [])
        have_tb = importlib.util.find_spec("tensorboard") is not None
        if tensorboard and not have_tb:
            raise TrainError("tensorboard=True needs the tensorboard package "
                             "(pip install tensorboard)")
        if tensorboard or (tensorboard is None and have_tb):
            formats.append("tensorboard")
        folder = self.folder / "logs" / f"from-{step:09d}"
        attempt = 1
        while folder.exists() and any(folder.iterdir()):
            attempt += 1  # the same step again (a rerun of a finished run, a second resume)
            folder = self.folder / "logs" / f"from-{step:09d}.{attempt}"
        return configure(str(folder), formats)

    def clear(self) -> None:
        state = self.ckpt_dir / "state.json"
        if state.exists():
            state.unlink()

    # -------------------------------------------------------------- checkpoints
    def callback(self, curriculum: Any) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        run = self

        class _Checkpoints(BaseCallback):
            def __init__(self) -> None:
                super().__init__()
                self.last = -1

            def _on_training_start(self) -> None:
                if self.last < 0:
                    self.last = self.model.num_timesteps

            def _on_step(self) -> bool:
                if self.model.num_timesteps - self.last >= run.every:
                    run.checkpoint(curriculum)
                    self.last = self.model.num_timesteps
                return True

        return _Checkpoints()

    def checkpoint(self, curriculum: Any, final: bool = False) -> None:
        from hashgym.agents.saving import save_model
        from hashgym.agents.saving import save_replay_buffer as save_buffer

        model = curriculum.model
        step = int(model.num_timesteps)
        state = curriculum.state
        tag = f"ckpt-{step:09d}"
        info = {**self.info, "num_timesteps": step}
        save_model(model, self.ckpt_dir / f"{tag}.zip", info)
        extra: dict[str, np.ndarray] = {"index": np.asarray(state.index),
                                        "level_start": np.asarray(state.level_start)}
        if state.prev_codes is not None:
            extra["prev_codes"] = np.asarray(state.prev_codes, dtype=np.uint8)
        memory = curriculum.memory if self.info["env_id"] == "HierHash-v0" else None
        if memory is not None:
            extra.update({f"memory_{key}": value for key, value in memory.items()})
        with atomic_write(self.ckpt_dir / f"{tag}.npz") as handle:
            np.savez(handle, **extra)
        record = {"num_timesteps": step, "model": f"{tag}.zip", "state": f"{tag}.npz",
                  "replay_buffer": None, "level_index": int(state.index), "final": final,
                  "identity": self._identity(self.info)}
        buffer = getattr(model, "replay_buffer", None)
        if self.save_buffer and buffer is not None:
            save_buffer(buffer, self.ckpt_dir / f"{tag}-replay.npz")
            record["replay_buffer"] = f"{tag}-replay.npz"
        with atomic_write(self.ckpt_dir / "state.json") as handle:
            handle.write(json.dumps(record, indent=2, sort_keys=True).encode())
        keep = {record["model"], record["state"], record["replay_buffer"], "state.json"}
        for old in self.ckpt_dir.iterdir():
            if old.name not in keep and old.name.startswith("ckpt-"):
                old.unlink(missing_ok=True)
        logger.info("checkpoint at step %d (level index %d) in %s", step, state.index,
                    self.ckpt_dir)

    def restore(self, model: Any) -> Any:
        """Load the last checkpoint into ``model``; return the curriculum state (or ``None``).

        :raises TrainError: naming the folder, when the checkpoint is of another run, lacks a
            file, or is damaged.
        """
        path = self.ckpt_dir / "state.json"
        if not path.exists():
            return None
        try:
            return self._restore(model, json.loads(path.read_text()))
        except TrainError:
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError,
                RuntimeError, zipfile.BadZipFile) as exc:
            raise TrainError(
                f"the checkpoint in {self.ckpt_dir} is damaged ({type(exc).__name__}: {exc}); "
                f"delete that folder to start the run over, or pass resume=False (--no-resume)"
            ) from exc

    def _restore(self, model: Any, record: Any) -> Any:
        """:meth:`restore` once ``state.json`` is read: every error is the caller's to name."""
        from hashgym.agents.dqn import LevelState
        from hashgym.agents.saving import load_replay_buffer

        if not isinstance(record, dict):
            raise TypeError("state.json is not a JSON object")
        for name in ("model", "state", "replay_buffer"):
            if record.get(name) and not (self.ckpt_dir / record[name]).is_file():
                if name == "replay_buffer" and getattr(model, "replay_buffer", None) is None:
                    continue
                raise TrainError(f"the checkpoint in {self.ckpt_dir} lacks its {name} file "
                                 f"{record[name]!r}; delete that folder to start the run over, "
                                 f"or pass resume=False (--no-resume)")
        mine, theirs = self._identity(self.info), record.get("identity", {})
        if mine != theirs:
            differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise TrainError(
                f"{self.folder} holds a checkpoint of a different run (differs in: "
                f"{', '.join(differ)}); use another out folder or resume=False (--no-resume)"
            )
        model.set_parameters(str(self.ckpt_dir / record["model"]), exact_match=True,
                             device=model.device)
        model.num_timesteps = int(record["num_timesteps"])
        model._num_timesteps_at_start = model.num_timesteps
        if record.get("replay_buffer") and getattr(model, "replay_buffer", None) is not None:
            load_replay_buffer(model.replay_buffer, self.ckpt_dir / record["replay_buffer"])
        with np.load(self.ckpt_dir / record["state"], allow_pickle=False) as data:
            memory = {key[len("memory_"):]: data[key] for key in data.files
                      if key.startswith("memory_")}
            if "memory" in data.files:  # checkpoints of hashgym 0.1: the memory alone
                memory["memory"] = data["memory"]
            state = LevelState(
                index=int(data["index"]), level_start=int(data["level_start"]),
                prev_codes=data["prev_codes"] if "prev_codes" in data.files else None,
                memory=memory or None,
            )
        logger.info("resuming from step %d at level index %d", model.num_timesteps, state.index)
        return state

    def save_final(self, model: Any) -> Path:
        from hashgym.agents.saving import save_model

        return save_model(model, self.folder / "model.zip", model.hashgym_info)
