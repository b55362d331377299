"""Throughput of hashgym's environments (not a test): native vector envs vs SyncVectorEnv, and SB3
training through :class:`hashgym.envs.sb3.SB3VecEnv` vs ``DummyVecEnv``.

Usage::

    python -m hashgym.benchmarks.bench_envs [--bank cifar100] [--repeats 5] [--quick]

Prints the machine, the versions, the date and, for every setting, the median of ``--repeats``
timed runs of random actions (environment steps per second = vector steps × num_envs / s).
The bank defaults to the shared 512-d CIFAR-100 bank (``$HASHGYM_DATA``); ``--bank
cifar100-mini`` runs offline on the built-in 128-d bank.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import hashgym
from hashgym.bank import FeatureBank
from hashgym.envs.sb3 import SB3VecEnv
from hashgym.protocols import DATA_ENV, configured_data_dir, resolve_bank


def _median_rate(run: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps = run()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def _vector_rate(venv: gym.vector.VectorEnv, n_vector_steps: int, repeats: int) -> float:
    venv.reset(seed=0)
    venv.action_space.seed(0)
    actions = [venv.action_space.sample() for _ in range(8)]

    def run() -> int:
        for i in range(n_vector_steps):
            venv.step(actions[i % 8])
        return n_vector_steps * venv.num_envs

    run()  # warm-up
    return _median_rate(run, repeats)


def _own_bytes(env: gym.Env) -> int:
    """Bytes of the numpy arrays one single env holds for itself (not the shared bank features):
    what each of a SyncVectorEnv's sub-envs adds."""
    core = env.unwrapped.core
    seen: set[int] = set()
    total = 0
    for holder in (core, getattr(core, "sampler", None)):
        for value in vars(holder).values() if holder is not None else ():
            if isinstance(value, np.ndarray) and value is not core.features:
                base = value if value.base is None else value.base
                if isinstance(base, np.ndarray) and id(base) not in seen:
                    seen.add(id(base))
                    total += base.nbytes
    return total


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {os.getloadavg()}"


TARGET_RATE = 1_000_000
TARGET_RATIO = 50.0


