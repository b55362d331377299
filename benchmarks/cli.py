"""``hashgym bench``: run a benchmark protocol and write its tables, plots and record.

Examples::

    hashgym bench --protocol quick                       # the built-in bank, a few minutes
    hashgym bench --protocol scihcgrl --seeds 3 --out benchmarks/results/scihcgrl
    hashgym bench --protocol drlhih --methods lsh,itq --bits 12
    hashgym bench --list                                 # the protocols and their methods

Rerunning the same command resumes: finished cells are loaded, not recomputed. The module
imports nothing heavy; torch and the methods load when the benchmark runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from hashgym.benchmarks.protocols import BENCH_PROTOCOLS, EXECUTORS, BenchError, get_protocol

from hashgym.bank import BankError

__all__ = ["add_arguments", "parse_list", "run_from_args"]

logger = logging.getLogger(__name__)


def parse_list(text: str, name: str, cast: type = str) -> list:
    """A comma-separated option as a list (``"24,32"`` → ``[24, 32]``).

    :raises BenchError: for an empty list or a value ``cast`` rejects.
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise BenchError(f"--{name} is empty")
    try:
        return [cast(item) for item in items]
    except ValueError as exc:
        raise BenchError(f"--{name} must be a comma-separated list of {cast.__name__}: {text!r}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``hashgym bench``'s options to ``parser``."""
    parser.description = ("Run a benchmark protocol and write its tables, plots and record "
                          "(every finished cell is kept, so a rerun resumes).")
    parser.add_argument("--protocol", "-p", default=None,
                        help=f"the benchmark protocol: {', '.join(BENCH_PROTOCOLS)}")
    parser.add_argument("--bank", default=None,
                        help="run on this bank (preset name or .npz path) instead of the "
                        "protocol's; comma-separate several")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds 0..N-1 (default: the protocol's)")
    parser.add_argument("--out", default=None, help="output folder (default runs/bench/<protocol>)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated method keys to run (default: all of the protocol's)")
    parser.add_argument("--bits", default=None,
                        help="comma-separated code lengths (default: the protocol's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; per worker with --executor process)")
    parser.add_argument("--executor", choices=EXECUTORS, default="serial",
                        help="run cells one after another (serial, default) or in a pool of "
                             "worker processes (process); same values either way")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes of --executor process (default: the CPU count)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-resume", action="store_true",
                        help="recompute every cell even if an earlier run finished it")
    parser.add_argument("--list", action="store_true",
                        help="list the protocols with their banks, bits, metrics and methods")


def _list() -> None:
    for proto in BENCH_PROTOCOLS.values():
        print(f"{proto.name}: {proto.description}")
        print(f"  banks    {', '.join(proto.banks)}")
        print(f"  bits     {', '.join(map(str, proto.bits))}; seeds {proto.seeds}")
        print(f"  metrics  {', '.join(proto.metrics)} (relevance: {proto.relevance})")
        print(f"  methods  {', '.join(m.key for m in proto.methods)}")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym bench`` from parsed arguments; returns the exit status."""
    if args.list:
        _list()
        return 0
    try:
        if args.protocol is None:
            raise BenchError(f"--protocol is required; known: {', '.join(BENCH_PROTOCOLS)}")
        proto = get_protocol(args.protocol)
        from hashgym.benchmarks.runner import run_benchmark
        from hashgym.benchmarks.tables import markdown_tables, summarize

        result = run_benchmark(
            proto,
            banks=parse_list(args.bank, "bank") if args.bank else None,
            seeds=args.seeds,
            out=args.out,
            methods=parse_list(args.methods, "methods") if args.methods else None,
            bits=parse_list(args.bits, "bits", int) if args.bits else None,
            threads=args.threads,
            executor=args.executor,
            jobs=args.jobs,
            plots=not args.no_plots,
            progress=not args.no_progress,
            resume=not args.no_resume,
            command=" ".join(["hashgym", *sys.argv[1:]]),
        )
    except (BenchError, BankError) as exc:
        print(f"hashgym bench: error: {exc}", file=sys.stderr)
        return 2
    print(markdown_tables(summarize(result.rows), result.protocol))
    resumed = len(result.cells) - result.computed
    print(f"{len(result.cells)} cells ({result.computed} computed, {resumed} resumed); "
          f"wrote {result.out}/: {', '.join(sorted(p.name for p in result.files))}")
    return 0
