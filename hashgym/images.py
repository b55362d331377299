"""The images behind a feature bank, for environments that observe images instead of features.

Both papers train their CNN with the hash function (SCIHCGRL §2.B, DRLHIH §3), so an
environment may show the agent the image itself (``observation="image"``) for a CNN inside the
agent to learn from. A bank then names where its images are, in ``bank.meta["image_source"]``,
one of four kinds (:data:`SOURCE_KINDS`):

* ``{"kind": "npz", "path": FILE, "key": "images"}`` (``kind`` may be left out): an ``.npz``
  file (read with ``allow_pickle=False``) whose array ``key`` holds ``uint8`` images
  ``[M, H, W, C]`` (or ``[M, H, W]``, read as one channel): SB3's channel-last image
  convention. The shared ``cifar100.npz`` is one;
* ``{"kind": "torchvision-cifar", "root": DIR, "name": "cifar100" | "cifar10", "verify": bool}``:
  torchvision's standard CIFAR files, read by :func:`hashgym.datasets.load_torchvision_cifar`
  (official train images first, then the test images; checksums checked unless ``verify`` is
  false);
* ``{"kind": "nuswide-list", "list": FILE, "query_list": FILE | None, "root": DIR, "side": S}``:
  image files named by NUS-WIDE list files (:func:`hashgym.datasets.load_nuswide_list`),
  decoded with PIL to ``S x S`` RGB (shorter side resized, centre crop) when first read;
* ``{"kind": "folder", "root": DIR, "files": [PATH, ...], "side": S}``: image files of a class
  folder tree (:func:`hashgym.folders.load_image_folder`), ``files`` relative to ``DIR`` in the
  order the bank recorded them (image ``i`` is ``files[i]``), decoded as the NUS-WIDE files.

and ``bank.image_index`` (``[N]``) holds the row in that source of each of the bank's images,
kept aligned by :meth:`~hashgym.bank.FeatureBank.take` when a protocol takes a subset.

``hashgym features`` records the source of the images it extracted from, whichever kind it
read (a NUS-WIDE or folder bank at the side its backbone saw). :func:`attach_images` records an
``.npz`` on any bank; the shared CIFAR-100 presets get theirs (``cifar100.npz`` beside the
feature bank) from :func:`hashgym.protocols.resolve_bank`. :func:`bank_images` reads the images
of given bank rows; a source is opened once per process and kept (60,000 CIFAR images are
184 MB; the files of a list or folder source are decoded as rows are asked for).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.bank import FeatureBank
from hashgym.datasets import (
    DatasetError,
    load_nuswide_list,
    load_torchvision_cifar,
    read_image_files,
)
from hashgym.errors import DataError
from hashgym.npyfile import check_declared_sizes

__all__ = ["SOURCE_KINDS", "ImageError", "attach_images", "bank_images", "has_images",
           "image_shape"]

#: The kinds of image source a bank can record (see the module docstring).
SOURCE_KINDS = ("npz", "torchvision-cifar", "nuswide-list", "folder")

#: Image sources opened so far, by kind, location and the files' modification times.
_CACHE: dict[tuple[Any, ...], Any] = {}


#: This module's name for :class:`~hashgym.errors.DataError` (an alias).
ImageError = DataError


class _ImageFiles:
    """Image files under a folder, decoded at one side when read.

    Indexing with an array of rows decodes those files (``uint8 [n, side, side, 3]``); it
    quacks like the image array of the other kinds where :func:`bank_images` needs it.
    """

    def __init__(self, root: Path, paths: tuple[str, ...], side: int) -> None:
        self.root, self.paths, self.side = root, paths, side
        self.shape = (len(paths), side, side, 3)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        files = [self.root / self.paths[i] for i in np.atleast_1d(np.asarray(rows))]
        try:
            return read_image_files(files, self.side)
        except DatasetError as exc:
            raise ImageError(f"the bank's image files cannot be read: {exc}") from exc


def _stamp(*paths: Path) -> tuple[float, ...]:
    """The modification times of ``paths`` (so that a changed file is read again)."""
    try:
        return tuple(path.stat().st_mtime for path in paths)
    except OSError as exc:
        raise ImageError(f"the image source {exc.filename} cannot be read: {exc}") from exc


def _read_npz(path: Path, key: str) -> np.ndarray:
    """The image array ``key`` of the ``.npz`` at ``path``, checked to be images."""
    try:
        check_declared_sizes(path, ImageError, "image file")
        with np.load(path, allow_pickle=False) as archive:
            if key not in archive.files:
                raise ImageError(f"the image file {path} has no array {key!r}; it has "
                                 f"{', '.join(archive.files)}")
            images = archive[key]
    except ImageError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ImageError(f"the image file {path} cannot be read as .npz without pickle "
                         f"({type(exc).__name__}: {exc})") from exc
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ImageError(f"{key!r} in {path} must hold uint8 images [M, H, W, C] (or "
                         f"[M, H, W]), got {images.dtype} {images.shape}")
    images.setflags(write=False)
    return images


def _field(source: dict[str, Any], name: str) -> Any:
    if source.get(name) is None:
        raise ImageError(f"the image source {source} has no {name!r}")
    return source[name]


def _side(source: dict[str, Any]) -> int:
    """The side a file source's images are decoded at (224 when not recorded)."""
    side = int(source.get("side", 224))
    if side < 1:
        raise ImageError(f"the image source's side must be >= 1 pixel, got {side}")
    return side


