"""Train any Stable-Baselines3 / sb3-contrib algorithm (or hashgym's own agents) on a hashgym env.

:func:`train` is the one entry point: an algorithm name (or class), an env id with its kwargs,
a step budget. It builds the env as a native vector env presented to SB3
(:func:`hashgym.envs.sb3.make_sb3_vec_env`), checks that the algorithm fits the env's action
space, trains, and, given an output folder, writes checkpoints, logs and the final model::

    from hashgym.agents import train

    result = train("dqn", "HierHash-v1", total_timesteps=200_000, out="runs/dqn")  # DRLHIH
    result = train("ppo", "CentralHash-v0", {"n_bits": 32}, total_timesteps=100_000)
    result = train("sac", "CentralHash-v0", {"action_type": "probability"}, total_timesteps=20_000)

Algorithms (:data:`ALGORITHMS`; :func:`register_algorithm` adds more)

=================  ====================================  =============================================
name               class                                 action spaces (env settings that give them)
=================  ====================================  =============================================
``dqn``            ``stable_baselines3.DQN``             Discrete (HierHash)
``qrdqn``          ``sb3_contrib.QRDQN``                 Discrete (HierHash)
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

Levels (``HierHash`` only)
    ``levels=(0, 1)`` trains DRLHIH's curriculum with :class:`hashgym.agents.curriculum.LevelCurriculum`
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
import inspect
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import CallbackList

from hashgym.agents.checkpoints import RunStore
from hashgym.agents.cnn import ImageHashFeatures
from hashgym.agents.config import DEFAULT_ENV_ID, RunConfig
from hashgym.agents.curriculum import LevelCurriculum, LevelState
from hashgym.agents.dqn import HashQFeatures
from hashgym.agents.flatten import FlattenDictObs
from hashgym.agents.memory import MemoryRefresh
from hashgym.agents.recipe import default_num_envs, generation_steps, recipe_level_timesteps
from hashgym.agents.registry import (
    ALGORITHMS,
    AlgoSpec,
    TrainError,
    algorithm_class,
    check_fits,
    load_target,
    merge_defaults,
    register_algorithm,
    resolve_algorithm,
)
from hashgym.agents.saving import (
    from_json,
    space_to_json,
    to_json,
)
from hashgym.atomic import OutputPathError, check_output
from hashgym.bank import FeatureBank
from hashgym.devices import DeviceError, check_device
from hashgym.envs import ENV_IDS, is_hierhash
from hashgym.envs.hierhash import random_memory
from hashgym.envs.sb3 import make_sb3_vec_env, native_vector_env
from hashgym.identity import sha256_file
from hashgym.protocols import is_bank_path, resolve_bank

__all__ = [
    "ALGORITHMS",
    "AlgoSpec",
    "TrainError",
    "TrainResult",
    "algorithm_class",
    "hierarchical_dqn",
    "register_algorithm",
    "train",
    "with_image_extractor",
]

logger = logging.getLogger(__name__)


def _bank_path(spec: Any) -> str | None:
    """The absolute path of a bank given as a file path (``None`` for a preset or an object),
    recorded as ``bank_path`` so that a model trained with a relative ``--bank`` can be encoded
    from another folder (:func:`hashgym.agents.encode.recorded_bank`)."""
    if not isinstance(spec, (str, os.PathLike)) or not is_bank_path(spec):
        return None
    return str(Path(spec).resolve())


def _bank_record(spec: Any, bank: FeatureBank) -> Any:
    """How the bank is written in the config: its name/path, or a fingerprint for an object."""
    if spec is None or isinstance(spec, (str, os.PathLike)):
        return None if spec is None else str(spec)
    return {"fingerprint": bank.fingerprint(), "images": bank.n, "dim": bank.dim,
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


def _is_hashgym_env(env_id: Any) -> bool:
    """Whether ``env_id`` is registered by hashgym (its entry point lives in ``hashgym``): other
    Gymnasium envs take no feature bank."""
    spec = gym.registry.get(env_id) if isinstance(env_id, str) else None
    if spec is None:
        return False
    point = spec.vector_entry_point or spec.entry_point
    module = point.split(":")[0] if isinstance(point, str) else getattr(point, "__module__", "")
    return module == "hashgym" or module.startswith("hashgym.")


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
    env_id: str = DEFAULT_ENV_ID,
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
    triplets_per_image: int | None = None,
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
    :param env_id: a hashgym env id (:data:`hashgym.envs.ENV_IDS`); default ``HierHash-v1``
        (:data:`~hashgym.agents.config.DEFAULT_ENV_ID`).
    :param env_kwargs: the env's arguments (``bank``, ``n_bits``, ``mode``, ``action_type``,
        ...); ``bank`` may be a :class:`~hashgym.bank.FeatureBank`, a path or a preset name.
    :param total_timesteps: environment steps in total (split over levels). Without it (and
        without ``level_timesteps``), ``HierHash`` trains the recipe's budget
        (:func:`hashgym.agents.recipe.recipe_level_timesteps`: four memory generations of the env).
    :param num_envs: images stepped in parallel (default
        :func:`hashgym.agents.recipe.default_num_envs`: 256 on ``HierHash``, else 64).
    :param seed: seeds the model and the envs.
    :param algo_kwargs: constructor arguments of the algorithm (override the defaults).
    :param policy: the policy (alias or class); default per algorithm.
    :param levels: HierHash levels to train in order; default every level of the bank.
    :param level_timesteps: steps per level (one number for all, or one per level) instead of
        ``total_timesteps``.
    :param n_constraints: HierHash constraint pool size, one for all levels or one per level
        (indexed by level when it covers them all, e.g. ``(4000, 1000)``).
    :param triplets_per_image: the pool size as this many triplets per training image instead.
    :param out: folder for the model, config, logs and checkpoints (``None``: nothing written).
    :param checkpoint_every: steps between checkpoints (default: a tenth of the budget, at
        least 10,000 steps).
    :param resume: continue from ``out``'s last checkpoint when there is one.
    :param save_replay_buffer: include an off-policy algorithm's replay buffer in checkpoints
        (resume then continues exactly; without it the buffer refills from scratch).
    :param progress_bar: show SB3's progress bar.
    :param tensorboard: write TensorBoard logs under ``out/logs`` (``None``: when the
        ``tensorboard`` package is installed).
    :param callback: an SB3 callback (or list) called during training.
    :param memory_refresh: ``HierHash`` in memory mode only: every this many environment
        steps, set the code memory to the agent's greedy codes of every training image
        (:class:`hashgym.agents.memory.MemoryRefresh`; ``None``: the memory changes only as
        episodes end, as ``docs/methods.md`` describes).
    :param device: torch device; one this machine lacks is refused (SB3 would use the CPU).
    :param verbose: SB3's verbosity.
    :raises TrainError: for an env that is not hashgym's, a device this machine lacks, an
        unknown algorithm, one that does not fit the env's action space,
        inconsistent step budgets, or a checkpoint of a different run in ``out``.
    """
    started = time.perf_counter()
    _check_out(out)
    config = RunConfig(
        algo=algo, env_id=env_id, env_kwargs=dict(env_kwargs or {}),  # type: ignore[arg-type]
        algo_kwargs=dict(algo_kwargs or {}), policy=policy,
        levels=None if levels is None else list(levels), total_timesteps=total_timesteps,
        level_timesteps=level_timesteps, n_constraints=n_constraints,  # type: ignore[arg-type]
        triplets_per_image=triplets_per_image, num_envs=num_envs, memory_refresh=memory_refresh,
        seed=seed)
    plan = resolve_run(config, device)
    return run_plan(plan, out=out, checkpoint_every=checkpoint_every, resume=resume,
                    save_replay_buffer=save_replay_buffer, progress_bar=progress_bar,
                    tensorboard=tensorboard, callback=callback, verbose=verbose, started=started)


