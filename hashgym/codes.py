"""Binary codes: the one place that converts between code forms and computes Hamming distance.

A code of ``n_bits`` bits has three forms (``docs/methods.md``, "Codes"):

* **bits**: ``uint8`` 0/1, shape ``[N, n_bits]`` (what environments emit and files store);
* **signs**: ``±1`` (``int8`` or float), the form the papers' formulas use;
* **packed**: ``uint8`` bytes from :func:`numpy.packbits` (``ceil(n_bits / 8)`` per code, most
  significant bit first, zero padded), what indexes store.

For distance computations codes are also packed into 64-bit words (:func:`pack_words`), so that
the Hamming distance of two codes is a few XORs and popcounts (``np.bitwise_count``).
"""

from __future__ import annotations

import numpy as np

from hashgym.errors import CodesError
from hashgym.validation import check_int

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "CodeError",
    "as_bits",
    "as_bits_pair",
    "check_packed",
    "distance_dtype",
    "hamming",
    "hamming_bits_paired",
    "hamming_paired",
    "hamming_words",
    "pack",
    "pack_words",
    "packed_to_words",
    "to_signs",
    "unpack",
]

DEFAULT_CHUNK_BYTES = 1 << 27  # ~128 MiB of intermediate results per chunk
_popcount = np.bitwise_count


#: This module's name for :class:`~hashgym.errors.CodesError` (an alias).
CodeError = CodesError


