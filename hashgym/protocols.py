"""Named banks and evaluation protocols.

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
``csq``            SCIHCGRL's (CSQ's) CIFAR protocol applied to CIFAR-100: 10 query and 50
                   training images per fine class (1,000 / 5,000), every other image in the
                   database (the training images too). The queries come only from the bank's
                   own query split and the training images only from its database split, so
                   on a bank whose backbone trained on its database (the shared ones) no query
                   is an image the backbone saw. Classes under 500 images scale both counts
                   down in proportion (the smallest class sets the scale).
``holdout``        For tuning a user's own bank without touching its queries: the bank's
                   training images only, 10% of each finest class (at least one) held out as
                   queries, the rest the database and the training set. The bank's own queries
                   are dropped. Where the backbone trained on those images, the held-out ones
                   are not unseen: the shared banks have a development twin instead.
``unseen``         Retrieval of classes never trained on: a seeded quarter of the finest
                   classes (25 of CIFAR-100's) is left out of training; the bank's own
                   query/database split; training on the seen classes' database images. Scored
                   as seen@seen, unseen@unseen and unseen@all (:func:`class_slices`). On the
                   shared banks the backbone did see the unseen classes' database images, with
                   labels: only the hash function is blind to them.
=================  ==========================================================================

A **preset name** is a bank source optionally followed by a protocol:

* ``cifar100``: the shared 60,000-image bank (``$HASHGYM_DATA/cifar100/``), whose 10,000
  queries are the **test set**: score them once per final table, never to choose a setting.
* ``cifar100-dev``: its **development twin**, the 50,000 database images of the shared bank
  coded by a backbone trained on 45,000 of them only; its 5,000 validation queries (50 per fine
  class) are as unseen by that backbone as the test queries are by the shared one. Choose
  settings here (``hashgym tune`` does, see :func:`development_twin`).
* ``cifar100-mini``: the small bank built into the package (a PCA-128 subset of the shared bank,
  for examples and tests). Its queries are some of the shared bank's test queries.
* ``cifar100-dev-mini``: its development twin, built into the package too: the same subset and
  projection drawn from the development bank, its queries validation queries that the
  development backbone never saw (:mod:`hashgym.data.build_mini_bank`). Choose settings for
  ``cifar100-mini`` here; it needs no ``$HASHGYM_DATA``.

A protocol name appended gives e.g. ``cifar100-csq``, ``cifar100-dev-csq``,
``cifar100-dev-trees-people``, ``cifar100-mini-csq``. :func:`resolve_bank` turns a preset name, a
path or a bank into a bank.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np

from hashgym.bank import DATABASE, QUERY, BankError, FeatureBank
from hashgym.images import attach_images
from hashgym.validation import check_int

__all__ = [
    "CLASS_SLICES",
    "PROTOCOLS",
    "SOURCES",
    "apply_protocol",
    "class_slices",
    "configured_data_dir",
    "data_dir",
    "development_twin",
    "is_bank_path",
    "is_development",
    "preset_names",
    "resolve_bank",
]

DATA_ENV = "HASHGYM_DATA"
MINI_BANK = "cifar100_mini.npz"
DEV_MINI_BANK = "cifar100_dev_mini.npz"
#: The shared CIFAR-100 images, beside the shared feature bank and in its order: the image
#: source of the ``cifar100`` presets (:mod:`hashgym.images`).
SHARED_IMAGES = "cifar100.npz"


def configured_data_dir() -> Path | None:
    """The data folder ``$HASHGYM_DATA`` names, or ``None`` when it is unset or empty.

    The one place hashgym reads that variable: :func:`data_dir` falls back from it, and a
    command that needs a data set the user pointed at (``hashgym features`` without
    ``--images``) asks for it to be set instead of guessing.
    """
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """The folder holding hashgym's data sets: ``$HASHGYM_DATA``, else ``~/.cache/hashgym``."""
    return configured_data_dir() or (Path.home() / ".cache" / "hashgym")


