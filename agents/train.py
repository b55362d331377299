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
from hashgym.agents.checkpoints import RunStore
from hashgym.agents.cnn import ImageHashFeatures
from hashgym.agents.curriculum import LevelCurriculum, LevelState
from hashgym.agents.dqn import HashQFeatures
from hashgym.agents.flatten import FlattenDictObs
from hashgym.agents.memory import MemoryRefresh
from hashgym.agents.recipe import default_num_envs, recipe_budget
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
from stable_baselines3.common.callbacks import CallbackList

from hashgym.atomic import OutputPathError, check_output
from hashgym.bank import FeatureBank
from hashgym.devices import DeviceError, check_device
from hashgym.envs.hierhash import HierHashCore, random_memory, resolve_memory_init
from hashgym.envs.sb3 import make_sb3_vec_env
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
        episodes end, as ``docs/methods.md`` describes).
    :param device: torch device; one this machine lacks (``"cuda"`` without CUDA) is refused,
        where SB3 would train on the CPU without a word.
    :param verbose: SB3's verbosity.
    :raises TrainError: for an env that is not hashgym's, a device this machine lacks, an
        unknown algorithm, one that does not fit the env's action space,
        inconsistent step budgets, or a checkpoint of a different run in ``out``.
    """
    started = time.perf_counter()
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
    name, spec = resolve_algorithm(algo)
    cls = load_target(spec.target)
    if not _is_hashgym_env(env_id):
        what = (f"env id {env_id!r} is a Gymnasium env but not a hashgym one (it takes no "
                f"bank)" if isinstance(env_id, str) and env_id in gym.registry
                else f"unknown env id {env_id!r}")
        raise TrainError(f"{what}; expected 'HierHash-v0' or 'CentralHash-v0'")
    try:
        check_device(device)
    except DeviceError as exc:
        raise TrainError(str(exc)) from exc
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

        try:
            refresher = MemoryRefresh(memory_refresh)
        except ValueError as exc:
            raise TrainError(f"memory_refresh: {exc}") from exc

    def make_env(level: int | None, prev_codes: np.ndarray | None, env_seed: int) -> Any:

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

            venv = FlattenDictObs(venv)
        return venv

    first_env = make_env(levels[0], initial_prev, seed + (levels[0] or 0))
    check_fits(name, spec, first_env.action_space, env_id)

    kwargs = merge_defaults(spec.defaults, dict(algo_kwargs or {}))
    policy = policy or spec.policy
    if env_kwargs.get("observation") == "image" and _takes_extractor(cls, policy):
        kwargs = with_image_extractor(kwargs)
    kwargs = _bank_backbone(kwargs, bank)
    info: dict[str, Any] = {
        "algo": name,
        "policy": policy,
        "algo_kwargs": kwargs,
        "env_id": env_id,
        "env_kwargs": {"bank": _bank_record(bank_spec, bank), **env_kwargs},
        "bank_path": _bank_path(bank_spec),
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

    info = to_json(info)  # fail early on arguments that cannot be recorded
    model = _build(cls, policy, first_env, from_json(kwargs), seed, device, verbose)
    info["observation_space"] = space_to_json(model.observation_space)
    info["action_space"] = space_to_json(model.action_space)

    run = RunStore(Path(out), info, max(10_000, sum(steps) // 10) if checkpoint_every is None
               else checkpoint_every,
               save_replay_buffer) if out is not None else None

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
    ``env_id="HierHash-v0"``: the paper's network (:class:`~hashgym.agents.dqn.HashQFeatures`), code length and
    ``γ = 1`` (:data:`~hashgym.agents.dqn.DQN_DEFAULTS`), the env's defaults (the expected class-mean reward against a code
    memory that moves once per generation, from random class codes: pure RL) and the recipe's budget
    and parallel images (:mod:`hashgym.agents.recipe`). Every default is the one measured best;
    the measurements are in ``benchmarks/results/notes/hierhash-learnable.md`` and the
    three-seed table in ``benchmarks/results/drlhih``. The paper's own setting is
    ``env_kwargs=hashgym.envs.hierhash.PAPER_SETTINGS``.

    :param bank: a :class:`~hashgym.bank.FeatureBank`, path or preset name (default: built in).
    :param n_bits: code length (12 in the paper).
    :param bits_per_step: bits per action (default
        :func:`hashgym.envs.hierhash.default_bits_per_step`: 3 at 12 bits, the paper's).
    :param levels: the levels to train in order; default all levels of the bank.
    :param timesteps_per_level: environment steps per level (a number or one per level);
        default :func:`hashgym.agents.recipe.recipe_budget` (one memory generation per
        level but the last, four in all).
    :param n_constraints: constraint pool size per level, or one size for every level (default:
        the env's, 30 triplets per training image).
    :param num_envs: images coded in parallel (default :data:`hashgym.agents.recipe.NUM_ENVS`).
    :param memory_refresh: environment steps between rewrites of the code memory with the
        agent's greedy codes (:class:`hashgym.agents.memory.MemoryRefresh`); ``None`` (default)
        leaves the memory to the env's generations.
    :param env_kwargs: more ``HierHash-v0`` arguments (``lam``, ``rho``, ``estimator``,
        ``memory_generation``, ...).
    :param seed: the run's seed.
    :param out: a folder for the model, checkpoints and logs (``None``: nothing written).
    :param progress_bar: show a progress bar.
    :param dqn_kwargs: more :class:`~stable_baselines3.DQN` arguments (override
        :data:`~hashgym.agents.dqn.DQN_DEFAULTS`).
    :return: the :class:`~hashgym.agents.train.TrainResult`.
    """
    return train(
        "dqn", "HierHash-v0",
        env_kwargs={"bank": bank, "n_bits": n_bits,
                    **({} if bits_per_step is None else {"bits_per_step": bits_per_step}),
                    **(env_kwargs or {})},
        levels=levels, n_constraints=n_constraints, level_timesteps=timesteps_per_level,
        num_envs=num_envs, seed=seed, out=out, progress_bar=progress_bar,
        memory_refresh=memory_refresh, algo_kwargs=dqn_kwargs,
    )
