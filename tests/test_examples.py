"""Every example runs through its real entry point with a tiny budget (CleanRL style).

The scripts run in-process with :func:`runpy.run_path` (as ``__main__``, with their own
``sys.argv``), which saves a fresh interpreter's torch import per example.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(("script", "args", "expect"), [
    ("quickstart.py", ["--total-timesteps", "256", "--num-envs", "16"], "NDCG@20 (hierarchy)"),
    ("custom_policy_gradient.py", ["--total-timesteps", "1024", "--num-envs", "256"],
     "coded 7,000 training images"),
    ("hierarchical_curriculum.py", ["--total-timesteps", "128", "--num-envs", "16"],
     "after level 1: NDCG@20"),
])
def test_example_runs(script: str, args: list[str], expect: str, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture) -> None:
    path = EXAMPLES / script
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    runpy.run_path(str(path), run_name="__main__")
    assert expect in capsys.readouterr().out