def _packaged(name: str) -> Path:
    return Path(str(resources.files("hashgym.data").joinpath(name)))


def _shared_cifar100_path() -> Path:
    return data_dir() / "cifar100" / "cifar100_resnet18_features.npz"


def _shared_cifar100_dev_path() -> Path:
    return data_dir() / "cifar100" / "cifar100_resnet18_dev_features.npz"


#: Sources built into the package, by file under ``hashgym/data/``: their features are a
#: projection, so the shared images are never attached to them.
PACKAGED_SOURCES: dict[str, str] = {"cifar100-mini": MINI_BANK, "cifar100-dev-mini": DEV_MINI_BANK}

SOURCES: dict[str, Callable[[], Path]] = {
    "cifar100": _shared_cifar100_path,
    "cifar100-dev": _shared_cifar100_dev_path,
    **{source: partial(_packaged, name) for source, name in PACKAGED_SOURCES.items()},
}

#: Sources whose query split is a test set, and the development source that stands in for each
#: when choosing settings (its queries unseen by its own backbone, none of them a test image).
DEVELOPMENT_TWINS: dict[str, str] = {"cifar100": "cifar100-dev",
                                     "cifar100-mini": "cifar100-dev-mini"}


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


#: CSQ's per-class counts on CIFAR-100 (10 query, 50 training images of each of 100 classes),
#: and the class size at which they apply in full.
CSQ_QUERY, CSQ_TRAIN, CSQ_FULL_CLASS = 10, 50, 500


def _csq(bank: FeatureBank, rng: np.random.Generator) -> FeatureBank:
    """``CSQ_QUERY`` queries per finest class from the bank's query split, ``CSQ_TRAIN`` training
    images from its database split, every other image in the database."""
    if bank.n_levels < 1:
        raise BankError("protocol 'csq' needs a bank with hierarchy labels")
    finest = bank.labels[:, -1]
    classes, sizes = np.unique(finest, return_counts=True)
    scale = min(1.0, sizes.min() / CSQ_FULL_CLASS)
    n_query = max(1, round(CSQ_QUERY * scale))
    n_train = max(1, round(CSQ_TRAIN * scale))
    split = np.full(bank.n, DATABASE, dtype=np.int8)
    train = np.zeros(bank.n, dtype=bool)
    for c in classes:
        members = finest == c
        queries = rng.permutation(np.flatnonzero(members & (bank.split == QUERY)))
        trainable = rng.permutation(np.flatnonzero(members & (bank.split == DATABASE)))
        for rows, need, part in ((queries, n_query, "query"), (trainable, n_train, "database")):
            if len(rows) < need:
                raise BankError(
                    f"protocol 'csq' needs {need} images of class {bank.class_names[-1][c]!r} in "
                    f"the bank's {part} split, the bank has {len(rows)}"
                )
        split[queries[:n_query]] = QUERY
        train[trainable[:n_train]] = True
    return bank.replace(split=split, train=train)


#: ``unseen``'s share of the finest classes kept out of training (25 of CIFAR-100's 100, as in
#: the largest setting of the DSH_Analysis re-evaluation of deep hashing).
UNSEEN_FRACTION = 0.25


def _unseen(bank: FeatureBank, rng: np.random.Generator) -> FeatureBank:
    """A seeded ``UNSEEN_FRACTION`` of the finest classes is left out of training: the bank's own
    query/database split, training on the database images of the other (seen) classes only. The
    unseen classes are recorded in ``meta["protocol"]["unseen_classes"]``; :func:`class_slices`
    turns them into the seen@seen, unseen@unseen and unseen@all evaluations."""
    if bank.n_levels < 1:
        raise BankError("protocol 'unseen' needs a bank with class labels")
    finest = bank.labels[:, -1]
    classes = np.unique(finest)
    n_unseen = round(UNSEEN_FRACTION * len(classes))
    if not 1 <= n_unseen < len(classes):
        raise BankError(f"protocol 'unseen' leaves a quarter of the classes out of training "
                        f"and needs at least 3 classes, the bank has {len(classes)}")
    unseen = np.sort(rng.choice(classes, size=n_unseen, replace=False))
    train = (bank.split == DATABASE) & ~np.isin(finest, unseen)
    out = bank.replace(train=train)
    out.meta["protocol"] = {"unseen_classes": [int(c) for c in unseen]}
    return out


