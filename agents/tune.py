"""Hyperparameter sweeps for hashgym's agents: ``hashgym tune``.

A sweep trains ``trials`` agents whose arguments are drawn from a **search space**, scores each
on **validation queries that are neither the test queries nor images the backbone trained on**,
and keeps the best:

* **Validation, never the test queries.** A shared preset whose queries are a test set
  (``cifar100``, ``cifar100-csq``, ..., and the built-in ``cifar100-mini``, a subset of it) is
  replaced by its **development twin** (``cifar100-dev``, ``cifar100-dev-csq``, ...,
  ``cifar100-dev-mini``; :func:`hashgym.protocols.development_twin`),
  whose own backbone never saw its validation queries: trials train on the twin's training
  images and are scored on its queries. ``on_test_bank=True`` (``--on-test-bank``) keeps the
  shared preset instead, with the ``holdout`` split below, whose images that backbone trained
  on. A development preset is scored on its own queries. Any other bank (a user's own) is
  re-split by the ``holdout`` protocol (:mod:`hashgym.protocols`): 10 % of every class's
  training images become validation queries, the rest the database and the training set; the
  bank's own query split is not read.
* **Search.** Optuna's TPE sampler (seeded, so the same space and seed give the same trials)
  proposes each trial's arguments from what the earlier trials scored.
* **Early stopping.** Each run is scored on the validation split at ``rungs`` evenly spaced
  points; Optuna's successive-halving pruner (the synchronous form of ASHA) stops a trial whose
  score at a rung is below the best ones' there, so most of the budget goes to promising
  trials. ``rungs=1`` scores only at the end and prunes nothing.

* **Parallel and resumable.** The study lives in Optuna's journal file ``study.journal`` in the
  output folder. ``jobs`` workers share it (each runs its share of the trials): local processes,
  or Ray tasks (``executor="ray"``, :mod:`hashgym.ray_pool`) on a local Ray or on a cluster
  (``ray_address``), whose nodes then need the output folder on a file system they all mount
  (the journal's file locks keep their writes apart). A sweep that was stopped resumes from the
  journal: the same call runs only the missing trials.
* **Shared folders.** Each trial records its owner (process id, host and start time,
  :mod:`hashgym.owners`) and each ``tune()`` call records itself in the journal while it runs.
  A second sweep started on a folder where one is running leaves that sweep's trials alone
  (only trials whose process is gone are marked interrupted) and runs only the trials beyond
  those finished or under way; both then finish, and together they may hold more trials than
  either asked for, never fewer. ``resume=False`` (``--no-resume``) is refused while another
  sweep runs on the folder, since it would delete that sweep's trials.

The output folder holds ``trials.csv`` (one row per trial: its number, state — ``complete``,
``pruned``, ``failed`` or ``interrupted`` —, the metric, steps, seconds and every searched
argument) and ``best.json``, the best trial's arguments as a file ``hashgym train --config``
reads, pointed at the original bank, so the chosen setting trains on all training images.

Search space
------------
A YAML (or JSON) mapping of a run's settings (:class:`hashgym.agents.config.RunConfig`'s keys,
the keys of ``hashgym train --config``). A value is fixed, or a **dimension**: a mapping with one
of these keys::

    env_id: HierHash-v0
    algo: dqn
    total_timesteps: 400000
    env_kwargs:
      bank: cifar100-mini
      margin: {uniform: [2.0, 4.0]}
    algo_kwargs:
      learning_rate: {loguniform: [1.0e-4, 3.0e-3]}
      target_update_interval: {int: [500, 4000]}
      policy_kwargs:
        net_arch: {choice: [[256, 256], [512, 512]]}

``uniform: [low, high]`` and ``loguniform: [low, high]`` draw floats, ``int: [low, high]`` an
integer, ``choice: [a, b, ...]`` one of the values. Dimensions may sit at any depth of
``env_kwargs`` and ``algo_kwargs``, and at the top level (``levels``, ``num_envs``,
``total_timesteps``); the algorithm, env, bank, protocol and seed are fixed. Spaces written with
the older names (``env``, ``timesteps``, a top-level ``bank``) are read too.
``examples/dqn_space.yaml`` is the space around the DQN recipe.

Optuna and PyYAML are the ``tune`` extra (``pip install -e ".[tune]"``).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from hashgym.agents.config import DEFAULT_ENV_ID, LEGACY_KEYS, RunConfig, canonical_keys
from hashgym.agents.encode import encode
from hashgym.agents.train import train
from hashgym.atomic import atomic_write
from hashgym.bank import FeatureBank
from hashgym.errors import AgentError, HashgymError
from hashgym.identity import canonical_json
from hashgym.metrics import evaluate, parse_metric
from hashgym.owners import owner_alive, owner_record
from hashgym.protocols import development_twin, is_development, resolve_bank
from hashgym.ray_pool import RayPool, RayPoolError
from hashgym.validation import check_choice, check_count, is_integer, is_number

__all__ = ["DIMENSION_KINDS", "EXECUTORS", "SweepResult", "TuneError",
           "load_space", "tune"]

logger = logging.getLogger(__name__)

#: The kinds of search dimension a space may hold.
DIMENSION_KINDS = ("uniform", "loguniform", "int", "choice")
#: Where a sweep's parallel workers run (module docstring).
EXECUTORS = ("process", "ray")


#: This module's name for :class:`~hashgym.errors.AgentError` (an alias).
TuneError = AgentError


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise TuneError("hashgym tune needs Optuna, an optional extra: pip install -e "
                        f"\".[tune]\" (or pip install \"hashgym[tune]\") ({exc})") from exc
    return optuna


# ---------------------------------------------------------------------------- the space
def load_space(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a search space file (YAML, or JSON, which YAML reads too).

    :raises TuneError: naming the file, for a missing or unreadable file, unknown keys or a
        malformed dimension.
    """
    path = Path(path)
    try:
        import yaml
    except ImportError as exc:
        raise TuneError("reading a search space needs PyYAML, part of the tune extra: "
                        "pip install -e \".[tune]\"") from exc
    try:
        space = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TuneError(f"cannot read the search space {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TuneError(f"the search space {path} is not valid YAML: {exc}") from exc
    if not isinstance(space, dict):
        raise TuneError(f"the search space {path} must be a mapping of train() arguments")
    return _check_space(space, f"the search space {path}")


#: What the fixed settings of a space must be (``None`` allowed): a check and its wording.
_FIXED = {
    **{key: (lambda v: isinstance(v, str), "a string") for key in ("env_id", "algo", "bank",
                                                                   "protocol")},
    "seed": (is_integer, "an integer"),
}


def _check_space(space: dict[str, Any], where: str) -> dict[str, Any]:
    """``space`` in :class:`~hashgym.agents.config.RunConfig`'s keys (old names mapped) if its
    keys, types and dimensions are sound, else :class:`TuneError` naming the key (``where``
    names the space in messages)."""
    for key in ("env_kwargs", "algo_kwargs"):
        if not isinstance(space.get(key, {}), dict):
            raise TuneError(f"{key} of {where} must be a mapping")
    written = {new: old for old, new in LEGACY_KEYS.items() if old in space}  # for messages
    space = canonical_keys(space, where, TuneError)
    env_kwargs = space.get("env_kwargs", {})
    for key, (check, wording) in _FIXED.items():
        value = env_kwargs.get(key) if key in ("bank", "protocol") else space.get(key)
        name = written.get(key, key)
        if _is_dimension(value):
            raise TuneError(f"{name} of {where} is one value for the whole sweep, not a "
                            f"dimension ({value!r}); search env_kwargs, algo_kwargs, levels, "
                            f"total_timesteps or num_envs, and run one sweep per {name}")
        if value is not None and not check(value):
            raise TuneError(f"{name} of {where} must be {wording}, got {value!r}")
    budget = space.get("total_timesteps")
    if budget is not None:
        low = budget[next(iter(budget))] if _is_dimension(budget) else [budget]
        if not isinstance(low, list) or not all(is_integer(v) and v >= 1 for v in low):
            raise TuneError(f"{written.get('total_timesteps', 'total_timesteps')} of {where} "
                            f"must be a positive integer (environment steps per trial), got "
                            f"{budget!r}")
    if not _dimensions(space):
        raise TuneError(f"{where} has no dimension to search (e.g. "
                        f"learning_rate: {{loguniform: [1.0e-4, 1.0e-2]}})")
    return space


def _is_dimension(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DIMENSION_KINDS


def _dimensions(space: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every dimension of ``space`` by its dotted path (``algo_kwargs.learning_rate``)."""
    found = {}
    for key, value in space.items():
        name = f"{prefix}{key}"
        if _is_dimension(value):
            kind, bounds = next(iter(value.items()))
            _check_dimension(name, kind, bounds)
            found[name] = value
        elif isinstance(value, dict):
            found.update(_dimensions(value, name + "."))
    return found


def _check_dimension(name: str, kind: str, bounds: Any) -> None:
    if kind == "choice":
        if not isinstance(bounds, list) or not bounds:
            raise TuneError(f"dimension {name}: choice needs a non-empty list, got {bounds!r}")
        return
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(is_number(b) for b in bounds)
            or not bounds[0] < bounds[1]):
        raise TuneError(f"dimension {name}: {kind} needs [low, high] with low < high, "
                        f"got {bounds!r}")
    if kind == "loguniform" and bounds[0] <= 0:
        raise TuneError(f"dimension {name}: loguniform needs low > 0, got {bounds!r}")
    if kind == "int" and not all(float(b).is_integer() for b in bounds):
        raise TuneError(f"dimension {name}: int needs integer bounds, got {bounds!r}")


def _suggest(trial: Any, name: str, dimension: dict[str, Any]) -> Any:
    kind, bounds = next(iter(dimension.items()))
    if kind == "uniform":
        return trial.suggest_float(name, float(bounds[0]), float(bounds[1]))
    if kind == "loguniform":
        return trial.suggest_float(name, float(bounds[0]), float(bounds[1]), log=True)
    if kind == "int":
        return trial.suggest_int(name, int(bounds[0]), int(bounds[1]))
    # choices of lists (net_arch) are offered to Optuna as their JSON text
    labels = [json.dumps(c) for c in bounds]
    return json.loads(trial.suggest_categorical(name, labels))


def _fill(space: Any, values: Mapping[str, Any], prefix: str = "") -> Any:
    """``space`` with every dimension replaced by its value in ``values``."""
    if not isinstance(space, dict):
        return space
    return {key: values[f"{prefix}{key}"] if _is_dimension(value)
            else _fill(value, values, f"{prefix}{key}.") for key, value in space.items()}


# ---------------------------------------------------------------------------- scoring
class _Rungs(BaseCallback):
    """Scores the agent on the validation split at evenly spaced steps and reports each score
    to the trial; raises Optuna's ``TrialPruned`` when the pruner says so."""

    def __init__(self, trial: Any, score: Any, total: int, rungs: int, optuna: Any) -> None:
        super().__init__()
        self.trial, self.score, self.optuna = trial, score, optuna
        self.marks = [total * (i + 1) // rungs for i in range(rungs - 1)]

    def _on_step(self) -> bool:
        while self.marks and self.num_timesteps >= self.marks[0]:
            step = self.marks.pop(0)
            value = self.score(self.model)
            self.trial.report(value, step)
            if self.trial.should_prune():
                raise self.optuna.TrialPruned(f"{value:.4f} at step {step:,}")
        return True


@dataclass
class SweepResult:
    """What :func:`tune` returns.

    :param best_value: the best trial's validation metric.
    :param best_config: its arguments (a ``hashgym train --config`` mapping).
    :param trials: one mapping per trial (the rows of ``trials.csv``).
    :param out: the output folder.
    :param validation: where the trials were scored: ``"holdout"``, or the development preset's
        name (e.g. ``"cifar100-dev-csq"``) whose validation queries were scored.
    """

    best_value: float
    best_config: dict[str, Any]
    trials: list[dict[str, Any]]
    out: Path
    validation: str = "holdout"


@dataclass(frozen=True)
class _Sweep:
    """Everything a process running trials needs (picklable, for the worker processes)."""

    space: dict[str, Any]
    metric: str
    rungs: int
    seed: int
    bank: Any
    journal: str
    threads: int | None

    def signature(self, bank: FeatureBank) -> str:
        """What must not change when a sweep resumes: the space, the metric, rungs, seed and
        the bank (its fingerprint, ``bank`` being the resolved :attr:`bank`)."""
        return canonical_json({"space": self.space, "metric": self.metric, "rungs": self.rungs,
                               "seed": self.seed, "bank": bank.fingerprint()}, default=str)


STUDY = "hashgym-tune"
"""The Optuna study name inside a sweep's journal file."""
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def _storage(optuna: Any, journal: str) -> Any:
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(journal))


def _run_trials(sweep: _Sweep, n_trials: int, worker: int, full: FeatureBank | None = None) -> None:
    """Run ``n_trials`` trials of the sweep's study (one process; ``worker`` offsets the sampler's
    seed so that parallel workers propose different arguments; ``full``: the sweep's bank with its
    protocol applied, when the caller has it already)."""
    import torch

    if sweep.threads is not None:
        torch.set_num_threads(sweep.threads)
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, metric = sweep.space, sweep.metric
    dims = _dimensions(space)
    parsed = parse_metric(metric)
    if full is None:
        full = resolve_bank(sweep.bank, protocol=space.get("env_kwargs", {}).get("protocol"))
    val = full if is_development(full) else resolve_bank(full, protocol="holdout",
                                                         seed=sweep.seed)
    qi, di = val.indices("query"), val.indices("database")
    graded = parsed.name in ("NDCG", "ACG", "DCG") and val.n_levels > 1
    q_labels = val.labels[qi] if graded else val.labels[qi, -1]
    d_labels = val.labels[di] if graded else val.labels[di, -1]
    relevance = "hierarchy" if graded else "label"
    env_id = space.get("env_id", DEFAULT_ENV_ID)

    def score(model: Any) -> float:
        q = encode(model, val, "query", env_id=env_id)
        d = encode(model, val, "database", env_id=env_id)
        return float(evaluate(q, d, q_labels, d_labels, [metric], relevance=relevance)[metric])

    def objective(trial: Any) -> float:
        trial.set_user_attr("owner", owner_record())  # other sweeps on the folder leave it be
        config = _fill(space, {name: _suggest(trial, name, dim) for name, dim in dims.items()})
        started = time.perf_counter()
        total = int(config["total_timesteps"])
        run = RunConfig.from_mapping(copy.deepcopy(config), "the trial's arguments", TuneError)
        env_kwargs = {k: v for k, v in run.env_kwargs.items() if k not in ("bank", "protocol")}
        try:
            result = train(**run.replace(seed=sweep.seed,
                                         env_kwargs={**env_kwargs, "bank": val}).train_kwargs(),
                           callback=_Rungs(trial, score, total, sweep.rungs, optuna))
            trial.set_user_attr("steps", result.timesteps)
            return score(result.model)
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))

    study = optuna.load_study(
        study_name=STUDY, storage=_storage(optuna, sweep.journal),
        sampler=optuna.samplers.TPESampler(seed=sweep.seed + worker),
        pruner=optuna.pruners.SuccessiveHalvingPruner() if sweep.rungs > 1 else
        optuna.pruners.NopPruner(),
    )
    study.optimize(objective, n_trials=n_trials, catch=(HashgymError, ValueError))


#: The study's user attributes that name the processes running ``tune()`` on its folder.
_SWEEPER = "sweeper:"


def _me(record: Any) -> bool:
    """Whether an owner record names this very process."""
    mine = owner_record()
    return isinstance(record, dict) and all(record.get(k) == mine[k] for k in mine)


def _other_sweepers(study: Any) -> list[str]:
    """The other processes running a sweep on this study's folder now (those on another host
    count: whether they still run cannot be seen from here)."""
    return [f"process {record['pid']} on {record['host']}"
            for key, record in study.user_attrs.items()
            if key.startswith(_SWEEPER) and record is not None and not _me(record)
            and owner_alive(record) is not False]


def _stale(trial: Any, sweepers: list[str]) -> bool:
    """Whether a trial left RUNNING has lost its process: its owner (recorded as the trial
    starts) is gone or is this process; a trial not yet marked is stale only when no other sweep
    runs on the folder (it may be that sweep's trial an instant after it began)."""
    owner = trial.user_attrs.get("owner")
    if owner is None:
        return not sweepers
    return _me(owner) or owner_alive(owner) is False


def _open_study(optuna: Any, sweep: _Sweep, bank: FeatureBank, resume: bool) -> Any:
    """The sweep's study in its journal: a new one, or (``resume``) the one found there, after
    checking it is the same sweep and marking failed the trials left running by a stopped sweep
    (never those of a sweep still running on the folder); this process is then recorded as one
    of the folder's sweepers (:func:`_leave_study` removes it)."""
    journal = Path(sweep.journal)
    storage = _storage(optuna, sweep.journal)
    if journal.exists() and not resume:
        try:
            old = optuna.load_study(study_name=STUDY, storage=storage)
        except KeyError:  # a journal without the study: nothing to keep
            old = None
        busy = _other_sweepers(old) if old is not None else []
        if busy:
            raise TuneError(f"{journal.parent} holds a sweep that is running now ({busy[0]}); "
                            f"--no-resume would delete its trials: wait for it to finish, or "
                            f"give another --out")
        journal.unlink()
        storage = _storage(optuna, sweep.journal)
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize",
                                load_if_exists=True)
    recorded, signature = study.user_attrs.get("sweep"), sweep.signature(bank)
    if recorded is None:
        study.set_user_attr("sweep", signature)
    elif recorded != signature:
        raise TuneError(f"{journal.parent} holds a sweep of another search space, metric, rungs, "
                        f"seed or bank; give another --out, or --no-resume to start it over")
    mine = owner_record()
    study.set_user_attr(f"{_SWEEPER}{mine['host']}:{mine['pid']}:{mine['start']}", mine)
    sweepers = _other_sweepers(study)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if _stale(trial, sweepers):
            # its process is gone (trials.csv calls it interrupted: a failed trial without the
            # seconds a finished run sets); a live sweep's trial is left to it
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return study


