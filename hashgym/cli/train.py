"""``hashgym train`` (this module) and ``hashgym encode`` (:mod:`hashgym.cli.encode`).

::

    hashgym train --env HierHash-v1 --algo dqn [--bank NAME|PATH] [--levels 0 1]
                  [--timesteps N] [--seed S] [--out DIR] [--num-envs N]
                  [--env-kwargs KEY=VALUE ...] [--algo-kwargs KEY=VALUE ...]
                  [--checkpoint-every N] [--no-resume] [--no-progress] [--tensorboard | --no-tensorboard]
    hashgym encode MODEL [--bank NAME|PATH] [--split all|query|database|train] [--bits K]
                   --out codes.npz

``hashgym train`` writes ``DIR/model.zip``, ``DIR/config.json``, ``DIR/logs/`` (CSV, and
TensorBoard event files when ``tensorboard`` is installed: ``tensorboard --logdir DIR/logs``)
and ``DIR/checkpoints/``. Killed half way, the same command run again continues from the last
checkpoint (same level, same step count, same replay buffer). ``DIR`` defaults to
``runs/<env>-<algo>-seed<S>``, so rerunning the same command finds it.

``hashgym encode`` codes the images of a split (default: every image of the bank, in bank order)
with the model's deterministic policy and writes them atomically to a ``.npz`` with the bank rows,
their split and labels, and the bank's and the model's provenance
(:func:`hashgym.codefile.save_codes`). With ``--bits K`` it writes the first ``K`` bits of
the model's code: for an agent that emits its code in order, a ``K``-bit code of its own (nested
codes; ``hashgym eval --prefixes`` scores a file at several such lengths).

``KEY=VALUE`` values are read as JSON when they parse (``n_bits=16``, ``rho=0.9``,
``net_arch=[64,64]``), else as strings (``action_type=probability``).

This module imports no torch or SB3 at import time (the ``hashgym`` command builds every
subcommand's parser at start-up).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from hashgym.agents.config import RunConfig
from hashgym.cli.usage import UsageError
from hashgym.devices import check_device
from hashgym.envs import is_hierhash

__all__ = ["add_arguments", "apply_config", "parse_key_values", "run_from_args"]

logger = logging.getLogger(__name__)


def parse_key_values(items: list[str] | None, option: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` to ``{"a": 1, "b": "x"}`` (values as JSON when they parse).

    :raises UsageError: for an item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE items, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym train``."""
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="a JSON file of a run's settings (a run's config.json, which "
                             "trains that run again, or best.json of hashgym tune: algo, "
                             "env_id, env_kwargs, algo_kwargs, levels, total_timesteps or "
                             "level_timesteps, num_envs, seed, ...); options given here "
                             "override it")
    parser.add_argument("--env", default=None,
                        help="environment id: HierHash-v1 (default), HierHash-v0 or CentralHash-v0")
    parser.add_argument("--algo", default=None,
                        help="algorithm: dqn, qrdqn, ppo, a2c, trpo, recurrentppo, maskableppo, "
                             "ars, sac, td3, ddpg, tqc, reinforce (default dqn)")
    parser.add_argument("--bank", default=None,
                        help="bank: a preset name (cifar100, cifar100-mini, ...) or a .npz path "
                             "(default: the built-in cifar100-mini)")
    parser.add_argument("--protocol", default=None, help="a split protocol applied to the bank")
    parser.add_argument("--levels", type=int, nargs="+", default=None,
                        help="HierHash levels to train in order (default: every level of the "
                             "bank, coarsest first: DRLHIH's hierarchical agent)")
    parser.add_argument("--level-timesteps", type=int, nargs="+", default=None,
                        help="steps per level instead of --timesteps (one number, or one per "
                             "level)")
    parser.add_argument("--n-constraints", type=int, nargs="+", default=None,
                        help="HierHash constraint pool size (one, or one per level; default "
                             "30 triplets per training image)")
    parser.add_argument("--timesteps", type=int, default=None,
                        help="environment steps in total (default: HierHash four memory "
                             "generations, 12M steps on cifar100; CentralHash-v0 100000)")
    parser.add_argument("--num-envs", type=int, default=None,
                        help="images stepped in parallel (default 256 on HierHash, else 64)")
    parser.add_argument("--observation", choices=("features", "image"), default=None,
                        help="what the agent sees: the bank's features (default) or the images "
                             "themselves, through a CNN inside the agent")
    parser.add_argument("--backbone", default=None,
                        help="with --observation image: the CNN body: small (default), "
                             "resnet18, resnet50 or vgg19 (DQN-style agents and reinforce)")
    parser.add_argument("--backbone-weights", default=None, metavar="FILE",
                        help="with --observation image: the torchvision body's weights: "
                             "'imagenet' or a state-dict file (e.g. hashgym features "
                             "--save-weights); default random")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the model and the envs (default 0)")
    parser.add_argument("--n-bits", type=int, default=None, help="code length (env default)")
    parser.add_argument("--bits-per-step", type=int, default=None,
                        help="bits per action (env default)")
    parser.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE",
                        help="more environment arguments")
    parser.add_argument("--algo-kwargs", nargs="*", metavar="KEY=VALUE",
                        help="algorithm arguments (override hashgym's defaults)")
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/<env>-<algo>-seed<seed>)")
    parser.add_argument("--memory-refresh", type=int, default=None, metavar="STEPS",
                        help="HierHash memory mode: rewrite the code memory with the agent's "
                             "greedy codes every STEPS environment steps (default: never)")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="steps between checkpoints (default: a tenth of the budget, at "
                             "least 10000)")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over even if --out holds a checkpoint")
    parser.add_argument("--no-replay-buffer", action="store_true",
                        help="leave the replay buffer out of checkpoints (smaller files; a "
                             "resumed run refills it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    tb = parser.add_mutually_exclusive_group()
    tb.add_argument("--tensorboard", dest="tensorboard", action="store_true", default=None,
                    help="write TensorBoard logs (needs the tensorboard package)")
    tb.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                    help="CSV logs only")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the envs are numpy-batched and small "
                             "networks gain little from more)")


