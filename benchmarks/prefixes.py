"""Prefix codes of a finished benchmark run: one long model's first K bits against K-bit models.

A sequential coder emits its code in order, so the first ``K`` bits of its ``L``-bit code are a
``K``-bit code of their own (``hashgym encode --bits K`` writes them from a model). This module
scores them from a run's saved cells, without training anything: for each seed it reads the
``L``-bit cell of one method (``cells/<key>.npz``), keeps the first ``K`` bits of the query and
database codes, and scores them with the suite's metrics
(:func:`hashgym.benchmarks.runner.score_cell`). The report sets them beside the run's own rows at
``K`` bits, the same method trained at ``K`` bits (the *dedicated* model) and the baselines:

* ``prefixes.csv``: the prefix rows, in ``results.csv``'s columns (the method's key is
  ``<method>@<L>``);
* ``prefixes.md``: per bank, the mean ± std table at each prefix length, and the prefix minus
  the dedicated model and minus the best baseline, paired by seed with 95 % t intervals.

Usage::

    python -m hashgym.benchmarks.prefixes runs/lengths --method dqn-hier --bits 64 \\
        --prefixes 12,24,32,48 [--out DIR]

A prefix length need not be a multiple of the method's bits per step: the codes are sliced, so a
12-bit prefix of a DQN that codes 8 bits per step keeps half of its second step's bits (what
``hashgym eval --prefixes`` scores too; ``hashgym encode --bits`` stops the env at whole steps
and so takes only multiples of them).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hashgym.atomic import atomic_write
from hashgym.bank import FeatureBank
from hashgym.benchmarks.runner import CellStore, score_cell
from hashgym.benchmarks.suites import BEST_BASELINE, BenchError, BenchSuite, MethodSpec, get_suite
from hashgym.benchmarks.tables import markdown_tables, paired_markdown, results_csv, summarize
from hashgym.protocols import resolve_bank

__all__ = ["main", "prefix_report", "prefix_rows"]


def _record(run: Path) -> dict[str, Any]:
    path = run / "record.json"
    if not path.is_file():
        raise BenchError(f"{run} has no record.json: give the folder of a finished "
                         f"`hashgym bench` run")
    return json.loads(path.read_text())


def _bank(name: str, record: Mapping[str, Any], suite: BenchSuite,
          banks: Mapping[str, FeatureBank] | None) -> FeatureBank:
    bank = banks[name] if banks is not None and name in banks else resolve_bank(
        name, seed=suite.split_seed)
    expected = record.get("banks", {}).get(name, {}).get("fingerprint")
    if expected is not None and bank.fingerprint() != expected:
        raise BenchError(f"bank {name!r} is not the one the run scored (fingerprint "
                         f"{bank.fingerprint()} against the record's {expected})")
    return bank


def prefix_rows(run: Path, suite: BenchSuite, method: str, bits: int, prefixes: Sequence[int],
                banks: Mapping[str, FeatureBank] | None = None) -> list[dict[str, Any]]:
    """The scores of the first ``K`` bits of ``method``'s ``bits``-bit codes, per bank and seed.

    :param run: the run's folder (its ``record.json`` and ``cells/``).
    :param suite: the suite the run ran (its metrics and relevance score the prefixes).
    :param method: the method whose codes are cut.
    :param bits: the length of the codes that are cut.
    :param prefixes: the prefix lengths ``K``, each in ``1..bits``.
    :param banks: banks by name, where the run's were not presets (default: resolve the names).
    :return: rows in ``results.csv``'s columns; the method is ``<method>@<bits>``.
    :raises BenchError: for a folder without a record, a method or length the run did not
        compute, a prefix outside ``1..bits`` or a bank other than the run's.
    """
    suite.method(method)
    bad = [k for k in prefixes if not 1 <= k <= bits]
    if bad:
        raise BenchError(f"prefix lengths must lie in 1..{bits}, got {bad}")
    record = _record(run)
    cells = [c for c in record.get("cells", []) if c["method"] == method and c["bits"] == bits]
    if not cells:
        raise BenchError(f"the run in {run} has no {bits}-bit cell of {method!r}")
    store = CellStore(run / "cells")
    rows, resolved = [], {}
    for cell in sorted(cells, key=lambda c: (c["bank"], c["seed"])):
        if cell["bank"] not in resolved:
            resolved[cell["bank"]] = _bank(cell["bank"], record, suite, banks)
        bank = resolved[cell["bank"]]
        query, database = store.load_codes(cell["key"], bits)
        for k in prefixes:
            metrics, _ = score_cell(query[:, :k], database[:, :k], bank, suite)
            rows += [{"bank": cell["bank"], "method": f"{method}@{bits}", "bits": k,
                      "seed": cell["seed"], "metric": name, "value": value}
                     for name, value in metrics.items()]
    return rows


def prefix_report(run: Path, suite: BenchSuite, method: str, bits: int,
                  prefixes: Sequence[int], rows: Sequence[Mapping[str, Any]]) -> str:
    """``prefixes.md``: the prefix rows beside the run's rows at the prefix lengths.

    :param run: the run's folder (its ``results.csv`` holds the other rows).
    :param suite: the suite the run ran.
    :param method: the method whose codes were cut.
    :param bits: their length.
    :param prefixes: the prefix lengths.
    :param rows: :func:`prefix_rows`' result.
    """
    with (run / "results.csv").open(newline="") as handle:
        ran = [r for r in csv.DictReader(handle) if int(r["bits"]) in prefixes]
    spec = suite.method(method)
    cut = MethodSpec(f"{method}@{bits}", "prefix", {"of": method, "bits": bits},
                     f"{spec.title}, first K of {bits} bits")
    shown = dataclasses.replace(
        suite, name=f"{suite.name} prefixes",
        description=f"the first K bits of the {bits}-bit {spec.title} codes (one model per "
        f"seed) beside the models trained at K bits",
        methods=(*suite.methods, cut), bits=tuple(prefixes),
        comparisons=((cut.key, method), (cut.key, BEST_BASELINE)))
    every = [*ran, *rows]
    return markdown_tables(summarize(every), shown) + "\n" + paired_markdown(every, shown)


def _lengths(text: str) -> list[int]:
    entries = [part.strip() for part in text.split(",")]
    if not all(entry.isdigit() for entry in entries):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of lengths")
    return [int(entry) for entry in entries]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hashgym.benchmarks.prefixes",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished `hashgym bench` run's folder")
    parser.add_argument("--method", required=True, help="the method whose codes are cut")
    parser.add_argument("--bits", type=int, required=True, help="the length of those codes")
    parser.add_argument("--prefixes", required=True, type=_lengths,
                        help="comma-separated prefix lengths, e.g. 12,24,32,48")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for prefixes.csv and prefixes.md (default: the run's)")
    args = parser.parse_args(argv)
    record = _record(args.run)
    suite = get_suite(record["suite"]["name"])
    prefixes = args.prefixes
    rows = prefix_rows(args.run, suite, args.method, args.bits, prefixes)
    out = args.run if args.out is None else args.out
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "prefixes.csv") as handle:
        handle.write(results_csv(rows).encode())
    report = prefix_report(args.run, suite, args.method, args.bits, prefixes, rows)
    with atomic_write(out / "prefixes.md") as handle:
        handle.write(report.encode())
    print(report)


if __name__ == "__main__":
    main()
