"""Labelled image sets that feature extraction turns into feature banks.

An :class:`ImageSet` holds the images of one source (in memory as ``uint8`` NHWC arrays, or as
file paths read lazily with PIL), their labels and, when the source defines one, its
query/database split. :mod:`hashgym.features` reads an image set and writes a
:class:`~hashgym.bank.FeatureBank` (``docs/methods.md``, "Feature banks").

Sources
-------
* :func:`load_cifar100_npz`: the shared ``cifar100.npz`` (60,000 images, coarse + fine labels,
  no split: a seeded split is drawn at extraction time, or taken from an existing bank).
* :func:`load_torchvision_cifar`: torchvision's standard ``CIFAR10`` / ``CIFAR100`` files under a
  root folder (``download=True`` fetches them). The official train set becomes the database, the
  official test set the queries.
* :func:`load_nuswide_list`: NUS-WIDE in the common list format, one image per line
  (``relative/path.jpg 0 1 0 ...`` with 21 or 81 concepts), images read from ``image_root``.
* :func:`hashgym.folders.load_image_folder`: a folder of image files, one sub-folder per class
  (or per super-class, then class), as torchvision's ``ImageFolder`` reads.

Seeded, stratified helpers choose subsets: :func:`stratified_sample` (limit a set to ``n``
images, keeping class proportions) and :func:`stratified_split` (draw the query images).

Safety
------
torchvision's CIFAR files are Python pickles. hashgym never unpickles a file it cannot vouch
for: it first checks each file's MD5 against the official checksums that torchvision ships,
and raises :class:`DatasetError` otherwise. Files you made yourself can be read with
``verify=False``; even then unpickling goes through a restricted unpickler that can only
rebuild numpy arrays, lists, dicts, strings and numbers (nothing that runs code).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hashgym.bank import DATABASE, QUERY
from hashgym.errors import DataError
from hashgym.identity import Digest
from hashgym.npyfile import check_declared_sizes

__all__ = [
    "DatasetError",
    "ImageSet",
    "load_cifar100_npz",
    "load_nuswide_list",
    "load_torchvision_cifar",
    "read_image_files",
    "stratified_sample",
    "stratified_split",
]

logger = logging.getLogger(__name__)

NUSWIDE_CONCEPT_COUNTS = (21, 81)


#: This module's name for :class:`~hashgym.errors.DataError` (an alias).
DatasetError = DataError


@dataclass(frozen=True, eq=False)
class ImageSet:
    """A labelled image set: in-memory ``uint8`` images or image files, with optional split.

    Exactly one of ``images`` and ``paths`` is given.

    :param labels: ``[N, L]`` class per hierarchy level, level 0 the coarsest (``L`` may be 0
        when ``multi_hot`` is given).
    :param class_names: per level, the names of its classes.
    :param level_names: a name per level, e.g. ``("coarse", "fine")``.
    :param images: ``uint8 [N, H, W, 3]`` RGB images, or ``None`` for a file-based set.
    :param paths: image paths relative to ``root``, or ``None`` for an in-memory set.
    :param root: folder that ``paths`` are relative to.
    :param multi_hot: ``[N, C]`` 0/1 concepts, or ``None``.
    :param concept_names: names of the ``C`` concepts.
    :param split: ``int8 [N]`` 0 = database, 1 = query, or ``None`` when the source has none.
    :param source: a short description of where the images came from (recorded in bank meta).
    """

    labels: np.ndarray
    class_names: tuple[tuple[str, ...], ...]
    level_names: tuple[str, ...]
    images: np.ndarray | None = None
    paths: tuple[str, ...] | None = None
    root: Path | None = None
    multi_hot: np.ndarray | None = None
    concept_names: tuple[str, ...] = ()
    split: np.ndarray | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.ndim == 1:
            labels = labels[:, None]
        object.__setattr__(self, "labels", labels)
        if (self.images is None) == (self.paths is None):
            raise DatasetError("an ImageSet needs exactly one of images= and paths=")
        n = len(self.images) if self.images is not None else len(self.paths or ())
        if n == 0:
            raise DatasetError("an ImageSet needs at least one image")
        if self.images is not None:
            images = self.images
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
                raise DatasetError(
                    f"images must be uint8 [N, H, W, 3] (RGB), got {images.dtype} {images.shape}"
                )
        elif self.root is None:
            raise DatasetError("a file-based ImageSet needs root=")
        if labels.ndim != 2 or labels.shape[0] != n:
            raise DatasetError(f"length mismatch: {n} images but labels have shape {labels.shape}")
        if len(self.class_names) != labels.shape[1] or len(self.level_names) != labels.shape[1]:
            raise DatasetError(
                f"labels have {labels.shape[1]} levels but class_names has "
                f"{len(self.class_names)} and level_names {len(self.level_names)}"
            )
        for level, names in enumerate(self.class_names):
            column = labels[:, level]
            if column.size and (column.min() < 0 or column.max() >= len(names)):
                raise DatasetError(
                    f"labels out of range at level {level}: expected 0..{len(names) - 1}, got "
                    f"{int(column.min())}..{int(column.max())}"
                )
        if self.multi_hot is not None and self.multi_hot.shape[0] != n:
            raise DatasetError(
                f"length mismatch: {n} images but multi_hot has shape {self.multi_hot.shape}"
            )
        if labels.shape[1] == 0 and self.multi_hot is None:
            raise DatasetError("an ImageSet needs labels at one level at least, or multi_hot")
        if self.split is not None:
            split = np.asarray(self.split, dtype=np.int8)
            if split.shape != (n,) or not np.isin(split, (DATABASE, QUERY)).all():
                raise DatasetError(f"split must be 0/1 of shape ({n},)")
            object.__setattr__(self, "split", split)

    # ------------------------------------------------------------------ accessors
    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def in_memory(self) -> bool:
        """Whether the images are held in memory (rather than read from files)."""
        return self.images is not None

    def strata(self) -> np.ndarray:
        """One class id per image for stratified sampling.

        The finest level's class for hierarchical labels. For multi-hot labels, the image's
        rarest concept (ties to the lower index; -1 for an image without concepts), so rare
        concepts keep their share in a stratified subset.
        """
        if self.labels.shape[1]:
            return self.labels[:, -1].astype(np.int64)
        mh = np.asarray(self.multi_hot, dtype=bool)
        freq = mh.sum(axis=0)
        # rank concepts by frequency, then pick per image the present concept of lowest rank
        cost = np.where(mh, freq[None, :], np.iinfo(np.int64).max)
        rarest = np.argmin(cost, axis=1).astype(np.int64)
        rarest[~mh.any(axis=1)] = -1
        return rarest

    def take(self, rows: np.ndarray) -> ImageSet:
        """A new image set with only ``rows`` (index array), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return ImageSet(
            labels=self.labels[rows],
            class_names=self.class_names,
            level_names=self.level_names,
            images=None if self.images is None else self.images[rows],
            paths=None if self.paths is None else tuple(self.paths[i] for i in rows),
            root=self.root,
            multi_hot=None if self.multi_hot is None else self.multi_hot[rows],
            concept_names=self.concept_names,
            split=None if self.split is None else self.split[rows],
            source=self.source,
            meta=dict(self.meta),
        )

    def content_hash(self) -> str:
        """SHA-256 over the images and labels, used as the image part of a feature cache key.

        In-memory images are hashed byte for byte. For file-based sets, each file contributes
        its relative path, size and modification time (reading every NUS-WIDE image would
        take longer than the extraction is worth caching for).
        """
        digest = Digest()
        if self.images is not None:
            digest.text(repr(self.images.shape)).raw(self.images)
        else:
            assert self.paths is not None and self.root is not None
            for rel in self.paths:
                try:
                    st = (self.root / rel).stat()
                except OSError as exc:
                    raise DatasetError(f"image file missing: {self.root / rel}") from exc
                digest.text(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n")
        digest.raw(self.labels.astype(np.int64)).text(repr(self.class_names))
        if self.multi_hot is not None:
            digest.raw(self.multi_hot.astype(np.uint8))
        if self.split is not None:
            digest.raw(self.split)
        return digest.hexdigest()

    def read(self, rows: np.ndarray, size: int | None = None, workers: int = 4) -> np.ndarray:
        """The images of ``rows`` as ``uint8 [n, H, W, 3]``.

        :param rows: indices into this set.
        :param size: output side length. In-memory images keep their size when ``None`` (resizing
            happens on the tensor in :mod:`hashgym.features`). Files are read with PIL, their
            shorter side resized to ``round(size * 8 / 7)`` and centre-cropped to ``size``
            (torchvision's 256 → 224 recipe); ``None`` means 224 for files.
        :param workers: threads decoding image files.
        :raises DatasetError: when an image file is missing or cannot be decoded.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.images is not None:
            return self.images[rows]
        assert self.paths is not None and self.root is not None
        return read_image_files([self.root / self.paths[i] for i in rows],
                                224 if size is None else int(size), workers)


def read_image_files(files: Sequence[str | os.PathLike[str]], side: int,
                     workers: int = 4) -> np.ndarray:
    """Decode image files to ``uint8 [n, side, side, 3]`` RGB, as feature extraction reads them.

    Each file is read with PIL, converted to RGB, its shorter side resized (bilinear) to
    ``round(side * 8 / 7)`` and the centre ``side x side`` cropped: torchvision's 256 -> 224
    recipe, whatever the file's own size and aspect.

    :param files: the image files.
    :param side: output side length in pixels.
    :param workers: threads decoding files.
    :raises DatasetError: when a file is missing or cannot be decoded.
    """
    paths = [Path(f) for f in files]
    if workers > 1 and len(paths) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            decoded = list(pool.map(lambda p: _read_image_file(p, side), paths))
    else:
        decoded = [_read_image_file(p, side) for p in paths]
    return np.stack(decoded) if decoded else np.zeros((0, side, side, 3), np.uint8)


def _read_image_file(path: Path, side: int) -> np.ndarray:
    """Decode one image file to ``uint8 [side, side, 3]`` (resize shorter side, centre crop)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = round(side * 8 / 7) / min(w, h)
            nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
            img = img.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - side) // 2, (nh - side) // 2
            img = img.crop((left, top, left + side, top + side))
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DatasetError(f"image file missing: {path}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot decode image file {path}: {exc}") from exc


