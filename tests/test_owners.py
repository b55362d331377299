"""A pool worker ends with the process that started it, however that one ended."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hashgym.owners import process_running

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="reads process states from /proc")


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever adopted it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_worker_ends_soon_after_its_parent_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    worker = (f"from hashgym.owners import exit_with_parent; import pathlib, time; "
              f"exit_with_parent(0.1); pathlib.Path({str(ready)!r}).touch(); time.sleep(120)")
    driver = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {worker!r}])
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _wait_for(ready.exists, 60), "the worker did not start"
        time.sleep(0.3)
        assert process_running(child) and not _ended(child)  # it waits while its parent lives
        parent.kill()  # SIGKILL: nothing in the driver can clean up
        parent.wait()
        assert _wait_for(lambda: _ended(child), 10), "the orphaned worker kept running"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()

