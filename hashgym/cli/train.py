"""``hashgym train`` (this module) and ``hashgym encode`` (:mod:`hashgym.cli.encode`).

::

    hashgym train --env HierHash-v0 --algo dqn [--bank NAME|PATH] [--levels 0 1]
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
import json
import logging
import time
from pathlib import Path
from typing import Any

from hashgym.agents.run_keys import CONFIG_KEYS
from hashgym.cli.usage import UsageError
from hashgym.devices import check_device

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
                        help="a JSON file of these options (best.json of hashgym tune: env, "
                             "algo, bank, protocol, levels, timesteps, num_envs, seed, "
                             "env_kwargs, algo_kwargs); options given here override it")
    parser.add_argument("--env", default=None,
                        help="environment id: HierHash-v0 (default) or CentralHash-v0")
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
                        help="environment steps in total (default: HierHash-v0 four memory "
                             "generations, 12M steps on cifar100; CentralHash-v0 100000)")
    parser.add_argument("--num-envs", type=int, default=None,
                        help="images stepped in parallel (default 256 on HierHash-v0, else 64)")
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
                        help="HierHash-v0 memory mode: rewrite the code memory with the agent's "
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


#: The JSON types of ``--config``'s options: a check and its wording (``None`` is allowed for
#: every option but the two mappings, and means "the default").
_CONFIG_TYPES: dict[str, tuple[Any, str]] = {
    **{key: (lambda v: isinstance(v, str), "a string")
       for key in ("env", "algo", "bank", "protocol")},
    **{key: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
       for key in ("timesteps", "num_envs", "seed")},
    "levels": (lambda v: isinstance(v, list) and all(
        isinstance(x, int) and not isinstance(x, bool) for x in v), "a list of integers"),
    "env_kwargs": (lambda v: isinstance(v, dict), "a JSON object of env arguments"),
    "algo_kwargs": (lambda v: isinstance(v, dict), "a JSON object of algorithm arguments"),
}


def _config_type_problem(key: str, value: Any) -> str | None:
    """What ``--config``'s ``key`` must be when ``value`` is not that, else ``None``."""
    if key not in _CONFIG_TYPES or (value is None and not key.endswith("_kwargs")):
        return None
    check, wording = _CONFIG_TYPES[key]
    return None if check(value) else wording


def apply_config(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fill the options ``args`` leaves unset from ``args.config`` and the defaults; return the
    env and algorithm keyword arguments (the file's, updated by the command line's).

    :raises UsageError: naming the file, when it is unreadable, not a JSON object, or has
        unknown keys or a value of the wrong type (naming the key).
    """
    config: dict[str, Any] = {}
    if args.config is not None:
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read --config {args.config}: {exc}") from exc
        if not isinstance(config, dict):
            raise UsageError(f"--config {args.config} must hold a JSON object of options")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise UsageError(f"--config {args.config} has unknown keys {unknown}; known: "
                             f"{', '.join(CONFIG_KEYS)}")
        for key, value in config.items():
            problem = _config_type_problem(key, value)
            if problem is not None:
                raise UsageError(f"--config {args.config}: {key} must be {problem}, got "
                                 f"{value!r}")
    defaults = {"env": "HierHash-v0", "algo": "dqn", "seed": 0}
    for key in ("env", "algo", "bank", "protocol", "levels", "timesteps", "num_envs", "seed"):
        if getattr(args, key) is None:
            setattr(args, key, config.get(key, defaults.get(key)))
    env_kwargs = {**config.get("env_kwargs", {}),
                  **parse_key_values(args.env_kwargs, "--env-kwargs")}
    algo_kwargs = {**config.get("algo_kwargs", {}),
                   **parse_key_values(args.algo_kwargs, "--algo-kwargs")}
    return env_kwargs, algo_kwargs


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym train``; returns the exit status."""
    env_kwargs, algo_kwargs = apply_config(args)
    check_device(args.device, "--device")  # SB3 would train on the CPU without a word
    for flag, value in (("--timesteps", args.timesteps),
                        ("--checkpoint-every", args.checkpoint_every),
                        ("--num-envs", args.num_envs),
                        *(("--level-timesteps", v) for v in args.level_timesteps or ()),
                        *(("--n-constraints", v) for v in args.n_constraints or ())):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value} (leave it out for the "
                             f"default)")
    import torch

    from hashgym.agents.train import train

    torch.set_num_threads(max(1, args.threads))
    if args.observation is not None:
        env_kwargs["observation"] = args.observation
    if args.backbone is not None or args.backbone_weights is not None:
        if env_kwargs.get("observation") != "image":
            raise UsageError("--backbone and --backbone-weights need --observation image")
        policy_kwargs = dict(algo_kwargs.get("policy_kwargs") or {})
        if str(args.algo).lower() == "reinforce":  # its policy holds the CNN body itself
            target, names = policy_kwargs, ("backbone", "backbone_weights")
        else:  # the SB3 features extractor (hashgym.agents.cnn.ImageHashFeatures)
            target = dict(policy_kwargs.get("features_extractor_kwargs") or {})
            names = ("backbone", "weights")
            policy_kwargs["features_extractor_kwargs"] = target
        for key, value in zip(names, (args.backbone, args.backbone_weights)):
            if value is not None:
                target[key] = value
        algo_kwargs["policy_kwargs"] = policy_kwargs
    for key, value in (("bank", args.bank), ("protocol", args.protocol),
                       ("n_bits", args.n_bits), ("bits_per_step", args.bits_per_step)):
        if value is not None:
            env_kwargs[key] = value
    out = Path(args.out or f"runs/{args.env}-{args.algo}-seed{args.seed}")
    timesteps = args.timesteps
    if timesteps is None and args.level_timesteps is None and args.env != "HierHash-v0":
        timesteps = 100_000  # HierHash-v0 without a budget trains the recipe's (agents/recipe.py)
    n_constraints = args.n_constraints
    if n_constraints is not None and len(n_constraints) == 1:
        n_constraints = n_constraints[0]
    level_timesteps = args.level_timesteps
    if level_timesteps is not None and len(level_timesteps) == 1:
        level_timesteps = level_timesteps[0]
    started = time.perf_counter()
    result = train(
        args.algo, args.env, env_kwargs, total_timesteps=timesteps, num_envs=args.num_envs,
        seed=args.seed, algo_kwargs=algo_kwargs, levels=args.levels,
        level_timesteps=level_timesteps, n_constraints=n_constraints, out=out,
        checkpoint_every=args.checkpoint_every, resume=not args.no_resume,
        save_replay_buffer=not args.no_replay_buffer, progress_bar=not args.no_progress,
        tensorboard=args.tensorboard, device=args.device, memory_refresh=args.memory_refresh,
    )
    if result.resumed_from is not None:
        print(f"resumed from step {result.resumed_from:,}")
    print(f"trained {args.algo} on {args.env}: {result.timesteps:,} steps in "
          f"{time.perf_counter() - started:.1f} s")
    print(f"model     {result.path}")
    print(f"logs      {out / 'logs'}")
    return 0
