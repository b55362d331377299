"""``hashgym encode MODEL --out codes.npz``: code a bank's images with a trained agent.

``--bits K`` writes the first ``K`` bits of the model's code (nested codes: see
:func:`hashgym.agents.encode.encode`).

The codes file is :func:`hashgym.codefile.save_codes`'s. No torch or SB3 import at import time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hashgym.atomic import check_output
from hashgym.codefile import save_codes
from hashgym.devices import check_device
from hashgym.protocols import resolve_bank

__all__ = ["add_arguments", "run_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym encode``."""
    parser.add_argument("model", help="a model file written by hashgym train (model.zip)")
    parser.add_argument("--bank", default=None,
                        help="bank: preset name or .npz path (default: the model's bank)")
    parser.add_argument("--protocol", default=None, help="a split protocol applied to the bank")
    parser.add_argument("--split", default="all", choices=("all", "query", "database", "train"),
                        help="images to code (default all, in bank order)")
    parser.add_argument("--out", required=True,
                        help="the .npz file to write (never the model or the bank; an existing "
                             "file that is not a codes file needs --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out file even if it is not a codes file")
    parser.add_argument("--bits", type=int, default=None,
                        help="nested codes: write only the first BITS bits of the model's code, "
                             "a code of its own for an agent that emits its chunks in order "
                             "(HierHash-v0's agents, the REINFORCE agent); a multiple of the "
                             "model's chunk (bits_per_step; 1 for REINFORCE), at most its "
                             "length (default: the whole code)")
    parser.add_argument("--batch-size", type=int, default=8192, help="images per forward pass")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the envs are numpy-batched and small "
                             "networks gain little from more)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym encode``; returns the exit status."""
    import torch

    from hashgym.agents.encode import encode, recorded_bank
    from hashgym.agents.saving import load_model

    torch.set_num_threads(max(1, args.threads))
    started = time.perf_counter()
    out = check_output(args.out, suffix=".npz", kind="codes", keys=("codes", "rows"),
                       inputs=(args.model, args.bank), force=args.force)
    check_device(args.device, "--device")
    model, info = load_model(args.model, device=args.device)
    recorded = info.get("env_kwargs", {})
    spec = args.bank if args.bank is not None else recorded_bank(info, args.model, "--bank")
    protocol = args.protocol if args.protocol is not None else (
        recorded.get("protocol") if args.bank is None else None)
    bank = resolve_bank(spec, protocol=protocol, seed=recorded.get("protocol_seed", 0))
    rows = np.arange(bank.n) if args.split == "all" else bank.indices(args.split)
    t0 = time.perf_counter()
    codes = encode(model, bank, args.split, indices=rows, batch_size=args.batch_size,
                   bits=args.bits)
    seconds = time.perf_counter() - t0
    path = save_codes(out, codes, bank, rows, meta={"model": info,
                                                    "model_path": str(args.model),
                                                    "split": args.split,
                                                    "prefix_bits": args.bits})
    rate = len(rows) / max(seconds, 1e-9)
    print(f"coded {len(rows):,} images ({args.split}) to {codes.shape[1]}-bit codes in "
          f"{seconds:.2f} s ({rate:,.0f} images/s); wrote {path} "
          f"[{time.perf_counter() - started:.1f} s in all]")
    return 0
