"""The repository stands on its own: no tracked file cites a file outside it.

A user who clones or installs hashgym gets this tree and nothing beside it, so the code, the
tests, the docs and the notes may only point into it (the methods are in ``docs/methods.md``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: A citation of something outside the tree: the spec file the project grew from, the folder
#: beside the clone, or an absolute path on the machine the project was developed on.
OUTSIDE = re.compile(r"METHODS\.md|\.\./shared\b|\bshared/(?:docs|seeds)\b|/work/")
#: Lines that may name such a path, each for its reason, matched whole (stripped) per file.
ALLOWED_LINES: dict[str, set[str]] = {
    # CI's default for HASHGYM_DATA: the shared data folder beside the clone.
    ".ci/run": {
        "# The shared data folder (../shared/data beside the clone) is passed to the tests"
    },
    # the tests' default for HASHGYM_DATA, the same folder as CI's.
    "tests/conftest.py": {
        ('"""``$HASHGYM_DATA`` (set by ``.ci/run``), else ``../shared/data`` beside the '
         'repository."""')
    },
}
#: Run records written by ``hashgym bench`` and the benchmark scripts keep the paths their run
#: read (provenance of a measurement, not a reference for readers), so they are not checked;
#: nor are a run's saved cells (``cells/<key>.json``, committed where a run spans sessions).
RECORD = re.compile(
    r"benchmarks/results/"
    r"(?:[^/]+/(?:record\.json|results\.csv|table\.md|table\.tex|cells/[0-9a-f]+\.json)"
    r"|bench_eval(?:_fallback)?\.txt)"
)
README = "README.md"


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not a git checkout ({err}); the check reads the tracked files")
    return [name for name in out.decode().split("\0") if name]


def _outside_citations(name: str) -> list[str]:
    """``"path:line: text"`` for every line of ``name`` that cites a path outside the tree."""
    data = (REPO / name).read_bytes()
    if b"\0" in data:  # a binary file (banks, figures)
        return []
    allowed = ALLOWED_LINES.get(name, set())
    return [
        f"{name}:{number}: {line.strip()}"
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line) and line.strip() not in allowed
    ]


def test_no_tracked_file_cites_a_path_outside_the_repository() -> None:
    me = Path(__file__).resolve().relative_to(REPO).as_posix()
    names = [n for n in _tracked() if n not in (me, README) and not RECORD.fullmatch(n)]
    assert len(names) > 100  # the listing found the tree
    found = [hit for name in names if (REPO / name).is_file() for hit in _outside_citations(name)]
    assert found == []


def test_readme_cites_no_path_outside_the_repository() -> None:
    assert _outside_citations(README) == []


def test_the_check_sees_each_kind_of_citation() -> None:
    for text in ("see METHODS.md", "../shared/data/x", "shared/seeds/000.txt", "/work/runs/a"):
        assert OUTSIDE.search(text), text
    for text in ("docs/methods.md", "benchmarks/results/notes/x.md", "a shared/data folder"):
        assert not OUTSIDE.search(text), text


def test_only_run_records_and_their_cells_are_exempt() -> None:
    for name in ("benchmarks/results/lengths/record.json", "benchmarks/results/quick/table.md",
                 "benchmarks/results/lengths/cells/8908cbd24e8e8e044b11.json",
                 "benchmarks/results/bench_eval.txt"):
        assert RECORD.fullmatch(name), name
    for name in ("benchmarks/results/notes/lengths.md", "docs/results.md",
                 "benchmarks/results/lengths/cells/notes.md",
                 "benchmarks/results/lengths/cells/sub/8908cbd24e8e8e044b11.json"):
        assert not RECORD.fullmatch(name), name
