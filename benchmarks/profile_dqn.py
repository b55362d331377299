"""Where a recipe DQN cell's time goes (not a test): cProfile and interleaved timings of a
shortened 12-bit (or longer) hierarchical DQN run on ``HierHash-v0``.

Usage::

    python -m hashgym.benchmarks.profile_dqn profile [--generation 300000] [--bits 12]
    python -m hashgym.benchmarks.profile_dqn time [--generation 150000] [--repeats 2]

The run is the recipe's (:func:`hashgym.agents.train.train` with ``algo="dqn"``, every level,
the recipe's budget of :data:`~hashgym.agents.recipe.TOTAL_GENERATIONS` memory generations, the
env's defaults, 256 images per step) with one change that keeps its shape: a memory generation
of ``--generation`` environment steps instead of the 3M of 15 codings of every image, so the
whole run is four generations of that length (level 0 one, level 1 three) and the level change,
its greedy encode and the generation ends all happen, at a tenth of the time.

``profile`` runs it twice under cProfile, once timed by the wall clock and once by the process's
CPU time (other jobs share the machine's cores: CPU time per phase is what the code costs, wall
time what this hour's machine gave), and prints a table of phases and the top functions.
``time`` runs it ``--repeats`` times without the profiler and prints the wall and CPU time of
each run and a digest of the codes it ends with (the same digest before and after a pure-speed
change is the evidence that it is one).

Torch runs on one thread, as in the benchmark suites.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import os
import platform
import pstats
import subprocess
import time
from typing import Any

import numpy as np
import torch

import hashgym
from hashgym.agents.encode import encode
from hashgym.agents.train import train
from hashgym.identity import sha256_bytes
from hashgym.protocols import resolve_bank

#: The phases of a DQN run, each the cumulative time of one function (its file's name, ``None``
#: for any file, and its name, matched by :func:`_phase_rows`). They nest: acting and the env
#: step are parts of collecting rollouts.
PHASES = (
    ("whole learn() calls", "off_policy_algorithm.py", "learn"),
    ("collect_rollouts (acting, env step, storing)", "off_policy_algorithm.py", "collect_rollouts"),
    ("  acting: _sample_action (eps-greedy + forward)", "off_policy_algorithm.py",
     "_sample_action"),
    ("  env step (SB3VecEnv.step_wait)", "sb3.py", "step_wait"),
    ("    of which the env's reward", "hierhash.py", "reward"),
    ("  storing transitions (_store_transition)", None, "_store_transition"),
    ("  info buffer (_update_info_buffer)", "base_class.py", "_update_info_buffer"),
    ("  logger dumps (dump_logs)", "off_policy_algorithm.py", "dump_logs"),
    ("  callbacks (on_step)", "callbacks.py", "on_step"),
    ("DQN.train (gradient steps)", "dqn.py", "train"),
    ("  replay sampling (ReplayBuffer.sample)", "buffers.py", "sample"),
    ("  backward", "_tensor.py", "backward"),
    ("  optimizer step", "optimizer.py", "wrapper"),
    ("memory generation ends", "code_memory.py", "end_generation"),
    ("greedy encode at the level change", "encode.py", "encode_with_env"),
    ("building the model", "train.py", "_build"),
)


def _run(bank_name: str, generation: int, bits: int, seed: int) -> tuple[Any, float, float]:
    """Train the shortened recipe cell; return the result, its wall and CPU seconds."""
    bank = resolve_bank(bank_name)
    wall, cpu = time.perf_counter(), time.process_time()
    result = train("dqn", "HierHash-v0",
                   {"bank": bank, "n_bits": bits, "memory_generation": generation}, seed=seed)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _digest(model: Any, bank_name: str) -> str:
    """SHA-256 (first 16 hex digits) of the greedy codes of the bank's query images."""
    codes = encode(model, resolve_bank(bank_name), "query")
    return sha256_bytes(np.ascontiguousarray(codes).tobytes(), 16)


