"""FeatureBank: format round trips, validation errors, memory mapping, atomic writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hashgym.atomic import atomic_write
from hashgym.bank import BankError, FeatureBank
from hashgym.protocols import resolve_bank


def _tiny(**changes) -> dict:
    """Fields of a valid 6-image, 2-level bank, with some replaced."""
    fields = {
        "features": np.arange(12, dtype=np.float32).reshape(6, 2),
        "labels": np.array([[0, 0], [0, 1], [1, 2], [1, 2], [0, 0], [1, 3]]),
        "class_names": (("a", "b"), ("a0", "a1", "b0", "b1")),
        "split": np.array([0, 0, 0, 1, 1, 0], dtype=np.int8),
    }
    fields.update(changes)
    return fields


def _assert_same(a: FeatureBank, b: FeatureBank) -> None:
    np.testing.assert_array_equal(np.asarray(a.features), np.asarray(b.features))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.split, b.split)
    np.testing.assert_array_equal(a.train_mask, b.train_mask)
    assert a.class_names == b.class_names
    assert a.level_names == b.level_names
    assert a.meta == b.meta
    if a.multi_hot is None:
        assert b.multi_hot is None
    else:
        np.testing.assert_array_equal(a.multi_hot, b.multi_hot)
        assert a.concept_names == b.concept_names


# ------------------------------------------------------------------ accessors
def test_tiny_bank_accessors():
    bank = FeatureBank(**_tiny())
    assert (bank.n, bank.dim, bank.n_levels, bank.n_classes) == (6, 2, 2, (2, 4))
    assert bank.level_names == ("level0", "level1")
    np.testing.assert_array_equal(bank.indices("query"), [3, 4])
    np.testing.assert_array_equal(bank.indices("database"), [0, 1, 2, 5])
    np.testing.assert_array_equal(bank.indices("train"), [0, 1, 2, 5])
    np.testing.assert_array_equal(bank.parents(1), [0, 0, 1, 1])
    view = bank.view("query")
    assert len(view) == 2
    np.testing.assert_array_equal(view.features, bank.features[[3, 4]])
    np.testing.assert_array_equal(view.labels, [[1, 2], [0, 0]])
    summary = bank.summary()
    assert (summary["images"], summary["query"], summary["database"], summary["train"]) == (6, 2, 4, 4)


def test_train_mask_restricts_train_split():
    train = np.array([True, False, True, False, False, False])
    bank = FeatureBank(**_tiny(train=train))
    np.testing.assert_array_equal(bank.indices("train"), [0, 2])
    np.testing.assert_array_equal(bank.indices("database"), [0, 1, 2, 5])


@pytest.mark.parametrize("train", [None, np.array([True, False, True, False, False, False])])
def test_train_mask_in_is_the_mask_of_a_row_range(train):
    bank = FeatureBank(**_tiny(train=train))
    expected = [True, False, True, False, False, False] if train is not None else \
        [True, True, True, False, False, True]
    np.testing.assert_array_equal(bank.train_mask, expected)
    for start, stop in ((0, 6), (1, 4), (4, 6), (5, 5)):
        np.testing.assert_array_equal(bank.train_mask_in(slice(start, stop)),
                                      expected[start:stop])


def test_float64_features_become_float32():
    bank = FeatureBank(**_tiny(features=np.ones((6, 2))))
    assert bank.features.dtype == np.float32


def test_take_keeps_class_ids(hier_bank):
    sub = hier_bank.take(hier_bank.labels[:, 0] == 2)
    assert set(sub.labels[:, 0]) == {2}
    assert sub.class_names == hier_bank.class_names
    assert sub.n == int(np.sum(hier_bank.labels[:, 0] == 2))


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("compress", [False, True])
def test_save_load_round_trip(tmp_path, hier_bank, compress):
    bank = hier_bank.replace(train=hier_bank.split == 0, meta={"note": "x"})
    path = bank.save(tmp_path / "bank.npz", compress=compress)
    _assert_same(bank, FeatureBank.load(path))
    _assert_same(bank, FeatureBank.load(path, mmap=True))


def test_multilabel_round_trip(tmp_path, ml_bank):
    path = ml_bank.save(tmp_path / "ml.npz")
    loaded = FeatureBank.load(path)
    _assert_same(ml_bank, loaded)
    assert loaded.n_levels == 0 and loaded.multi_hot.shape == (400, 8)


def test_mmap_load_is_memory_mapped(tmp_path, hier_bank):
    path = hier_bank.save(tmp_path / "bank.npz")
    loaded = FeatureBank.load(path, mmap=True)
    assert isinstance(loaded.features, np.memmap)
    compressed = hier_bank.save(tmp_path / "c.npz", compress=True)
    assert not isinstance(FeatureBank.load(compressed, mmap=True).features, np.memmap)


def test_saved_file_is_documented_format(tmp_path, hier_bank):
    path = hier_bank.save(tmp_path / "bank.npz")
    with np.load(path, allow_pickle=False) as z:
        assert str(z["format"]) == "hashgym-bank/1"
        assert {"features", "labels", "level_names", "class_names_0", "class_names_1", "split",
                "meta"} <= set(z.files)
        assert json.loads(str(z["meta"]))["source"] == "synthetic"


def test_loads_cifar_style_arrays(tmp_path):
    rng = np.random.default_rng(0)
    f2c = np.array([0, 0, 1], dtype=np.int16)
    fine = np.array([0, 1, 2, 2, 0, 1], dtype=np.int16)
    path = tmp_path / "cifar_like.npz"
    np.savez(path, features=rng.normal(size=(6, 4)).astype(np.float16), fine_labels=fine,
             coarse_labels=f2c[fine], fine_to_coarse=f2c, fine_names=np.array(["x", "y", "z"]),
             coarse_names=np.array(["p", "q"]), split=np.array([0, 0, 0, 1, 1, 0], dtype=np.int8),
             meta=np.array(json.dumps({"backbone": "toy"})))
    bank = FeatureBank.load(path)
    assert bank.level_names == ("coarse", "fine")
    np.testing.assert_array_equal(bank.labels[:, 0], f2c[fine])
    assert bank.meta["backbone"] == "toy" and bank.meta["source"] == str(path)


@pytest.mark.slow
def test_loads_shared_bank_as_it_is(shared_bank_path):
    bank = FeatureBank.load(shared_bank_path)
    assert (bank.n, bank.dim, bank.n_classes) == (60000, 512, (20, 100))
    assert bank.features.dtype == np.float16
    assert (len(bank.indices("query")), len(bank.indices("database"))) == (10000, 50000)
    assert bank.class_names[1][56] == "palm_tree"
    assert bank.class_names[0][bank.parents(1)[56]] == "trees"


# ------------------------------------------------------------------ validation errors
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"features": np.array([[0.0, np.nan]] * 6, dtype=np.float32)},
         r"non-finite values \(NaN or inf\): first at row 0, column 1"),
        ({"features": np.full((6, 2), np.inf, dtype=np.float16)}, "non-finite values"),
        ({"features": np.array([[0.0, 1.0]] * 5 + [[1e30, 0.0]], dtype=np.float32)},
         r"features\[5, 0\] = 1e\+30 is beyond ±1e\+06; .* standardise the features"),
        ({"features": np.ones((6, 2), dtype=np.int32)}, "float16 or float32"),
        ({"features": np.ones((0, 2), dtype=np.float32)}, "non-empty"),
        ({"labels": np.zeros((5, 2), dtype=int)}, "features have 6 rows but labels have 5"),
        ({"labels": np.full((6, 2), 0.5)}, "labels must be integers"),
        ({"split": np.zeros(7, dtype=np.int8)}, "features have 6 rows but split has shape"),
        ({"split": np.full(6, 2, dtype=np.int8)}, r"split must contain only 0 \(database\)"),
        ({"split": np.zeros(6, dtype=np.int8)}, "empty split: the bank has no query images"),
        ({"split": np.ones(6, dtype=np.int8)}, "empty split: the bank has no database images"),
        ({"labels": np.array([[0, 0], [0, 1], [1, 2], [1, 4], [0, 0], [1, 3]])},
         r"labels out of range at level 1 \('level1'\): value 4 at row 3, expected 0..3"),
        ({"labels": np.array([[0, 0], [0, 1], [1, 2], [-1, 2], [0, 0], [1, 3]])},
         "labels out of range at level 0"),
        ({"labels": np.array([[0, 0], [0, 1], [1, 2], [0, 2], [0, 0], [1, 3]])},
         r"inconsistent hierarchy: class 2 \('b0'\) at level 1 has parent 1 at row 2 but parent 0"),
        ({"class_names": (("a", "b"),)}, "labels have 2 levels but class_names has 1"),
        ({"level_names": ("only",)}, "labels have 2 levels but level_names has 1"),
        ({"train": np.zeros(6, dtype=bool)}, "empty split: the training subset has no images"),
        ({"train": np.array([1, 0, 0, 0, 0, 0])}, "train must be a bool mask"),
        ({"train": np.array([True, False, False, True, False, False])},
         "1 query images are marked for training"),
        ({"multi_hot": np.zeros((5, 3), dtype=np.uint8)}, "features have 6 rows but multi_hot"),
        ({"multi_hot": np.full((6, 3), 2, dtype=np.uint8)}, "multi_hot labels must contain only 0 and 1"),
        ({"multi_hot": np.zeros((6, 3), dtype=np.uint8), "concept_names": ("x",)},
         "multi_hot has 3 concepts but concept_names has 1"),
        ({"labels": np.zeros((6, 0), dtype=int), "class_names": (), "level_names": ()},
         "needs labels at one level at least, or multi_hot"),
    ],
)
def test_validation_errors(changes, message):
    with pytest.raises(BankError, match=message):
        FeatureBank(**_tiny(**changes))


def test_finite_check_covers_every_block(monkeypatch):
    monkeypatch.setattr("hashgym.bank._FINITE_CHECK_ROWS", 2)
    features = np.zeros((6, 2), dtype=np.float32)
    features[5, 0] = np.nan
    with pytest.raises(BankError, match="first at row 5, column 0"):
        FeatureBank(**_tiny(features=features))


def test_unknown_split_and_level():
    bank = FeatureBank(**_tiny())
    with pytest.raises(BankError, match="unknown split 'test'; expected one of query, database, train"):
        bank.indices("test")
    with pytest.raises(BankError, match=r"parents\(\) needs 1 <= level < 2, got 2"):
        bank.parents(2)


# ------------------------------------------------------------------ unreadable files
def test_missing_file(tmp_path):
    with pytest.raises(BankError, match="no bank at"):
        FeatureBank.load(tmp_path / "absent.npz")


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_file_is_rejected(tmp_path, hier_bank, keep, mmap):
    path = hier_bank.save(tmp_path / "bank.npz")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BankError, match="truncated or corrupted"):
        FeatureBank.load(path, mmap=mmap)


def test_corrupted_member_is_rejected(tmp_path, hier_bank):
    path = hier_bank.save(tmp_path / "bank.npz", compress=True)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("labels.npy")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BankError, match="truncated or corrupted"):
        FeatureBank.load(path)


def _flip_feature_bytes(path: Path, rows: int = 9) -> None:
    """Overwrite the first values of the feature matrix with other finite values, in place."""
    offset = FeatureBank.load(path, mmap=True, verify=False).features.offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 4 * rows] = np.full(rows, 7.0, np.float32).tobytes()
    path.write_bytes(bytes(data))


def test_mmap_load_checks_the_feature_bytes(tmp_path, hier_bank):
    path = hier_bank.save(tmp_path / "bank.npz")
    _flip_feature_bytes(path)
    with pytest.raises(BankError, match="features.npy does not match the checksum"):
        FeatureBank.load(path, mmap=True)
    with pytest.raises(BankError, match="does not match the checksum"):
        resolve_bank(str(path), mmap=True)
    with pytest.raises(BankError, match="truncated or corrupted"):
        FeatureBank.load(path)  # read into memory: the zip reader's CRC check
    # the opt-out maps the changed bytes as they are
    assert FeatureBank.load(path, mmap=True, verify=False).features.shape == hier_bank.features.shape


def test_corrupted_compressed_bank_is_a_bank_error(tmp_path, hier_bank):
    path = hier_bank.save(tmp_path / "bank.npz", compress=True)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("features.npy")
    data = bytearray(path.read_bytes())
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    for mmap in (False, True):
        with pytest.raises(BankError, match="truncated or corrupted"):
            FeatureBank.load(path, mmap=mmap)


def test_pickled_features_are_refused_by_name_when_mapped(tmp_path, hier_bank):
    features = np.empty(hier_bank.features.shape[0], dtype=object)
    path = _save_altered(tmp_path / "obj.npz", hier_bank, features=features)
    with pytest.raises(BankError, match="features.npy holds pickled Python objects"):
        FeatureBank.load(path, mmap=True)


def test_random_bytes_are_rejected(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(BankError, match="truncated or corrupted"):
        FeatureBank.load(path)


def test_not_a_bank(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(BankError, match="the key 'features' is missing"):
        FeatureBank.load(path)
    np.savez(path, features=np.ones((2, 2)), labels=np.zeros((2, 1)))
    with pytest.raises(BankError, match="not a hashgym-bank/1 file"):
        FeatureBank.load(path)


def _save_altered(path: Path, bank: FeatureBank, **overrides: np.ndarray) -> Path:
    """Write ``bank``'s arrays with some replaced, bypassing validation (as a foreign tool might)."""
    np.savez(path, **{**bank.to_arrays(), **overrides})
    return path


