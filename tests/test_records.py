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

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
#: Runs whose record is committed with every one of its cells.
RUNS_WITH_CELLS = sorted(p.parent.name for p in RESULTS.glob("*/cells")
                         if (p.parent / "record.json").is_file())


def _cell_values(cells: Path) -> dict[tuple[str, str, int, int, str], float]:
    """``(bank, method, bits, seed, metric) -> value`` over a folder of saved cells."""
    values = {}
    for path in cells.glob("*.json"):
        saved = json.loads(path.read_text())
        cell = saved["cell"]
        for metric, value in saved["metrics"].items():
            key = (cell["bank"], cell["method"]["key"], int(cell["bits"]), int(cell["seed"]),
                   metric)
            values[key] = float(value)
    return values


def test_some_record_keeps_its_cells() -> None:
    assert "lengths" in RUNS_WITH_CELLS


@pytest.mark.parametrize("run", RUNS_WITH_CELLS)
def test_a_records_values_are_its_committed_cells(run: str) -> None:
    folder = RESULTS / run
    cells = _cell_values(folder / "cells")
    with (folder / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, f"{run}/results.csv is empty"
    for row in rows:
        key = (row["bank"], row["method"], int(row["bits"]), int(row["seed"]), row["metric"])
        assert key in cells, f"{run}: no committed cell holds {key}"
        assert cells[key] == pytest.approx(float(row["value"]), abs=1e-12), key


@pytest.mark.parametrize("run", RUNS_WITH_CELLS)
def test_every_cell_a_record_lists_is_committed(run: str) -> None:
    folder = RESULTS / run
    record = json.loads((folder / "record.json").read_text())
    listed = record["cells"]
    assert listed, f"{run}/record.json lists no cells"
    missing = [c["key"] for c in listed
               if not (folder / "cells" / f"{c['key']}.json").is_file()
               or not (folder / "cells" / f"{c['key']}.npz").is_file()]
    assert not missing, f"{run}: cells listed in record.json but not committed: {missing}"
