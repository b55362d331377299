"""``hashgym bench``: run a benchmark suite and write its tables, plots and record.

Examples::

    hashgym bench --suite quick                       # the built-in bank, a few minutes
    hashgym bench --suite scihcgrl --seeds 3 --out benchmarks/results/scihcgrl
    hashgym bench --suite drlhih --methods lsh,itq --bits 12
    hashgym bench --list                              # the suites and their methods
    hashgym bench --suite drlhih --executor process --jobs 2   # cells in 2 worker processes
    hashgym bench --suite agents --executor ray --ray-address auto  # on a running Ray cluster
    hashgym bench --suite agents --executor ray --ray-address auto --device cuda  # a GPU per cell

``--protocol`` (``-p``), the option's name before hashgym 0.5, still works with a warning
until 0.6.

Rerunning the same command resumes: finished cells are loaded, not recomputed. The module
imports nothing heavy; torch and the methods load when the benchmark runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from hashgym.benchmarks.suites import BENCH_SUITES, EXECUTORS, BenchError, get_suite
from hashgym.benchmarks.tables import markdown_tables, paired_markdown, summarize

__all__ = ["add_arguments", "parse_list", "run_from_args"]

logger = logging.getLogger(__name__)

#: The release that drops ``--protocol``, the old name of ``--suite`` (hashgym 0.5 renamed
#: benchmark "protocols" to "suites": "protocol" names a bank split, :mod:`hashgym.protocols`).
ALIAS_REMOVED_IN = "0.6"


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


#: The largest bare count ``--seeds`` takes (a range or a list takes any number of seeds).
MAX_SEED_COUNT = 20


def parse_seeds(text: str) -> int | list[int]:
    """``--seeds``: a count ``N`` (seeds ``0 .. N-1``), a range ``A-B`` (``A .. B``, both
    included) or a comma-separated list (``100,101,107``).

    A bare count is capped at :data:`MAX_SEED_COUNT`: ``--seeds 101`` meant as "seed 101" would
    otherwise start 101 seeds without a word.

    :raises BenchError: for anything else, an empty or reversed range, or a count above the cap.
    """
    text = text.strip()
    if text.isdigit():
        if int(text) > MAX_SEED_COUNT:
            raise BenchError(f"--seeds {text} asks for {int(text)} seeds (0..{int(text) - 1}); "
                             f"for the one seed {text} write {text}-{text}, for that many "
                             f"write 0-{int(text) - 1}")
        return int(text)
    if "-" in text and "," not in text:
        first, _, last = text.partition("-")
        if first.strip().isdigit() and last.strip().isdigit():
            if int(last) < int(first):
                raise BenchError(f"--seeds range {text!r} ends before it starts")
            return list(range(int(first), int(last) + 1))
        raise BenchError(f"--seeds must be a count, a range A-B or a list A,B,...: {text!r}")
    return parse_list(text, "seeds", int)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``hashgym bench``'s options to ``parser``."""
    parser.description = ("Run a benchmark suite and write its tables, plots and record "
                          "(every finished cell is kept, so a rerun resumes).")
    parser.add_argument("--suite", "-s", default=None,
                        help=f"the benchmark suite: {', '.join(BENCH_SUITES)}")
    parser.add_argument("--protocol", "-p", dest="deprecated_protocol", default=None,
                        help=f"deprecated alias of --suite, removed in hashgym {ALIAS_REMOVED_IN}")
    parser.add_argument("--bank", default=None,
                        help="run on this bank (preset name or .npz path) instead of the "
                        "suite's; comma-separate several")
    parser.add_argument("--seeds", default=None,
                        help=f"seeds: a count N (0..N-1, N <= {MAX_SEED_COUNT}), a range A-B or a list "
                             "A,B,... "
                             "(default: the suite's, which --list shows; the final tables' "
                             "suites take 100 on, seeds that no development run used)")
    parser.add_argument("--out", default=None, help="output folder (default runs/bench/<suite>)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated method keys to run (default: all of the suite's)")
    parser.add_argument("--bits", default=None,
                        help="comma-separated code lengths (default: the suite's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; per worker with --executor process)")
    parser.add_argument("--executor", choices=EXECUTORS, default="serial",
                        help="run cells one after another (serial, default), in a pool of "
                             "worker processes (process) or as Ray tasks (ray, the [ray] "
                             "extra); same values either way")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes of --executor process, tasks at once of a "
                             "local --executor ray (default: the CPU count)")
    parser.add_argument("--ray-address", default=None,
                        help="with --executor ray: run on this Ray cluster ('auto' or an "
                             "address) instead of a local Ray started for the run")
    parser.add_argument("--device", default="cpu",
                        help="torch device of the deep baselines and agents: cpu (default, "
                             "reproducible to the bit), cuda or cuda:N")
    parser.add_argument("--gpus", type=float, default=None,
                        help="with --executor ray: GPUs each cell's task asks for (default 1 "
                             "with a cuda --device, else 0; 0.5 puts two cells on a GPU)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-resume", action="store_true",
                        help="recompute every cell even if an earlier run finished it")
    parser.add_argument("--list", action="store_true",
                        help="list the suites with their banks, bits, metrics and methods")


def _list() -> None:
    for suite in BENCH_SUITES.values():
        print(f"{suite.name}: {suite.description}")
        print(f"  banks    {', '.join(suite.banks)}")
        seeds = suite.seed_list
        print(f"  bits     {', '.join(map(str, suite.bits))}; seeds "
              f"{seeds[0] if len(seeds) == 1 else f'{seeds[0]}-{seeds[-1]}'}")
        print(f"  metrics  {', '.join(suite.metrics)} (relevance: {suite.relevance})")
        print(f"  methods  {', '.join(m.key for m in suite.methods)}")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym bench`` from parsed arguments; returns the exit status."""
    if args.list:
        _list()
        return 0
    if args.deprecated_protocol is not None:
        print(f"hashgym bench: warning: --protocol is deprecated and will be removed in "
              f"hashgym {ALIAS_REMOVED_IN}; use --suite", file=sys.stderr)
        if args.suite is not None and args.suite != args.deprecated_protocol:
            raise BenchError(f"--suite {args.suite} and --protocol "
                             f"{args.deprecated_protocol} disagree; give --suite only")
        args.suite = args.deprecated_protocol
    if args.suite is None:
        raise BenchError(f"--suite is required; known: {', '.join(BENCH_SUITES)}")
    suite = get_suite(args.suite)
    from hashgym.benchmarks.runner import run_benchmark

    result = run_benchmark(
        suite,
        banks=parse_list(args.bank, "bank") if args.bank else None,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
        out=args.out,
        methods=parse_list(args.methods, "methods") if args.methods else None,
        bits=parse_list(args.bits, "bits", int) if args.bits else None,
        threads=args.threads,
        executor=args.executor,
        jobs=args.jobs,
        ray_address=args.ray_address,
        device=args.device,
        gpus=args.gpus,
        plots=not args.no_plots,
        progress=not args.no_progress,
        resume=not args.no_resume,
        command=" ".join(["hashgym", *sys.argv[1:]]),
    )
    print(markdown_tables(summarize(result.rows), result.suite))
    print(paired_markdown(result.rows, result.suite))
    resumed = len(result.cells) - result.computed
    print(f"{len(result.cells)} cells ({result.computed} computed, {resumed} resumed); "
          f"wrote {result.out}/: {', '.join(sorted(p.name for p in result.files))}")
    return 0
