"""Shared fixtures: small synthetic banks and the location of the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashgym.bank import FeatureBank
from hashgym.synthetic import make_hierarchical_bank, make_multilabel_bank

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$HASHGYM_DATA`` (set by ``.ci/run``), else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("HASHGYM_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip with the reason when it is absent."""
    path = shared_data_dir()
    if not (path / "cifar100").is_dir():
        pytest.skip(f"shared CIFAR-100 data not found at {path} (set HASHGYM_DATA to the folder "
                    f"that holds cifar100/)")
    return path


@pytest.fixture(scope="session")
def shared_bank_path(shared_data: Path) -> Path:
    return shared_data / "cifar100" / "cifar100_resnet18_features.npz"


@pytest.fixture
def hier_bank() -> FeatureBank:
    """4 coarse x 3 fine classes, 20 images each, 32-d."""
    return make_hierarchical_bank(seed=0)


@pytest.fixture
def ml_bank() -> FeatureBank:
    """400 images with 1-3 of 8 concepts, 32-d."""
    return make_multilabel_bank(seed=0)
