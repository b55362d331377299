"""Every error class hashgym defines sits under ``HashgymError``, itself a ``ValueError``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import hashgym
import hashgym.agents
import hashgym.benchmarks
from hashgym import HashgymError
from hashgym.bank import BankError
from hashgym.protocols import resolve_bank


def _error_classes() -> dict[str, type]:
    """Every exception class defined in a hashgym module (agents and benchmarks included)."""
    found: dict[str, type] = {}
    packages = [hashgym, hashgym.agents, hashgym.benchmarks]  # two install from their own folders
    infos = [info for package in packages
             for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    for info in infos:
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Exception)
                    and obj.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_hashgym_error_is_a_hashgym_error_and_a_value_error() -> None:
    classes = _error_classes()
    # the walk reaches the agents and the benchmarks too
    assert {"hashgym.bank.BankError", "hashgym.envs.core.HashEnvError",
            "hashgym.agents.config.TrainError", "hashgym.benchmarks.suites.BenchError"} <= set(classes)
    outside = sorted(name for name, cls in classes.items()
                     if cls is not HashgymError and not issubclass(cls, HashgymError))
    assert outside == []
    assert issubclass(HashgymError, ValueError)


def test_one_except_clause_catches_them() -> None:
    with pytest.raises(HashgymError, match="unknown preset 'imagenet'") as caught:
        resolve_bank("imagenet")
    assert isinstance(caught.value, BankError)
