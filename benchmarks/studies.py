"""Equal tuning: one study per method of a suite, on the development twin of its bank.

Usage::

    python -m hashgym.benchmarks.studies --suite scihcgrl [--bank cifar100-csq] [--bits 32]
        [--methods csq,reinforce] [--metric mAP@all] [--trials 16] [--seed 1000]
        [--out benchmarks/results/studies]

A table is fair to its methods only when each had the same chance to be tuned, and honest only
when none was tuned on the queries it reports. For every method of the suite that has a search
space in :data:`SPACES`, a study:

* **scores on the development twin** of the suite's bank (``cifar100-csq`` becomes
  ``cifar100-dev-csq``, :func:`hashgym.protocols.development_twin`): the method trains on the
  twin's training images and is scored on its validation queries, which its backbone never saw
  and which are not test images; a bank without a twin is refused;
* **gives every method the same budget**: ``trials`` trials, each one full training of the
  method at the suite's budget (epochs, steps), with one of the suite's metrics as the objective
  (``--metric``, default its first; the ``drlhih`` studies use NDCG@20, the table's headline);
* **starts from the current setting**: one of the trials is the suite's own parameters (the
  ``start`` run), so the record says whether the search found anything better than what the
  suite ran before; the other ``trials - 1`` are drawn;
* **searches with Optuna's TPE sampler**, seeded, over the space's dimensions (the format of
  ``hashgym tune``'s search spaces: ``{uniform|loguniform|int: [low, high]}`` or
  ``{choice: [...]}``, at any depth of the method's parameters).

Each study writes ``<out>/<suite>/<method>/study.json`` (the suite, method, development bank,
code length, metric, seed, the space, every trial's parameters, value and seconds, the best and
the starting trial, the total wall time, versions and machine) and ``trials.csv``; its Optuna
journal (``study.journal``) lets a stopped study resume with the missing trials. The winners are
then written into the suite's method parameters by hand, and the suite's ``settings`` names the
records (so a table's ``record.json`` says where its settings came from).

The spaces give each method its learning rate and weight decay (for the heads on features) and
the one or two weights that define its loss, in ranges around the published or current value;
the budget (epochs, environment steps) stays the suite's, so tuning does not buy training time.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hashgym
from hashgym.agents.tune import _dimensions, _fill, _optuna, _suggest
from hashgym.atomic import atomic_write
from hashgym.bank import FeatureBank
from hashgym.benchmarks.methods import run_method
from hashgym.benchmarks.runner import score_cell
from hashgym.benchmarks.suites import BenchError, BenchSuite, MethodSpec, get_suite
from hashgym.errors import HashgymError
from hashgym.protocols import development_twin, resolve_bank

__all__ = ["SPACES", "StudyResult", "development_bank", "flatten_params", "merge_params", "run_study", "space_for"]

_LR = {"lr": {"loguniform": [1e-4, 1e-2]}, "weight_decay": {"loguniform": [1e-7, 1e-3]}}

#: Each method's search space, by its key in the suites: a mapping of the method's ``params``
#: whose dimensions the study draws (everything else stays the suite's).
SPACES: dict[str, dict[str, Any]] = {
    "cnnh": {**_LR, "max_sweeps": {"int": [2, 20]}},
    "dsh": {**_LR, "alpha": {"loguniform": [1e-3, 1e-1]}},
    "dpsh": {**_LR, "eta": {"loguniform": [1e-2, 1.0]}},
    "ninh": {**_LR, "margin": {"uniform": [0.25, 4.0]}},
    "hashnet": {**_LR, "alpha": {"loguniform": [0.05, 1.0]}},
    "dch": {**_LR, "gamma": {"loguniform": [2.0, 50.0]}, "lam": {"loguniform": [0.01, 1.0]}},
    "csq": {**_LR, "lam": {"loguniform": [1e-5, 1e-2]}},
    "shdh": {**_LR, "lam": {"loguniform": [0.01, 1.0]}, "scale": {"uniform": [0.1, 2.0]}},
    "reinforce": {"algo_kwargs": {
        "learning_rate": {"loguniform": [2e-4, 5e-3]},
        "supervised_weight": {"loguniform": [0.5, 20.0]},
        "policy_kwargs": {"weight_decay": {"loguniform": [1e-4, 1e-2]}},
    }},
    "dqn-hier": {"algo_kwargs": {
        "learning_rate": {"loguniform": [1e-4, 3e-3]},
        "target_update_interval": {"int": [500, 8000]},
        "exploration_final_eps": {"uniform": [0.0, 0.1]},
    }},
}


def space_for(spec: MethodSpec) -> dict[str, Any]:
    """The search space of a suite method, or :class:`BenchError` naming those that have one."""
    if spec.key not in SPACES:
        raise BenchError(f"method {spec.key!r} has no search space; methods with one: "
                         f"{', '.join(SPACES)}")
    return SPACES[spec.key]


def merge_params(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with the nested mapping ``values`` laid over it (a deep copy; ``base`` is kept)."""
    out = copy.deepcopy(dict(base))
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_params(out[key], value)
        else:
            out[key] = value
    return out


def development_bank(suite: BenchSuite, bank: str) -> tuple[str, FeatureBank]:
    """The name of ``bank``'s development twin and the twin, split as ``suite`` splits it.

    :raises BenchError: for a bank without a twin (settings are chosen on validation queries
        that the backbone never saw; the ``cifar100...`` presets have one).
    """
    twin = development_twin(bank)
    if twin is None:
        raise BenchError(f"{bank!r} has no development twin: settings are chosen on validation "
                         f"queries its backbone never saw (cifar100... presets have one)")
    return twin, resolve_bank(twin, seed=suite.split_seed)


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``values`` as one level of dotted keys (``{"a": {"b": 1}}`` is ``{"a.b": 1}``)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class StudyResult(dict):
    """What :func:`run_study` returns and writes to ``study.json`` (a plain mapping)."""


