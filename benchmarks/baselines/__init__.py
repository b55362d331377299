"""The baselines the two papers compare with, plus CSQ, behind one estimator interface.

>>> from hashgym.benchmarks.baselines import make_baseline
>>> from hashgym.synthetic import make_hierarchical_bank
>>> bank = make_hierarchical_bank(seed=0)
>>> model = make_baseline("itq", 8, seed=0).fit(bank)          # fits on the "train" split
>>> model.encode(bank.view("query").features).shape
(48, 8)

Every baseline takes ``n_bits`` and ``seed``, fits on features and labels (arrays, or a
:class:`~hashgym.bank.FeatureBank` and a split), encodes features to ``uint8`` 0/1 codes, and
saves/loads without pickling (:mod:`.base`). Unsupervised (numpy): ``lsh``, ``sh``, ``itq``
(:mod:`.unsupervised`). Supervised deep heads on the cached features (:mod:`.deep`,
:mod:`.supervised`): ``cnnh``, ``dsh``, ``dpsh``, ``ninh``, ``hashnet``, ``dch``, ``csq``,
``shdh``.
"""

from __future__ import annotations

from typing import Any

from hashgym.benchmarks.baselines.base import BaseHasher, BaselineError, load_baseline
from hashgym.benchmarks.baselines.deep import DeepHasher
from hashgym.benchmarks.baselines.labels import LabelKind, LabelSet, as_label_set, similarity
from hashgym.benchmarks.baselines.supervised import (
    CNNH,
    CSQ,
    DCH,
    DPSH,
    DSH,
    NINH,
    SHDH,
    HashNet,
    cnnh_target_codes,
)
from hashgym.benchmarks.baselines.unsupervised import ITQ, LSH, SpectralHashing

__all__ = [
    "BASELINES",
    "CNNH",
    "CSQ",
    "DCH",
    "DPSH",
    "DSH",
    "ITQ",
    "LSH",
    "NINH",
    "SHDH",
    "SUPERVISED",
    "UNSUPERVISED",
    "BaseHasher",
    "BaselineError",
    "DeepHasher",
    "HashNet",
    "LabelKind",
    "LabelSet",
    "SpectralHashing",
    "as_label_set",
    "cnnh_target_codes",
    "load_baseline",
    "make_baseline",
    "similarity",
]

BASELINES: dict[str, type[BaseHasher]] = {
    cls.name: cls
    for cls in (LSH, SpectralHashing, ITQ, CNNH, DSH, DPSH, NINH, HashNet, DCH, CSQ, SHDH)
}
"""Every baseline by its short name (lower case, as in the protocols and result tables)."""

UNSUPERVISED: tuple[str, ...] = tuple(n for n, c in BASELINES.items() if not c.supervised)
SUPERVISED: tuple[str, ...] = tuple(n for n, c in BASELINES.items() if c.supervised)


def make_baseline(name: str, n_bits: int, **params: Any) -> BaseHasher:
    """A new, unfitted baseline by name.

    :param name: a key of :data:`BASELINES` (case-insensitive), e.g. ``"itq"`` or ``"csq"``.
    :param n_bits: code length.
    :param params: the method's hyperparameters (see its class), e.g. ``seed=1, epochs=50``.
    :raises BaselineError: for an unknown name, or bad parameters.
    """
    key = str(name).lower()
    if key not in BASELINES:
        raise BaselineError(
            f"unknown baseline {name!r}; available: {', '.join(BASELINES)}"
        )
    try:
        return BASELINES[key](n_bits, **params)
    except TypeError as exc:
        raise BaselineError(f"bad parameters for baseline {key!r}: {exc}") from exc