def bench_vector(bank: FeatureBank, repeats: int, sizes: list[int], sync_limit: int) -> None:
    settings = [
        ("HierHash-v0", {}), ("HierHash-v0", {"mode": "triplet"}),
        ("CentralHash-v0", {}), ("CentralHash-v0", {"bits_per_step": 4}),
    ]
    print("\n## Native vector env vs SyncVectorEnv (random actions, env steps/s, median)")
    print(f"{'env':<16} {'kwargs':<22} {'num_envs':>8} {'native':>12} {'sync':>10} {'ratio':>7}")
    largest = max(sizes)
    summary = []
    sync_memory: dict[str, int] = {}
    for env_id, kwargs in settings:
        last_sync = float("nan")
        for n in sizes:
            native = gym.make_vec(env_id, num_envs=n, bank=bank, **kwargs)
            steps = max(8, 400_000 // n // 8 * 8) if n > 1 else 4000
            native_rate = _vector_rate(native, min(steps, 2000), repeats)
            native.close()
            sync_rate, note = last_sync, "*"
            if n <= sync_limit:
                note = ""
                sync = gym.make_vec(env_id, num_envs=n, bank=bank, vectorization_mode="sync",
                                    **kwargs)
                sync_rate = _vector_rate(sync, max(8, 40_000 // n // 8 * 8), repeats)
                sync_memory[f"{env_id} {kwargs}"] = _own_bytes(sync.envs[0])
                sync.close()
                del sync
                last_sync = sync_rate
            ratio = native_rate / sync_rate
            print(f"{env_id:<16} {kwargs!s:<22} {n:>8} {native_rate:>12,.0f} "
                  f"{sync_rate:>10,.0f}{note:1} {ratio:>7.1f}", flush=True)
            if n == largest:
                summary.append((env_id, kwargs, native_rate, ratio, note))
    if largest > sync_limit:
        print(f"* SyncVectorEnv not run above num_envs={sync_limit}: its per-env rate is flat in "
              f"num_envs (a Python loop over single envs), so the figure at {sync_limit} stands "
              f"in. Each single env holds its own per-split index arrays, pool, memory or centers:")
        for name, own in sync_memory.items():
            print(f"  {name}: {own / 2**20:.1f} MiB of arrays per single env, so a "
                  f"SyncVectorEnv of {largest} would hold ~{own * largest / 2**30:.1f} GiB")
    print(f"\n## Targets at num_envs={largest} (>= {TARGET_RATE:,} env steps/s and >= "
          f"{TARGET_RATIO:.0f}x SyncVectorEnv)")
    for env_id, kwargs, rate, ratio, note in summary:
        verdict = ("met" if rate >= TARGET_RATE else "NOT met",
                   "met" if ratio >= TARGET_RATIO else "NOT met")
        print(f"{env_id:<16} {kwargs!s:<22} rate {verdict[0]:<7} ({rate:,.0f})  "
              f"ratio {verdict[1]:<7} ({ratio:.0f}x{', vs extrapolated sync' if note else ''})")


def bench_sb3(bank: FeatureBank, num_envs: int, timesteps: int, repeats: int) -> None:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    # pools of 4,000 triplets on both sides: with the default (30 per training image) 256
    # single envs of a DummyVecEnv would hold ~10 GiB of pools, and building them would be timed
    pool = {"n_constraints": 4000}
    print(f"\n## SB3 training throughput, HierHash-v0, {num_envs} envs, {timesteps} timesteps, "
          f"pools of 4,000 triplets on both sides (env steps/s, median of {repeats})")
    print(f"{'algo':<6} {'adapter':>10} {'DummyVecEnv':>12} {'ratio':>7}")
    algos = {
        "PPO": lambda env: PPO("MultiInputPolicy", env, n_steps=max(8, 2048 // num_envs),
                               batch_size=512, n_epochs=1, device="cpu", seed=0),
        "DQN": lambda env: DQN("MultiInputPolicy", env, learning_starts=1000, buffer_size=20_000,
                               train_freq=(1, "step"), gradient_steps=1, batch_size=256,
                               device="cpu", seed=0),
    }
    for name, build in algos.items():
        rates = {}
        for kind in ("adapter", "dummy"):
            def run(kind: str = kind, build: Callable[..., Any] = build) -> int:
                if kind == "adapter":
                    env = SB3VecEnv(gym.make_vec("HierHash-v0", num_envs=num_envs, bank=bank,
                                                 **pool))
                else:
                    env = DummyVecEnv([lambda: gym.make("HierHash-v0", bank=bank, **pool)]
                                      * num_envs)
                model = build(env)
                model.learn(timesteps)
                return model.num_timesteps

            rates[kind] = _median_rate(run, repeats)
        print(f"{name:<6} {rates['adapter']:>10,.0f} {rates['dummy']:>12,.0f} "
              f"{rates['adapter'] / rates['dummy']:>7.1f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", default="cifar100", help="bank preset, path (default cifar100)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="1,64,1024,4096")
    parser.add_argument("--sync-limit", type=int, default=64,
                        help="largest num_envs to run SyncVectorEnv at (each single HierHash env "
                             "holds its own constraint pool: 30 triplets per training image, "
                             "about 40 MiB on the 50,000-image bank)")
    parser.add_argument("--sb3-envs", type=int, default=256)
    parser.add_argument("--sb3-timesteps", type=int, default=20_000)
    parser.add_argument("--skip-sb3", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if configured_data_dir() is None and shared.is_dir():
        os.environ[DATA_ENV] = str(shared)  # the repository's shared data, as in CI
    bank = resolve_bank(args.bank)
    import sb3_contrib
    import stable_baselines3

    print("# hashgym environment throughput")
    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} logical CPUs (shared with other work)")
    print(f"uptime at start: {_uptime()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, gymnasium "
          f"{gym.__version__}, stable-baselines3 {stable_baselines3.__version__}, sb3-contrib "
          f"{sb3_contrib.__version__}, torch {torch.__version__} (1 thread), hashgym "
          f"{hashgym.__version__}")
    print(f"bank: {args.bank}: {bank.n} images, {bank.dim}-d {bank.features.dtype}, "
          f"train split {len(bank.indices('train'))} images; defaults otherwise "
          f"(HierHash 12 bits / 3 per step, CentralHash 32 bits); seeds 0")
    bench_vector(bank, args.repeats, [int(s) for s in args.sizes.split(",")], args.sync_limit)
    if not args.skip_sb3:
        bench_sb3(bank, args.sb3_envs, args.sb3_timesteps, max(1, args.repeats // 2))
    print(f"\nuptime at end: {_uptime()}")


if __name__ == "__main__":
    main()
