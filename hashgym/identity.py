"""Identity hashes: how hashgym names a file, a bank, an image set or a settings record by its
content, so that a cache entry, a benchmark cell, a checkpoint or a sweep made from the same
inputs is found again.

Every identity in hashgym is built here, from SHA-256 and one canonical JSON form:

- :func:`sha256_file` / :func:`sha256_bytes`: a weights file, an image file, a mask.
- :func:`canonical_json` and :func:`digest_of`: a settings record (a benchmark cell's config,
  a feature cache key's inputs, a sweep's signature).
- :class:`Digest` and :func:`digest_of_arrays`: arrays with their dtypes and shapes (a feature
  bank's fingerprint, an image set's content).
- :func:`identity_fields`: the part of a record that must match (a run's resumable settings).

The values these give are stored on disk (cache file names, ``results.csv`` cells' keys,
checkpoints' ``state.json``, a sweep's journal), so the byte layout of each is fixed: changing
it would orphan every cache and cell made before.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Digest", "canonical_json", "digest_of", "digest_of_arrays", "identity_fields",
           "sha256_bytes", "sha256_file"]


def sha256_bytes(data: bytes, length: int | None = None) -> str:
    """The SHA-256 (hex) of ``data``, cut to its first ``length`` hex digits when given."""
    return hashlib.sha256(data).hexdigest()[:length]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of a file's bytes: how a weights file is identified in bank meta."""
    return sha256_bytes(Path(path).read_bytes())


def canonical_json(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON with sorted keys and the default separators: equal records give equal
    text, whatever order their keys were built in.

    :param default: how to write values JSON has no form for (``str`` writes them by their
        text); ``None`` refuses them with ``TypeError``, so that a record with an object
        whose text may not identify it never gets an identity.
    """
    return json.dumps(value, sort_keys=True, default=default)


def digest_of(value: Any, length: int | None = None) -> str:
    """The SHA-256 (hex) of :func:`canonical_json` of a JSON-able ``value``, cut to its first
    ``length`` hex digits when given."""
    return sha256_bytes(canonical_json(value).encode(), length)


class Digest:
    """An incremental SHA-256 over text and arrays, for identities built piece by piece."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def text(self, text: str) -> Digest:
        """Add ``text`` (UTF-8)."""
        self._hash.update(text.encode())
        return self

    def raw(self, data: bytes | np.ndarray) -> Digest:
        """Add bytes, or an array's bytes in C order (neither its dtype nor its shape)."""
        if isinstance(data, np.ndarray):
            data = np.ascontiguousarray(data)
            if not data.size:  # memoryview cannot cast an empty array such as [N, 0]
                return self
            data = memoryview(data).cast("B")
        self._hash.update(data)
        return self

    def array(self, arr: np.ndarray) -> Digest:
        """Add an array with its dtype and shape, so that equal bytes of another dtype or
        shape differ."""
        arr = np.ascontiguousarray(arr)
        return self.text(f"{arr.dtype.str}{arr.shape}").raw(arr)

    def hexdigest(self, length: int | None = None) -> str:
        """The digest so far (hex), cut to its first ``length`` hex digits when given."""
        return self._hash.hexdigest()[:length]


def digest_of_arrays(arrays: Iterable[np.ndarray], length: int | None = None) -> str:
    """The SHA-256 (hex) of ``arrays`` in order, each with its dtype and shape
    (:meth:`Digest.array`), cut to its first ``length`` hex digits when given."""
    digest = Digest()
    for arr in arrays:
        digest.array(arr)
    return digest.hexdigest(length)


def identity_fields(record: Mapping[str, Any], ignore: Iterable[str]) -> dict[str, Any]:
    """The items of ``record`` whose keys are not in ``ignore``: the part of a record that
    must match for two records to name the same thing."""
    skip = set(ignore)
    return {key: value for key, value in record.items() if key not in skip}
