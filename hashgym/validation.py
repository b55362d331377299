"""Argument checks shared by every hashgym module, each raising the caller's error class.

A module passes its area's error (:class:`~hashgym.errors.EnvError`, ``CodesError``, … or the
module's alias of it) so that the class says which part of hashgym refused the value; the
wording is the same everywhere (``n_bits must be an integer, got 12.0``, ``n_bits must be >= 1,
got 0``). Use these checks, or :func:`is_integer` and :func:`is_number` for a predicate, rather
than an inline ``isinstance`` test. Booleans are never numbers here (``True`` is not a step
count).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from hashgym.errors import HashgymError

__all__ = ["check_choice", "check_count", "check_int", "check_memory", "check_number", "format_bytes",
           "is_integer", "is_number", "json_depth", "physical_memory"]


def is_integer(value: Any) -> bool:
    """An ``int`` or numpy integer, not a ``bool``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """An ``int``, ``float`` or numpy number, not a ``bool``."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def check_choice(value: Any, name: str, choices: Sequence[str],
                 error: type[Exception] = HashgymError) -> str:
    """``value`` if it is one of ``choices``; else ``error("unknown NAME VALUE; expected one of …")``."""
    if value not in choices:
        raise error(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")
    return value


def check_int(value: Any, name: str, minimum: int | None = None,
              error: type[Exception] = HashgymError) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum``; else ``error`` naming ``name``."""
    if not is_integer(value):
        raise error(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise error(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_count(value: Any, name: str, minimum: int = 1,
                error: type[Exception] = HashgymError) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum`` (1 or 0); else
    ``error("NAME must be a positive int, got …")`` (``non-negative`` for 0)."""
    if not is_integer(value) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f">= {minimum}"
        raise error(f"{name} must be a {kind} int, got {value!r}")
    return int(value)


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None,
                 error: type[Exception] = HashgymError, *, open_low: bool = False) -> float:
    """``value`` as a ``float`` if it is a finite number in ``[low, high]`` (``(low, high]`` with
    ``open_low``); else ``error`` naming ``name`` and the interval."""
    if not is_number(value):
        raise error(f"{name} must be a number, got {value!r}")
    value = float(value)
    below = low is not None and (value < low or (open_low and value == low))
    if not math.isfinite(value) or below or (high is not None and value > high):
        bounds = (f"{'(' if open_low else '['}{low if low is not None else '-inf'}, "
                  f"{high if high is not None else 'inf'}]")
        raise error(f"{name} must be a finite number in {bounds}, got {value}")
    return value


def json_depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (0 for a scalar), walked without recursion
    so that a crafted value cannot exhaust Python's recursion limit while it is measured."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def physical_memory() -> int | None:
    """This machine's physical memory in bytes, or ``None`` where the platform does not say
    (``os.sysconf`` is POSIX only)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units, e.g. ``"7.3 TiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value /= 1024
    else:
        unit = "PiB"
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def check_memory(nbytes: int, what: str, error: type[Exception] = HashgymError) -> None:
    """Refuse, before allocating, a request for more bytes than this machine's physical memory.

    A size that comes from an argument or a file (``num_envs``, ``k``, a declared shape) is
    checked here first, so that an impossible one gets a message naming it instead of a
    ``MemoryError`` (or, with overcommit, a process killed later). The bound is the whole
    physical memory, not what is free now: a request below it may still fail, but no request
    above it can succeed. Where the platform does not report its memory nothing is checked.

    :param nbytes: the bytes the request needs at least.
    :param what: what asks for them, for the message (``"num_envs=10**12"``).
    :param error: the caller's error class.
    """
    total = physical_memory()
    if total is not None and nbytes > total:
        raise error(f"{what} would need at least {format_bytes(nbytes)} of memory, more than "
                    f"this machine's {format_bytes(total)}")
