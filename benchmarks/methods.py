"""One interface over every benchmarked method: baselines and RL agents alike.

The runner (:mod:`hashgym.benchmarks.runner`) knows nothing about how a method learns. It calls
:func:`run_method` with a :class:`~hashgym.benchmarks.suites.MethodSpec`, a bank that carries
its protocol split, a code length and a seed, and gets back a :class:`MethodOutput`: the codes
of the query and database images (``uint8`` 0/1, rows in the order of
``bank.indices("query")`` / ``bank.indices("database")``), the training curve if the method has
one, and the time spent fitting and encoding. Training uses the bank's ``"train"`` split only.

Adapters (``MethodSpec.kind``), in :data:`METHOD_KINDS`:

``baseline``
    a baseline of :mod:`hashgym.benchmarks.baselines`: ``params = {"name": ..., **hyperparams}``
    (``make_baseline(name, n_bits, seed=seed, **hyperparams)``, fit on the train split). The deep
    heads report their per-epoch loss as the training curve.

``agent``
    an RL agent trained by :func:`hashgym.agents.train.train` (any Stable-Baselines3 /
    sb3-contrib algorithm, DRLHIH's DQN with its level curriculum, SCIHCGRL's recurrent
    REINFORCE) and coded by :func:`hashgym.agents.encode.encode` with its deterministic policy.
    ``params``: a run's settings in :class:`hashgym.agents.config.RunConfig`'s keys (the keys of
    ``hashgym train --config`` and of a run's ``config.json``) but ``seed``, the cell's:
    ``algo``, ``env_id`` (default ``"HierHash-v0"``), ``env_kwargs`` (the code length
    and the bank come from the cell), the budget ``total_timesteps`` or ``level_timesteps``
    (required on ``CentralHash-v0``; on ``HierHash-v0`` the recipe's by default,
    :mod:`hashgym.agents.recipe`), ``num_envs`` (default: the recipe's), ``algo_kwargs``,
    ``levels``, ``n_constraints`` (or ``triplets_per_image``: the pool size per level as a
    multiple of the bank's training images), ``memory_refresh`` (see
    :class:`hashgym.agents.memory.MemoryRefresh`), ``learning_curve`` (``{"metric": "NDCG@20",
    "relevance": "hierarchy", "points": 12}``: score the agent's query codes against its
    database codes at that many evenly spaced steps, the last one the end of training; stored in
    the cell's ``info["learning_curve"]``, drawn by :mod:`hashgym.benchmarks.plots`).
    ``learning_curve``, ``curve_points`` and ``device`` are the benchmark's own, not the run's
    (:data:`BENCH_AGENT_KEYS`). The curves are spaced
    over the budget the run resolved (:func:`hashgym.agents.train.resolve_run`). A run that
    starts at a level ``l >= 1`` (DRLHIH's "level-l only" variant) is
    :func:`hashgym.agents.train.train`'s: its code memory starts from random codes of the
    level's classes seeded by the cell's seed, as level 0's does, and with ``rho = 1`` (no
    previous level to refine) the reward is the plain triplet reward of eq. (1) at that level. The training curve is the mean return of the last
    100 episodes (``model.ep_info_buffer``), sampled ``curve_points`` times.

Each adapter's budget (epochs, timesteps) is part of its ``params``, so it is recorded with the
cell and changes the cell's key. So is the torch device of a run on a GPU (:func:`on_device`):
the deep baselines' ``device`` and the agents' ``device`` (``train(device=...)``); the other
baselines are numpy and ignore it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from hashgym.agents.config import RunConfig
from hashgym.agents.encode import encode, encode_with_env
from hashgym.agents.train import resolve_run, run_plan
from hashgym.bank import FeatureBank
from hashgym.benchmarks.baselines import make_baseline
from hashgym.benchmarks.suites import BenchError, MethodSpec
from hashgym.codes import as_bits
from hashgym.envs import is_hierhash
from hashgym.metrics import evaluate

__all__ = [
    "BENCH_AGENT_KEYS",
    "METHOD_KINDS",
    "MethodOutput",
    "MethodRunner",
    "TrainingCurve",
    "agent_config",
    "on_device",
    "resolved_params",
    "run_agent",
    "run_baseline",
    "run_method",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingCurve:
    """A method's learning curve.

    :param x: the abscissa (epochs, environment steps, ...).
    :param y: the value at each ``x`` (loss, mean episode reward, ...).
    :param xlabel: what ``x`` counts.
    :param ylabel: what ``y`` measures.
    """

    x: list[float]
    y: list[float]
    xlabel: str
    ylabel: str

    def to_dict(self) -> dict[str, Any]:
        return {"x": list(map(float, self.x)), "y": list(map(float, self.y)),
                "xlabel": self.xlabel, "ylabel": self.ylabel}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingCurve:
        return cls(list(data["x"]), list(data["y"]), str(data["xlabel"]), str(data["ylabel"]))


@dataclass
class MethodOutput:
    """What a method returns for one cell.

    :param query_codes: ``uint8`` 0/1 ``[n_query, n_bits]``, rows as ``bank.indices("query")``.
    :param db_codes: ``uint8`` 0/1 ``[n_database, n_bits]``, rows as
        ``bank.indices("database")``.
    :param curve: the training curve, if the method has one.
    :param fit_seconds: wall time spent training.
    :param encode_seconds: wall time spent coding the query and database images.
    :param info: anything else worth recording (JSON-serialisable).
    """

    query_codes: np.ndarray
    db_codes: np.ndarray
    curve: TrainingCurve | None = None
    fit_seconds: float = 0.0
    encode_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


MethodRunner = Callable[[FeatureBank, int, int, Mapping[str, Any]], MethodOutput]
"""An adapter: ``(bank, n_bits, seed, params) -> MethodOutput``."""


def _make_baseline(n_bits: int, seed: int, params: Mapping[str, Any]) -> Any:
    """The unfitted baseline estimator that ``params`` (``{"name": ..., **hyper}``) describe."""

    hyper = dict(params)
    name = hyper.pop("name", None)
    if not name:
        raise BenchError(f"a 'baseline' method needs params['name'], got {dict(params)!r}")
    for key, value in hyper.items():  # JSON turns tuples into lists; the baselines want tuples
        if isinstance(value, list):
            hyper[key] = tuple(value)
    return make_baseline(name, n_bits, seed=seed, **hyper)


def resolved_params(spec: MethodSpec, n_bits: int, seed: int) -> dict[str, Any]:
    """Every hyperparameter a method will run with, defaults included (part of a cell's key).

    For baselines these are the estimator's ``get_params()``, so a changed default in the
    library invalidates cached cells. Agents' defaults live in their trainers' code and are
    covered by the hashgym version in the key.
    """
    if spec.kind != "baseline":
        return {}
    model = _make_baseline(n_bits, seed, spec.params)
    return {k: _jsonable(v) for k, v in model.get_params().items()}


def run_baseline(bank: FeatureBank, n_bits: int, seed: int, params: Mapping[str, Any]) -> MethodOutput:
    """Fit a baseline on the bank's train split and code its query and database images.

    :param bank: the bank, split by its protocol.
    :param n_bits: code length.
    :param seed: the baseline's seed.
    :param params: ``{"name": baseline name, **hyperparameters}``.
    :raises BenchError: without a ``name``; the baseline's own errors for bad hyperparameters.
    """
    model = _make_baseline(n_bits, seed, params)
    start = time.perf_counter()
    model.fit(bank, split="train")
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    query = model.encode(bank.view("query").features)
    database = model.encode(bank.view("database").features)
    encode_seconds = time.perf_counter() - start
    history = getattr(model, "loss_history_", None)
    curve = None
    if history:
        curve = TrainingCurve(list(range(1, len(history) + 1)), list(history), "epoch", "loss")
    return MethodOutput(query, database, curve, fit_seconds, encode_seconds,
                        {"params": {k: _jsonable(v) for k, v in model.get_params().items()}})


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _reward_curve_callback(every: int) -> Any:
    """An SB3 callback that samples the mean episode return every ``every`` steps."""
    class RewardCurve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.x: list[float] = []
            self.y: list[float] = []
            self.next = every

        def _on_step(self) -> bool:
            if self.model.num_timesteps >= self.next and self.model.ep_info_buffer:
                self.x.append(float(self.model.num_timesteps))
                self.y.append(float(np.mean([ep["r"] for ep in self.model.ep_info_buffer])))
                self.next = self.model.num_timesteps + every
            return True

    return RewardCurve()


def _learning_curve_callback(bank: FeatureBank, budget: int, spec: Mapping[str, Any]) -> Any:
    """An SB3 callback that scores the agent's query codes against its database codes (the
    protocol's split) at ``spec["points"]`` evenly spaced steps, the last one the end of training
    (added by ``curve()``): the learning curve of a cell.

    Its time (``seconds``) is left out of the cell's fit time.
    """
    metric = str(spec.get("metric", "NDCG@20"))
    relevance = str(spec.get("relevance", "hierarchy"))
    points = int(spec.get("points", 12))
    if points < 1:
        raise BenchError(f"learning_curve points must be >= 1, got {points}")
    qi, di = bank.indices("query"), bank.indices("database")
    labels_q, labels_db = bank.labels[qi], bank.labels[di]
    if relevance == "label":
        labels_q, labels_db = labels_q[:, -1], labels_db[:, -1]

    def score(query: np.ndarray, database: np.ndarray) -> float:
        return float(evaluate(query, database, labels_q, labels_db, [metric],
                              relevance=relevance)[metric])

    class LearningCurve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.x: list[float] = []
            self.y: list[float] = []
            self.next = max(1, budget // points)
            self.seconds = 0.0

        def _on_step(self) -> bool:
            if self.model.num_timesteps >= self.next and self.model.num_timesteps < budget:
                start = time.perf_counter()
                self.x.append(float(self.model.num_timesteps))
                venv = self.training_env
                self.y.append(score(encode_with_env(self.model, venv, indices=qi),
                                    encode_with_env(self.model, venv, indices=di)))
                self.next += max(1, budget // points)
                self.seconds += time.perf_counter() - start
            return True

        def curve(self, query: np.ndarray, database: np.ndarray) -> TrainingCurve:
            """The curve, closed by the final codes' score at the end of training."""
            return TrainingCurve(self.x + [float(self.model.num_timesteps)],
                                 self.y + [score(query, database)], "environment steps",
                                 f"{metric} ({relevance})")

    return LearningCurve()


#: The parameters of an ``agent`` method that are the benchmark's, not the run's: how its
#: curves are sampled and the torch device (:func:`on_device`). The rest are
#: :class:`~hashgym.agents.config.RunConfig`'s settings, less ``seed`` (the cell's).
BENCH_AGENT_KEYS = ("curve_points", "learning_curve", "device")


def agent_config(params: Mapping[str, Any], n_bits: int, seed: int, bank: FeatureBank) -> RunConfig:
    """The run an ``agent`` method's ``params`` describe in a cell: its settings, with the
    cell's bank, code length and seed.

    :raises BenchError: for unknown parameters, a seed, no algorithm, or no budget off
        ``HierHash-v0``.
    """
    run = {k: v for k, v in params.items() if k not in BENCH_AGENT_KEYS}
    if "seed" in run:
        raise BenchError("an 'agent' method takes its seed from the cell, not params['seed']")
    if "algo" not in run:
        raise BenchError(f"an 'agent' method needs params['algo'], got {dict(params)!r}")
    config = RunConfig.from_mapping(run, "an 'agent' method's params", BenchError)
    if (config.total_timesteps is None and config.level_timesteps is None
            and not is_hierhash(config.env_id)):
        raise BenchError("an 'agent' method needs a budget: params['total_timesteps'] or "
                         "params['level_timesteps'] (only HierHash-v0 has a recipe's budget)")
    return config.replace(seed=seed, env_kwargs={**config.env_kwargs, "bank": bank,
                                                 "n_bits": n_bits})


def run_agent(bank: FeatureBank, n_bits: int, seed: int, params: Mapping[str, Any]) -> MethodOutput:
    """Train an RL agent on the bank's train split and code its query and database images.

    :param bank: the bank, split by its protocol.
    :param n_bits: code length (passed to the env).
    :param seed: seeds the agent and its envs.
    :param params: see the module docstring (``kind="agent"``).
    :raises BenchError: for unknown or missing parameters.
    """
    started = time.perf_counter()
    plan = resolve_run(agent_config(params, n_bits, seed, bank), params.get("device", "cpu"))
    curve = _reward_curve_callback(max(1, plan.budget // int(params.get("curve_points", 50))))
    callbacks = [curve]
    learning = None
    if params.get("learning_curve"):
        learning = _learning_curve_callback(bank, plan.budget, params["learning_curve"])
        callbacks.append(learning)
    result = run_plan(plan, callback=callbacks, started=started)
    start = time.perf_counter()
    query = encode(result.model, bank, "query")
    database = encode(result.model, bank, "database")
    encode_seconds = time.perf_counter() - start
    info = {k: result.info.get(k) for k in ("algo", "policy", "algo_kwargs", "env_kwargs",
                                             "levels", "level_timesteps", "n_constraints",
                                             "num_envs", "memory_refresh", "resolved")}
    info["num_timesteps"] = result.timesteps
    training = TrainingCurve(curve.x, curve.y, "environment steps", "mean episode return") \
        if curve.x else None
    fit_seconds = result.wall_time
    if learning is not None:
        info["learning_curve"] = learning.curve(query, database).to_dict()
        info["learning_curve_seconds"] = learning.seconds
        fit_seconds -= learning.seconds
    return MethodOutput(query, database, training, fit_seconds, encode_seconds,
                        json.loads(json.dumps(info, default=str)))


METHOD_KINDS: dict[str, MethodRunner] = {
    "baseline": run_baseline,
    "agent": run_agent,
}
"""Every method adapter by ``MethodSpec.kind``."""


def on_device(spec: MethodSpec, device: str) -> MethodSpec:
    """``spec`` run on the torch device ``device``: unchanged for ``"cpu"`` (so a CPU run's
    cells keep their keys) and for methods without torch (LSH, ITQ, ...); otherwise with
    ``device`` in its ``params``, which makes it a different cell from the CPU one (GPU
    arithmetic does not give the CPU's values to the last bit).

    :param spec: the method.
    :param device: a torch device string, ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``.
    """
    if device == "cpu":
        return spec
    if spec.kind == "baseline":
        if "device" not in _make_baseline(16, 0, spec.params).get_params():
            return spec
    elif spec.kind != "agent":
        return spec
    return dataclasses.replace(spec, params={**spec.params, "device": device})


def run_method(spec: MethodSpec, bank: FeatureBank, n_bits: int, seed: int) -> MethodOutput:
    """Train and encode one method on one bank, code length and seed.

    :param spec: the method (its ``kind`` picks the adapter, its ``params`` configure it).
    :param bank: the bank, with its protocol split.
    :param n_bits: code length.
    :param seed: the method's seed.
    :return: the codes (validated: ``uint8`` 0/1 of the right shapes), the curve and timings.
    :raises BenchError: for an unknown kind, or codes of the wrong shape.
    """
    if spec.kind not in METHOD_KINDS:
        raise BenchError(
            f"method {spec.key!r} has unknown kind {spec.kind!r}; known kinds: "
            f"{', '.join(METHOD_KINDS)}"
        )
    out = METHOD_KINDS[spec.kind](bank, n_bits, seed, spec.params)
    for name, codes, split in (("query", out.query_codes, "query"),
                               ("database", out.db_codes, "database")):
        expected = (len(bank.indices(split)), n_bits)
        bits = as_bits(codes, name=f"{spec.key} {name} codes")
        if bits.shape != expected:
            raise BenchError(
                f"method {spec.key!r} returned {name} codes of shape {bits.shape}, expected "
                f"{expected}"
            )
        setattr(out, "query_codes" if name == "query" else "db_codes", bits)
    return out
