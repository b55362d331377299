"""Named variants of one suite method, each trained once on the development twin of its bank.

Usage::

    python -m hashgym.benchmarks.variants run --suite drlhih [--bank cifar100] [--bits 12]
        --method dqn-hier --name tf2 --set algo_kwargs.train_freq=2 [--set ...]
        [--seed 1000] [--out runs/variants]
    python -m hashgym.benchmarks.variants table runs/variants/drlhih/dqn-hier

A study (:mod:`hashgym.benchmarks.studies`) searches a space; a variant answers one question
about a method's recipe ("does half the gradient steps cost quality?", "which bits per step at
32 bits?"), the way a development ladder does. Each ``run`` trains the suite's method with the
``--set`` changes laid over its parameters (dotted paths into the method's ``params``; values are
read as JSON, else kept as text) on the development twin (``cifar100`` becomes
``cifar100-dev``, whose validation queries its backbone never saw), scores the suite's metrics
and ``mAP@all`` (fine labels, when the suite does not score it) on the validation queries, and writes ``<out>/<suite>/<method>/<name>.json``:
the changes, the full parameters, the scores, the training and coding seconds, the training
curve and the method's ``info`` (an agent's NDCG@20 against steps, when it records one), the
load average before and after (wall times on a shared machine mean little without it),
versions and date. A variant already written is not run
again, so a stopped ladder resumes. ``table`` prints a folder of them as a Markdown table.

Settings chosen this way go into the suites by hand, and a note under
``benchmarks/results/notes/`` keeps the ladder; the test queries are never scored here.
"""

from __future__ import annotations

import argparse
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
from hashgym.atomic import atomic_write
from hashgym.benchmarks.methods import run_method
from hashgym.benchmarks.runner import score_cell
from hashgym.benchmarks.studies import development_bank, flatten_params, merge_params
from hashgym.benchmarks.suites import BenchError, BenchSuite, MethodSpec, get_suite
from hashgym.metrics import evaluate

__all__ = ["parse_changes", "run_variant"]


def parse_changes(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=3", "c=[1, 2]"]`` as the nested mapping ``{"a": {"b": 3}, "c": [1, 2]}``.

    :raises BenchError: for an item without ``=`` or with an empty path segment.
    """
    out: dict[str, Any] = {}
    for item in items:
        path, sep, text = item.partition("=")
        keys = path.split(".")
        if not sep or not all(keys):
            raise BenchError(f"a change is written path.to.key=value, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise BenchError(f"change {item!r} sets inside {key!r}, which is a value")
        node[keys[-1]] = value
    return out


def run_variant(suite: BenchSuite, method: str, bank: str, *, bits: int, name: str,
                changes: Mapping[str, Any], seed: int, out: Path) -> dict[str, Any]:
    """Train and score one variant on the development twin of ``bank`` (module docstring).

    :param suite: the suite whose method and metrics are used.
    :param method: the method's key in the suite.
    :param bank: the suite bank whose development twin scores the variant.
    :param bits: code length.
    :param name: the variant's name (its file name).
    :param changes: nested changes laid over the method's parameters.
    :param seed: training seed (use seeds that no final table uses).
    :param out: the method's folder; ``<out>/<name>.json`` is written, or read when it exists.
    :raises BenchError: for a bank without a development twin or a name that is not a plain
        file name.
    """
    if not name or Path(name).name != name or name.startswith("."):
        raise BenchError(f"a variant name is a plain file name, got {name!r}")
    path = out / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    twin, dev = development_bank(suite, bank)
    spec = suite.method(method)
    params = merge_params(spec.params, changes)
    load_before = os.getloadavg()
    started = time.perf_counter()
    output = run_method(MethodSpec(spec.key, spec.kind, params, spec.label), dev, bits, seed)
    scores, _ = score_cell(output.query_codes, output.db_codes, dev, suite)
    if "mAP@all" not in scores:
        q, db = dev.indices("query"), dev.indices("database")
        scores.update(evaluate(output.query_codes, output.db_codes, dev.labels[q, -1],
                               dev.labels[db, -1], ["mAP@all"], relevance="label"))
    record = {
        "suite": suite.name, "method": method, "name": name, "test_bank": bank, "bank": twin,
        "bits": bits, "seed": seed, "changes": dict(changes), "params": params,
        "scores": {k: float(v) for k, v in scores.items()},
        "distinct_query_codes": len(np.unique(output.query_codes, axis=0)),
        "fit_seconds": round(output.fit_seconds, 2),
        "encode_seconds": round(output.encode_seconds, 2),
        "wall_s": round(time.perf_counter() - started, 2),
        "curve": output.curve.to_dict() if output.curve is not None else None,
        # the info less its env arguments: they hold the resolved bank (its files' absolute
        # paths); the variant's own env arguments are in ``params``
        "info": {k: v for k, v in output.info.items() if k != "env_kwargs"},
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "versions": {"hashgym": hashgym.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": {"processor": platform.machine(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(json.dumps(record, indent=2, sort_keys=True, default=str).encode())
    return record


def variants_table(folder: Path) -> str:
    """The variants written under ``folder`` as a Markdown table (code length, scores, distinct
    query codes, training seconds, the one-minute load when it started), by code length, then
    oldest first.

    :raises BenchError: for a folder with no variant in it.
    """
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    if not records:
        raise BenchError(f"no variant records (*.json) in {folder}")
    records.sort(key=lambda r: (r["bits"], r["date"]))
    metrics = list(records[0]["scores"])
    lines = ["| variant | bits | changes | " + " | ".join(metrics) + " | codes | fit s | load |",
             "|---|---:|---|" + "---:|" * (len(metrics) + 3)]
    for r in records:
        changes = ", ".join(f"{k}={v}" for k, v in flatten_params(r["changes"]).items()) or "(suite's)"
        values = " | ".join(f"{r['scores'].get(m, float('nan')):.4f}" for m in metrics)
        lines.append(f"| {r['name']} | {r['bits']} | {changes} | {values} | "
                     f"{r['distinct_query_codes']} | {r['fit_seconds']:.0f} | "
                     f"{r['load_average']['before'][0]:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train and score one variant")
    run.add_argument("--suite", required=True)
    run.add_argument("--bank", default=None,
                     help="the suite bank whose development twin scores (default its first)")
    run.add_argument("--bits", type=int, default=None,
                     help="code length (default the suite's first)")
    run.add_argument("--method", required=True)
    run.add_argument("--name", required=True)
    run.add_argument("--set", action="append", default=[], dest="changes",
                     metavar="PATH=VALUE", help="a change to the method's parameters")
    run.add_argument("--seed", type=int, default=1000,
                     help="training seed (default 1000: no table uses it)")
    run.add_argument("--out", default="runs/variants")
    table = commands.add_parser("table", help="print a folder of variants")
    table.add_argument("folder")
    args = parser.parse_args(argv)
    if args.command == "table":
        print(variants_table(Path(args.folder)))
        return
    torch.set_num_threads(1)
    suite = get_suite(args.suite)
    bank = args.bank or suite.banks[0]
    bits = args.bits or suite.bits[0]
    record = run_variant(suite, args.method, bank, bits=bits, name=args.name,
                         changes=parse_changes(args.changes), seed=args.seed,
                         out=Path(args.out) / suite.name / args.method)
    scores = ", ".join(f"{k} {v:.4f}" for k, v in record["scores"].items())
    print(f"{suite.name} {args.method} {args.name} ({record['bank']}, {bits} bits): {scores}; "
          f"{record['distinct_query_codes']} distinct query codes; {record['fit_seconds']:.0f} s",
          flush=True)


if __name__ == "__main__":
    main()