def _check_out(out: str | os.PathLike[str] | None) -> None:
    """Refuse an output folder that is a file, or holds a ``config.json`` that is not a run's."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise TrainError(f"out={os.fspath(out)!r} is a file: a run writes a folder (model.zip, "
                         f"config.json, logs/, checkpoints/); give a folder path")
    if out is not None and (Path(out) / "config.json").is_file():
        try:  # a run's own config.json (it resumes, or starts over) is replaced; nothing else
            check_output(Path(out) / "config.json", suffix=".json", kind="run config",
                         keys=("algo", "env_id"))
        except OutputPathError as exc:
            raise TrainError(f"out={os.fspath(out)!r} holds a config.json that is not a "
                             f"hashgym run's (a --config file?); the run would replace it: "
                             f"give another folder") from exc


@dataclasses.dataclass
class RunPlan:
    """A run resolved (:func:`resolve_run`): every default settled, the first env built.

    :param config: the settings, resolved: ``levels``, ``level_timesteps`` (the budget per
        level), ``n_constraints`` (one pool size per level), ``num_envs``, ``policy`` and
        ``algo_kwargs`` (hashgym's defaults merged in) are what the run trains with.
    :param name: the algorithm's registry name.
    :param spec: its registry entry.
    :param cls: its class.
    :param bank: the bank the envs read (its protocol applied).
    :param env_kwargs: the env's arguments, less the bank, its protocol, the level and
        ``prev_codes`` (which :meth:`make_env` sets).
    :param first_env: the env the model is built on.
    :param shape: what the env resolved: ``n_bits``, ``bits_per_step``, ``steps_per_image`` and
        ``memory_generation`` (HierHash; ``None`` without generations or on other envs).
    :param initial_prev: the code memory a run starting at a level ``>= 1`` starts from.
    :param refresher: the memory-refresh callback, if any.
    :param device: the torch device.
    :param bank_spec: the bank as given (recorded as its name or fingerprint).
    :param protocol: the protocol arguments given with the bank (recorded).
    """

    config: RunConfig
    name: str
    spec: AlgoSpec
    cls: type
    bank: FeatureBank
    env_kwargs: dict[str, Any]
    first_env: Any
    shape: dict[str, Any]
    initial_prev: np.ndarray | None
    refresher: MemoryRefresh | None
    device: str
    bank_spec: Any
    protocol: dict[str, Any]

    @property
    def hier(self) -> bool:
        """Whether the run trains ``HierHash``'s levels (either version)."""
        return is_hierhash(self.config.env_id)

    @property
    def levels(self) -> list[int | None]:
        """The levels trained in order (``[None]`` on an env without levels)."""
        return list(self.config.levels) if self.hier else [None]  # type: ignore[arg-type]

    @property
    def steps(self) -> list[int]:
        """Environment steps per level."""
        return list(self.config.level_timesteps)  # type: ignore[arg-type]

    @property
    def budget(self) -> int:
        """Environment steps of the whole run."""
        return sum(self.steps)

    def make_env(self, level: int | None, prev_codes: np.ndarray | None, env_seed: int) -> Any:
        """The SB3 vector env of ``level`` (``env_seed`` is the curriculum's; it seeds it)."""
        kwargs = dict(self.env_kwargs)
        if self.hier:
            kwargs["level"] = level
            if prev_codes is not None:
                kwargs["prev_codes"] = prev_codes
            pools = dict(zip(self.levels, self.config.n_constraints or ()))
            if pools.get(level) is not None:
                kwargs["n_constraints"] = int(pools[level])
        venv = make_sb3_vec_env(self.config.env_id, num_envs=self.config.num_envs,
                                bank=self.bank,
                                info_keys=None if self.spec.needs_infos else (), **kwargs)
        return FlattenDictObs(venv) if self.spec.flatten_obs else venv

    def record(self) -> dict[str, Any]:
        """The run's ``config.json`` (and its model's ``hashgym_info``): its settings in
        :class:`~hashgym.agents.config.RunConfig`'s schema, with what the run resolved."""
        config = self.config.to_record()
        config["env_kwargs"] = {"bank": _bank_record(self.bank_spec, self.bank),
                                **self.protocol, **self.env_kwargs}
        if not self.hier:
            config["levels"] = config["n_constraints"] = None
        return {**config, "bank_path": _bank_path(self.bank_spec),
                "flatten_obs": self.spec.flatten_obs, "resolved": dict(self.shape),
                "observation_space": None, "action_space": None}


def resolve_run(config: RunConfig, device: str = "cpu") -> RunPlan:
    """Settle every default of ``config`` once: the algorithm, the bank, the levels, the first
    env (whose code shape and memory generation the recipe's budget counts in), the budget, the
    pools and the parallel images.

    :param config: the run's settings.
    :param device: the torch device (refused when this machine lacks it).
    :raises TrainError: see :func:`train`.
    """
    name, spec = resolve_algorithm(config.algo)
    cls = load_target(spec.target)
    env_id = config.env_id
    if not _is_hashgym_env(env_id):
        what = (f"env id {env_id!r} is a Gymnasium env but not a hashgym one (it takes no "
                f"bank)" if isinstance(env_id, str) and env_id in gym.registry
                else f"unknown env id {env_id!r}")
        raise TrainError(f"{what}; expected one of {', '.join(ENV_IDS)}")
    try:
        check_device(device)
    except DeviceError as exc:
        raise TrainError(str(exc)) from exc
    env_kwargs = dict(config.env_kwargs)
    for reserved in ("num_envs", "n_constraints"):
        if reserved in env_kwargs:
            raise TrainError(f"pass {reserved} as train()'s own argument, not in env_kwargs")
    bank_spec = env_kwargs.pop("bank", None)
    protocol = {k: env_kwargs.pop(k) for k in ("protocol", "protocol_seed") if k in env_kwargs}
    bank = resolve_bank(bank_spec, protocol=protocol.get("protocol"),
                        seed=protocol.get("protocol_seed", 0))
    initial_prev = env_kwargs.pop("prev_codes", None)
    levels = _resolve_levels(config, bank, env_kwargs.pop("level", None))
    config.check_exclusive()
    _check_budget(config)
    refresher = _memory_refresh(config, env_kwargs)
    hier = is_hierhash(env_id)
    if hier and levels[0] >= 1 and initial_prev is None:
        # a level-l-only run (DRLHIH's ablation): no previous level to refine, so rho = 1
        # (eq. (1) alone) unless the caller asks otherwise
        env_kwargs.setdefault("rho", 1.0)
    num_envs = default_num_envs(env_id) if config.num_envs is None else config.num_envs
    plan = RunPlan(dataclasses.replace(config, algo=name, levels=levels, num_envs=num_envs,
                                       policy=config.policy or spec.policy),
        name, spec, cls, bank, env_kwargs, None, {}, initial_prev, refresher, device, bank_spec,
        protocol)
    plan.config = dataclasses.replace(plan.config, n_constraints=_resolve_pools(plan),
                                      triplets_per_image=None)
    # the first level's env (level 0 when the run starts past it without codes to start from:
    # the env at a level >= 1 needs them, and they are drawn in the env's resolved code shape)
    start = levels[0] if levels[0] is None or initial_prev is not None else 0
    plan.first_env = plan.make_env(start, initial_prev, config.seed + (start or 0))
    check_fits(name, spec, plan.first_env.action_space, env_id)
    plan.shape = _env_shape(plan.first_env)
    if hier and levels[0] >= 1 and initial_prev is None:
        split_labels = bank.labels[bank.indices(env_kwargs.get("split", "train"))]
        native = native_vector_env(plan.first_env)
        plan.initial_prev = random_memory(split_labels[:, levels[0]], plan.shape["n_bits"],
                                          np.random.default_rng(config.seed), native.memory_init)
    plan.config = dataclasses.replace(
        plan.config, total_timesteps=None, level_timesteps=_resolve_steps(plan),
        algo_kwargs=_resolve_algo_kwargs(plan))
    return plan


def _resolve_levels(config: RunConfig, bank: FeatureBank, env_level: int | None) -> list[Any]:
    """The levels a run trains: ``config.levels``, else the env's ``level`` argument, else
    every level of the bank (``[None]`` on an env without levels)."""
    if not is_hierhash(config.env_id):
        if config.levels is not None or config.n_constraints is not None:
            raise TrainError(f"levels and n_constraints apply to HierHash, not "
                             f"{config.env_id}")
        return [None]
    levels = config.levels
    if levels is None:
        levels = [env_level] if env_level is not None else list(range(bank.n_levels))
    levels = [int(lv) for lv in levels]
    if not levels or min(levels) < 0 or max(levels) >= bank.n_levels:
        raise TrainError(f"levels={levels} must be levels of the bank (0..{bank.n_levels - 1})")
    return levels


def _check_budget(config: RunConfig) -> None:
    """Refuse a negative total budget, or no budget where there is no recipe's."""
    if config.total_timesteps is not None and int(config.total_timesteps) < 0:
        raise TrainError(f"total_timesteps must be >= 0, got {int(config.total_timesteps)}")
    if (config.total_timesteps is None and config.level_timesteps is None
            and not is_hierhash(config.env_id)):
        raise TrainError("give a step budget: total_timesteps (or level_timesteps)")


def _memory_refresh(config: RunConfig, env_kwargs: dict[str, Any]) -> MemoryRefresh | None:
    """The memory-refresh callback ``config.memory_refresh`` asks for (memory mode only)."""
    if config.memory_refresh is None:
        return None
    if not is_hierhash(config.env_id) or env_kwargs.get("mode", "memory") != "memory":
        raise TrainError("memory_refresh applies to HierHash in memory mode only (it "
                         "rewrites the env's code memory)")
    try:
        return MemoryRefresh(config.memory_refresh)
    except ValueError as exc:
        raise TrainError(f"memory_refresh: {exc}") from exc


def _env_shape(venv: Any) -> dict[str, Any]:
    """What the env resolved of its code's shape and its memory generations."""
    native = native_vector_env(venv)
    return {"n_bits": int(native.n_bits), "bits_per_step": int(native.bits_per_step),
            "steps_per_image": int(native.steps_per_image),
            "memory_generation": getattr(native, "memory_generation", None)}


def _resolve_steps(plan: RunPlan) -> list[int]:
    """Environment steps per level: ``level_timesteps``, ``total_timesteps`` split equally, or
    on ``HierHash`` the recipe's generations, counted in the env's own generation."""
    config, levels = plan.config, plan.levels
    if config.level_timesteps is not None:
        steps = [int(t) for t in _per_level(config.level_timesteps, levels, "level_timesteps")]
    elif config.total_timesteps is not None:
        steps = _split_steps(int(config.total_timesteps), len(levels))
    else:
        n_images = len(plan.bank.indices(plan.env_kwargs.get("split", "train")))
        steps = recipe_level_timesteps(levels, generation_steps(
            n_images, plan.shape["steps_per_image"], plan.shape["memory_generation"]))
    if any(s < 0 for s in steps):
        raise TrainError(f"step budgets must be >= 0, got {steps}")
    return steps


def _resolve_pools(plan: RunPlan) -> list[int | None] | None:
    """The constraint pool size per level (``None``: the env's default), or ``None`` off
    ``HierHash``."""
    if not plan.hier:
        return None
    pools = plan.config.n_constraints
    if plan.config.triplets_per_image is not None:
        pools = int(plan.config.triplets_per_image) * len(plan.bank.indices("train"))
    return _per_level(pools, plan.levels, "n_constraints")


def _resolve_algo_kwargs(plan: RunPlan) -> dict[str, Any]:
    """The algorithm's arguments: hashgym's defaults, the caller's, the image extractor and
    the bank's backbone."""
    kwargs = merge_defaults(plan.spec.defaults, dict(plan.config.algo_kwargs or {}))
    if (plan.env_kwargs.get("observation") == "image"
            and _takes_extractor(plan.cls, plan.config.policy)):
        kwargs = with_image_extractor(kwargs)
    return _bank_backbone(kwargs, plan.bank)


def run_plan(plan: RunPlan, *, out: str | os.PathLike[str] | None = None,
             checkpoint_every: int | None = None, resume: bool = True,
             save_replay_buffer: bool = True, progress_bar: bool = False,
             tensorboard: bool | None = None, callback: Any = None, verbose: int = 0,
             started: float | None = None) -> TrainResult:
    """Build the model of a resolved run, then train it, checkpointing into ``out``; see
    :func:`train` for the arguments.

    :param started: when the call began (:func:`time.perf_counter`; default now), for the
        result's wall time.
    """
    started = time.perf_counter() if started is None else started
    _check_out(out)
    info = to_json(plan.record())  # fail early on arguments that cannot be recorded
    model = _build(plan.cls, plan.config.policy, plan.first_env,
                   from_json(plan.config.algo_kwargs), plan.config.seed, plan.device, verbose)
    info["observation_space"] = space_to_json(model.observation_space)
    info["action_space"] = space_to_json(model.action_space)
    run = None if out is None else RunStore(
        Path(out), info, max(10_000, plan.budget // 10) if checkpoint_every is None
        else checkpoint_every, save_replay_buffer)
    curriculum = LevelCurriculum(model, plan.make_env, plan.levels, plan.steps,
                                 seed=plan.config.seed)
    state, resumed_from = _start(run, model, resume, tensorboard, verbose)
    if state is None:
        state = LevelState(prev_codes=plan.initial_prev)
    callbacks = [c for c in ([callback] if not isinstance(callback, list) else callback) if c]
    if plan.refresher is not None:
        callbacks.insert(0, plan.refresher)  # the caller's callbacks see the refreshed memory
    if run is not None:
        callbacks.append(run.callback(curriculum))
    model = curriculum.run(resume=state, callback=CallbackList(callbacks),
                           progress_bar=progress_bar, tb_log_name=plan.name)
    info["num_timesteps"] = int(model.num_timesteps)
    info["trained_levels"] = plan.levels if plan.hier else None
    model.hashgym_info = info
    path = None
    if run is not None:
        run.checkpoint(curriculum, final=True)
        path = run.save_final(model)
    wall = time.perf_counter() - started
    return TrainResult(model, info, path, wall, int(model.num_timesteps), resumed_from)


def _start(run: RunStore | None, model: Any, resume: bool, tensorboard: bool | None,
           verbose: int) -> tuple[LevelState | None, int | None]:
    """Open the run's folder: restore its last checkpoint (or clear it without ``resume``),
    open the log and write ``config.json``; return the restored state and its step."""
    if run is None:
        return None, None
    state, resumed_from = None, None
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
    return state, resumed_from


def _bank_backbone(kwargs: dict[str, Any], bank: FeatureBank) -> dict[str, Any]:
    """Replace a CNN body's weights ``"bank"`` with the backbone the bank's features came from:
    the state dict ``hashgym features --save-weights`` wrote and recorded in the bank's meta
    (checked against its SHA-256), so an agent starts end to end from it.

    :raises TrainError: when the bank records no such file, or the file changed since.
    """
    policy_kwargs = dict(kwargs.get("policy_kwargs") or {})
    extractor = dict(policy_kwargs.get("features_extractor_kwargs") or {})
    places = [(policy_kwargs, "backbone_weights"), (extractor, "weights")]
    if not any(place.get(key) == "bank" for place, key in places):
        return kwargs
    path, digest = bank.meta.get("saved_weights"), bank.meta.get("saved_weights_sha256")
    if not path or not Path(path).is_file():
        raise TrainError("backbone weights 'bank' need a bank made by hashgym features "
                         "--save-weights, whose weights file still exists; this bank records "
                         f"{path!r}")
    if digest != sha256_file(path):
        raise TrainError(f"the backbone weights {path} changed since the bank was made "
                         f"(SHA-256 differs from the bank's record)")
    for place, key in places:
        if place.get(key) == "bank":
            place[key] = str(path)
    if extractor:
        policy_kwargs["features_extractor_kwargs"] = extractor
    return {**kwargs, "policy_kwargs": policy_kwargs}


def _takes_extractor(cls: type, policy: str | type | None) -> bool:
    """Whether the algorithm's policy is built around an SB3 features extractor (the recurrent
    REINFORCE policy carries its own image body instead)."""
    aliases = getattr(cls, "policy_aliases", {})
    policy_class = aliases.get(policy or "MultiInputPolicy", policy)
    if not isinstance(policy_class, type):
        return True
    return "features_extractor_class" in inspect.signature(policy_class.__init__).parameters


def with_image_extractor(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Algorithm arguments for image observations: unless the caller chose another features
    extractor, :class:`~hashgym.agents.cnn.ImageHashFeatures` in place of
    :class:`~hashgym.agents.dqn.HashQFeatures` (or of SB3's default, whose NatureCNN needs
    images of 36 pixels or more), with the same ``projection_dim``."""
    policy_kwargs = dict(kwargs.get("policy_kwargs") or {})
    chosen = policy_kwargs.get("features_extractor_class")
    if chosen not in (None, HashQFeatures):
        return kwargs
    extractor_kwargs = dict(policy_kwargs.get("features_extractor_kwargs") or {})
    extractor_kwargs.pop("normalize", None)  # HashQFeatures' own argument
    policy_kwargs.update(features_extractor_class=ImageHashFeatures,
                         features_extractor_kwargs=extractor_kwargs)
    return {**kwargs, "policy_kwargs": policy_kwargs}


def _build(cls: type, policy: str | None, venv: Any, kwargs: dict[str, Any], seed: int,
           device: str, verbose: int) -> Any:
    args = dict(kwargs)
    try:
        if policy is None:
            return cls(env=venv, seed=seed, device=device, verbose=verbose, **args)
        return cls(policy, venv, seed=seed, device=device, verbose=verbose, **args)
    except (TypeError, ValueError) as exc:  # unknown keywords; values torch or SB3 refuse
        raise TrainError(f"bad arguments for {cls.__name__}: {exc}") from exc


def hierarchical_dqn(
    bank: Any = None,
    *,
    n_bits: int = 12,
    bits_per_step: int | None = None,
    levels: Sequence[int] | None = None,
    timesteps_per_level: Sequence[int] | int | None = None,
    n_constraints: Sequence[int] | int | None = None,
    num_envs: int | None = None,
    memory_refresh: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    out: str | None = None,
    progress_bar: bool = False,
    **dqn_kwargs: Any,
) -> Any:
    """Train DRLHIH's hierarchical DQN hash function (DRLHIH §3–4).

    A thin front end of :func:`hashgym.agents.train.train` with ``algo="dqn"`` and
    ``env_id="HierHash-v1"`` (:data:`~hashgym.agents.config.DEFAULT_ENV_ID`): the paper's
    network (:class:`~hashgym.agents.dqn.HashQFeatures`), code length and
    ``γ = 1`` (:data:`~hashgym.agents.dqn.DQN_DEFAULTS`), the env's defaults (the expected class-mean reward against a code
    memory that moves once per generation, from random class codes: pure RL) and the recipe's budget
    and parallel images (:mod:`hashgym.agents.recipe`). Every default is the one measured best;
    the measurements are in ``benchmarks/results/notes/hierhash-learnable.md`` and the
    blind five-seed table in ``benchmarks/results/drlhih``. The paper's own setting is
    ``env_kwargs=hashgym.envs.hierhash.PAPER_SETTINGS``.

    :param bank: a :class:`~hashgym.bank.FeatureBank`, path or preset name (default: built in).
    :param n_bits: code length (12 in the paper).
    :param bits_per_step: bits per action (default
        :func:`hashgym.envs.hierhash.default_bits_per_step`: 3 at 12 bits, the paper's).
    :param levels: the levels to train in order; default all levels of the bank.
    :param timesteps_per_level: environment steps per level (a number or one per level);
        default :func:`hashgym.agents.recipe.recipe_level_timesteps` (one memory generation per
        level but the last, four in all).
    :param n_constraints: constraint pool size per level, or one size for every level (default:
        the env's, 30 triplets per training image).
    :param num_envs: images coded in parallel (default :data:`hashgym.agents.recipe.NUM_ENVS`).
    :param memory_refresh: environment steps between rewrites of the code memory with the
        agent's greedy codes (:class:`hashgym.agents.memory.MemoryRefresh`); ``None`` (default)
        leaves the memory to the env's generations.
    :param env_kwargs: more ``HierHash-v1`` arguments (``lam``, ``rho``, ``estimator``,
        ``memory_generation``, ...).
    :param seed: the run's seed.
    :param out: a folder for the model, checkpoints and logs (``None``: nothing written).
    :param progress_bar: show a progress bar.
    :param dqn_kwargs: more :class:`~stable_baselines3.DQN` arguments (override
        :data:`~hashgym.agents.dqn.DQN_DEFAULTS`).
    :return: the :class:`~hashgym.agents.train.TrainResult`.
    """
    return train(
        "dqn", DEFAULT_ENV_ID,
        env_kwargs={"bank": bank, "n_bits": n_bits,
                    **({} if bits_per_step is None else {"bits_per_step": bits_per_step}),
                    **(env_kwargs or {})},
        levels=levels, n_constraints=n_constraints, level_timesteps=timesteps_per_level,
        num_envs=num_envs, seed=seed, out=out, progress_bar=progress_bar,
        memory_refresh=memory_refresh, algo_kwargs=dqn_kwargs,
    )
