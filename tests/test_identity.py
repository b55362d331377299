"""The identity hashes keep the values they had before they moved to :mod:`hashgym.identity`.

Cache file names, benchmark cells' keys, checkpoints and sweeps already on disk are found by
these values, so each is pinned here to the value the code gave before the move (computed with
hashgym at 389a60c on the inputs below).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hashgym import features
from hashgym.agents.checkpoints import RunStore
from hashgym.agents.tune import _Sweep
from hashgym.bank import FeatureBank
from hashgym.benchmarks.cells import cell_key
from hashgym.datasets import ImageSet
from hashgym.identity import (
    Digest,
    canonical_json,
    digest_of,
    digest_of_arrays,
    identity_fields,
    sha256_bytes,
    sha256_file,
)

SPLIT6 = np.array([0, 0, 0, 0, 1, 1], dtype=np.int8)
FEATURES6 = np.arange(24, dtype=np.float32).reshape(6, 4) / 7
MULTI_HOT6 = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]],
                      dtype=np.uint8)


def _bank() -> FeatureBank:
    return FeatureBank(features=FEATURES6, labels=np.array([[0, 0], [0, 1], [1, 2], [1, 3], [0, 0],
                                                            [1, 2]]),
                       class_names=(("a", "b"), ("w", "x", "y", "z")), split=SPLIT6)


def _image_set() -> ImageSet:
    return ImageSet(labels=np.array([[0], [1], [0], [1]]), class_names=(("a", "b"),),
                    level_names=("fine",), images=np.arange(48, dtype=np.uint8).reshape(4, 2, 2, 3),
                    split=np.array([0, 0, 1, 1], dtype=np.int8), source="test")


def _job(epochs: int, train: np.ndarray | None) -> features._Job:
    return features._Job(images=_image_set(), backbone="resnet18", weights=None, epochs=epochs,
                         seed=3, batch_size=8, size=32, lr=0.01, device=torch.device("cpu"),
                         progress=False, train=train)


def test_bank_fingerprints_keep_their_values() -> None:
    assert _bank().fingerprint() == "5ad0e3be639ce29f"
    multi = FeatureBank(features=FEATURES6, labels=np.zeros((6, 0), dtype=np.int64), class_names=(),
                        split=SPLIT6, multi_hot=MULTI_HOT6, concept_names=("p", "q", "r"))
    assert multi.fingerprint() == "ca130795b391b396"


def test_image_set_content_hashes_keep_their_values(tmp_path: Path) -> None:
    assert _image_set().content_hash() == \
        "8bafe85bb2fd48842ec0b6f3bb316be37d0f17cfa5d252b0f78d3224f6f62b05"
    for i, name in enumerate(["a.jpg", "b.jpg"]):
        (tmp_path / name).write_bytes(bytes([i]) * (10 + i))
        os.utime(tmp_path / name, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000 + i))
    files = ImageSet(labels=np.zeros((2, 0), dtype=np.int64), class_names=(), level_names=(),
                     paths=("a.jpg", "b.jpg"), root=tmp_path, multi_hot=MULTI_HOT6[:2],
                     concept_names=("p", "q", "r"), source="files")
    assert files.content_hash() == "c5dea5eede6c6c28928e6d037f137c2e7c88295e9821da053dc73887ad9380a1"


def test_feature_cache_keys_keep_their_values() -> None:
    trained = _job(2, np.array([True, False, True, False]))
    assert features._cache_key(trained, 100, "none", "float16") == \
        "911df4f74a7c26946be35a816a0b9f18ef9613b01ffd62b5ad840eae522dea5c"
    assert features._cache_key(_job(0, None), None, "none", "float32") == \
        "f1231b2a114485e7a3faa052f72195c4145cba69f6238fdfb6851c4d25281cc9"


def test_file_digest_keeps_its_value(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"hashgym\n")
    assert sha256_file(path) == "b00bca305be325617161001f1c691c9f19b74aed7988d394628f417e9c56caff"


def test_benchmark_cell_keys_keep_their_values() -> None:
    config = {"method": "lsh", "n_bits": 32, "seed": 0, "bank": "cifar",
              "params": {"b": 1.5, "a": [1, 2]}}
    assert cell_key(config) == "d02c528311a946b0a4a0"
    assert cell_key(dict(reversed(list(config.items())))) == "d02c528311a946b0a4a0"


def test_sweep_signatures_keep_their_values() -> None:
    sweep = _Sweep(space={"lr": ["float", [0.0001, 0.01]]}, metric="map", rungs=2, seed=1,
                   bank="x", journal="j", threads=None)
    assert sweep.signature(_bank()) == ('{"bank": "5ad0e3be639ce29f", "metric": "map", "rungs": 2, '
                                        '"seed": 1, "space": {"lr": ["float", [0.0001, 0.01]]}}')


def test_run_identity_drops_only_the_budget_and_paths(tmp_path: Path) -> None:
    info = {"env_id": "HierHash-v0", "level_timesteps": [1], "bank_path": "/x", "algo": "dqn",
            "seed": 0}
    store = RunStore(tmp_path, info, 10, False)
    assert store._identity(info) == {"env_id": "HierHash-v0", "algo": "dqn", "seed": 0}


def test_array_digests_tell_dtypes_and_shapes_apart() -> None:
    data = np.arange(6, dtype=np.int32)
    base = digest_of_arrays([data])
    assert digest_of_arrays([data.reshape(2, 3)]) != base
    assert digest_of_arrays([data.view(np.float32)]) != base
    assert digest_of_arrays([data[::-1].copy()[::-1]]) == base  # a strided view hashes by value
    assert digest_of_arrays([np.zeros((3, 0))]) == Digest().text("<f8(3, 0)").hexdigest()
    assert Digest().raw(data).hexdigest() == sha256_bytes(data.tobytes())


def test_record_digests_ignore_key_order_and_refuse_unknown_types() -> None:
    assert digest_of({"a": 1, "b": 2}, 12) == digest_of({"b": 2, "a": 1}, 12)
    assert len(digest_of({"a": 1}, 12)) == 12
    assert canonical_json({"x": Path("p")}, default=str) == '{"x": "p"}'
    with pytest.raises(TypeError, match="not JSON serializable"):
        digest_of({"x": Path("p")})
    assert identity_fields({"a": 1, "b": 2, "c": 3}, ("b", "z")) == {"a": 1, "c": 3}