def as_bits(codes: np.ndarray, n_bits: int | None = None, name: str = "codes") -> np.ndarray:
    """Validate codes given as 0/1, ±1 or bool and return them as ``uint8`` 0/1 bits.

    A 1-D input is one code. Mixed encodings (e.g. values 0, 1 and -1) are rejected.

    :param codes: ``[N, n_bits]`` or ``[n_bits]`` array of 0/1, ±1 or bool values.
    :param n_bits: expected code length, checked when given.
    :param name: the argument's name, used in error messages.
    :raises CodeError: for empty sets, other values, or a length different from ``n_bits``.
    """
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise CodeError(f"{name} must be [N, n_bits], got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise CodeError(f"{name} is empty (shape {arr.shape})")
    if n_bits is not None and arr.shape[1] != n_bits:
        raise CodeError(f"{name} have {arr.shape[1]} bits, expected {n_bits}")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise CodeError(f"{name} must be numeric 0/1 or ±1, got dtype {arr.dtype}")
    has_neg = bool((arr == -1).any())
    has_zero = bool((arr == 0).any())
    if has_neg and has_zero:
        raise CodeError(f"{name} mix 0/1 and ±1 values; use one encoding")
    valid = (arr == 1) | ((arr == -1) if has_neg else (arr == 0))
    if not valid.all():
        bad = arr[~valid].flat[0].item()
        raise CodeError(f"{name} must contain only 0/1 or ±1 values, found {bad!r}")
    return (arr == 1).astype(np.uint8)


def as_bits_pair(
    a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("a", "b")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two code sets with :func:`as_bits` and check that their codes have the same length.

    :param a: first code set (0/1, ±1 or bool), ``[Na, n_bits]`` or ``[n_bits]``.
    :param b: second code set, ``[Nb, n_bits]`` or ``[n_bits]``.
    :param names: the two arguments' names, used in error messages.
    :return: both sets as ``uint8`` 0/1 bits.
    :raises CodeError: for invalid codes or codes of different lengths.
    """
    a_bits, b_bits = as_bits(a, name=names[0]), as_bits(b, name=names[1])
    if a_bits.shape[1] != b_bits.shape[1]:
        raise CodeError(
            f"codes have different lengths: {names[0]} has {a_bits.shape[1]} bits, "
            f"{names[1]} has {b_bits.shape[1]}"
        )
    return a_bits, b_bits


def distance_dtype(n_bits: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds every Hamming distance ``0..n_bits``.

    ``uint8`` up to 255 bits, which lets numpy's stable sort use its radix sort on distances.
    """
    check_int(n_bits, "n_bits", 0, CodeError)
    return np.dtype(np.uint8) if n_bits <= 255 else np.dtype(np.uint16)


def to_signs(codes: np.ndarray, dtype: np.typing.DTypeLike = np.int8) -> np.ndarray:
    """Codes as ±1 (bit 1 → +1, bit 0 → −1)."""
    bits = as_bits(codes)
    return (bits.astype(dtype) * 2 - 1).astype(dtype)


def pack(codes: np.ndarray) -> np.ndarray:
    """Codes as packed bytes, ``[N, ceil(n_bits / 8)]`` ``uint8``, MSB first, zero padded."""
    return np.packbits(as_bits(codes), axis=1)


def unpack(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: packed bytes back to ``[N, n_bits]`` 0/1 ``uint8``."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise CodeError(f"packed codes must be a [N, bytes] uint8 array, got {packed.dtype} {packed.shape}")
    if n_bits <= 0 or packed.shape[1] * 8 < n_bits or packed.shape[1] != -(-n_bits // 8):
        raise CodeError(f"packed codes have {packed.shape[1]} bytes per code, which cannot hold "
                        f"exactly {n_bits} bits")
    return np.unpackbits(packed, axis=1, count=n_bits)


def check_packed(packed: np.ndarray, n_bits: int, name: str = "packed codes") -> np.ndarray:
    """Validate packed codes of ``n_bits`` bits (:func:`pack`): a ``[N, ceil(n_bits / 8)]`` ``uint8``
    array whose padding bits (past ``n_bits`` in the last byte) are zero.

    Non-zero padding would silently add to Hamming distances, so it is an error.

    :param packed: the packed codes.
    :param n_bits: code length.
    :param name: the argument's name, used in error messages.
    :return: ``packed`` as a C-contiguous array.
    :raises CodeError: for another dtype, shape or non-zero padding.
    """
    arr = np.asarray(packed)
    n_bytes = -(-n_bits // 8)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != n_bytes:
        raise CodeError(
            f"{name} must be a [N, {n_bytes}] uint8 array for {n_bits}-bit codes, "
            f"got {arr.dtype} {arr.shape}"
        )
    pad = n_bytes * 8 - n_bits
    if pad and arr.shape[0] and (arr[:, -1] & np.uint8((1 << pad) - 1)).any():
        raise CodeError(f"{name} have non-zero padding bits past bit {n_bits}")
    return np.ascontiguousarray(arr)


def packed_to_words(packed: np.ndarray) -> np.ndarray:
    """Packed bytes (:func:`pack`) to 64-bit words (:func:`pack_words`), without unpacking."""
    packed = np.asarray(packed, dtype=np.uint8)
    n, n_bytes = packed.shape
    n_words = max(1, -(-n_bytes // 8))
    padded = np.zeros((n, n_words * 8), dtype=np.uint8)
    padded[:, :n_bytes] = packed
    return padded.view(">u8").astype(np.uint64)


def pack_words(codes: np.ndarray) -> np.ndarray:
    """Codes packed into 64-bit words, ``[N, ceil(n_bits / 64)]`` ``uint64`` (zero padded).

    Equal bits give equal words, so ``popcount(a ^ b)`` summed over words is the Hamming distance.
    """
    bits = as_bits(codes)
    n, n_bits = bits.shape
    n_words = -(-n_bits // 64)
    padded = np.zeros((n, n_words * 64), dtype=np.uint8)
    padded[:, :n_bits] = bits
    return np.packbits(padded, axis=1).view(">u8").astype(np.uint64)


def hamming_words(
    qw: np.ndarray, dw: np.ndarray, dtype: np.typing.DTypeLike = np.uint16
) -> np.ndarray:
    """Hamming distances between word-packed codes (:func:`pack_words`), ``[Nq, Nd]``.

    No validation and no chunking: the building block for callers that manage memory themselves.

    :param qw: ``[Nq, W]`` ``uint64`` words.
    :param dw: ``[Nd, W]`` ``uint64`` words.
    :param dtype: result dtype; ``uint16`` by default, ``uint8`` (see :func:`distance_dtype`) is
        enough up to 255 bits and saves memory and a conversion.
    """
    if qw.shape[1] == 1:
        return _popcount(qw[:, :1] ^ dw[:, 0][None, :]).astype(dtype, copy=False)
    out = np.zeros((qw.shape[0], dw.shape[0]), dtype=dtype)
    for w in range(qw.shape[1]):
        out += _popcount(qw[:, w : w + 1] ^ dw[:, w][None, :])
    return out


def hamming(
    a: np.ndarray, b: np.ndarray, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> np.ndarray:
    """All pairwise Hamming distances ``H(a_i, b_j)``, ``[Na, Nb]`` ``uint16``.

    Codes may be 0/1 or ±1; rows of ``a`` are processed in chunks so that the intermediate
    arrays stay below ``chunk_bytes``.

    :raises CodeError: if the two sets have different code lengths or invalid values.
    """
    a_bits, b_bits = as_bits_pair(a, b)
    aw, bw = pack_words(a_bits), pack_words(b_bits)
    rows = max(1, chunk_bytes // max(1, 8 * bw.shape[0]))
    out = np.empty((aw.shape[0], bw.shape[0]), dtype=np.uint16)
    for start in range(0, aw.shape[0], rows):
        out[start : start + rows] = hamming_words(aw[start : start + rows], bw)
    return out


def hamming_paired(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distances ``H(a_i, b_i)`` of two equally long code sets, ``[N]`` int64.

    Accepts 0/1 or ±1 codes; used by the environments' rewards on batches of code pairs.
    """
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.shape != b_arr.shape:
        raise CodeError(f"paired codes must have the same shape, got {a_arr.shape} and {b_arr.shape}")
    return hamming_bits_paired(as_bits(a_arr, name="a"), as_bits(b_arr, name="b"))


def hamming_bits_paired(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distances of trusted 0/1 bits, ``[...]`` int64 (reduced over the last axis).

    The unvalidated fast path of :func:`hamming_paired` for hot loops (the environments' per-step
    rewards): ``a`` and ``b`` must already be ``uint8`` (or bool) 0/1 arrays of the same shape,
    e.g. the output of :func:`as_bits` or bits an environment wrote itself. Nothing is checked:
    other values give meaningless distances.

    :param a: ``[..., k]`` 0/1 bits.
    :param b: ``[..., k]`` 0/1 bits, same shape as ``a``.
    :return: ``sum_j a[..., j] XOR b[..., j]``.
    """
    return np.add.reduce(np.bitwise_xor(a, b), axis=-1, dtype=np.int64)
