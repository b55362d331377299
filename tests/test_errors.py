"""Every error hashgym raises is one of six area errors under ``HashgymError``, itself a
``ValueError``; the modules' historical error names are aliases of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import hashgym
import hashgym.agents
import hashgym.benchmarks
from hashgym import HashgymError, errors
from hashgym.bank import BankError
from hashgym.errors import AgentError, BenchError, CodesError, DataError, EnvError, SetupError
from hashgym.index import CodeIndexError, FaissMissingError
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


AREAS = tuple(getattr(errors, name) for name in errors.__all__ if name != "HashgymError")


def test_every_hashgym_error_is_one_of_the_area_errors() -> None:
    classes = _error_classes()
    assert len(AREAS) == 6 and {f"hashgym.errors.{cls.__name__}" for cls in AREAS} <= set(classes)
    outside = sorted(name for name, cls in classes.items()
                     if cls is not HashgymError and not issubclass(cls, HashgymError))
    assert outside == []
    assert issubclass(HashgymError, ValueError)
    # a module names its area's error (an alias) instead of defining one; the command-line
    # modules and private control-flow signals aside, and one error that is also an
    # ImportError (a missing optional faiss, for callers that test for the dependency)
    own = sorted(name for name, cls in classes.items()
                 if cls.__module__ != "hashgym.errors" and ".cli" not in name
                 and not name.rpartition(".")[2].startswith("_"))
    assert own == ["hashgym.index.FaissMissingError"]
    assert issubclass(FaissMissingError, CodeIndexError) and issubclass(FaissMissingError,
                                                                         ImportError)


@pytest.mark.parametrize(("module", "name", "area"), [
    ("hashgym.bank", "BankError", DataError),
    ("hashgym.datasets", "DatasetError", DataError),
    ("hashgym.features", "FeatureError", DataError),
    ("hashgym.images", "ImageError", DataError),
    ("hashgym.envs.core", "HashEnvError", EnvError),
    ("hashgym.codes", "CodeError", CodesError),
    ("hashgym.metrics", "MetricError", CodesError),
    ("hashgym.index", "CodeIndexError", CodesError),
    ("hashgym.centers", "CenterError", CodesError),
    ("hashgym.atomic", "OutputPathError", SetupError),
    ("hashgym.devices", "DeviceError", SetupError),
    ("hashgym.ray_pool", "RayPoolError", SetupError),
    ("hashgym.agents.registry", "TrainError", AgentError),
    ("hashgym.agents.saving", "ModelFileError", AgentError),
    ("hashgym.agents.encode", "EncodeError", AgentError),
    ("hashgym.agents.tune", "TuneError", AgentError),
    ("hashgym.benchmarks.suites", "BenchError", BenchError),
    ("hashgym.benchmarks.baselines.base", "BaselineError", BenchError),
    ("hashgym.benchmarks.baselines.labels", "LabelError", BenchError),
])
def test_module_error_names_are_their_area_errors(module: str, name: str, area: type) -> None:
    assert getattr(importlib.import_module(module), name) is area


def test_one_except_clause_catches_them() -> None:
    with pytest.raises(HashgymError, match="unknown preset 'imagenet'") as caught:
        resolve_bank("imagenet")
    assert isinstance(caught.value, BankError)