def _leave_study(study: Any) -> None:
    """Remove this process from the sweepers of the study's folder (its trials are told)."""
    mine = owner_record()
    study.set_user_attr(f"{_SWEEPER}{mine['host']}:{mine['pid']}:{mine['start']}", None)


def _under_way(study: Any, optuna: Any) -> int:
    """Trials other live processes are running now: a sweep sharing the folder does not run
    them again."""
    return sum(1 for t in study.get_trials(deepcopy=False,
                                           states=(optuna.trial.TrialState.RUNNING,))
               if not _me(t.user_attrs.get("owner")))


def _run_workers(sweep: _Sweep, shares: list[int], executor: str,
                 ray_address: str | None, first: int = 0) -> None:
    """Run worker ``w``'s ``shares[w]`` trials in parallel: local processes or Ray tasks (their
    samplers seeded as workers ``first + w``)."""
    jobs = len(shares)
    if executor == "ray":
        try:
            pool: Any = RayPool(jobs, sweep.threads or 1, sweep, address=ray_address)
        except RayPoolError as exc:
            raise TuneError(str(exc)) from exc
        futures = [pool.submit(_run_trials, n, first + w) for w, n in enumerate(shares) if n]
    else:
        pool = ProcessPoolExecutor(max_workers=jobs,
                                   mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_run_trials, sweep, n, first + w)
                   for w, n in enumerate(shares) if n]
    try:
        for future in futures:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def tune(
    space: Mapping[str, Any] | str | os.PathLike[str],
    trials: int = 20,
    *,
    metric: str = "NDCG@20",
    rungs: int = 3,
    seed: int = 0,
    out: str | os.PathLike[str] = "runs/tune",
    bank: FeatureBank | str | None = None,
    jobs: int = 1,
    resume: bool = True,
    threads: int | None = None,
    executor: str = "process",
    ray_address: str | None = None,
    on_test_bank: bool = False,
) -> SweepResult:
    """Run a sweep (see the module docstring) and write ``trials.csv`` and ``best.json``.

    The study lives in ``out/study.journal`` (Optuna's journal file), so a stopped sweep
    resumes: run the same call again and it runs only the trials still missing (a trial cut
    off mid-run is listed as interrupted and replaced by a new one). Trials of one process are reproducible from ``seed``; with
    ``jobs > 1`` the trials' order, and so what the sampler proposes, depends on which worker
    finishes first.

    :param space: a search space mapping or the path of a YAML/JSON file holding one.
    :param trials: trials in the sweep (those a resumed sweep ran already included; trials cut
        off mid-run are not counted).
    :param metric: the validation metric (any of :mod:`hashgym.metrics`, higher is better);
        NDCG and ACG/DCG use graded relevance over every label level, the rest the finest
        label.
    :param rungs: validation scores per trial (the pruner's rungs; 1: only at the end).
    :param seed: seeds the sampler and every trial's model and envs (the same for all trials,
        so trials differ only by their arguments).
    :param out: output folder.
    :param bank: the bank, overriding the space's ``bank``; ``best.json`` names it when it is
        a preset name or a path (for a :class:`FeatureBank`, give ``--bank`` to ``hashgym
        train``).
    :param jobs: trials at once, each worker in its own process or Ray task (worker ``w``
        seeds its sampler with ``seed + w``); 1 with ``executor="process"`` runs them in this
        process.
    :param resume: continue the sweep found in ``out``; ``False`` starts it over.
    :param threads: torch threads of each trial; default: as set in this process, 1 in the
        worker processes (and the CPUs each Ray task asks for).
    :param executor: ``"process"`` (local worker processes) or ``"ray"`` (Ray tasks: a local
        Ray of ``jobs × threads`` CPUs started for the sweep, or the cluster at
        ``ray_address``).
    :param ray_address: an existing Ray cluster (``"auto"`` or an address), for
        ``executor="ray"``.
    :param on_test_bank: tune on a shared test preset (its ``holdout`` split, images its
        backbone trained on) instead of its development twin. Off by default, so that no
        setting is chosen on the bank whose queries a final table reports.
    :raises TuneError: for a bad space, metric, count, executor, a space without a budget, an
        ``out`` holding another sweep, or a Ray that is missing or cannot be reached.
    """
    optuna = _optuna()
    space = (load_space(space) if not isinstance(space, Mapping)
             else _check_space(dict(space), "the search space"))
    dims = _dimensions(space)
    trials = check_count(trials, "trials", 1, TuneError)
    rungs = check_count(rungs, "rungs", 1, TuneError)
    jobs = check_count(jobs, "jobs", 1, TuneError)
    if threads is not None:
        threads = check_count(threads, "threads", 1, TuneError)
    check_choice(executor, "executor", EXECUTORS, TuneError)
    if ray_address is not None and executor != "ray":
        raise TuneError(f"ray_address is for the ray executor, not {executor!r}")
    try:
        parse_metric(metric)
    except ValueError as exc:
        raise TuneError(f"metric: {exc}") from exc
    if space.get("total_timesteps") is None:
        raise TuneError("the search space needs a fixed budget: total_timesteps")
    protocol = space.get("env_kwargs", {}).get("protocol")
    bank_spec = bank if bank is not None else space.get("env_kwargs", {}).get("bank")
    twin = development_twin(bank_spec) if isinstance(bank_spec, str) else None
    tuned_on = twin if twin is not None and not on_test_bank else bank_spec
    full = resolve_bank(tuned_on, protocol=protocol)  # a bad bank fails here
    validation = (tuned_on if isinstance(tuned_on, str) and is_development(full) else "holdout")
    if validation != "holdout" and protocol:
        validation = f"{validation} (protocol {protocol})"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TuneError(f"out={os.fspath(out)!r} is a file: a sweep writes a folder "
                        f"(study.journal, trials.csv, best.json); give a folder path")
    out.mkdir(parents=True, exist_ok=True)
    # absolute paths: Ray's workers do not start in this process's folder
    worker_bank = (str(Path(tuned_on).resolve())
                   if isinstance(tuned_on, str) and Path(tuned_on).is_file() else tuned_on)
    sweep = _Sweep(space=space, metric=metric, rungs=rungs, seed=seed, bank=worker_bank,
                   journal=str((out / "study.journal").resolve()), threads=threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(optuna, sweep, full, resume)
    try:
        ran = [t for t in study.get_trials(deepcopy=False) if "seconds" in t.user_attrs]
        # interrupted trials (no seconds) are run again, as new trials; those another sweep on
        # the folder is running now are left to it
        missing = trials - len(ran) - _under_way(study, optuna)
        # beside a running sweep (whose workers are 0, 1, ...), samplers seeded by this
        # process's id, so that the two do not propose the same arguments
        first = os.getpid() if _other_sweepers(study) else 0
        if missing > 0 and jobs == 1 and executor == "process":
            _run_trials(sweep, missing, first, full)
        elif missing > 0:
            shares = [missing // jobs + (w < missing % jobs) for w in range(jobs)]
            _run_workers(dataclasses.replace(sweep, threads=threads or 1), shares, executor,
                         ray_address, first)
    finally:
        _leave_study(study)
    rows = _trial_rows(study.get_trials(deepcopy=False), dims)
    complete = [r for r in rows if r["state"] == "complete"]
    if not complete:
        running = sum(r["state"] == "running" for r in rows)
        raise TuneError(f"none of the {len(rows)} trials completed"
                        + (f" yet ({running} running in another sweep on {out}: run again once "
                           f"it finishes)" if running else f"; see {out} / the log"))
    best_row = max(complete, key=lambda r: r["value"])
    best = _fill(space, {name: best_row[name] for name in dims})
    best_env = {k: v for k, v in best.get("env_kwargs", {}).items() if k != "bank"}
    if isinstance(bank_spec, str):
        best_env["bank"] = bank_spec
    best_config = RunConfig.from_mapping(best, "the best trial's arguments", TuneError).replace(
        seed=seed, env_kwargs=best_env).to_record()
    best_config["validation"] = {"metric": metric, "value": best_row["value"],
                                 "trial": best_row["trial"], "split": validation}
    with atomic_write(out / "trials.csv") as handle:
        handle.write(_csv(rows, ["trial", "state", "value", "steps", "seconds", *dims]).encode())
    with atomic_write(out / "best.json") as handle:
        handle.write(json.dumps(best_config, indent=2, sort_keys=True).encode())
    return SweepResult(float(best_row["value"]), best_config, rows, out, validation)


def _trial_rows(trials: list[Any], dims: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``trials.csv`` row per trial, by trial number (choices decoded from their JSON)."""
    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        state = _STATES.get(trial.state.name, trial.state.name.lower())
        if state == "failed" and "seconds" not in trial.user_attrs:
            state = "interrupted"  # its process stopped mid-trial (see _open_study)
        values = {name: (json.loads(trial.params[name]) if "choice" in dim else trial.params[name])
                  for name, dim in dims.items() if name in trial.params}
        rows.append({"trial": trial.number, "state": state,
                     "value": trial.value if state == "complete" else None,
                     "steps": trial.user_attrs.get("steps"),
                     "seconds": trial.user_attrs.get("seconds"), **values})
    return rows


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                         for k, v in row.items() if k in columns})
    return buffer.getvalue()