def _header(args: argparse.Namespace) -> None:
    where = os.path.dirname(os.path.abspath(hashgym.__file__))  # the code that runs, not the cwd
    try:
        commit = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
        commit = commit or f"unknown (hashgym from {where})"
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    print("# profile_dqn")
    print(f"date      {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    print(f"commit    {commit}{' (with uncommitted changes)' if dirty else ''}")
    print(f"machine   {platform.machine()} {os.cpu_count()} CPUs (shared), "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"versions  python {platform.python_version()}, hashgym {hashgym.__version__}, "
          f"numpy {np.__version__}, torch {torch.__version__}")
    print(f"settings  {vars(args)}")


def _phase_rows(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    """(label, cumulative seconds, calls) of every phase of :data:`PHASES` found in ``stats``."""
    rows = []
    for label, filename, name in PHASES:
        seconds, calls = 0.0, 0
        for (path, _line, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if func == name and (filename is None or path.endswith(os.sep + filename)):
                seconds, calls = seconds + ct, calls + nc
        rows.append((label, seconds, calls))
    return rows


def profile(args: argparse.Namespace) -> None:
    results: dict[str, tuple[pstats.Stats, float]] = {}
    timers = {"wall": time.perf_counter, "cpu": time.process_time}
    clocks = [c.strip() for c in args.clocks.split(",") if c.strip()]
    for clock, timer in ((c, timers[c]) for c in clocks):
        profiler = cProfile.Profile(timer)
        start = time.perf_counter()
        profiler.enable()
        result, _, _ = _run(args.bank, args.generation, args.bits, args.seed)
        profiler.disable()
        elapsed = time.perf_counter() - start
        stats = pstats.Stats(profiler, stream=io.StringIO())
        if args.dump:
            stats.dump_stats(f"{args.dump}.{clock}.prof")
        results[clock] = (stats, elapsed)
        print(f"\n{clock} clock: {result.timesteps:,} env steps, {elapsed:.1f} s wall under the "
              f"profiler, load {os.getloadavg()[0]:.2f} after", flush=True)
    rows = {clock: _phase_rows(stats) for clock, (stats, _) in results.items()}
    print("\n## Phases (cumulative seconds under the profiler, nested by indent)\n"
          f"{'phase':52s} " + " ".join(f"{c + ' s':>8s}" for c in clocks) + f" {'calls':>9s}")
    for i, (label, _, _) in enumerate(PHASES):
        print(f"{label:52s} " + " ".join(f"{rows[c][i][1]:8.1f}" for c in clocks)
              + f" {rows[clocks[0]][i][2]:9,}")
    for clock in clocks:
        for key in ("tottime", "cumulative"):
            stream = io.StringIO()
            results[clock][0].stream = stream  # type: ignore[attr-defined]
            results[clock][0].sort_stats(key).print_stats(args.top)
            lines = [ln for ln in stream.getvalue().splitlines() if ln.strip()]
            start = next(i for i, ln in enumerate(lines) if "ncalls" in ln)
            print(f"\n## Top {args.top} by {key}, {clock} clock")
            print("\n".join(lines[start:]))


def timing(args: argparse.Namespace) -> None:
    print(f"\n{'run':>4s} {'env steps':>10s} {'wall s':>8s} {'cpu s':>8s} {'load':>5s}  "
          "query codes sha256")
    for i in range(args.repeats):
        result, wall, cpu = _run(args.bank, args.generation, args.bits, args.seed)
        print(f"{i:>4d} {result.timesteps:>10,} {wall:8.1f} {cpu:8.1f} "
              f"{os.getloadavg()[0]:5.2f}  {_digest(result.model, args.bank)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("profile", "time"))
    parser.add_argument("--generation", type=int, default=300_000,
                        help="environment steps of one memory generation (the run is four)")
    parser.add_argument("--bits", type=int, default=12, help="code length")
    parser.add_argument("--bank", default="cifar100",
                        help="the bank (default cifar100, the cell's; a small one for a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="runs of `time`")
    parser.add_argument("--top", type=int, default=25, help="functions listed per table")
    parser.add_argument("--dump", default=None,
                        help="also write each profile to DUMP.wall.prof / DUMP.cpu.prof")
    parser.add_argument("--clocks", default="wall,cpu",
                        help="the profiles to take: wall, cpu or both (comma-separated)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    _header(args)
    (profile if args.mode == "profile" else timing)(args)


if __name__ == "__main__":
    main()
