"""One interface over every benchmarked method: baselines and RL agents alike.

The runner (:mod:`hashgym.benchmarks.runner`) knows nothing about how a method learns. It calls
:func:`run_method` with a :class:`~hashgym.benchmarks.protocols.MethodSpec`, a bank that carries
its protocol split, a code length and a seed, and gets back a :class:`MethodOutput`: the codes
of the query and database images (``uint8`` 0/1, rows in the order of
``bank.indices("query")`` / ``bank.indices("database")``), the training curve if the method has
one, and the time spent fitting and encoding. Training uses the bank's ``"train"`` split only.

Adapters (``MethodSpec.kind``), in :data:`METHOD_KINDS`:

``baseline``
    a baseline of :mod:`hashgym.benchmarks.baselines`: ``params = {"name": ..., **hyperparams}``
    (``make_baseline(name, n_bits, seed=seed, **hyperparams)``, fit on the train split). The deep
    heads report their per-epoch loss as the training curve.

Each adapter's budget (epochs, timesteps) is part of its ``params``, so it is recorded with the
cell and changes the cell's key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashgym.bank import FeatureBank
from hashgym.benchmarks.protocols import BenchError, MethodSpec
from hashgym.codes import as_bits

__all__ = [
    "TrainingCurve",
    "MethodOutput",
    "MethodRunner",
    "METHOD_KINDS",
    "run_method",
    "run_baseline",
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


def run_baseline(bank: FeatureBank, n_bits: int, seed: int, params: Mapping[str, Any]) -> MethodOutput:
    """Fit a baseline on the bank's train split and code its query and database images.

    :param bank: the bank, split by its protocol.
    :param n_bits: code length.
    :param seed: the baseline's seed.
    :param params: ``{"name": baseline name, **hyperparameters}``.
    :raises BenchError: without a ``name``; the baseline's own errors for bad hyperparameters.
    """
    from hashgym.benchmarks.baselines import make_baseline

    hyper = dict(params)
    name = hyper.pop("name", None)
    if not name:
        raise BenchError(f"a 'baseline' method needs params['name'], got {dict(params)!r}")
    for key, value in hyper.items():  # JSON turns tuples into lists; the baselines want tuples
        if isinstance(value, list):
            hyper[key] = tuple(value)
    model = make_baseline(name, n_bits, seed=seed, **hyper)
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


METHOD_KINDS: dict[str, MethodRunner] = {
    "baseline": run_baseline,
}
"""Every method adapter by ``MethodSpec.kind``."""


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
