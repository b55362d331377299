"""The images behind a feature bank, for environments that observe images instead of features.

Both papers train their CNN with the hash function (SCIHCGRL §2.B, DRLHIH §3), so an
environment may show the agent the image itself (``observation="image"``) for a CNN inside the
agent to learn from. A bank then names where its images are:

* ``bank.meta["image_source"] = {"path": FILE, "key": "images"}``: an ``.npz`` file (read with
  ``allow_pickle=False``) whose array ``key`` holds ``uint8`` images ``[M, H, W, C]`` (or
  ``[M, H, W]``, read as one channel): SB3's channel-last image convention;
* ``bank.image_index`` (``[N]``): the row in that array of each of the bank's images, kept
  aligned by :meth:`~hashgym.bank.FeatureBank.take` when a protocol takes a subset.

:func:`attach_images` records both on a bank. The shared CIFAR-100 bank gets its images
(``cifar100.npz`` beside it, in the same order) from :func:`hashgym.protocols.resolve_bank`.
:func:`bank_images` reads the images of given bank rows; a file is read once per process and
kept (60,000 CIFAR images are 184 MB).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.bank import FeatureBank
from hashgym.errors import HashgymError

__all__ = ["ImageError", "attach_images", "bank_images", "has_images", "image_shape"]

#: Images read so far, by (resolved path, key, modification time).
_CACHE: dict[tuple[str, str, float], np.ndarray] = {}


class ImageError(HashgymError):
    """A bank's images are missing, unreadable or do not fit the bank; the message says which."""


def _read(path: str | os.PathLike[str], key: str) -> np.ndarray:
    """The image array ``key`` of the ``.npz`` at ``path`` (cached), checked to be images."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime
    except OSError as exc:
        raise ImageError(f"the image file {path} cannot be read: {exc}") from exc
    cache_key = (str(path.resolve()), key, stamp)
    if cache_key not in _CACHE:
        try:
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
        _CACHE[cache_key] = images
    return _CACHE[cache_key]


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
    meta = {**bank.meta, "image_source": {"path": str(Path(path).resolve()), "key": key}}
    return bank.replace(meta=meta, image_index=index)


def has_images(bank: FeatureBank) -> bool:
    """Whether ``bank`` names an image source (see the module docstring)."""
    return isinstance(bank.meta.get("image_source"), dict) and bank.image_index is not None


def _source(bank: FeatureBank) -> np.ndarray:
    if not has_images(bank):
        raise ImageError(
            "this bank has no images: image observations need a bank that names its image "
            "file (hashgym.images.attach_images(bank, 'images.npz'); the shared cifar100 "
            "presets have theirs when cifar100.npz is beside the feature bank)")
    source = bank.meta["image_source"]
    images = _read(source.get("path", ""), source.get("key", "images"))
    if bank.image_index.size and bank.image_index.max() >= len(images):
        raise ImageError(f"the image file {source.get('path')} has {len(images)} images, but "
                         f"the bank's image_index reaches row {int(bank.image_index.max())}")
    return images


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
