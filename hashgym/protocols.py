"""Named banks and evaluation protocols (METHODS.md, "Protocols").

A **protocol** decides which images of a bank are queries, which form the database and which
of the database images are used for training. It is seeded, and what it did is recorded in the
resulting bank's ``meta["protocol"]``, so a saved bank carries its own split.

=================  ==========================================================================
protocol           split
=================  ==========================================================================
``standard``       the bank's own query/database split; train = the whole database. For the
                   shared CIFAR-100 bank: 10,000 query / 50,000 database.
``trees-people``   DRLHIH's CIFAR-100 subset: only the images of the ``trees`` and ``people``
                   super-classes, with the bank's own split restricted to them.
``csq``            SCIHCGRL's (CSQ's) CIFAR protocol applied to CIFAR-100: 1,000 query and
                   5,000 training images drawn per fine class (10 and 50 of each of the 100
                   classes), every non-query image in the database (the training images too).
                   Banks smaller than 6,000 images keep the same proportions.
``holdout``        For tuning without touching the queries: the bank's training images only,
                   10% of each finest class (at least one) held out as queries, the rest the
                   database and the training set. The bank's own queries are dropped.
=================  ==========================================================================

A **preset name** is a bank source optionally followed by a protocol: ``cifar100`` (the shared
60,000-image bank, found under ``$HASHGYM_DATA/cifar100/``), ``cifar100-mini`` (the small bank
built into the package), and e.g. ``cifar100-csq``, ``cifar100-trees-people``,
``cifar100-mini-csq``. :func:`resolve_bank` turns a preset name, a path or a bank into a bank.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from hashgym.bank import DATABASE, QUERY, BankError, FeatureBank
from hashgym.images import attach_images
from hashgym.validation import check_int

__all__ = [
    "PROTOCOLS",
    "SOURCES",
    "apply_protocol",
    "data_dir",
    "is_bank_path",
    "preset_names",
    "resolve_bank",
]

DATA_ENV = "HASHGYM_DATA"
MINI_BANK = "cifar100_mini.npz"
#: The shared CIFAR-100 images, beside the shared feature bank and in its order: the image
#: source of the ``cifar100`` presets (:mod:`hashgym.images`).
SHARED_IMAGES = "cifar100.npz"


def data_dir() -> Path:
    """The folder holding hashgym's data sets: ``$HASHGYM_DATA``, else ``~/.cache/hashgym``."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "hashgym").expanduser()


def _builtin_path() -> Path:
    return Path(str(resources.files("hashgym.data").joinpath(MINI_BANK)))


def _shared_cifar100_path() -> Path:
    return data_dir() / "cifar100" / "cifar100_resnet18_features.npz"


SOURCES: dict[str, Callable[[], Path]] = {
    "cifar100": _shared_cifar100_path,
    "cifar100-mini": _builtin_path,
}


def _standard(bank: FeatureBank, rng: np.random.Generator) -> FeatureBank:
    return bank.replace(train=None)


def _trees_people(bank: FeatureBank, rng: np.random.Generator) -> FeatureBank:
    if bank.n_levels < 1:
        raise BankError("protocol 'trees-people' needs a bank with hierarchy labels")
    names = bank.class_names[0]
    missing = [c for c in ("trees", "people") if c not in names]
    if missing:
        raise BankError(
            f"protocol 'trees-people' needs level-0 classes 'trees' and 'people'; "
            f"this bank has no {', '.join(map(repr, missing))}"
        )
    keep = np.isin(bank.labels[:, 0], [names.index("trees"), names.index("people")])
    return bank.take(keep, train=None)


def _csq(bank: FeatureBank, rng: np.random.Generator) -> FeatureBank:
    """10 query and 50 training images per finest class at full CIFAR-100 size (1,000 / 5,000)."""
    if bank.n_levels < 1:
        raise BankError("protocol 'csq' needs a bank with hierarchy labels")
    finest = bank.labels[:, -1]
    scale = min(1.0, bank.n / 60000)
    classes = np.unique(finest)
    n_query = max(1, round(1000 * scale / len(classes)))
    n_train = max(1, round(5000 * scale / len(classes)))
    split = np.full(bank.n, DATABASE, dtype=np.int8)
    train = np.zeros(bank.n, dtype=bool)
    for c in classes:
        rows = rng.permutation(np.flatnonzero(finest == c))
        if len(rows) < n_query + n_train:
            raise BankError(
                f"protocol 'csq' needs {n_query + n_train} images of class "
                f"{bank.class_names[-1][c]!r}, the bank has {len(rows)}"
            )
        split[rows[:n_query]] = QUERY
        train[rows[n_query : n_query + n_train]] = True
    return bank.replace(split=split, train=train)


#: ``holdout``'s share of every finest class's training images that becomes queries.
HOLDOUT_FRACTION = 0.1