def _versions() -> dict[str, str]:
    return {"hashgym": hashgym.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__,
            "optuna": _optuna().__version__}


def run_study(suite: BenchSuite, method: str, bank: str, *, bits: int, trials: int,
              seed: int, out: Path, metric: str | None = None) -> StudyResult:
    """One method's study (see the module docstring).

    :param suite: the suite whose method, budget and first metric the study uses.
    :param method: the method's key in the suite.
    :param bank: the suite bank whose development twin scores the trials.
    :param bits: the code length of every trial.
    :param trials: trials in the study, the suite's own setting (trial 0) included.
    :param seed: seeds the sampler and every trial's training (use seeds that no final table
        uses).
    :param out: the study's folder.
    :param metric: the objective, one of the suite's metrics (default its first).
    :raises BenchError: for a bank without a development twin, a method without a space, a
        metric the suite does not score, or a count below 1.
    """
    if trials < 1:
        raise BenchError(f"trials must be at least 1, got {trials}")
    metric = suite.metrics[0] if metric is None else metric
    if metric not in suite.metrics:
        raise BenchError(f"metric {metric!r} is not one the {suite.name!r} suite scores: "
                         f"{', '.join(suite.metrics)}")
    spec = suite.method(method)
    space = space_for(spec)
    twin, dev = development_bank(suite, bank)
    dims = _dimensions(space)
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.journal")))
    study = optuna.create_study(study_name=f"{suite.name}-{method}", storage=storage,
                                direction="maximize", load_if_exists=True)
    # a resumed study must not draw its first proposals again: offset the seed by what ran
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))

    def run(params: Mapping[str, Any]) -> tuple[float, float]:
        # a trial is scored once, at its end: the learning curve's evaluations (a tenth of a
        # DQN trial) draw no random number and leave the codes as they are, so they are skipped
        params = {k: v for k, v in params.items() if k != "learning_curve"}
        started = time.perf_counter()
        output = run_method(MethodSpec(spec.key, spec.kind, params, spec.label), dev, bits, seed)
        scores, _ = score_cell(output.query_codes, output.db_codes, dev, suite)
        return float(scores[metric]), round(time.perf_counter() - started, 2)

    start_path = out / "start.json"
    if start_path.is_file():
        start = json.loads(start_path.read_text())
    else:
        value, seconds = run(spec.params)
        start = {"params": spec.params, "value": value, "seconds": seconds}
        with atomic_write(start_path) as handle:
            handle.write(json.dumps(start, sort_keys=True).encode())

    def objective(trial: Any) -> float:
        values = {name: _suggest(trial, name, dim) for name, dim in dims.items()}
        value, seconds = run(merge_params(spec.params, _fill(space, values)))
        trial.set_user_attr("seconds", seconds)
        return value

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if trials - 1 - len(done) > 0:
        study.optimize(objective, n_trials=trials - 1 - len(done),
                       catch=(HashgymError, ValueError, RuntimeError))
    rows = [{"trial": t.number + 1, "value": t.value, "seconds": t.user_attrs.get("seconds"),
             **t.params} for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    rows.insert(0, {"trial": 0, "value": start["value"], "seconds": start["seconds"]})
    best = max(rows, key=lambda r: r["value"])
    best_params = (spec.params if best["trial"] == 0 else
                   merge_params(spec.params, _fill(space, {n: best[n] for n in dims})))
    result = StudyResult(
        suite=suite.name, method=method, label=spec.label, test_bank=bank, bank=twin,
        bits=bits, metric=metric, seed=seed, trials=len(rows), space=space, start=start,
        best={"trial": best["trial"], "value": best["value"], "params": best_params},
        rows=rows, wall_s=round(sum(r["seconds"] or 0 for r in rows), 1),
        versions=_versions(), machine={"processor": platform.machine(),
                                       "cpu_count": os.cpu_count(),
                                       "torch_threads": torch.get_num_threads()},
        date=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["trial", "value", "seconds", *dims],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out / "trials.csv") as handle:
        handle.write(buffer.getvalue().encode())
    with atomic_write(out / "study.json") as handle:
        handle.write(json.dumps(result, indent=2, sort_keys=True, default=str).encode())
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--bank", default=None,
                        help="the suite bank whose development twin scores (default its first)")
    parser.add_argument("--bits", type=int, default=None,
                        help="code length (default the middle of the suite's)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated method keys (default every one with a space)")
    parser.add_argument("--metric", default=None,
                        help="the objective, one of the suite's metrics (default its first)")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1000,
                        help="sampler and training seed (default 1000: no table uses it)")
    parser.add_argument("--out", default="benchmarks/results/studies")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    suite = get_suite(args.suite)
    bank = args.bank or suite.banks[0]
    bits = args.bits or suite.bits[(len(suite.bits) - 1) // 2]
    keys = (args.methods.split(",") if args.methods else
            [m.key for m in suite.methods if m.key in SPACES])
    for key in keys:
        result = run_study(suite, key, bank, bits=bits, trials=args.trials, seed=args.seed,
                           out=Path(args.out) / suite.name / key, metric=args.metric)
        print(f"{suite.name} {key:10s} {result['bank']} {bits} bits {result['metric']}: "
              f"start {result['start']['value']:.4f}, best {result['best']['value']:.4f} "
              f"(trial {result['best']['trial']} of {result['trials']}), "
              f"{result['wall_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
