"""The agents against their targets (not a test): DRLHIH's hierarchical DQN vs ITQ and its own
single-level variants, the recurrent REINFORCE agent vs CSQ at equal wall time, and encoding
throughput.

Usage::

    python -m hashgym.benchmarks.bench_agents [--steps N] [--reinforce-steps 307200]
        [--quick]

* **DRLHIH** (shared CIFAR-100 bank, standard split: 10,000 query / 50,000 database = train,
  12 bits, 3 bits per step): NDCG@20 with graded relevance (``relevance="hierarchy"``, query vs
  database) of ITQ and of three DQN agents with the same step budget: hierarchical (level 0 then
  level 1, DRLHIH §3.2; the recipe gives level 0 one memory generation, level 1 three, and
  ``--steps`` halves), level-0 only, and level-1 only (fine-class
  constraints, no refinement term: ``rho=1``). The three use hashgym's recipe (the env's
  defaults and :mod:`hashgym.agents.recipe`'s budget); a fourth row trains the hierarchical
  agent in the paper's setting (``PAPER_SETTINGS``: one sampled triplet, a memory rewritten by
  every episode, pools of 4,000 / 1,000 triplets, sibling negatives; 64 images per step) for
  comparison.
* **SCIHCGRL** (``cifar100-csq``: 1,000 query / 59,000 database / 5,000 train, 32 bits):
  mAP@all of the REINFORCE agent and of a CSQ head trained for the same wall time (its epoch
  count is set from the time of one epoch).
* **Encoding** (``--encode-only`` runs just this): seconds to code the 50,000 database images
  greedily with 1 and 2 torch threads, for every algorithm of the ``agents`` suite at the
  registry's defaults (the network's size is what counts, so each trains only
  ``--encode-steps``), beside the DQN and RecurrentPPO through ``model.predict`` instead of
  their fast paths (with whether the codes are the same) and RecurrentPPO with a 64-unit LSTM.

Prints the machine, versions, date, seeds, wall times and environment steps of every run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np
import sb3_contrib
import stable_baselines3
import torch

import hashgym
from hashgym.agents.encode import encode
from hashgym.agents.train import train
from hashgym.benchmarks.baselines import make_baseline
from hashgym.benchmarks.bench_eval import timed
from hashgym.envs.hierhash import PAPER_SETTINGS
from hashgym.metrics import evaluate
from hashgym.protocols import resolve_bank


def _header(args: argparse.Namespace) -> None:
    print("# bench_agents")
    print(f"date      {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine   {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs "
          f"(shared), {platform.system()} {platform.release()}, load {os.getloadavg()[0]:.1f}")
    print(f"versions  python {platform.python_version()}, hashgym {hashgym.__version__}, "
          f"numpy {np.__version__}, torch {torch.__version__}, SB3 {stable_baselines3.__version__},"
          f" sb3-contrib {sb3_contrib.__version__}")
    print(f"settings  {vars(args)}")


def _ndcg(bank, q_codes: np.ndarray, db_codes: np.ndarray) -> float:
    q, db = bank.indices("query"), bank.indices("database")
    return evaluate(q_codes, db_codes, bank.labels[q], bank.labels[db], metrics=["NDCG@20"],
                    relevance="hierarchy", n_jobs=2)["NDCG@20"]


def _map(bank, q_codes: np.ndarray, db_codes: np.ndarray) -> float:
    q, db = bank.indices("query"), bank.indices("database")
    return evaluate(q_codes, db_codes, bank.labels[q, -1], bank.labels[db, -1],
                    metrics=["mAP@all"], relevance="label", n_jobs=2)["mAP@all"]


def bench_drlhih(args: argparse.Namespace) -> None:
    bank = resolve_bank("cifar100")
    print("\n## DRLHIH: 12 bits, CIFAR-100 (10,000 query / 50,000 database = train), "
          "NDCG@20, graded relevance (0-2 levels agree)")
    print(f"{'method':<22} {'NDCG@20':>8} {'train s':>8} {'env steps':>10}")
    start = time.perf_counter()
    itq = make_baseline("itq", 12, seed=args.seed).fit(bank)
    fit_s = time.perf_counter() - start
    ndcg = _ndcg(bank, itq.encode(bank.view("query").features),
                 itq.encode(bank.view("database").features))
    print(f"{'ITQ':<22} {ndcg:>8.4f} {fit_s:>8.1f} {'-':>10}", flush=True)
    # the recipe's budget unless --steps says otherwise (agents/recipe.py)
    budget = {} if args.steps is None else {"total_timesteps": args.steps}
    paper = {k: v for k, v in PAPER_SETTINGS.items() if k != "n_constraints"}
    variants = [
        ("DQN hierarchical", dict(levels=[0, 1], **budget), {}),
        ("DQN level 0 only", dict(levels=[0], **budget), {}),
        ("DQN level 1 only", dict(levels=[1], **budget), {}),
        ("DQN hier, paper setup", dict(levels=[0, 1], num_envs=64, **budget,
                                        n_constraints=list(PAPER_SETTINGS["n_constraints"])),
         paper),
    ]
    for name, kwargs, env_kwargs in variants:
        result = train("dqn", "HierHash-v0", {"bank": bank, **env_kwargs}, seed=args.seed,
                       **kwargs)
        ndcg = _ndcg(bank, encode(result.model, bank, "query"),
                     encode(result.model, bank, "database"))
        print(f"{name:<22} {ndcg:>8.4f} {result.wall_time:>8.1f} {result.timesteps:>10,}",
              flush=True)


def bench_scihcgrl(args: argparse.Namespace) -> None:
    bank = resolve_bank("cifar100-csq")
    print("\n## SCIHCGRL: 32 bits, cifar100-csq (1,000 query / 59,000 database / 5,000 train), "
          "mAP@all (fine classes)")
    print(f"{'method':<22} {'mAP@all':>8} {'train s':>8} {'env steps / epochs':>20}")
    result = train("reinforce", "CentralHash-v0", {"bank": bank, "n_bits": 32},
                   total_timesteps=args.reinforce_steps, num_envs=256, seed=args.seed)
    rl_map = _map(bank, encode(result.model, bank, "query"), encode(result.model, bank, "database"))
    print(f"{'REINFORCE (RNN)':<22} {rl_map:>8.4f} {result.wall_time:>8.1f} "
          f"{result.timesteps:>20,}", flush=True)
    start = time.perf_counter()
    make_baseline("csq", 32, seed=args.seed, epochs=1).fit(bank)
    epoch_s = time.perf_counter() - start
    epochs = max(1, round(result.wall_time / epoch_s))
    start = time.perf_counter()
    csq = make_baseline("csq", 32, seed=args.seed, epochs=epochs).fit(bank)
    csq_s = time.perf_counter() - start
    csq_map = _map(bank, csq.encode(bank.view("query").features),
                   csq.encode(bank.view("database").features))
    print(f"{'CSQ (same wall time)':<22} {csq_map:>8.4f} {csq_s:>8.1f} {epochs:>13} epochs",
          flush=True)


#: (label, algorithm, algo_kwargs) of the encode benchmark. RecurrentPPO's registry default
#: runs one 256-unit LSTM per step when encoding (the critic's is never used), like
#: sb3-contrib's own default; the last row shows what a 64-unit LSTM would cost instead.
ENCODE_ROWS = (
    ("DQN", "dqn", None),
    ("QR-DQN", "qrdqn", None),
    ("PPO", "ppo", None),
    ("A2C", "a2c", None),
    ("RecurrentPPO", "recurrentppo", None),
    ("RecurrentPPO, 64-unit LSTM", "recurrentppo",
     {"policy_kwargs": {"lstm_hidden_size": 64, "shared_lstm": False}}),
)


class _PredictOnly:
    """A model seen only through SB3's ``predict`` (no policy object), so that :func:`encode`
    takes its generic batched path instead of the DQN's greedy fast path."""

    def __init__(self, model: object) -> None:
        self.predict = model.predict
        self.observation_space = model.observation_space
        self.action_space = model.action_space
        self.hashgym_info = model.hashgym_info


