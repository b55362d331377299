"""Wall time of one benchmark suite under each executor (not a test; prints what it measured).

Runs ``hashgym bench --suite SUITE`` as a user would, in a fresh process per run, once per
executor and repeat (``serial``; ``process`` and ``ray`` with ``--jobs``), into a new output
folder each time so nothing resumes. Prints the medians side by side with their ratio to
``serial``, the machine and the versions, and checks that every run's ``results.csv`` equals the
first serial run's byte for byte (the executors must give the same values).

The issue's targets are on the ``quick`` suite with two jobs on two cores: ``process`` at most
60 % of the serial wall time, and ``ray``'s overhead over ``process`` reported.

Run:  python -m hashgym.benchmarks.bench_executors --out benchmarks/results/bench_executors.txt
(``--suite`` another suite, ``--repeats`` runs per executor, ``--executors serial,process``.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hashgym.benchmarks.bench_eval import Report, cpu_model, fmt_times

EXECUTORS = ("serial", "process", "ray")
PROCESS_TARGET = 0.60


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def run_suite(suite: str, executor: str, jobs: int, out: Path) -> float:
    """Wall seconds of one ``hashgym bench`` run into the fresh folder ``out``.

    :raises RuntimeError: when the run fails (its stderr's last lines are in the message).
    """
    argv = [sys.executable, "-m", "hashgym.cli", "bench", "--suite", suite, "--out", str(out),
            "--no-progress", "--no-plots", "--executor", executor]
    if executor != "serial":
        argv += ["--jobs", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"hashgym bench --executor {executor} failed ({done.returncode}):\n{tail}")
    return wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--executors", default=",".join(EXECUTORS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    Report.add_out_argument(parser)
    args = parser.parse_args(argv)
    Report.check_out(parser, args)
    executors = [e for e in args.executors.split(",") if e]
    unknown = sorted(set(executors) - set(EXECUTORS))
    if unknown or "serial" not in executors:
        parser.error(f"--executors takes serial (always) and any of process, ray; got {unknown or executors}")
    report = Report()
    report(f"# hashgym benchmark: the {args.suite!r} suite under each executor")
    report(f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    report(f"machine: {cpu_model()}; {os.cpu_count()} logical CPUs; {platform.system()} "
           f"{platform.release()}; load average at start {os.getloadavg()[0]:.2f}")
    report(f"versions: python {platform.python_version()}, hashgym {_version('hashgym')}, torch "
           f"{_version('torch')}, stable-baselines3 {_version('stable-baselines3')}, ray "
           f"{_version('ray')}")
    report(f"runs: hashgym bench --suite {args.suite} --no-plots, a fresh process and output "
           f"folder per run; --jobs {args.jobs} for process and ray (a local Ray started by the "
           f"run); executors interleaved, {args.repeats} rounds; medians")
    report()
    walls: dict[str, list[float]] = {e: [] for e in executors}
    reference: bytes | None = None
    same: dict[str, bool] = {e: True for e in executors}
    scratch = Path(tempfile.mkdtemp(prefix="hashgym-bench-executors-"))
    try:
        for round_ in range(args.repeats):
            for executor in executors:  # interleaved, so a slow spell of the machine hits all
                out = scratch / f"{executor}-{round_}"
                wall = run_suite(args.suite, executor, args.jobs, out)
                walls[executor].append(wall)
                values = (out / "results.csv").read_bytes()
                reference = values if reference is None else reference
                same[executor] &= values == reference
                report(f"round {round_ + 1}: {executor:8s} {wall:7.1f} s")
                shutil.rmtree(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report()
    serial = statistics.median(walls["serial"])
    medians = {e: statistics.median(w) for e, w in walls.items()}
    report(f"{'executor':10s} {'median s':>9s} {'vs serial':>10s}  results.csv  runs (s)")
    for executor in executors:
        verdict = "identical" if same[executor] else "DIFFERS"
        report(f"{executor:10s} {medians[executor]:9.1f} {medians[executor] / serial:9.1%}  "
               f"{verdict:11s}  {fmt_times(walls[executor])}")
    report()
    if "process" in medians:
        ratio = medians["process"] / serial
        verdict = "met" if ratio <= PROCESS_TARGET and same["process"] else "NOT met"
        report(f"target: process with {args.jobs} jobs <= {PROCESS_TARGET:.0%} of serial, same "
               f"values: {verdict} ({ratio:.1%})")
    if "ray" in medians and "process" in medians:
        extra = medians["ray"] - medians["process"]
        report(f"ray over process: {extra:+.1f} s ({medians['ray'] / medians['process'] - 1:+.1%}), "
               f"values {'identical' if same['ray'] else 'DIFFER'}")
    report.write(args.out)


if __name__ == "__main__":
    main()
