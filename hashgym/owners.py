"""Who owns a piece of shared work: a process named by more than its id.

Runs that share an output folder (``hashgym bench`` cells, ``hashgym tune`` trials) mark what
they are computing with an owner record, so that another run leaves it alone while the owner
lives and takes it over once the owner is gone. A process id alone cannot say that: after a run
is killed its id may be given to an unrelated process, and the work would wait for it forever.
An owner record therefore holds the process id, the host and the process's start time (the
kernel's clock-tick count in ``/proc/<pid>/stat``; ``None`` where there is no ``/proc``). The
owner is alive only when a process with that id runs on this host and started at that time.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from hashgym.validation import is_integer

__all__ = ["owner_alive", "owner_record", "process_running", "process_start"]


def process_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, under another user
        return True
    return True


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks after boot (field 22 of
    ``/proc/<pid>/stat``), or ``None`` where it cannot be read (no such process, no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
        # the command name (field 2) is in parentheses and may hold spaces and ')'
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_record() -> dict[str, Any]:
    """This process as an owner: ``{"pid", "host", "start"}`` (JSON-ready)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": process_start(os.getpid())}


def owner_alive(record: Any) -> bool | None:
    """Whether the process an owner record names still runs.

    :param record: a mapping written by :func:`owner_record` (or an older one without
        ``start``: then the process id alone decides).
    :return: ``True`` or ``False`` for an owner on this host; ``None`` for one on another host,
        whose processes cannot be seen from here. A damaged record (not a mapping, no integer
        ``pid``) is ``False``: nobody can own work through it.
    """
    if not isinstance(record, dict):
        return False
    pid, host, start = record.get("pid"), record.get("host"), record.get("start")
    if not is_integer(pid) or pid <= 0:
        return False
    if not isinstance(host, str):
        return False
    if host != socket.gethostname():
        return None
    if not process_running(pid):
        return False
    if start is None:
        return True
    now = process_start(pid)
    return now is None or now == start
