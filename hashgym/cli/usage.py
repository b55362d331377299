"""The error of a ``hashgym`` command given options it cannot run with.

argparse refuses what it can see on its own (an unknown option, a bad choice); the commands
raise :class:`UsageError` for the rest: options that go only together, a number out of range,
a settings file that cannot be read. Like every :class:`~hashgym.errors.HashgymError`, the
``hashgym`` command prints it as ``hashgym COMMAND: error: MESSAGE`` and exits with status 2.
"""

from __future__ import annotations

from hashgym.errors import HashgymError

__all__ = ["UsageError"]


class UsageError(HashgymError):
    """Command-line options a ``hashgym`` command cannot run with; the message names them."""
