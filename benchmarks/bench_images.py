"""Throughput of the end-to-end agent (not a test): images/s trained and encoded through its CNN,
on the CPU and, where one is present, on a CUDA GPU, side by side.

Usage::

    python -m hashgym.benchmarks.bench_images [--encode 10000] [--train-steps 2048]
        [--backbone resnet18] [--repeats 3] [--quick]

The model is the ``scihcgrl-e2e`` suite's end-to-end row: the recurrent REINFORCE agent on
``CentralHash-v0`` with ``observation="image"`` (32 bits, 256 images per update) and a
torchvision backbone in front of its RNN cell (SCIHCGRL eq. (10): the CNN trains on the
agent's loss), over the shared ``cifar100-csq`` bank and its ``cifar100.npz`` images (32×32).
The backbone starts from random weights: speed does not depend on them.

* **Training**: ``--train-steps`` environment steps (one image each), after a warm-up update;
  images/s of the whole loop (env, CNN forward and backward with augmentation, the optimiser).
* **Encoding**: the first ``--encode`` database images through :func:`hashgym.agents.encode.encode`
  (batched forward passes without augmentation), median of ``--repeats`` after a warm-up;
  the codes of every device are compared with the CPU's.

CPU rows run with 1 and 2 torch threads; a GPU row runs when ``torch.cuda.is_available()``.
Targets (hashgym issue "End to end"): report CPU images/s; on a GPU, encoding >= 10,000
images/s. Prints the machine, versions, date and seed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np
import torch

import hashgym
from hashgym.agents.encode import encode
from hashgym.agents.train import train
from hashgym.benchmarks.bench_eval import timed
from hashgym.protocols import resolve_bank

#: Encoding rate a GPU must reach (images/s).
GPU_ENCODE_TARGET = 10_000


def _devices() -> list[tuple[str, str, int]]:
    """(label, torch device, threads) of every row: the CPU with 1 and 2 threads, then CUDA."""
    rows = [("CPU, 1 thread", "cpu", 1), ("CPU, 2 threads", "cpu", 2)]
    if torch.cuda.is_available():
        rows.append((f"GPU ({torch.cuda.get_device_name(0)})", "cuda", 1))
    return rows


def _model(bank, steps: int, backbone: str, device: str, seed: int):
    """The end-to-end REINFORCE agent after ``steps`` environment steps, and the seconds they
    took (the first update, which builds the optimiser's state, not counted)."""
    kwargs = {"bank": bank, "n_bits": 32, "observation": "image"}
    algo_kwargs = {"policy_kwargs": {"backbone": backbone}}
    train("reinforce", "CentralHash-v0", kwargs, total_timesteps=256, num_envs=256, seed=seed,
          algo_kwargs=algo_kwargs, device=device)  # warm-up: allocator, kernels
    start = time.perf_counter()
    model = train("reinforce", "CentralHash-v0", kwargs, total_timesteps=steps, num_envs=256,
                  seed=seed, algo_kwargs=algo_kwargs, device=device).model
    if device == "cuda":
        torch.cuda.synchronize()
    return model, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encode", type=int, default=10_000, help="database images encoded")
    parser.add_argument("--train-steps", type=int, default=2_048,
                        help="environment steps (images) of the timed training")
    parser.add_argument("--backbone", default="resnet18", help="torchvision backbone")
    parser.add_argument("--repeats", type=int, default=3, help="timed encodes (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.encode, args.train_steps, args.repeats = 512, 256, 1

    print("# bench_images")
    print(f"date      {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine   {platform.machine()} {os.cpu_count()} CPUs (shared), {platform.system()} "
          f"{platform.release()}, load {os.getloadavg()[0]:.1f}; CUDA: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print(f"versions  python {platform.python_version()}, hashgym {hashgym.__version__}, "
          f"numpy {np.__version__}, torch {torch.__version__}")
    print(f"settings  {vars(args)}")
    bank = resolve_bank("cifar100-csq")
    rows = bank.indices("database")[: args.encode]
    print(f"\n## The end-to-end REINFORCE agent ({args.backbone}, 32x32 images, 32 bits, 256 "
          f"images per update): training {args.train_steps:,} images, encoding {len(rows):,} "
          f"(median of {args.repeats}); target on a GPU: encoding >= {GPU_ENCODE_TARGET:,} "
          f"images/s")
    print(f"{'device':34s} {'train s':>8s} {'train img/s':>12s} {'encode s':>9s} "
          f"{'encode img/s':>13s}  codes")
    reference, first_codes, cpu_rate = None, None, None
    for label, device, threads in _devices():
        torch.set_num_threads(threads)
        model, train_seconds = _model(bank, args.train_steps, args.backbone, device, args.seed)
        reference = reference or model  # every row encodes the first row's model
        reference.policy.to(device)
        encode(reference, bank, indices=rows[:256])  # warm-up
        seconds, _, codes = timed(lambda m=reference: encode(m, bank, indices=rows), args.repeats)
        reference.policy.to("cpu")
        rate = len(rows) / seconds
        if first_codes is None:
            first_codes, cpu_rate, same = codes, rate, "reference"
        else:
            same = f"{np.mean(codes == first_codes):.4f} of bits as the first row"
        target = ""
        if device == "cuda":
            target = (f"; {rate / cpu_rate:.1f}x the CPU, target "
                      f"{'met' if rate >= GPU_ENCODE_TARGET else 'NOT met'}")
        print(f"{label:34s} {train_seconds:8.1f} {args.train_steps / train_seconds:12,.0f} "
              f"{seconds:9.2f} {rate:13,.0f}  {same}{target}", flush=True)
    torch.set_num_threads(1)


if __name__ == "__main__":
    main()
