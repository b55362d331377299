"""A benchmark cell, its key and its result: what the runner (:mod:`hashgym.benchmarks.runner`)
computes and saves, and what the plots (:mod:`hashgym.benchmarks.plots`) and tables read.

A module of its own so that the runner can import the plots and the plots the cells, with no
import running back up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import hashgym
from hashgym.benchmarks.methods import resolved_params
from hashgym.benchmarks.suites import MethodSpec
from hashgym.identity import digest_of

__all__ = ["CELL_FORMAT", "Cell", "CellResult", "cell_key"]

#: The format of a saved cell (``cells/<key>.json``), part of every cell's key.
CELL_FORMAT = "hashgym-bench-cell/1"


@dataclass(frozen=True)
class Cell:
    """One unit of work: a method at one code length and seed on one bank.

    :param bank: the bank's name in the results (preset name, path, or given name).
    :param method: the method.
    :param n_bits: code length.
    :param seed: the method's seed.
    """

    bank: str
    method: MethodSpec
    n_bits: int
    seed: int

    def config(self, fingerprint: str) -> dict[str, Any]:
        """Everything that decides this cell's codes (hashed into its key)."""
        return {
            "format": CELL_FORMAT,
            "bank": fingerprint,
            "kind": self.method.kind,
            "params": json.loads(json.dumps(dict(self.method.params), sort_keys=True)),
            "resolved": resolved_params(self.method, self.n_bits, self.seed),
            "hashgym": hashgym.__version__,
            "n_bits": self.n_bits,
            "seed": self.seed,
        }

    def describe(self) -> str:
        return f"{self.bank} {self.method.key} {self.n_bits} bits seed {self.seed}"


def cell_key(config: Mapping[str, Any]) -> str:
    """A cell's key: a hash of everything that decides its codes (:meth:`Cell.config`)."""
    return digest_of(config, 20)


@dataclass
class CellResult:
    """A finished cell as saved in ``cells/<key>.json``.

    :param cell: the cell.
    :param key: its key (file stem under ``cells/``).
    :param data: the saved JSON (``metrics``, ``curves``, ``timing``, ...).
    :param resumed: ``True`` when loaded from an earlier run instead of computed now.
    """

    cell: Cell
    key: str
    data: dict[str, Any]
    resumed: bool

    @property
    def metrics(self) -> dict[str, float]:
        return self.data["metrics"]
