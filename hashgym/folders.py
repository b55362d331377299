"""Your own photos as an image set: a folder with one sub-folder per class.

:func:`load_image_folder` reads the layout torchvision's ``ImageFolder`` reads, and one more:

* ``DIR/<class>/<file>``: one label level (``"class"``);
* ``DIR/<super-class>/<class>/<file>``: two levels, level 0 the super-class and level 1 the
  class, as the shared CIFAR-100 bank's coarse and fine labels, so that ``HierHash-v0``'s
  hierarchical rewards use them as they are. A class folder name found under two super-classes
  names two classes, both then written ``super-class/class``.

Every file Pillow can read counts (JPEG, PNG, BMP, GIF, TIFF, WebP, ...; the format is told by
the file's content, not its name). Names starting with a dot (``.DS_Store``, ``._photo.jpg``,
``.git``) are left out, files and folders alike. Classes are numbered in the sorted order of
their folder names, and the images are kept in the sorted order of their paths relative to
``DIR``: the order in which a bank made from them records them
(``meta["image_source"]``, kind ``"folder"``, :mod:`hashgym.images`).

Images may differ in size and shape: feature extraction decodes each at the backbone's input
side, its shorter side resized to ``8/7`` of that side and the centre square cropped
(:func:`hashgym.datasets.read_image_files`; 224 pixels unless ``image_size`` says otherwise).

Checks
------
The layout is checked before anything is extracted, and each problem is a
:class:`FolderLayoutError` naming the paths:

* an empty folder (no images, or a class folder whose images were all unreadable);
* mixed depths: files beside class folders, files directly in ``DIR``, class folders at two
  depths, or folders deeper than ``DIR/<super-class>/<class>/``;
* unreadable files (not an image Pillow can read, or a truncated one): refused by default, so
  that nothing is left out silently; with ``skip_unreadable=True`` they are skipped and
  counted (``meta["unreadable_skipped"]``, and a warning);
* duplicate files (the same bytes twice, under any names): one photo with two labels, or a
  query whose copy sits in the database, would distort every retrieval score.

Each file is read once for this (its SHA-256, and Pillow's ``verify``), in a few threads.

Split
-----
Without a split file the image set has none, and extraction draws a seeded split stratified
by the finest class (``query_fraction``, ``hashgym features --query-fraction``). A split file
is a text file naming the query images, one path relative to ``DIR`` per line (``/``
separated); every other image is a database image. Blank lines and lines starting with ``#``
are ignored::

    # queries
    cats/0001.jpg
    dogs/0042.png
"""

from __future__ import annotations

import io
import logging
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hashgym.bank import DATABASE, QUERY
from hashgym.datasets import ImageSet
from hashgym.errors import DataError
from hashgym.identity import sha256_bytes

__all__ = ["FolderLayoutError", "load_image_folder", "read_split_file"]

logger = logging.getLogger(__name__)

#: Paths named in an error message before "..." (a large folder may have thousands).
_SHOWN = 5
#: Threads reading files for the checks (reading is I/O bound; PIL releases the GIL).
_WORKERS = 4


#: This module's name for :class:`~hashgym.errors.DataError` (an alias).
FolderLayoutError = DataError


def _shown(paths: list[str]) -> str:
    more = f" ... ({len(paths)} in all)" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more


def _visible(entries: list[Path]) -> list[Path]:
    return sorted(e for e in entries if not e.name.startswith("."))


def _class_folders(root: Path) -> tuple[list[tuple[str, ...]], int]:
    """The class folders under ``root`` as tuples of folder names, and their depth (1 or 2).

    :raises FolderLayoutError: for an empty folder or mixed depths.
    """
    leaves: list[tuple[str, ...]] = []
    loose: list[str] = []  # files beside folders
    empty: list[str] = []
    deep: list[str] = []

    def visit(folder: Path, parts: tuple[str, ...]) -> None:
        entries = _visible(list(folder.iterdir()))
        dirs = [e for e in entries if e.is_dir()]
        files = [e for e in entries if not e.is_dir()]
        if not entries and not parts:
            raise FolderLayoutError(f"the image folder {root} is empty: put the images in "
                                    f"DIR/<class>/ or DIR/<super-class>/<class>/ folders")
        if not entries:
            empty.append("/".join(parts) + "/")
            return
        if files and (dirs or not parts):  # beside class folders, or directly in DIR
            loose.extend("/".join((*parts, f.name)) for f in files)
        elif files:
            leaves.append(parts)
        for sub in dirs:
            if len(parts) == 2:
                deep.append("/".join((*parts, sub.name)) + "/")
            else:
                visit(sub, (*parts, sub.name))

    visit(root, ())
    if empty:
        raise FolderLayoutError(f"empty folder(s) in {root}: {_shown(empty)}; every class "
                                f"folder needs at least one image (remove the empty ones)")
    if deep:
        raise FolderLayoutError(
            f"folders too deep in {root}: {_shown(deep)}; images go in DIR/<class>/ or "
            f"DIR/<super-class>/<class>/")
    if loose:
        raise FolderLayoutError(
            f"mixed depths in {root}: files outside class folders ({_shown(loose)}); images go "
            f"in DIR/<class>/ or DIR/<super-class>/<class>/, all at one depth")
    depths = {len(p) for p in leaves}
    if len(depths) > 1:
        one = next(p for p in leaves if len(p) == 1)
        two = next(p for p in leaves if len(p) == 2)
        raise FolderLayoutError(
            f"mixed depths in {root}: class folders at depth 1 ({one[0]}/) and 2 "
            f"({'/'.join(two)}/); use DIR/<class>/ or DIR/<super-class>/<class>/ throughout")
    return sorted(leaves), depths.pop()