def test_pickled_arrays_are_never_loaded(tmp_path, hier_bank):
    path = _save_altered(tmp_path / "p.npz", hier_bank, meta=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(BankError, match="holds pickled Python objects, which hashgym never loads"):
        FeatureBank.load(path)


def test_bad_meta_json(tmp_path, hier_bank):
    path = _save_altered(tmp_path / "m.npz", hier_bank, meta=np.array("{not json"))
    with pytest.raises(BankError, match="meta is not valid JSON"):
        FeatureBank.load(path)


def test_validation_error_names_the_file(tmp_path, hier_bank):
    features = np.array(hier_bank.features)
    features[3, 3] = np.nan
    path = _save_altered(tmp_path / "nan.npz", hier_bank, features=features)
    with pytest.raises(BankError, match=r"nan\.npz: features contain non-finite values"):
        FeatureBank.load(path)


# ------------------------------------------------------------------ atomic writes
def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, hier_bank, monkeypatch):
    path = hier_bank.save(tmp_path / "bank.npz")
    before = path.read_bytes()

    def crash(handle, **arrays):
        handle.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        hier_bank.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.npz"]


_KILLED_WRITER = """
import os, signal, sys
import numpy as np
from hashgym.synthetic import make_hierarchical_bank
bank = make_hierarchical_bank(n_per_class=50, dim=64)
real = np.savez
def half_then_die(handle, **arrays):
    real(handle, **arrays)
    handle.flush()
    handle.truncate(handle.tell() // 2)   # half of the archive is on disk ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... when the process is killed
np.savez = half_then_die
bank.save(sys.argv[1])
"""


