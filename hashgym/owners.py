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
import threading
import time
from typing import Any

from hashgym.validation import is_integer

__all__ = ["exit_with_parent", "owner_alive", "owner_record", "process_running",
           "process_start"]


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


def exit_with_parent(interval: float = 2.0) -> threading.Thread:
    """End this process soon after the process that started it ends, however that one ended.

    A worker of a process pool outlives a driver killed by a signal it cannot catch (``kill
    PID``, the out-of-memory killer, ``SIGKILL``): it would compute its task to the end for no
    one, on the cores the rerun needs. This starts a daemon thread that checks every
    ``interval`` seconds whether this process's parent is still the one it had, and calls
    ``os._exit(1)`` when it is not (the orphan is adopted by another process). Portable where
    ``os.getppid`` is; the worker's unsaved work is lost, as a killed driver would have lost it.

    :param interval: seconds between checks (2 s: a few idle wake-ups a minute, an orphan gone
        within seconds).
    :return: the started thread.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread
