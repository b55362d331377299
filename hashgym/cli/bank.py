"""``hashgym bank``: inspect and re-split feature banks.

::

    hashgym bank info [PATH|NAME] [--protocol P] [--json]   sizes, levels and provenance of a bank
    hashgym bank list                                      the preset names
    hashgym bank split PATH|NAME --protocol P --out FILE    save a bank re-split by a protocol
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hashgym.atomic import check_output
from hashgym.bank import FeatureBank
from hashgym.protocols import PROTOCOLS, preset_names, resolve_bank

__all__ = ["add_arguments", "run_from_args"]


def _shorten(value: Any, limit: int = 8) -> Any:
    """Meta for display: lists longer than ``limit`` become ``"<N items>"``."""
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list) and len(value) > limit:
        return f"<{len(value)} items>"
    return value


def _format_summary(spec: str, bank: FeatureBank) -> str:
    info = bank.summary()
    levels = "; ".join(f"{lv['level']} {lv['name']}: {lv['classes']} classes" for lv in info["levels"])
    lines = [
        f"bank      {spec}",
        (f"images    {info['images']:,} (query {info['query']:,} / database "
         f"{info['database']:,} / train {info['train']:,})"),
        f"features  {info['dim']}-d {info['dtype']} ({bank.features.nbytes / 1e6:.1f} MB)",
        f"levels    {levels or 'none'}",
    ]
    if "concepts" in info:
        lines.append(f"concepts  {info['concepts']} (multi-hot)")
    lines.append(f"meta      {json.dumps(_shorten(info['meta']), sort_keys=True)}")
    return "\n".join(lines)


def _bank_info(args: argparse.Namespace) -> int:
    bank = resolve_bank(args.bank, protocol=args.protocol, seed=args.seed, mmap=True)
    if args.json:
        print(json.dumps(bank.summary(), indent=2, sort_keys=True))
    else:
        print(_format_summary(args.bank or "cifar100-mini (built in)", bank))
    return 0


def _bank_list(args: argparse.Namespace) -> int:
    for name in preset_names():
        print(name)
    return 0


def _bank_split(args: argparse.Namespace) -> int:
    out = check_output(args.out, suffix=".npz", kind="bank", keys=("features", "labels", "split"),
                       inputs=(args.bank,), force=args.force)
    bank = resolve_bank(args.bank, protocol=args.protocol, seed=args.seed)
    path = bank.save(out)
    print(f"wrote {path}")
    print(_format_summary(str(path), bank))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hashgym bank`` (its subcommands ``info``, ``list`` and ``split``)."""
    bank_sub = parser.add_subparsers(dest="bank_command", required=True)
    info = bank_sub.add_parser("info", help="print a bank's sizes, levels and provenance")
    info.add_argument("bank", nargs="?", default=None,
                      help="a .npz path or a preset name (default: the built-in cifar100-mini)")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    split = bank_sub.add_parser("split", help="save a bank re-split by a protocol")
    split.add_argument("bank", help="a .npz path or a preset name")
    split.add_argument("--out", required=True,
                       help="the .npz file to write (never the input bank; an existing file that "
                            "is not a bank needs --force)")
    split.add_argument("--force", action="store_true",
                       help="replace an existing --out file even if it is not a bank")
    for p in (info, split):
        p.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None,
                       required=p is split, help="apply this split protocol")
        p.add_argument("--seed", type=int, default=0, help="the protocol's seed")
    bank_sub.add_parser("list", help="list the preset names")



def run_from_args(args: argparse.Namespace) -> int:
    """Run ``hashgym bank info``, ``list`` or ``split``; returns the exit status."""
    run = {"info": _bank_info, "list": _bank_list, "split": _bank_split}[args.bank_command]
    return run(args)