def test_killed_write_never_leaves_a_loadable_partial_file(tmp_path):
    target = tmp_path / "bank.npz"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".bank.npz.")
    with pytest.raises(BankError, match="truncated or corrupted"):
        FeatureBank.load(leftovers[0])


def test_atomic_write_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    with atomic_write(target) as handle:
        handle.write(b"abc")
    assert target.read_bytes() == b"abc"
    assert os.listdir(target.parent) == ["file.bin"]


def test_shared_data_fixture_points_at_cifar(shared_data: Path):
    assert (shared_data / "cifar100" / "cifar100.npz").is_file()


def test_atomic_write_honours_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "shared.bin") as handle:
            handle.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.bin").stat().st_mode & 0o777 == 0o640


def test_next_write_removes_a_killed_writers_temp_file(tmp_path):
    target = tmp_path / "bank.npz"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], check=False)
    assert proc.returncode == -signal.SIGKILL
    (stale,) = tmp_path.iterdir()
    # a live writer's temp file (this process's id) is left alone
    live = tmp_path / f".bank.npz.{os.getpid()}.abc.tmp"
    live.write_bytes(b"in progress")
    other = tmp_path / ".other.npz.1.abc.tmp"
    other.write_bytes(b"another target's")
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert target.read_bytes() == b"new"


def test_fingerprint_covers_every_input_array_and_nothing_else(hier_bank):
    base = hier_bank.fingerprint()
    assert len(base) == 16 and hier_bank.replace(meta={"note": "x"}).fingerprint() == base
    assert hier_bank.replace(features=hier_bank.features.astype(np.float16)).fingerprint() != base
    labels = hier_bank.labels.copy()
    other = int(np.flatnonzero(labels[:, -1] != labels[0, -1])[0])
    labels[[0, other]] = labels[[other, 0]]  # two images of different classes swap labels
    assert hier_bank.replace(labels=labels).fingerprint() != base
    train = hier_bank.split == 0
    train[np.flatnonzero(train)[0]] = False
    assert hier_bank.replace(train=train).fingerprint() != base


def test_fingerprint_of_a_multi_label_bank(ml_bank):
    # its labels are [N, 0]: nothing to hash there, and no error (memoryview cannot cast them)
    base = ml_bank.fingerprint()
    assert len(base) == 16 and ml_bank.labels.shape == (ml_bank.n, 0)
    hot = ml_bank.multi_hot.copy()
    hot[0] = 1 - hot[0]
    assert ml_bank.replace(multi_hot=hot).fingerprint() != base