def _check_file(path: Path) -> tuple[str, bool]:
    """The SHA-256 of a file's bytes, and whether Pillow can read it as an image."""
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError:  # a broken link, a file without read permission
        return "", False
    digest = sha256_bytes(data)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return digest, False  # not an image (UnidentifiedImageError), truncated, or corrupt
    return digest, True


def read_split_file(path: str | os.PathLike[str], files: tuple[str, ...]) -> np.ndarray:
    """The split a split file gives ``files``: ``int8 [N]``, 1 for each listed (query) image.

    :param path: the split file (see the module docstring).
    :param files: the image set's paths relative to its folder.
    :raises FolderLayoutError: when the file is missing, names a path twice or a path that is
        not one of ``files``.
    """
    path = Path(path)
    if not path.is_file():
        raise FolderLayoutError(f"no split file at {path}")
    position = {f: i for i, f in enumerate(files)}
    split = np.full(len(files), DATABASE, dtype=np.int8)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            rel = line.strip()
            if not rel or rel.startswith("#"):
                continue
            rel = rel.replace("\\", "/").removeprefix("./")
            if rel not in position:
                raise FolderLayoutError(f"{path}:{lineno}: {rel} is not an image of the folder")
            if split[position[rel]] == QUERY:
                raise FolderLayoutError(f"{path}:{lineno}: {rel} is listed twice")
            split[position[rel]] = QUERY
    return split


def load_image_folder(
    root: str | os.PathLike[str],
    split_file: str | os.PathLike[str] | None = None,
    skip_unreadable: bool = False,
) -> ImageSet:
    """The images of a class-folder tree, labelled by their folders (see the module docstring).

    :param root: the folder ``DIR`` holding ``<class>/`` or ``<super-class>/<class>/``
        folders.
    :param split_file: a text file naming the query images (see the module docstring);
        ``None`` leaves the split to extraction (seeded, stratified by class).
    :param skip_unreadable: skip files Pillow cannot read, and count them, instead of refusing
        the folder (the default: a file left out silently is a label lost).
    :return: a file-based :class:`~hashgym.datasets.ImageSet` whose ``meta`` names its image
        source (kind ``"folder"``: the folder and its files in order).
    :raises FolderLayoutError: for a missing or empty folder, mixed depths, unreadable files
        (unless skipped), duplicate files, or a bad split file.
    """
    root = Path(root)
    if not root.is_dir():
        raise FolderLayoutError(f"no image folder at {root}")
    classes, depth = _class_folders(root)
    files: list[tuple[str, ...]] = []
    for parts in classes:
        folder = root.joinpath(*parts)
        files.extend((*parts, f.name) for f in _visible(list(folder.iterdir())))
    rel = ["/".join(parts) for parts in files]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        checked = list(pool.map(_check_file, (root / r for r in rel)))
    unreadable = [r for r, (_, ok) in zip(rel, checked, strict=True) if not ok]
    if unreadable and not skip_unreadable:
        raise FolderLayoutError(
            f"{len(unreadable)} unreadable file(s) in {root} (not images Pillow can read): "
            f"{_shown(unreadable)}; remove them, or skip them (skip_unreadable=True, "
            f"hashgym features --skip-unreadable)")
    by_digest: dict[str, list[str]] = defaultdict(list)
    for r, (digest, ok) in zip(rel, checked, strict=True):
        if ok:
            by_digest[digest].append(r)
    copies = [" = ".join(group) for group in by_digest.values() if len(group) > 1]
    if copies:
        raise FolderLayoutError(f"duplicate files (the same bytes) in {root}: {_shown(copies)}; "
                                f"keep one copy of each image")
    keep = [i for i, (_, ok) in enumerate(checked) if ok]
    files = [files[i] for i in keep]
    emptied = sorted({"/".join(p) + "/" for p in classes} - {"/".join(f[:-1]) + "/" for f in files})
    if emptied:
        raise FolderLayoutError(f"empty folder(s) in {root}: {_shown(emptied)} (all their files "
                                f"are unreadable); every class folder needs at least one image")
    if unreadable:
        logger.warning("skipped %d unreadable file(s) in %s: %s", len(unreadable), root,
                       _shown(unreadable))
    labels, class_names, level_names = _labels([f[:-1] for f in files], depth)
    paths = tuple("/".join(f) for f in files)
    meta = {"image_source": {"kind": "folder", "root": str(root.resolve()), "files": list(paths)},
            "unreadable_skipped": len(unreadable)}
    return ImageSet(
        labels=labels,
        class_names=class_names,
        level_names=level_names,
        paths=paths,
        root=root,
        split=None if split_file is None else read_split_file(split_file, paths),
        source=f"folder:{root}",
        meta=meta,
    )


def _labels(classes: list[tuple[str, ...]], depth: int
            ) -> tuple[np.ndarray, tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """Labels ``[N, depth]``, class names per level and level names from each image's folders."""
    if depth == 1:
        names = sorted({c[0] for c in classes})
        ids = {n: i for i, n in enumerate(names)}
        return (np.array([[ids[c[0]]] for c in classes], dtype=np.int16), (tuple(names),),
                ("class",))
    supers = sorted({c[0] for c in classes})
    pairs = sorted(set(classes))
    parents: dict[str, set[str]] = defaultdict(set)
    for sup, cls in pairs:
        parents[cls].add(sup)
    fine_names = [cls if len(parents[cls]) == 1 else f"{sup}/{cls}" for sup, cls in pairs]
    super_ids = {n: i for i, n in enumerate(supers)}
    pair_ids = {p: i for i, p in enumerate(pairs)}
    labels = np.array([[super_ids[c[0]], pair_ids[c]] for c in classes], dtype=np.int16)
    return labels, (tuple(supers), tuple(fine_names)), ("super-class", "class")
