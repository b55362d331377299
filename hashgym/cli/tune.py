"""``hashgym tune --space space.yaml --trials N``: a hyperparameter sweep of an agent.

See :mod:`hashgym.agents.tune` for the search, the validation split and the files written.
Nothing heavy is imported until the sweep runs.
"""

from __future__ import annotations

import argparse
import sys

from hashgym.protocols import development_twin

__all__ = ["add_arguments", "run_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym tune``."""
    parser.description = ("Train agents with arguments drawn from a search space, score each on "
                          "validation queries (a shared preset's development twin, or a "
                          "holdout split of a bank's training images; never its test "
                          "queries), and write trials.csv and best.json (a hashgym train "
                          "--config file).")
    parser.add_argument("--space", required=True,
                        help="the search space: a YAML or JSON file of train arguments whose "
                             "values may be {uniform|loguniform|int: [low, high]} or "
                             "{choice: [...]}")
    parser.add_argument("--trials", type=int, default=20, help="trials to run (default 20)")
    parser.add_argument("--env", default=None, help="environment id (overrides the space's)")
    parser.add_argument("--algo", default=None, help="algorithm (overrides the space's)")
    parser.add_argument("--bank", default=None, help="bank (overrides the space's)")
    parser.add_argument("--timesteps", type=int, default=None,
                        help="environment steps per trial (overrides the space's)")
    parser.add_argument("--metric", default="NDCG@20",
                        help="validation metric, higher is better (default NDCG@20)")
    parser.add_argument("--rungs", type=int, default=3,
                        help="validation scores per trial, where the pruner may stop it "
                             "(default 3; 1 scores only at the end)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the sampler and of every trial (default 0)")
    parser.add_argument("--out", default="runs/tune", help="output folder (default runs/tune)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="trials at once, each in its own process or Ray task (default 1: "
                             "one after another, reproducible from --seed)")
    parser.add_argument("--executor", choices=("process", "ray"), default="process",
                        help="where parallel trials run: local processes, or Ray tasks (the "
                             "ray extra; a local Ray, or --ray-address)")
    parser.add_argument("--ray-address", default=None,
                        help="an existing Ray cluster ('auto' or an address); --out must be on "
                             "a file system its nodes share")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over instead of continuing the sweep found in --out")
    parser.add_argument("--on-test-bank", action="store_true",
                        help="tune on a shared test preset (cifar100, cifar100-csq, ...) itself, "
                             "on a holdout split of images its backbone trained on, instead of "
                             "its development twin (cifar100-dev, ...)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads of each trial (default 1)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym tune``; returns the exit status."""
    from hashgym.agents.tune import load_space, tune

    space = load_space(args.space)  # in hashgym.agents.config.RunConfig's keys
    for key, value in (("env_id", args.env), ("algo", args.algo),
                       ("total_timesteps", args.timesteps)):
        if value is not None:
            space[key] = value
    if args.bank is not None:
        space["env_kwargs"] = {**space.get("env_kwargs", {}), "bank": args.bank}
    bank = space.get("env_kwargs", {}).get("bank")
    twin = development_twin(str(bank))
    if twin is not None and not args.on_test_bank:
        print(f"hashgym tune: {bank}'s queries are a test set; choosing on its "
              f"development twin {twin} instead (validation queries its backbone never "
              f"saw; --on-test-bank to tune on {bank} itself)", file=sys.stderr)
    result = tune(space, args.trials, metric=args.metric, rungs=args.rungs, seed=args.seed,
                  out=args.out, jobs=args.jobs, resume=not args.no_resume,
                  threads=args.threads, executor=args.executor,
                  ray_address=args.ray_address, on_test_bank=args.on_test_bank)
    states = [row["state"] for row in result.trials]
    running = states.count("running")
    print(f"{len(states)} trials: {states.count('complete')} complete, "
          f"{states.count('pruned')} pruned, {states.count('failed')} failed, "
          f"{states.count('interrupted')} interrupted"
          + (f", {running} still running in another sweep on {result.out}" if running else ""))
    print(f"best {args.metric} on the validation split ({result.validation}): "
          f"{result.best_value:.4f}")
    print(f"trials    {result.out / 'trials.csv'}")
    print(f"best      {result.out / 'best.json'}  (hashgym train --config "
          f"{result.out / 'best.json'})")
    return 0