def _open(source: dict[str, Any]) -> Any:
    """The images of an image source (cached): an array ``[M, H, W, C]`` or :class:`_ImageFiles`.

    :raises ImageError: when the source is of an unknown kind, lacks a field, or cannot be read.
    """
    kind = source.get("kind", "npz")
    if kind == "npz":
        path, key = Path(source.get("path", "")), source.get("key", "images")
        cache_key: tuple[Any, ...] = (kind, str(path.resolve()), key, _stamp(path))
        if cache_key not in _CACHE:
            _CACHE[cache_key] = _read_npz(path, key)
        return _CACHE[cache_key]
    if kind == "torchvision-cifar":
        root, name = Path(_field(source, "root")), _field(source, "name")
        verify = bool(source.get("verify", True))
        files = sorted(p for p in root.glob("cifar-*/*") if p.is_file())
        cache_key = (kind, str(root.resolve()), name, verify, _stamp(*files))
        if cache_key not in _CACHE:
            try:
                images = load_torchvision_cifar(root, name, verify=verify).images
            except DatasetError as exc:
                raise ImageError(f"the bank's torchvision CIFAR images cannot be read: {exc}") \
                    from exc
            assert images is not None
            images.setflags(write=False)
            _CACHE[cache_key] = images
        return _CACHE[cache_key]
    if kind == "nuswide-list":
        lists = [Path(_field(source, "list"))]
        if source.get("query_list") is not None:
            lists.append(Path(source["query_list"]))
        root, side = Path(_field(source, "root")), _side(source)
        cache_key = (kind, *map(str, lists), str(root), side, _stamp(*lists))
        if cache_key not in _CACHE:
            try:
                image_set = load_nuswide_list(lists[0], root, query_list=source.get("query_list"),
                                              check_files=False)
            except DatasetError as exc:
                raise ImageError(f"the bank's NUS-WIDE images cannot be read: {exc}") from exc
            assert image_set.root is not None and image_set.paths is not None
            _CACHE[cache_key] = _ImageFiles(image_set.root, image_set.paths, side)
        return _CACHE[cache_key]
    if kind == "folder":
        root, files = Path(_field(source, "root")), _field(source, "files")
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ImageError(f"the image source's 'files' must be a list of paths relative to "
                             f"{root}, got {type(files).__name__}")
        return _ImageFiles(root, tuple(files), _side(source))
    raise ImageError(f"unknown image source kind {kind!r}; expected one of "
                     f"{', '.join(SOURCE_KINDS)}")


def _read(path: str | os.PathLike[str], key: str) -> np.ndarray:
    """The image array ``key`` of the ``.npz`` at ``path`` (cached)."""
    return _open({"kind": "npz", "path": str(path), "key": key})


def attach_images(bank: FeatureBank, path: str | os.PathLike[str], key: str = "images",
                  index: Any = None, check: bool = True) -> FeatureBank:
    """``bank`` with the images of ``path`` recorded as its image source.

    :param bank: the bank.
    :param path: an ``.npz`` file holding the images (see the module docstring).
    :param key: the array of the images in it.
    :param index: the row in that array of each bank image; default ``0 .. N-1`` (the file
        holds the bank's images in bank order).
    :param check: read the file now and check that it holds images ``index`` fits; ``False``
        defers that to the first read (:func:`hashgym.protocols.resolve_bank` does, so that
        banks used for their features never read the images).
    :raises ImageError: when the file cannot be read, holds no images, or ``index`` does not
        fit it.
    """
    index = np.arange(bank.n) if index is None else np.asarray(index)
    if index.shape != (bank.n,) or not np.issubdtype(index.dtype, np.integer):
        raise ImageError(f"index must give one image row per bank image ({bank.n}), got "
                         f"{index.dtype} {index.shape}")
    if index.size and index.min() < 0:
        raise ImageError(f"index must hold image rows >= 0, got {int(index.min())}")
    images = _read(path, key) if check else None
    if images is not None and index.size and index.max() >= len(images):
        raise ImageError(f"the image file {path} has {len(images)} images, but the bank's "
                         f"index reaches row {int(index.max())}")
    meta = {**bank.meta,
            "image_source": {"kind": "npz", "path": str(Path(path).resolve()), "key": key}}
    return bank.replace(meta=meta, image_index=index)


def has_images(bank: FeatureBank) -> bool:
    """Whether ``bank`` names an image source (see the module docstring)."""
    return isinstance(bank.meta.get("image_source"), dict) and bank.image_index is not None


def _source(bank: FeatureBank) -> Any:
    if not has_images(bank):
        raise ImageError(
            "this bank has no images: image observations need a bank that names its image "
            "source (hashgym.images.attach_images(bank, 'images.npz'), or a bank made by "
            "hashgym features; the shared cifar100 presets have theirs when cifar100.npz is "
            "beside the feature bank)")
    images = _open(bank.meta["image_source"])
    if bank.image_index.size and bank.image_index.max() >= len(images):
        raise ImageError(f"the image source {_describe(bank.meta['image_source'])} has "
                         f"{len(images)} images, but the bank's image_index reaches row "
                         f"{int(bank.image_index.max())}")
    return images


def _describe(source: dict[str, Any]) -> str:
    """Where a source's images are, in a few words, for error messages."""
    return str(source.get("path") or source.get("root") or source.get("list") or source)


def image_shape(bank: FeatureBank) -> tuple[int, int, int]:
    """``(H, W, C)`` of the bank's images.

    :raises ImageError: when the bank has no readable images.
    """
    return tuple(int(d) for d in _source(bank).shape[1:])  # type: ignore[return-value]


def bank_images(bank: FeatureBank, rows: Any) -> np.ndarray:
    """``uint8 [len(rows), H, W, C]``: the images of the bank rows ``rows``, in that order.

    :raises ImageError: when the bank has no readable images.
    """
    return _source(bank)[bank.image_index[np.asarray(rows)]]