def _holdout(bank: FeatureBank, rng: np.random.Generator) -> FeatureBank:
    """Queries drawn from the training images (``HOLDOUT_FRACTION`` of each finest class)."""
    rows = np.flatnonzero(bank.train_mask)
    finest = bank.labels[rows, -1] if bank.n_levels else np.zeros(rows.size, dtype=np.int64)
    split = np.full(rows.size, DATABASE, dtype=np.int8)
    for c in np.unique(finest):
        members = rng.permutation(np.flatnonzero(finest == c))
        if len(members) < 2:
            raise BankError(f"protocol 'holdout' needs two training images of every class; "
                            f"class {int(c)} has {len(members)}")
        split[members[: max(1, round(HOLDOUT_FRACTION * len(members)))]] = QUERY
    return bank.take(rows, split=split, train=None)


PROTOCOLS: dict[str, Callable[[FeatureBank, np.random.Generator], FeatureBank]] = {
    "standard": _standard,
    "trees-people": _trees_people,
    "csq": _csq,
    "holdout": _holdout,
}


def preset_names() -> list[str]:
    """Every preset name :func:`resolve_bank` accepts."""
    return [
        source if protocol == "standard" else f"{source}-{protocol}"
        for source in SOURCES
        for protocol in PROTOCOLS
    ]


def apply_protocol(bank: FeatureBank, protocol: str, seed: int = 0) -> FeatureBank:
    """Re-split ``bank`` by a named protocol (seeded) and record it in ``meta["protocol"]``.

    :raises BankError: for an unknown protocol, or a seed that is not a non-negative integer.
    """
    if protocol not in PROTOCOLS:
        raise BankError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    check_int(seed, "the protocol's seed", 0, BankError)
    out = PROTOCOLS[protocol](bank, np.random.default_rng(seed))
    out.meta["protocol"] = {
        "name": protocol,
        "seed": seed,
        "query": int(np.sum(out.split == QUERY)),
        "database": int(np.sum(out.split == DATABASE)),
        "train": int(out.train_mask.sum()),
    }
    return out


def _parse_preset(name: str) -> tuple[str, str]:
    for source in sorted(SOURCES, key=len, reverse=True):
        if name == source:
            return source, "standard"
        if name.startswith(source + "-") and name[len(source) + 1 :] in PROTOCOLS:
            return source, name[len(source) + 1 :]
    raise BankError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")


def is_bank_path(spec: str | os.PathLike[str]) -> bool:
    """Whether :func:`resolve_bank` reads ``spec`` as a bank file path rather than a preset
    name: it ends in ``.npz``, holds a path separator, or names an existing file."""
    text = os.fspath(spec)
    return text.endswith(".npz") or os.sep in text or Path(text).is_file()


def resolve_bank(
    spec: FeatureBank | str | os.PathLike[str] | None = None,
    protocol: str | None = None,
    seed: int = 0,
    mmap: bool = False,
    verify: bool = True,
) -> FeatureBank:
    """Turn a bank specification into a :class:`FeatureBank`.

    :param spec: ``None`` for the bank built into the package (``cifar100-mini``), a
        :class:`FeatureBank` (returned as is unless ``protocol`` is given), a path to a ``.npz``
        bank, or a preset name (see :func:`preset_names`).
    :param protocol: apply this protocol on top (overrides the one in a preset name).
    :param seed: the protocol's seed.
    :param mmap: memory-map features when loading an uncompressed bank file.
    :param verify: check memory-mapped features against the archive's checksum
        (:meth:`FeatureBank.load`); ``False`` only for trusted files on hot paths.
    :raises BankError: for unknown presets, missing or unreadable files, or a ``spec`` of
        another type.
    """
    if spec is None:
        spec = "cifar100-mini"
    if isinstance(spec, FeatureBank):
        bank, preset_protocol = spec, None
    elif not isinstance(spec, (str, os.PathLike)):
        shown = repr(spec)
        raise BankError(f"bank must be a FeatureBank, a bank file path or a preset name, got "
                        f"{type(spec).__name__} {shown[:60] + '…' if len(shown) > 60 else shown}")
    else:
        text = os.fspath(spec)
        if is_bank_path(text):
            bank, preset_protocol = FeatureBank.load(text, mmap=mmap, verify=verify), None
        else:
            source, preset_protocol = _parse_preset(text)
            path = SOURCES[source]()
            if not path.is_file():
                raise BankError(
                    f"preset {text!r} needs the bank file {path}, which does not exist; set "
                    f"${DATA_ENV} to the folder that holds cifar100/, or build the bank with "
                    f"`hashgym features` (see the README's data section)"
                )
            bank = FeatureBank.load(path, mmap=mmap, verify=verify)
            images = path.parent / SHARED_IMAGES
            if source == "cifar100" and images.is_file() and bank.image_index is None:
                bank = attach_images(bank, images, check=False)  # same order, read when used
    chosen = protocol or preset_protocol
    return apply_protocol(bank, chosen, seed) if chosen else bank
