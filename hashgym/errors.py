"""The base class of every error hashgym raises for bad input.

Each module names its own error (``BankError``, ``HashEnvError``, ``CodeError``, …), so a message
says which part of hashgym refused what. They all derive from :class:`HashgymError`, which is a
:class:`ValueError`: ``except hashgym.HashgymError`` catches any of them, and code written
against ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["HashgymError"]


class HashgymError(ValueError):
    """Bad input to hashgym: an argument, a file, a bank or a model it cannot use. The message
    names the problem."""
