"""The features of new pictures, computed as a bank's own were: search by picture's first step.

A bank made by ``hashgym features`` records how its features were computed (``meta``): the
backbone, its weights, the input side and, when the backbone was trained with
``--save-weights``, the weights file and its SHA-256. :func:`embed_pictures` runs the same
network on image files: each picture is decoded as the bank's image files are (RGB, shorter
side resized to ``8/7`` of the input side, centre square cropped:
:func:`hashgym.datasets.read_image_files`), normalised with the ImageNet channel statistics,
passed through the backbone's feature body in evaluation mode, and stored in the bank's feature
dtype. A picture that is one of the bank's own image files thus gets the bank's features for
it (up to float rounding on another device).

Which weights: a file given as ``weights`` (checked against the SHA-256 the bank recorded),
else the bank's ``saved_weights`` file (checked likewise), else torchvision's ImageNet weights
when the bank was extracted with them. A bank whose backbone was trained but not saved, or
left at a random initialisation, cannot embed new pictures: :class:`EmbedError` says so.

``torch`` is imported inside the functions, as in :mod:`hashgym.features`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashgym.backbones import BACKBONES, BackboneError, build_backbone, to_tensor
from hashgym.bank import FeatureBank
from hashgym.datasets import DatasetError, read_image_files
from hashgym.errors import DataError
from hashgym.identity import sha256_file

__all__ = ["EmbedError", "bank_input_side", "embed_pictures", "picture_files"]

#: File name endings :func:`picture_files` takes from a folder (the usual photo formats).
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


#: This module's name for :class:`~hashgym.errors.DataError` (an alias).
EmbedError = DataError


def picture_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The image files named by ``paths``: files as given, folders as their image files
    (:data:`PICTURE_SUFFIXES`, any depth, in sorted order; names starting with a dot left out).

    :raises EmbedError: when a path does not exist or a folder holds no image file.
    """
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file()
                           and p.suffix.lower() in PICTURE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(item).parts))
            if not found:
                raise EmbedError(f"the folder {item} holds no image files "
                                 f"({', '.join(PICTURE_SUFFIXES)})")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise EmbedError(f"no picture at {item}")
    return files


def bank_input_side(bank: FeatureBank) -> int:
    """The side length the bank's backbone was fed (``meta["input"]``, e.g. ``"32x32, ..."``).

    :raises EmbedError: when the bank does not record it.
    """
    match = re.match(r"(\d+)x(\d+)", str(bank.meta.get("input", "")))
    if match is None:
        raise EmbedError("the bank does not record its backbone's input size (meta 'input'): "
                         "search by picture needs a bank made by hashgym features")
    return int(match.group(1))


def _weights_for(meta: dict[str, Any], weights: str | os.PathLike[str] | None) -> str | Path:
    """The weights to build the bank's backbone with: a checked file, or ``"imagenet"``."""
    recorded, trained = str(meta.get("weights", "")), int(meta.get("epochs", 0)) > 0
    saved = meta.get("saved_weights")
    expected = None  # the SHA-256 of the weights the features came from
    if meta.get("saved_weights_sha256"):
        expected = str(meta["saved_weights_sha256"])
    elif not trained and recorded.startswith("file-sha256:"):
        expected = recorded.removeprefix("file-sha256:")
    if weights is None and saved is not None:
        weights = saved
    if expected is not None and weights is not None:
        path = Path(weights)
        if not path.is_file():
            moved = " (the bank's saved weights; pass --weights if the file moved)" \
                if weights == saved else ""
            raise EmbedError(f"weights file missing: {path}{moved}")
        if sha256_file(path) != expected:
            raise EmbedError(f"the weights file {path} is not the backbone the bank's features "
                             f"came from (its SHA-256 differs from the one the bank recorded)")
        return path
    if expected is None and not trained and "IMAGENET" in recorded:
        return "imagenet"
    raise EmbedError(
        "the bank does not record a backbone that can be rebuilt: search by picture needs a "
        "bank made by hashgym features with --epochs N --save-weights FILE, with --weights FILE "
        "(then give that file), or with ImageNet weights")


def embed_pictures(
    bank: FeatureBank,
    files: Sequence[str | os.PathLike[str]],
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    batch_size: int = 64,
) -> np.ndarray:
    """The features of the pictures ``files`` by the backbone ``bank`` was extracted with.

    :param bank: a bank made by ``hashgym features`` (see the module docstring).
    :param files: image files (any format and size Pillow reads).
    :param weights: the backbone's state-dict file when the bank's recorded one moved or the
        bank was extracted with a given weights file; default: the one the bank recorded.
    :param device: torch device.
    :param batch_size: pictures per forward pass.
    :return: ``[len(files), D]`` features in the bank's dtype.
    :raises EmbedError: when the bank's backbone cannot be rebuilt, the weights file is not the
        recorded one, or a picture cannot be decoded.
    """
    import torch

    name = bank.meta.get("backbone")
    if name not in BACKBONES:
        raise EmbedError(f"the bank does not record a torchvision backbone (meta 'backbone': "
                         f"{name!r}): search by picture needs a bank made by hashgym features")
    side = bank_input_side(bank)
    weights_path = _weights_for(bank.meta, weights)
    try:
        body, _, dim, _ = build_backbone(str(name), weights_path, 1)
    except BackboneError as exc:
        raise EmbedError(f"cannot rebuild the bank's backbone: {exc}") from exc
    if dim != bank.dim:
        raise EmbedError(f"the backbone {name} gives {dim}-d features but the bank holds "
                         f"{bank.dim}-d ones")
    dev = torch.device(device)
    body.to(dev).eval()
    out = np.zeros((len(files), dim), dtype=bank.features.dtype)
    with torch.no_grad():
        for start in range(0, len(files), batch_size):
            chunk = list(files[start:start + batch_size])
            try:
                pixels = read_image_files(chunk, side)
            except DatasetError as exc:
                raise EmbedError(f"cannot read a picture: {exc}") from exc
            out[start:start + len(chunk)] = body(to_tensor(pixels, side, dev)).float().cpu().numpy()
    return out
