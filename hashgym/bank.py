"""Feature banks: cached CNN features of a labelled image set, with a query/database split.

Every environment, agent, baseline and metric in hashgym reads a :class:`FeatureBank`, so all
methods are compared on the same inputs (``docs/methods.md``, "Feature banks").

File format (``hashgym-bank/1``)
--------------------------------
A bank is one ``.npz`` file, read with ``np.load(..., allow_pickle=False)``:

=====================  =======================  ===============================================
key                    dtype, shape             meaning
=====================  =======================  ===============================================
``format``             str ``()``               ``"hashgym-bank/1"``
``features``           float16/32 ``[N, D]``    one feature vector per image
``labels``             int ``[N, L]``           class per hierarchy level, level 0 the coarsest
                                                (``L`` may be 0 for a purely multi-label bank)
``level_names``        str ``[L]``              e.g. ``["coarse", "fine"]``
``class_names_<l>``    str ``[C_l]``            class names of level ``l``
``split``              int8 ``[N]``             0 = database, 1 = query
``train``              bool ``[N]`` (optional)  training subset, always inside the database;
                                                absent means "the whole database"
``multi_hot``          uint8 ``[N, C]`` (opt.)  multi-label concepts (NUS-WIDE style)
``concept_names``      str ``[C]`` (optional)   names of the multi-hot concepts
``image_index``        int64 ``[N]`` (opt.)     row of each image in the bank's image source
                                                (``meta["image_source"]``, :mod:`hashgym.images`)
``meta``               str ``()``               JSON: source, backbone, protocol, how it was made
=====================  =======================  ===============================================

The shared CIFAR-100 bank (keys ``features``, ``fine_labels``, ``coarse_labels``,
``fine_to_coarse``, ``fine_names``, ``coarse_names``, ``split``, ``meta``) loads as it is: it
becomes a two-level bank with level 0 = the 20 super-classes and level 1 = the 100 classes. Its
optional ``image_index`` (the development bank's) is kept: each row's image in ``cifar100.npz``.

Banks are saved uncompressed by default so that :meth:`FeatureBank.load` with ``mmap=True`` can
memory-map the feature matrix instead of reading it; saves are atomic (temporary file + rename).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hashgym.atomic import atomic_write
from hashgym.errors import DataError
from hashgym.identity import digest_of_arrays
from hashgym.npyfile import check_declared_sizes, npy_header
from hashgym.validation import format_bytes, json_depth

__all__ = ["FORMAT", "MAX_FEATURE_MAGNITUDE", "MAX_META_DEPTH", "BankError", "FeatureBank",
           "SplitName", "SplitView"]

FORMAT = "hashgym-bank/1"
SplitName = Literal["query", "database", "train"]
SPLITS: tuple[str, ...] = ("query", "database", "train")
DATABASE, QUERY = 0, 1
#: The largest feature magnitude a bank accepts. CNN and hand-made features stay far below it;
#: a value beyond it is a corrupted or unscaled row that silently wrecks every linear hasher.
MAX_FEATURE_MAGNITUDE = 1e6
_FINITE_CHECK_ROWS = 65536
#: The deepest nesting of lists and objects a bank's ``meta`` may have. Provenance written by
#: hashgym is a few levels deep; a bound keeps a crafted file from exhausting Python's recursion
#: limit (``RecursionError``) in the JSON reader and writer.
MAX_META_DEPTH = 100


#: This module's name for :class:`~hashgym.errors.DataError` (an alias).
BankError = DataError


@dataclass(frozen=True)
class SplitView:
    """The rows of a bank that belong to one split, in bank order.

    :param name: ``"query"``, ``"database"`` or ``"train"``.
    :param indices: row indices into the bank.
    """

    bank: FeatureBank
    name: str
    indices: np.ndarray

    @property
    def features(self) -> np.ndarray:
        """Features of the split's rows, ``[n, D]`` (a copy; the bank may be memory-mapped)."""
        return np.asarray(self.bank.features[self.indices])

    @property
    def labels(self) -> np.ndarray:
        """Labels of the split's rows, ``[n, L]``."""
        return self.bank.labels[self.indices]

    @property
    def multi_hot(self) -> np.ndarray | None:
        """Multi-hot labels of the split's rows, ``[n, C]``, or ``None``."""
        return None if self.bank.multi_hot is None else self.bank.multi_hot[self.indices]

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True, eq=False)
class FeatureBank:
    """Cached features with hierarchical (and/or multi-hot) labels and a query/database split.

    Construction validates everything and raises :class:`BankError` naming the first problem
    found: non-finite features or values beyond :data:`MAX_FEATURE_MAGNITUDE`, length
    mismatches, labels out of range, a class whose parent
    differs between images, an empty split, a training subset outside the database.

    :param features: ``[N, D]`` float16 or float32 (float64 is converted to float32).
    :param labels: ``[N, L]`` integer class per level, level 0 the coarsest.
    :param class_names: per level, a sequence of the names of its classes; a plain string in
        its place is refused (``class_names=("ab",)`` would read as the classes ``a`` and ``b``).
    :param split: ``[N]`` 0 = database, 1 = query.
    :param train: ``[N]`` bool training subset of the database, or ``None`` for all of it.
    :param multi_hot: ``[N, C]`` 0/1 concepts, or ``None``.
    :param concept_names: names of the ``C`` concepts.
    :param level_names: a name per level (default ``level0``, ``level1``, ...).
    :param meta: free-form provenance: a dict of JSON values (it is stored as JSON).
    :param image_index: ``[N]`` the row of each image in the image file that
        ``meta["image_source"]`` names (for image observations, :mod:`hashgym.images`), or
        ``None`` when the bank has no images. :meth:`take` keeps it aligned with the rows.
    """

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[tuple[str, ...], ...]
    split: np.ndarray
    train: np.ndarray | None = None
    multi_hot: np.ndarray | None = None
    concept_names: tuple[str, ...] = ()
    level_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    image_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        features = self.features
        if not isinstance(features, np.ndarray):
            features = np.asarray(features)
        if features.dtype == np.float64:
            if features.ndim == 2:  # before the cast, which would turn 1e300 into inf
                self._check_finite(features)
            features = features.astype(np.float32)
        set_(self, "features", features)
        labels = np.asarray(self.labels)
        if labels.ndim == 1:
            labels = labels[:, None]
        set_(self, "labels", labels)
        set_(self, "split", np.asarray(self.split))
        if self.train is not None:
            set_(self, "train", np.asarray(self.train))
        if self.multi_hot is not None:
            set_(self, "multi_hot", np.asarray(self.multi_hot))
        if self.image_index is not None:
            index = np.asarray(self.image_index)
            if (index.shape != (features.shape[0],) or not np.issubdtype(index.dtype, np.integer)
                    or (index.size and index.min() < 0)):
                raise BankError(
                    f"image_index must hold one non-negative integer row per image "
                    f"({features.shape[0]}), got {index.dtype} {index.shape}")
            set_(self, "image_index", index.astype(np.int64))
        for name in ("class_names", "concept_names", "level_names"):
            if isinstance(getattr(self, name), (str, bytes)):
                raise BankError(f"{name} must be a sequence of names, got the string "
                                f"{getattr(self, name)!r}")
        for level, names in enumerate(self.class_names):
            if isinstance(names, (str, bytes)):
                raise BankError(
                    f"class_names[{level}] must be the names of level {level}'s classes, got the "
                    f"string {names!r}; give one sequence per level, e.g. "
                    f"class_names=(({names!r},),) for a single class")
        set_(self, "class_names", tuple(tuple(str(n) for n in names) for names in self.class_names))
        set_(self, "concept_names", tuple(str(n) for n in self.concept_names))
        level_names = tuple(str(n) for n in self.level_names) or tuple(
            f"level{i}" for i in range(labels.shape[1] if labels.ndim == 2 else 0)
        )
        set_(self, "level_names", level_names)
        if not isinstance(self.meta, Mapping):
            raise BankError(f"meta must be a dict of JSON values, got {type(self.meta).__name__}")
        set_(self, "meta", dict(self.meta))
        if json_depth(self.meta) > MAX_META_DEPTH:
            raise _deep_meta()
        try:
            json.dumps(self.meta, sort_keys=True)  # as save() stores it
        except (TypeError, ValueError) as exc:
            raise BankError(f"meta must hold JSON values only (it is saved as JSON): {exc}") from exc
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        x, y, split = self.features, self.labels, self.split
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise BankError(f"features must be a non-empty [N, D] matrix, got shape {x.shape}")
        if x.dtype not in (np.float16, np.float32):
            raise BankError(f"features must be float16 or float32, got {x.dtype}")
        n = x.shape[0]
        self._check_finite()
        if y.ndim != 2:
            raise BankError(f"labels must be [N, L], got shape {y.shape}")
        if y.shape[0] != n:
            raise BankError(f"length mismatch: features have {n} rows but labels have {y.shape[0]}")
        if y.shape[1] and not np.issubdtype(y.dtype, np.integer):
            raise BankError(f"labels must be integers, got {y.dtype}")
        n_levels = y.shape[1]
        if len(self.class_names) != n_levels:
            raise BankError(
                f"labels have {n_levels} levels but class_names has {len(self.class_names)}"
            )
        if len(self.level_names) != n_levels:
            raise BankError(
                f"labels have {n_levels} levels but level_names has {len(self.level_names)}"
            )
        for level, names in enumerate(self.class_names):
            column = y[:, level]
            bad = np.flatnonzero((column < 0) | (column >= len(names)))
            if bad.size:
                row = int(bad[0])
                raise BankError(
                    f"labels out of range at level {level} ({self.level_names[level]!r}): "
                    f"value {int(column[row])} at row {row}, expected 0..{len(names) - 1} "
                    f"({bad.size} rows affected)"
                )
        for level in range(1, n_levels):
            self._parents(level)  # raises on an inconsistent hierarchy
        if self.multi_hot is not None:
            mh = self.multi_hot
            if mh.ndim != 2 or mh.shape[0] != n:
                raise BankError(
                    f"length mismatch: features have {n} rows but multi_hot has shape {mh.shape}"
                )
            if not np.isin(mh, (0, 1)).all():
                raise BankError("multi_hot labels must contain only 0 and 1")
            if self.concept_names and len(self.concept_names) != mh.shape[1]:
                raise BankError(
                    f"multi_hot has {mh.shape[1]} concepts but concept_names has "
                    f"{len(self.concept_names)}"
                )
        elif n_levels == 0:
            raise BankError("a bank needs labels at one level at least, or multi_hot labels")
        if split.shape != (n,):
            raise BankError(f"length mismatch: features have {n} rows but split has shape {split.shape}")
        if not np.isin(split, (DATABASE, QUERY)).all():
            raise BankError("split must contain only 0 (database) and 1 (query)")
        for name, value in (("query", QUERY), ("database", DATABASE)):
            if not np.any(split == value):
                raise BankError(f"empty split: the bank has no {name} images")
        if self.train is not None:
            train = self.train
            if train.shape != (n,) or train.dtype != np.bool_:
                raise BankError(f"train must be a bool mask of shape ({n},), got {train.dtype} {train.shape}")
            if not train.any():
                raise BankError("empty split: the training subset has no images")
            leaked = np.flatnonzero(train & (split == QUERY))
            if leaked.size:
                raise BankError(
                    f"the training subset must lie inside the database, but {leaked.size} query "
                    f"images are marked for training (first at row {int(leaked[0])})"
                )

    def _check_finite(self, x: np.ndarray | None = None) -> None:
        """Refuse features (``x``, default the bank's) holding NaN or inf, or a value beyond
        :data:`MAX_FEATURE_MAGNITUDE`, checked in blocks of rows."""
        x = self.features if x is None else x
        for start in range(0, x.shape[0], _FINITE_CHECK_ROWS):
            block = np.asarray(x[start : start + _FINITE_CHECK_ROWS])
            finite = np.isfinite(block)
            if not finite.all():
                rows, cols = np.nonzero(~finite)
                raise BankError(
                    f"features contain non-finite values (NaN or inf): first at row "
                    f"{start + int(rows[0])}, column {int(cols[0])}"
                )
            if float(np.finfo(block.dtype).max) <= MAX_FEATURE_MAGNITUDE:
                continue  # float16 cannot hold such a value
            huge = np.abs(block) > MAX_FEATURE_MAGNITUDE
            if huge.any():
                rows, cols = np.nonzero(huge)
                row, col = start + int(rows[0]), int(cols[0])
                raise BankError(
                    f"features[{row}, {col}] = {float(x[row, col]):.3g} is beyond "
                    f"±{MAX_FEATURE_MAGNITUDE:.0e}; one such value dominates every projection "
                    f"(LSH and ITQ then give all images one code): standardise the features "
                    f"or remove the row")

    def _parents(self, level: int) -> np.ndarray:
        child, parent = self.labels[:, level], self.labels[:, level - 1]
        n_child = len(self.class_names[level])
        table = np.full(n_child, -1, dtype=np.int64)
        table[child] = parent  # last write wins; compare against every row below
        mismatch = np.flatnonzero(table[child] != parent)
        if mismatch.size:
            row = int(mismatch[0])
            cls = int(child[row])
            other = int(np.flatnonzero(child == cls)[-1])
            raise BankError(
                f"inconsistent hierarchy: class {cls} ({self.class_names[level][cls]!r}) at level "
                f"{level} has parent {int(parent[row])} at row {row} but parent "
                f"{int(parent[other])} at row {other}"
            )
        return table

    # ------------------------------------------------------------------ accessors
    @property
    def n(self) -> int:
        """Number of images."""
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        """Feature dimension ``D``."""
        return int(self.features.shape[1])

    @property
    def n_levels(self) -> int:
        """Number of hierarchy levels ``L``."""
        return int(self.labels.shape[1])

    @property
    def n_classes(self) -> tuple[int, ...]:
        """Number of classes per level."""
        return tuple(len(names) for names in self.class_names)

    @property
    def train_mask(self) -> np.ndarray:
        """Bool mask of the training subset (the whole database when none was recorded)."""
        return self.train_mask_in(slice(None))

    def train_mask_in(self, rows: slice) -> np.ndarray:
        """:attr:`train_mask` over a slice of the bank's rows, reading only those rows (for
        block-by-block scans of a memory-mapped bank).

        :param rows: a ``slice`` of row positions.
        """
        return self.train[rows] if self.train is not None else self.split[rows] == DATABASE

    def parents(self, level: int) -> np.ndarray:
        """For ``level >= 1``, the level-``(level-1)`` parent of every level-``level`` class.

        Classes that no image carries map to -1.
        """
        if not 1 <= level < self.n_levels:
            raise BankError(f"parents() needs 1 <= level < {self.n_levels}, got {level}")
        return self._parents(level)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of ``"query"``, ``"database"`` or ``"train"``, in bank order."""
        if split == "query":
            mask = self.split == QUERY
        elif split == "database":
            mask = self.split == DATABASE
        elif split == "train":
            mask = self.train_mask
        else:
            raise BankError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return np.flatnonzero(mask)

    def view(self, split: str) -> SplitView:
        """The rows of one split; see :class:`SplitView`."""
        return SplitView(self, split, self.indices(split))

    def take(self, rows: np.ndarray, **changes: Any) -> FeatureBank:
        """A new bank with only ``rows`` (an index array or bool mask); ``changes`` replace fields.

        Class ids and names are kept, so labels stay comparable with the parent bank.
        """
        rows = np.asarray(rows)
        if rows.dtype == np.bool_:
            rows = np.flatnonzero(rows)
        fields: dict[str, Any] = {
            "features": np.asarray(self.features[rows]),
            "labels": self.labels[rows],
            "class_names": self.class_names,
            "split": self.split[rows],
            "train": None if self.train is None else self.train[rows],
            "multi_hot": None if self.multi_hot is None else self.multi_hot[rows],
            "concept_names": self.concept_names,
            "level_names": self.level_names,
            "meta": dict(self.meta),
            "image_index": None if self.image_index is None else self.image_index[rows],
        }
        fields.update(changes)
        return FeatureBank(**fields)

    def replace(self, **changes: Any) -> FeatureBank:
        """A new bank sharing this one's arrays, with some fields replaced (validated again)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(changes)
        return FeatureBank(**fields)

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 digits) of the features, labels, split, training mask and multi-hot
        labels, with their dtypes and shapes.

        Two banks with one fingerprint give every method the same inputs: a benchmark cell or a
        training checkpoint made on one is valid for the other. Names, meta and class names do
        not count.
        """
        arrays = [self.features, self.labels, self.split, self.train_mask]
        if self.multi_hot is not None:
            arrays.append(self.multi_hot)
        return digest_of_arrays(arrays, 16)

    def summary(self) -> dict[str, Any]:
        """Sizes and provenance, as printed by ``hashgym bank info``."""
        info: dict[str, Any] = {
            "images": self.n,
            "dim": self.dim,
            "dtype": str(self.features.dtype),
            "query": int(np.sum(self.split == QUERY)),
            "database": int(np.sum(self.split == DATABASE)),
            "train": int(self.train_mask.sum()),
            "levels": [
                {"level": i, "name": self.level_names[i], "classes": len(self.class_names[i])}
                for i in range(self.n_levels)
            ],
        }
        if self.multi_hot is not None:
            info["concepts"] = int(self.multi_hot.shape[1])
        info["meta"] = self.meta
        return info

    # ------------------------------------------------------------------ I/O
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The ``hashgym-bank/1`` arrays of this bank (see the module docstring)."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT),
            "features": np.asarray(self.features),
            "labels": self.labels,
            "level_names": np.array(self.level_names, dtype=str),
            "split": self.split.astype(np.int8),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
        }
        for level, names in enumerate(self.class_names):
            arrays[f"class_names_{level}"] = np.array(names, dtype=str)
        if self.train is not None:
            arrays["train"] = self.train
        if self.multi_hot is not None:
            arrays["multi_hot"] = self.multi_hot.astype(np.uint8)
            arrays["concept_names"] = np.array(self.concept_names, dtype=str)
        if self.image_index is not None:
            arrays["image_index"] = self.image_index
        return arrays

    def save(self, path: str | os.PathLike[str], compress: bool = False) -> Path:
        """Write the bank atomically (temporary file + rename).

        :param path: destination ``.npz``.
        :param compress: deflate the arrays (smaller, but then features cannot be memory-mapped).
        :return: the path written.
        """
        path = Path(path)
        writer = np.savez_compressed if compress else np.savez
        with atomic_write(path) as handle:
            writer(handle, **self.to_arrays())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = False,
             verify: bool = True) -> FeatureBank:
        """Read a bank written by :meth:`save`, or the shared CIFAR-100 bank as it is.

        :param path: the ``.npz`` file.
        :param mmap: memory-map the feature matrix (only for uncompressed files; compressed ones
            are read into memory).
        :param verify: with ``mmap``, check the mapped bytes against the CRC-32 the archive
            records for them, reading the mapped bytes once in 16 MiB chunks (a small part of
            loading the CIFAR-100 bank, whose labels and names are read anyway); arrays read
            into memory are always checked by the zip reader. ``False`` skips it, for a trusted
            file on a hot path.
        :raises BankError: when the file is missing, unreadable (permission denied),
            truncated, corrupted or inconsistent, or a member declares more bytes than it holds
            (checked before anything is allocated).

        A memory-mapped bank reads its features from the file whenever they are used: if the
        file is changed or replaced on disk after loading, later reads can see other values,
        NaN included, or fail. This is inherent to memory-mapping; load without ``mmap`` (or
        save the bank to a new path) when the file may change under a running program.
        """
        path = Path(path)
        if path.is_dir():
            raise BankError(f"{path} is a folder, not a bank file: give the bank's .npz")
        if not path.is_file():
            raise BankError(f"no bank at {path}")
        if not os.access(path, os.R_OK):
            raise BankError(f"cannot read bank {path}: permission denied (the file's mode is "
                            f"{path.stat().st_mode & 0o777:03o})")
        if not zipfile.is_zipfile(path):
            raise BankError(
                f"cannot read bank {path}: the file is truncated or corrupted (not a complete "
                f".npz archive)"
            )
        try:
            check_declared_sizes(path, BankError, "bank")
            with np.load(path, allow_pickle=False) as archive:
                keys = set(archive.files)
                arrays = {k: archive[k] for k in keys if not (mmap and k == "features")}
            if mmap and "features" in keys:
                arrays["features"] = _memmap_member(path, "features.npy", verify)
        except BankError:
            raise  # _memmap_member's own messages (a ValueError subclass)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise BankError(
                    f"cannot read bank {path}: it holds pickled Python objects, which hashgym "
                    f"never loads (allow_pickle=False)"
                ) from exc
            raise BankError(
                f"cannot read bank {path}: the file is truncated or corrupted ({exc})"
            ) from exc
        except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
            raise BankError(
                f"cannot read bank {path}: the file is truncated or corrupted ({exc})"
            ) from exc
        try:
            return cls.from_arrays(arrays, source=str(path))
        except BankError as exc:
            raise BankError(f"{path}: {exc}") from exc

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "") -> FeatureBank:
        """Build a bank from the arrays of a ``hashgym-bank/1`` file or of the shared CIFAR bank."""
        if "features" not in arrays:
            raise BankError("not a feature bank: the key 'features' is missing")
        meta = _parse_meta(arrays.get("meta"))
        if "fine_labels" in arrays and "coarse_labels" in arrays and "labels" not in arrays:
            return _from_cifar_arrays(arrays, meta, source)
        fmt = str(arrays["format"]) if "format" in arrays else None
        if fmt != FORMAT:
            raise BankError(f"not a {FORMAT} file (format key is {fmt!r})")
        missing = [k for k in ("labels", "split", "level_names") if k not in arrays]
        if missing:
            raise BankError(f"not a feature bank: missing key(s) {', '.join(missing)}")
        labels = arrays["labels"]
        n_levels = labels.shape[1] if labels.ndim == 2 else 1
        class_names = []
        for level in range(n_levels):
            key = f"class_names_{level}"
            if key not in arrays:
                raise BankError(f"not a feature bank: missing key {key!r}")
            class_names.append(tuple(arrays[key].tolist()))
        return cls(
            features=arrays["features"],
            labels=labels,
            class_names=tuple(class_names),
            split=arrays["split"],
            train=arrays.get("train"),
            multi_hot=arrays.get("multi_hot"),
            concept_names=tuple(arrays["concept_names"].tolist()) if "concept_names" in arrays else (),
            level_names=tuple(arrays["level_names"].tolist()),
            meta=meta,
            image_index=arrays.get("image_index"),
        )


def _parse_meta(raw: np.ndarray | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise BankError(f"meta is not valid JSON ({exc})") from exc
    except RecursionError:
        raise _deep_meta() from None
    if not isinstance(meta, dict):
        raise BankError("meta must be a JSON object")
    return meta


def _deep_meta() -> BankError:
    return BankError(f"meta is nested more than {MAX_META_DEPTH} levels deep (lists or objects "
                     f"inside each other); a bank's provenance is a few levels deep")


def _from_cifar_arrays(arrays: Mapping[str, np.ndarray], meta: dict[str, Any], source: str) -> FeatureBank:
    """The shared CIFAR-100 bank's layout: two levels, coarse (20) then fine (100)."""
    for key in ("fine_names", "coarse_names", "split"):
        if key not in arrays:
            raise BankError(f"CIFAR-style bank is missing key {key!r}")
    fine, coarse = arrays["fine_labels"], arrays["coarse_labels"]
    if fine.shape != coarse.shape:
        raise BankError(
            f"length mismatch: fine_labels have {fine.shape[0]} rows but coarse_labels have "
            f"{coarse.shape[0]}"
        )
    labels = np.stack([coarse, fine], axis=1).astype(np.int16)
    if "fine_to_coarse" in arrays:
        f2c = arrays["fine_to_coarse"]
        ok = (fine >= 0) & (fine < len(f2c))
        bad = np.flatnonzero(ok & (f2c[np.clip(fine, 0, len(f2c) - 1)] != coarse))
        if bad.size:
            row = int(bad[0])
            raise BankError(
                f"inconsistent hierarchy: row {row} has fine label {int(fine[row])} and coarse "
                f"label {int(coarse[row])}, but fine_to_coarse maps it to {int(f2c[fine[row]])}"
            )
    meta = {"source": source, **meta} if source else meta
    return FeatureBank(
        features=arrays["features"],
        labels=labels,
        class_names=(tuple(arrays["coarse_names"].tolist()), tuple(arrays["fine_names"].tolist())),
        split=arrays["split"],
        level_names=("coarse", "fine"),
        meta=meta,
        image_index=arrays.get("image_index"),
    )