def apply_config(args: argparse.Namespace) -> RunConfig:
    """The run ``args`` ask for: ``args.config``'s settings (a file of
    :class:`~hashgym.agents.config.RunConfig`'s keys, old names read too), updated by the
    options given on the command line (a budget or pool given there replaces the file's, in
    either of its two forms).

    :raises TrainError: naming the file, when it is unreadable, not a JSON object, or has
        unknown keys or a value of the wrong type (naming the key).
    :raises UsageError: for a ``KEY=VALUE`` item without ``=``.
    """
    config = RunConfig() if args.config is None else RunConfig.load(args.config)
    env_kwargs = {**config.env_kwargs, **parse_key_values(args.env_kwargs, "--env-kwargs")}
    for key in ("bank", "protocol", "n_bits", "bits_per_step", "observation"):
        if getattr(args, key) is not None:
            env_kwargs[key] = getattr(args, key)
    algo_kwargs = {**config.algo_kwargs, **parse_key_values(args.algo_kwargs, "--algo-kwargs")}
    if args.timesteps is not None or args.level_timesteps is not None:
        config = dataclasses.replace(config, total_timesteps=None, level_timesteps=None)
    if args.n_constraints is not None:
        config = dataclasses.replace(config, n_constraints=None, triplets_per_image=None)

    def one(values: list[int] | None) -> Any:
        return values[0] if values is not None and len(values) == 1 else values

    return config.replace(
        algo=args.algo, env_id=args.env, levels=args.levels, total_timesteps=args.timesteps,
        level_timesteps=one(args.level_timesteps), n_constraints=one(args.n_constraints),
        num_envs=args.num_envs, seed=args.seed, memory_refresh=args.memory_refresh,
        env_kwargs=env_kwargs, algo_kwargs=algo_kwargs)


def _listed(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym train``; returns the exit status."""
    config = apply_config(args)
    check_device(args.device, "--device")  # SB3 would train on the CPU without a word
    for flag, value in (("--timesteps", config.total_timesteps),
                        ("--checkpoint-every", args.checkpoint_every),
                        ("--num-envs", config.num_envs),
                        *(("--level-timesteps", v) for v in _listed(config.level_timesteps)),
                        *(("--n-constraints", v) for v in _listed(config.n_constraints))):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value} (leave it out for the "
                             f"default)")
    import torch

    from hashgym.agents.train import train

    torch.set_num_threads(max(1, args.threads))
    if args.backbone is not None or args.backbone_weights is not None:
        if config.env_kwargs.get("observation") != "image":
            raise UsageError("--backbone and --backbone-weights need --observation image")
        algo_kwargs = dict(config.algo_kwargs)
        policy_kwargs = dict(algo_kwargs.get("policy_kwargs") or {})
        if str(config.algo).lower() == "reinforce":  # its policy holds the CNN body itself
            target, names = policy_kwargs, ("backbone", "backbone_weights")
        else:  # the SB3 features extractor (hashgym.agents.cnn.ImageHashFeatures)
            target = dict(policy_kwargs.get("features_extractor_kwargs") or {})
            names = ("backbone", "weights")
            policy_kwargs["features_extractor_kwargs"] = target
        for key, value in zip(names, (args.backbone, args.backbone_weights)):
            if value is not None:
                target[key] = value
        algo_kwargs["policy_kwargs"] = policy_kwargs
        config = config.replace(algo_kwargs=algo_kwargs)
    out = Path(args.out or f"runs/{config.env_id}-{config.algo}-seed{config.seed}")
    if (config.total_timesteps is None and config.level_timesteps is None
            and not is_hierhash(config.env_id)):
        # HierHash without a budget trains the recipe's (agents/recipe.py)
        config = config.replace(total_timesteps=100_000)
    started = time.perf_counter()
    result = train(
        **config.train_kwargs(), out=out, checkpoint_every=args.checkpoint_every,
        resume=not args.no_resume, save_replay_buffer=not args.no_replay_buffer,
        progress_bar=not args.no_progress, tensorboard=args.tensorboard, device=args.device)
    if result.resumed_from is not None:
        print(f"resumed from step {result.resumed_from:,}")
    print(f"trained {config.algo} on {config.env_id}: {result.timesteps:,} steps in "
          f"{time.perf_counter() - started:.1f} s")
    print(f"model     {result.path}")
    print(f"logs      {out / 'logs'}")
    return 0
