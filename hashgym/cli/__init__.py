"""The ``hashgym`` command.

Subcommands::

    hashgym bank info [PATH|NAME] [--protocol P] [--json]   sizes, levels and provenance of a bank
    hashgym bank list                                      the preset names
    hashgym bank split PATH|NAME --protocol P --out FILE    save a bank re-split by a protocol
    hashgym features ...                                   extract CNN features into a bank
    hashgym train ...                                      train an agent, with resume
    hashgym encode MODEL --out codes.npz                   code a bank's images with an agent
    hashgym tune SPACE ...                                 sweep an agent's arguments (Optuna)
    hashgym bench --suite S ...                            run a benchmark suite
    hashgym eval QUERY DB [--bank B] [--metrics ...]        score two code files
    hashgym index build CODES --out INDEX                  pack codes into an index file
    hashgym search INDEX QUERY --k K | --radius R [--out]  the nearest codes of each query
    hashgym search MODEL --image FILE --index INDEX --k K  ... or of pictures
    hashgym show QUERY DB --images IMAGES --out grid.png   queries and what they retrieve

Each subcommand is a module of this package with ``add_arguments(parser)`` and
``run_from_args(args)``. Heavy libraries (torch, Stable-Baselines3, the agents and the benchmark
runner) are imported only by the subcommands that run with them, when they run.

Errors take one path: a subcommand raises a :class:`~hashgym.errors.HashgymError` for bad input
(argparse refuses malformed options itself), and :func:`main` prints it once as
``hashgym COMMAND: error: MESSAGE`` on stderr and returns exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from hashgym.cli import bank, bench, encode, features, index, search, show, train, tune
from hashgym.cli import eval as evaluate
from hashgym.errors import HashgymError

__all__ = ["build_parser", "main"]

#: The subcommands: name, module, help.
_COMMANDS: tuple[tuple[str, ModuleType, str], ...] = (
    ("bank", bank, "inspect and re-split feature banks"),
    ("features", features, "extract CNN features of an image set into a bank"),
    ("bench", bench, "run a benchmark suite: tables, plots and a record"),
    ("train", train, "train an agent (any SB3 algorithm, DRLHIH's levels) with resume"),
    ("encode", encode, "code a bank's images with a trained agent (.npz)"),
    ("tune", tune, "sweep an agent's arguments on a validation split (Optuna)"),
    ("eval", evaluate, "score two code files (hashgym's or any tool's) on hashgym's metrics"),
    ("index", index, "pack a code file into an index (build), or search one"),
    ("show", show, "draw queries and their top-k retrieved images (.png)"),
    ("search", search, "the nearest codes of query codes, or of pictures (--image), in an index"),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``hashgym`` argument parser (exposed for documentation tools and tests)."""
    parser = argparse.ArgumentParser(
        prog="hashgym", description="hashgym: learning to hash for image retrieval as "
        "reinforcement learning. Run 'hashgym COMMAND --help' for a command's options.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module, help_text in _COMMANDS:
        command = sub.add_parser(name, help=help_text)
        module.add_arguments(command)
        command.set_defaults(func=module.run_from_args)
    return parser


def _command_name(args: argparse.Namespace) -> str:
    """The command as argparse names it in its own errors: ``hashgym train``, or
    ``hashgym bank split`` for a command with subcommands."""
    words = ["hashgym", args.command]
    subcommand = getattr(args, f"{args.command}_command", None)
    if subcommand is not None:
        words.append(subcommand)
    return " ".join(words)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hashgym`` console script; returns the exit status.

    A :class:`~hashgym.errors.HashgymError` from the subcommand (bad input: a file, an option,
    a bank or a model it cannot use) is printed as ``hashgym COMMAND: error: MESSAGE`` on stderr
    and gives exit status 2, as argparse's own usage errors do.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except HashgymError as exc:
        print(f"{_command_name(args)}: error: {exc}", file=sys.stderr)
        return 2