def _stored_crc(path: Path, start: int, size: int) -> int:
    """CRC-32 of ``size`` bytes of ``path`` from ``start``, read in 16 MiB chunks."""
    crc = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = size
        while left > 0:
            chunk = fh.read(min(left, 1 << 24))
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
    return crc


def _memmap_member(path: Path, member: str, verify: bool = True) -> np.ndarray:
    """Memory-map one uncompressed ``.npy`` member of an ``.npz`` file (read-only), after
    checking its bytes against the archive's CRC-32 when ``verify``."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            with zf.open(info) as fh:
                return np.lib.format.read_array(fh, allow_pickle=False)
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                raise BankError(f"cannot read bank {path}: bad zip header for {member}")
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            start = info.header_offset + 30 + name_len + extra_len
            fh.seek(start)
            shape, fortran, dtype = npy_header(fh)
            offset = fh.tell()
    if dtype.hasobject:
        raise BankError(f"cannot read bank {path}: {member} holds pickled Python objects, which "
                        f"hashgym never loads (allow_pickle=False)")
    expected = offset + math.prod(shape) * dtype.itemsize
    if expected > path.stat().st_size:
        raise BankError(f"cannot read bank {path}: the file is truncated")
    if expected > start + info.compress_size:  # the map would run into the next member
        raise BankError(
            f"cannot read bank {path}: {member} declares a {dtype} array of shape {shape} "
            f"({format_bytes(expected - offset)}) but holds "
            f"{format_bytes(max(0, start + info.compress_size - offset))}: the file is "
            f"truncated, corrupted or crafted")
    if verify and _stored_crc(path, start, info.compress_size) != info.CRC:
        raise BankError(f"cannot read bank {path}: {member} does not match the checksum the "
                        f"archive records for it (the file was changed or damaged after it was "
                        f"written)")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")

