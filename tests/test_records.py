"""Committed run records agree with the cells committed beside them.

A run that spans sessions commits its finished cells (``benchmarks/results/<run>/cells/``,
``hashgym bench``'s resume state), and a finished record can keep them so that
``hashgym bench --out benchmarks/results/<run>`` remakes its tables without training. Those
cells must then be the ones the record was made from: every value of ``results.csv`` is the
metric of a committed cell, and every cell the record lists is committed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hashgym.benchmarks.runner import CellStore

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
#: Runs whose record is committed with its cells.
RUNS_WITH_CELLS = sorted(p.parent.name for p in RESULTS.glob("*/cells")
                         if (p.parent / "record.json").is_file())


def test_some_record_keeps_its_cells() -> None:
    assert {"lengths", "drlhih-levels", "agents", "scihcgrl-e2e"} <= set(RUNS_WITH_CELLS)


@pytest.mark.parametrize("run", RUNS_WITH_CELLS)
def test_a_record_resumes_from_its_committed_cells(run: str) -> None:
    """Every cell ``record.json`` lists loads as a resumable cell (its JSON and its codes, as
    ``hashgym bench`` reads them), and ``results.csv`` holds exactly those cells' metrics."""
    folder = RESULTS / run
    store = CellStore(folder / "cells")
    listed = json.loads((folder / "record.json").read_text())["cells"]
    assert listed, f"{run}/record.json lists no cells"
    values, missing = {}, []
    for entry in listed:
        saved = store.load(entry["key"])
        if saved is None:
            missing.append(entry["key"])
            continue
        cell = saved["cell"]
        for metric, value in saved["metrics"].items():
            values[(cell["bank"], cell["method"]["key"], int(cell["bits"]), int(cell["seed"]),
                    metric)] = float(value)
    assert not missing, f"{run}: cells listed in record.json that do not resume: {missing}"
    with (folder / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(values), f"{run}: {len(rows)} results for {len(values)} cell values"
    for row in rows:
        key = (row["bank"], row["method"], int(row["bits"]), int(row["seed"]), row["metric"])
        assert key in values, f"{run}: no committed cell holds {key}"
        assert values[key] == pytest.approx(float(row["value"]), abs=1e-12), key