#: The three evaluations of a bank split by ``unseen``: (name, query classes, database classes).
CLASS_SLICES = (("seen@seen", "seen", "seen"), ("unseen@unseen", "unseen", "unseen"),
                ("unseen@all", "unseen", "all"))


def class_slices(bank: FeatureBank) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For a bank split by the ``unseen`` protocol: each of :data:`CLASS_SLICES` as boolean masks
    over its query rows and its database rows (in ``bank.indices`` order).

    :raises BankError: for a bank without recorded unseen classes.
    """
    protocol = bank.meta.get("protocol")
    unseen = protocol.get("unseen_classes") if isinstance(protocol, dict) else None
    if not isinstance(unseen, list):
        raise BankError("this bank records no unseen classes: split it with protocol 'unseen'")
    out = {}
    for name, query_part, database_part in CLASS_SLICES:
        masks = []
        for split, part in (("query", query_part), ("database", database_part)):
            is_unseen = np.isin(bank.labels[bank.indices(split), -1], unseen)
            masks.append(np.ones_like(is_unseen) if part == "all" else
                         is_unseen if part == "unseen" else ~is_unseen)
        out[name] = (masks[0], masks[1])
    return out


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
    "unseen": _unseen,
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
    seed = check_int(seed, f"the seed of protocol {protocol!r} (--seed)", 0, BankError)
    # a protocol may record details of its own in meta["protocol"]; an earlier one's go
    fresh = bank.replace(meta={k: v for k, v in bank.meta.items() if k != "protocol"})
    out = PROTOCOLS[protocol](fresh, np.random.default_rng(seed))
    out.meta["protocol"] = {
        **out.meta.get("protocol", {}),
        "name": protocol,
        "seed": seed,
        "query": int(np.sum(out.split == QUERY)),
        "database": int(np.sum(out.split == DATABASE)),
        "train": int(out.train_mask.sum()),
    }
    return out


def development_twin(name: str) -> str | None:
    """The development preset that stands in for preset ``name`` when choosing settings.

    ``cifar100-csq`` gives ``cifar100-dev-csq``, ``cifar100`` and ``cifar100-holdout`` give
    ``cifar100-dev`` (the twin's own validation queries replace the holdout split, whose images
    the shared backbone trained on), and the built-in ``cifar100-mini...`` presets give
    ``cifar100-dev-mini...`` (the mini bank's queries are test queries of the shared bank, its
    training images the shared backbone's); a development preset or a name that is not a preset
    gives ``None``.
    """
    try:
        source, protocol = _parse_preset(name)
    except BankError:
        return None
    twin = DEVELOPMENT_TWINS.get(source)
    if twin is None:
        return None
    return twin if protocol in ("standard", "holdout") else f"{twin}-{protocol}"


def is_development(bank: FeatureBank) -> bool:
    """Whether ``bank`` came from a development preset (its queries are validation queries that
    its backbone never saw, and may be scored to choose settings)."""
    return bool(bank.meta.get("development"))


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
            if source in DEVELOPMENT_TWINS.values():
                bank.meta["development"] = True
            if (source not in PACKAGED_SOURCES and images.is_file()
                    and "image_source" not in bank.meta):
                # the shared bank is in the images' order; the development bank names its rows
                bank = attach_images(bank, images, index=bank.image_index, check=False)
    chosen = protocol or preset_protocol
    return apply_protocol(bank, chosen, seed) if chosen else bank
