"""The ``hashgym`` command.

Subcommands::

    hashgym bank info [PATH|NAME] [--protocol P] [--json]   sizes, levels and provenance of a bank
    hashgym bank list                                      the preset names
    hashgym bank split PATH|NAME --protocol P --out FILE    save a bank re-split by a protocol
    hashgym features ...                                   extract CNN features into a bank
    hashgym eval QUERY DB [--bank B] [--metrics ...]        score two code files
    hashgym index build CODES --out INDEX                  pack codes into an index file
    hashgym search INDEX QUERY --k K | --radius R [--out]  the nearest codes of each query
    hashgym search MODEL --image FILE --index INDEX --k K  ... or of pictures
    hashgym show QUERY DB --images IMAGES --out grid.png   queries and what they retrieve

Heavy libraries (torch, torchvision) are imported only by the subcommands that need them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hashgym.atomic import OutputPathError, check_output
from hashgym.bank import BankError, FeatureBank
from hashgym.protocols import PROTOCOLS, preset_names, resolve_bank

__all__ = ["build_parser", "main"]

# Subcommands whose options live with their implementation: (module, help), or (module, help,
# options function, run function) where a module serves two commands.
_DELEGATED = {
    "features": ("hashgym.features", "extract CNN features of an image set into a bank"),
    "bench": ("hashgym.benchmarks.cli", "run a benchmark suite: tables, plots and a record"),
    "train": ("hashgym.agents.cli", "train an agent (any SB3 algorithm, DRLHIH's levels) with resume"),
    "encode": ("hashgym.agents.cli_encode", "code a bank's images with a trained agent (.npz)"),
    "tune": ("hashgym.agents.cli_tune", "sweep an agent's arguments on a validation split (Optuna)"),
    "eval": ("hashgym.cli_eval", "score two code files (hashgym's or any tool's) on hashgym's metrics"),
    "index": ("hashgym.cli_index", "pack a code file into an index (build), or search one"),
    "show": ("hashgym.cli_show", "draw queries and their top-k retrieved images (.png)"),
    "search": ("hashgym.agents.cli_search",
               "the nearest codes of query codes, or of pictures (--image), in an index"),
}


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


def build_parser() -> argparse.ArgumentParser:
    """The ``hashgym`` argument parser (exposed for documentation tools and tests)."""
    parser = argparse.ArgumentParser(
        prog="hashgym", description="hashgym: learning to hash for image retrieval as "
        "reinforcement learning. Run 'hashgym COMMAND --help' for a command's options.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    bank = sub.add_parser("bank", help="inspect and re-split feature banks")
    bank_sub = bank.add_subparsers(dest="bank_command", required=True)
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
    info.set_defaults(func=_bank_info)
    split.set_defaults(func=_bank_split)
    bank_sub.add_parser("list", help="list the preset names").set_defaults(func=_bank_list)

    for name, (module_name, help_text, *names) in _DELEGATED.items():
        module = importlib.import_module(module_name)
        add, run = names or ("add_arguments", "run_from_args")
        p = sub.add_parser(name, help=help_text)
        getattr(module, add)(p)
        p.set_defaults(func=getattr(module, run))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hashgym`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], Any] = args.func
    try:
        return int(func(args) or 0)
    except (BankError, OutputPathError) as exc:
        print(f"hashgym: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