# ---------------------------------------------------------------------- sampling helpers
def _allocate(sizes: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` over strata in proportion to ``sizes`` (largest remainder, seeded ties)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    exact = sizes * (total / sizes.sum())
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        remainder = exact - counts
        # order by remainder, ties broken by a seeded random key
        order = np.lexsort((rng.random(len(sizes)), -remainder))
        order = order[counts[order] < sizes[order]]
        counts[order[:short]] += 1
    return np.minimum(counts, sizes)


def stratified_sample(
    strata: np.ndarray, n: int, seed: int = 0, split: np.ndarray | None = None
) -> np.ndarray:
    """Choose ``n`` rows keeping each stratum's share (seeded); returns sorted row indices.

    Each stratum (e.g. class) gets ``n * size / N`` rows, rounded by largest remainder with
    seeded tie-breaking, drawn uniformly at random inside the stratum.

    With a ``split``, the query and database parts are first given their share of ``n`` (at
    least one row each), then each part is sampled by stratum, so even a small sample of a
    split set keeps both parts.

    :param strata: ``[N]`` integer stratum of every row (see :meth:`ImageSet.strata`).
    :param n: rows to keep, ``1 <= n <= N`` (``2 <= n`` with a split).
    :param seed: seed of the draw.
    :param split: optional ``[N]`` 0/1 split to preserve.
    :raises DatasetError: when ``n`` is out of range.
    """
    strata = np.asarray(strata)
    total = len(strata)
    if not 1 <= n <= total:
        raise DatasetError(f"limit must be between 1 and the number of images ({total}), got {n}")
    if split is not None:
        split = np.asarray(split)
        parts = [np.flatnonzero(split == QUERY), np.flatnonzero(split == DATABASE)]
        if n < 2 or not all(len(p) for p in parts):
            raise DatasetError(
                f"a sample that keeps both query and database images needs a limit of at least "
                f"2 and both parts non-empty; got limit {n}"
            )
        n_query = min(n - 1, len(parts[0]), max(1, round(n * len(parts[0]) / total)))
        n_query = max(n_query, n - len(parts[1]))
        chosen = [
            part[stratified_sample(strata[part], k, seed)]
            for part, k in zip(parts, (n_query, n - n_query), strict=True)
        ]
        return np.sort(np.concatenate(chosen))
    rng = np.random.default_rng([seed, 1])
    keys, inverse = np.unique(strata, return_inverse=True)
    counts = _allocate(np.bincount(inverse, minlength=len(keys)), n, rng)
    chosen = [rng.permutation(np.flatnonzero(inverse == k))[:c] for k, c in enumerate(counts) if c]
    return np.sort(np.concatenate(chosen))


def stratified_split(
    strata: np.ndarray, query_fraction: float = 1 / 6, seed: int = 0
) -> np.ndarray:
    """A seeded query/database split that keeps each stratum's share of queries.

    With the default fraction, a full CIFAR-100 set (600 images per class) gets exactly 100
    queries per fine class, the shared bank's proportions; smaller sets get proportionally
    fewer. At least one query and one database image are always drawn.

    :param strata: ``[N]`` integer stratum (class) of every row, ``N >= 2``.
    :param query_fraction: fraction of rows marked as queries, in ``(0, 1)``.
    :param seed: seed of the draw.
    :return: ``int8 [N]``, 0 = database, 1 = query.
    :raises DatasetError: on a fraction outside ``(0, 1)`` or fewer than two rows.
    """
    strata = np.asarray(strata)
    n = len(strata)
    if not 0 < query_fraction < 1:
        raise DatasetError(
            f"query_fraction must lie strictly between 0 and 1, got {query_fraction}"
        )
    if n < 2:
        raise DatasetError(f"a query/database split needs at least 2 images, got {n}")
    n_query = min(n - 1, max(1, round(n * query_fraction)))
    rng = np.random.default_rng([seed, 2])
    keys, inverse = np.unique(strata, return_inverse=True)
    counts = _allocate(np.bincount(inverse, minlength=len(keys)), n_query, rng)
    split = np.full(n, DATABASE, dtype=np.int8)
    for k, c in enumerate(counts):
        if c:
            split[rng.permutation(np.flatnonzero(inverse == k))[:c]] = QUERY
    return split


# ---------------------------------------------------------------------- CIFAR-100 (shared npz)
def load_cifar100_npz(path: str | os.PathLike[str]) -> ImageSet:
    """The shared ``cifar100.npz``: 60,000 images, level 0 = 20 super-classes, level 1 = 100.

    The file carries no split (its README explains why): extraction draws a seeded one, or
    takes the split of an existing bank such as ``cifar100_resnet18_features.npz``.

    :param path: the ``.npz`` file (keys ``images``, ``fine_labels``, ``coarse_labels``,
        ``fine_names``, ``coarse_names``).
    :raises DatasetError: when the file is missing, unreadable or lacks a key.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no CIFAR-100 images at {path}")
    keys = ("images", "fine_labels", "coarse_labels", "fine_names", "coarse_names")
    try:
        check_declared_sizes(path, DatasetError, "CIFAR-100 image file")
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DatasetError(f"{path} is not a CIFAR-100 image file: missing {missing}")
            arrays = {k: archive[k] for k in keys}
    except DatasetError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, OSError, ValueError, EOFError
        raise DatasetError(
            f"cannot read {path}: the file is truncated or corrupted ({exc})"
        ) from exc
    labels = np.stack([arrays["coarse_labels"], arrays["fine_labels"]], axis=1).astype(np.int16)
    return ImageSet(
        labels=labels,
        class_names=(tuple(arrays["coarse_names"].tolist()), tuple(arrays["fine_names"].tolist())),
        level_names=("coarse", "fine"),
        images=arrays["images"],
        source=f"cifar100-npz:{path}",
        # banks made from it can name the file for image observations (hashgym.images)
        meta={"image_source": {"kind": "npz", "path": str(path.resolve()), "key": "images"}},
    )


# ---------------------------------------------------------------------- torchvision CIFAR
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise DatasetError(
            f"refusing to unpickle {module}.{name}: CIFAR batch files hold only arrays and lists"
        )


def _unpickle_batch(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = _ArrayUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from exc
    except Exception as exc:
        raise DatasetError(f"cannot read CIFAR batch file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path} is not a CIFAR batch file (expected a dict)")
    return data


def _batch_field(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise DatasetError(f"CIFAR batch file {path} lacks the key {key!r}")
    return batch[key]


def load_torchvision_cifar(
    root: str | os.PathLike[str],
    name: Literal["cifar100", "cifar10"] = "cifar100",
    download: bool = False,
    verify: bool = True,
) -> ImageSet:
    """CIFAR-10 or CIFAR-100 from torchvision's standard files under ``root``.

    ``root`` holds ``cifar-100-python/{train,test,meta}`` or
    ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``, as torchvision's
    ``CIFAR100`` / ``CIFAR10`` expect. The official train set (50,000) becomes the database and
    the official test set (10,000) the queries. CIFAR-100 gets two levels (level 0 = the 20
    super-classes from ``coarse_labels``, level 1 = the 100 classes), CIFAR-10 one.

    :param root: folder containing the standard sub-folder.
    :param name: ``"cifar100"`` or ``"cifar10"``.
    :param download: fetch and extract the official archive first when the files are not there
        (needs internet; torchvision checks the archive's MD5).
    :param verify: check every file's MD5 against the official checksums shipped with
        torchvision before unpickling it. Set ``False`` only for files you made yourself (e.g.
        a small set in the same layout); they are still read with an unpickler restricted to
        numpy arrays and plain containers.
    :raises DatasetError: when a file is missing, fails its checksum, or is malformed.
    """
    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import check_integrity, download_and_extract_archive

    classes = {"cifar100": CIFAR100, "cifar10": CIFAR10}
    if name not in classes:
        raise DatasetError(f"unknown CIFAR name {name!r}; expected 'cifar100' or 'cifar10'")
    spec = classes[name]
    root = Path(root)
    folder = root / spec.base_folder
    files = [*spec.train_list, *spec.test_list, [spec.meta["filename"], spec.meta["md5"]]]

    def intact() -> bool:
        return all(check_integrity(str(folder / f), md5) for f, md5 in files)

    if download and not intact():
        logger.info("downloading %s into %s", spec.url, root)
        download_and_extract_archive(spec.url, str(root), filename=spec.filename, md5=spec.tgz_md5)
    for fname, md5 in files:
        fpath = folder / fname
        if not fpath.is_file():
            raise DatasetError(
                f"{name} file missing: {fpath} (pass download=True, or point root at the folder "
                f"containing {spec.base_folder}/)"
            )
        if verify and not check_integrity(str(fpath), md5):
            raise DatasetError(
                f"{fpath} does not match the official {name} MD5 checksum; refusing to unpickle "
                f"it (re-download it, or pass verify=False only if you made this file yourself)"
            )
    if not verify:
        logger.warning("reading %s files under %s without checksum verification", name, folder)

    label_key = "fine_labels" if name == "cifar100" else "labels"
    images, fine, coarse, split = [], [], [], []
    for part, listing in ((DATABASE, spec.train_list), (QUERY, spec.test_list)):
        for fname, _ in listing:
            fpath = folder / fname
            batch = _unpickle_batch(fpath)
            data = np.asarray(_batch_field(batch, "data", fpath))
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise DatasetError(
                    f"{fpath}: 'data' must be uint8 [n, 3072], got {data.dtype} {data.shape}"
                )
            y = np.asarray(_batch_field(batch, label_key, fpath), dtype=np.int64)
            if y.shape != (len(data),):
                raise DatasetError(f"{fpath}: {len(data)} images but {y.size} labels")
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            fine.append(y)
            if name == "cifar100":
                coarse.append(np.asarray(_batch_field(batch, "coarse_labels", fpath), np.int64))
            split.append(np.full(len(data), part, dtype=np.int8))
    meta_path = folder / spec.meta["filename"]
    meta = _unpickle_batch(meta_path)
    if name == "cifar100":
        names = (
            tuple(_batch_field(meta, "coarse_label_names", meta_path)),
            tuple(_batch_field(meta, "fine_label_names", meta_path)),
        )
        labels = np.stack([np.concatenate(coarse), np.concatenate(fine)], axis=1)
        level_names: tuple[str, ...] = ("coarse", "fine")
    else:
        names = (tuple(_batch_field(meta, "label_names", meta_path)),)
        labels = np.concatenate(fine)[:, None]
        level_names = ("class",)
    return ImageSet(
        labels=labels.astype(np.int16),
        class_names=names,
        level_names=level_names,
        images=np.ascontiguousarray(np.concatenate(images)),
        split=np.concatenate(split),
        source=f"torchvision-{name}:{root}",
        # banks made from it can name these files for image observations (hashgym.images)
        meta={"verified": bool(verify),
              "image_source": {"kind": "torchvision-cifar", "root": str(root.resolve()),
                               "name": name, "verify": bool(verify)}},
    )


# ---------------------------------------------------------------------- NUS-WIDE
def _parse_list(path: Path, n_concepts: int | None) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"no NUS-WIDE list file at {path}")
    rel_paths: list[str] = []
    rows: list[list[int]] = []
    width = n_concepts
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            rel, values = parts[0], parts[1:]
            if width is None:
                width = len(values)
                if width not in NUSWIDE_CONCEPT_COUNTS:
                    raise DatasetError(
                        f"{path}:{lineno}: {width} concept values; NUS-WIDE lists have "
                        f"{' or '.join(map(str, NUSWIDE_CONCEPT_COUNTS))}"
                    )
            elif len(values) != width:
                raise DatasetError(
                    f"{path}:{lineno}: ragged line, {len(values)} concept values where "
                    f"{width} were expected"
                )
            if any(v not in ("0", "1") for v in values):
                bad = next(v for v in values if v not in ("0", "1"))
                raise DatasetError(f"{path}:{lineno}: concept values must be 0 or 1, got {bad!r}")
            rel_paths.append(rel)
            rows.append([int(v) for v in values])
    if not rows:
        raise DatasetError(f"{path} lists no images")
    return rel_paths, np.asarray(rows, dtype=np.uint8)


def _concept_names(
    names: Sequence[str] | str | os.PathLike[str] | None, count: int
) -> tuple[str, ...]:
    if names is None:
        return tuple(f"concept{i:02d}" for i in range(count))
    if isinstance(names, (str, os.PathLike)):
        file = Path(names)
        if not file.is_file():
            raise DatasetError(f"no concept-name file at {file}")
        names = [ln.strip() for ln in file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    names = tuple(str(n) for n in names)
    if len(names) != count:
        raise DatasetError(
            f"the list has {count} concepts but {len(names)} concept names were given"
        )
    return names


def load_nuswide_list(
    list_file: str | os.PathLike[str],
    image_root: str | os.PathLike[str],
    query_list: str | os.PathLike[str] | None = None,
    concept_names: Sequence[str] | str | os.PathLike[str] | None = None,
    check_files: bool = True,
) -> ImageSet:
    """NUS-WIDE from the common list format, images read lazily from ``image_root``.

    Each non-empty line is ``relative/path.jpg v_1 ... v_C`` with every ``v`` 0 or 1 and
    ``C`` = 21 (the usual 21 most frequent concepts) or 81 (all concepts), the same ``C`` on
    every line. Labels become multi-hot; there are no hierarchy levels.

    :param list_file: the list of database images (or of all images when ``query_list`` is
        ``None``; a seeded split is then drawn at extraction time).
    :param image_root: folder the relative paths start from.
    :param query_list: optional second list, in the same format, of the query images.
    :param concept_names: the ``C`` concept names, or a file with one per line; default
        ``concept00``, ``concept01``, ...
    :param check_files: check now that every image file exists (otherwise a missing file is
        reported when extraction reads it).
    :raises DatasetError: on a ragged line, a value other than 0/1, a concept count other than
        21 or 81 (or differing between the lists), or a missing image file.
    """
    list_file, image_root = Path(list_file), Path(image_root)
    if not image_root.is_dir():
        raise DatasetError(f"image_root {image_root} is not a folder")
    paths, multi_hot = _parse_list(list_file, None)
    split = None
    if query_list is not None:
        q_paths, q_hot = _parse_list(Path(query_list), None)
        if q_hot.shape[1] != multi_hot.shape[1]:
            raise DatasetError(
                f"{query_list} has {q_hot.shape[1]} concepts but {list_file} has "
                f"{multi_hot.shape[1]}"
            )
        split = np.concatenate(
            [np.full(len(paths), DATABASE, np.int8), np.full(len(q_paths), QUERY, np.int8)]
        )
        paths, multi_hot = paths + q_paths, np.concatenate([multi_hot, q_hot])
    if check_files:
        missing = [p for p in paths if not (image_root / p).is_file()]
        if missing:
            shown = ", ".join(missing[:3])
            raise DatasetError(
                f"{len(missing)} image file(s) listed in {list_file} are missing under "
                f"{image_root}: {shown}{' ...' if len(missing) > 3 else ''}"
            )
    return ImageSet(
        labels=np.zeros((len(paths), 0), dtype=np.int16),
        class_names=(),
        level_names=(),
        paths=tuple(paths),
        root=image_root,
        multi_hot=multi_hot,
        concept_names=_concept_names(concept_names, multi_hot.shape[1]),
        split=split,
        source=f"nuswide-list:{list_file}",
        # banks made from it name the list files for image observations (hashgym.images);
        # hashgym.features adds the side its backbone read the images at
        meta={"image_source": {
            "kind": "nuswide-list", "list": str(list_file.resolve()),
            "query_list": None if query_list is None else str(Path(query_list).resolve()),
            "root": str(image_root.resolve())}},
    )