def _encode_seconds(model: object, bank, rows: np.ndarray, repeats: int
                    ) -> tuple[float, np.ndarray]:
    """Median of ``repeats`` timed encodes of ``rows`` by ``model`` (after a warm-up), and the
    codes."""
    encode(model, bank, indices=rows, batch_size=8192)
    median, _, codes = timed(lambda: encode(model, bank, indices=rows, batch_size=8192), repeats)
    return median, codes


#: The algorithms whose encode takes a fast path, and the label of their ``predict`` row.
_FAST_PATHS = {"dqn": "DQN through model.predict",
               "recurrentppo": "RecurrentPPO through model.predict"}


def bench_encoding(steps: int, seed: int, quick: bool = False) -> None:
    """Greedy encode of the 50,000 database images by every algorithm, 1 and 2 torch threads
    (``quick``: 5,000 of them, timed once)."""
    bank = resolve_bank("cifar100")
    rows = bank.indices("database")[:5_000] if quick else bank.indices("database")
    repeats = 1 if quick else 3
    print(f"\n## Encoding: {len(rows):,} database images of cifar100 by each algorithm (HierHash-v0, "
          f"12 bits, 4 steps per image; models trained {steps:,} steps, the registry's defaults), "
          f"median of {repeats}; target < 2 s each for 50,000")
    print(f"{'algorithm':36s} {'1 thread':>9s} {'2 threads':>10s}  images/s (2 threads)  target")
    for label, algo, algo_kwargs in ENCODE_ROWS:
        model = train(algo, "HierHash-v0", {"bank": bank, "bits_per_step": 3},
                      total_timesteps=steps, levels=[1], seed=seed, algo_kwargs=algo_kwargs).model
        seconds, codes = {}, None
        for threads in (1, 2):
            torch.set_num_threads(threads)
            seconds[threads], codes = _encode_seconds(model, bank, rows, repeats)
        torch.set_num_threads(1)
        best = min(seconds.values()) * 50_000 / len(rows)
        print(f"{label:36s} {seconds[1]:8.2f}s {seconds[2]:9.2f}s  {len(rows) / seconds[2]:>19,.0f}  "
              f"{'met' if best < 2 else 'NOT met'}", flush=True)
        if algo in _FAST_PATHS and algo_kwargs is None:  # the path before the fast one
            slow, same = {}, True
            for threads in (1, 2):
                torch.set_num_threads(threads)
                slow[threads], slow_codes = _encode_seconds(_PredictOnly(model), bank, rows,
                                                            repeats)
                same = same and np.array_equal(slow_codes, codes)
            torch.set_num_threads(1)
            print(f"{_FAST_PATHS[algo]:36s} {slow[1]:8.2f}s {slow[2]:9.2f}s  "
                  f"{len(rows) / slow[2]:>19,.0f}  (before the fast path; "
                  f"{'the same codes' if same else 'CODES DIFFER'})", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="env steps of each DQN variant (split over levels; default: the "
                             "recipe's four memory generations)")
    parser.add_argument("--reinforce-steps", type=int, default=307_200,
                        help="env steps of the REINFORCE agent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke run)")
    parser.add_argument("--encode-only", action="store_true",
                        help="only the encoding section (each model trained --encode-steps)")
    parser.add_argument("--encode-steps", type=int, default=4_096,
                        help="training steps of each encoding model (its size is what counts)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.reinforce_steps, args.encode_steps = 4_000, 20_000, 1_024
    torch.set_num_threads(1)
    _header(args)
    start = time.perf_counter()
    if not args.encode_only:
        bench_drlhih(args)
        bench_scihcgrl(args)
    bench_encoding(args.encode_steps, args.seed, args.quick)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
