"""Hostile inputs of issue 30: declared sizes, types, wording, and crafted files that never run
code.

The tables follow ``tests/test_hostile_inputs.py`` (whose helpers they use): an API row is
``(id, case, error, message)``, where ``case(f)`` writes its input files through ``f`` and makes
the call, which must raise ``error`` matching ``message`` and leave the files unchanged. A CLI
row is ``(id, argv, message)``: ``hashgym.cli.main`` must exit with status 2, print ``message``
to stderr and write nothing. Rows are grouped by the class of problem they belong to; the
first rows of a class are the examples the probe found, the others cases of the same kind.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_hostile_inputs import (
    BANK,
    NARROW,
    Case,
    Inputs,
    _central,
    _hier,
    _npy,
    _refused,
    _rezip,
    _step,
    _table,
)
from test_hostile_inputs import test_cli_paths as _cli_refused

from hashgym.agents.encode import EncodeError, encode
from hashgym.agents.registry import TrainError
from hashgym.agents.saving import (
    MODEL_INFO,
    ModelFileError,
    load_model,
    load_replay_buffer,
    save_model,
)
from hashgym.agents.train import train
from hashgym.bank import MAX_META_DEPTH, BankError, FeatureBank
from hashgym.cli import main
from hashgym.codefile import CodeFileError, load_code_file, load_codes
from hashgym.datasets import DatasetError, load_cifar100_npz
from hashgym.envs import HashEnvError
from hashgym.images import ImageError, attach_images
from hashgym.index import CodeIndex, CodeIndexError
from hashgym.protocols import resolve_bank

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return Inputs(tmp_path)


# ------------------------------------------------------------------------------- crafting
def _npz(members: dict[str, bytes], compress: bool = False) -> bytes:
    """A zip of ``.npy`` members (their bytes as given), in the order given."""
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return out.getvalue()


def _bank_members(**replace: bytes) -> dict[str, bytes]:
    """:data:`BANK`'s members as ``.npy`` bytes, some replaced, features first."""
    members = {f"{k}.npy": _npy(v) for k, v in BANK.to_arrays().items()}
    members = {"features.npy": members.pop("features.npy"), **members}
    members.update({f"{k}.npy": v for k, v in replace.items()})
    return members


def _cut(array: np.ndarray, keep: float = 0.5) -> bytes:
    """``array``'s ``.npy`` bytes with its data cut to ``keep`` of its length."""
    data = _npy(array)
    header = len(data) - array.nbytes
    return data[:header + int(array.nbytes * keep)]


def _short_member(f: Inputs, member: str = "features", compress: bool = False) -> Path:
    """A bank whose ``member`` holds half the bytes its header declares, followed by a member
    of small values that a memory map of the short one would read as its rest."""
    arrays = BANK.to_arrays()
    members = _bank_members(**{member: _cut(arrays[member])})
    members["padding.npy"] = _npy(np.full(1 << 16, 7, np.uint8))
    if member == "features":
        members = {"features.npy": members.pop("features.npy"),
                   "padding.npy": members.pop("padding.npy"), **members}
    return f.file("short.npz", _npz(members, compress))


def _size_lies(f: Inputs) -> Path:
    """:func:`_short_member`'s bank with the archive's directory claiming the short member's
    full size, so that only the member's own extent in the file shows it is short."""
    data = bytearray(_short_member(f).read_bytes())
    name = b"features.npy"
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + len(name)] != name:
        entry = data.find(b"PK\x01\x02", entry + 4)
    full = len(_npy(BANK.features))
    data[entry + 24:entry + 28] = full.to_bytes(4, "little")  # its uncompressed size
    return f.file("short.npz", bytes(data))


def _damaged_stream(f: Inputs) -> Path:
    """A compressed bank whose features member's deflate stream is damaged at its start."""
    data = bytearray(BANK.save(f.folder / "whole.npz", compress=True).read_bytes())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("features.npy")
    extra = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + len(info.filename) + extra
    data[start:start + 3] = bytes(b ^ 0xFF for b in data[start:start + 3])
    return f.file("bank.npz", bytes(data))


def _declaring(shape: tuple[int, ...], dtype: Any = np.float32) -> bytes:
    """``.npy`` bytes whose header declares ``shape`` but whose data is one value."""
    data = _npy(np.zeros(1, dtype))
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, dtype))
    header["shape"] = shape
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + data[-np.dtype(dtype).itemsize:]


def _huge_bank(f: Inputs, member: str = "features", compress: bool = False) -> Path:
    """A bank of a few KiB whose ``member`` declares a 364 TiB matrix."""
    shape = (100_000_000_000, 1000) if member == "features" else (100_000_000_000_000, 1)
    dtype = np.float32 if member == "features" else np.int64
    return f.file("huge.npz", _npz(_bank_members(**{member: _declaring(shape, dtype)}),
                                   compress))


def _faiss(d: int = 16, n: int = 3, ntotal: int | None = None, code_size: int | None = None,
           nbytes: int | None = None, cut: int | None = None) -> bytes:
    """FAISS's ``IndexBinaryFlat`` file of ``n`` codes of ``d`` bits, with header fields
    optionally replaced (written by hand: the layout FAISS writes, without FAISS)."""
    size = d // 8 if code_size is None else code_size
    codes = bytes(n * (d // 8))
    head = (b"IBxF" + d.to_bytes(4, "little") + size.to_bytes(4, "little")
            + (n if ntotal is None else ntotal).to_bytes(8, "little") + b"\x01"
            + (1).to_bytes(4, "little")
            + (len(codes) if nbytes is None else nbytes).to_bytes(8, "little"))
    data = head + codes
    return data if cut is None else data[:cut]


def _needs_faiss() -> None:
    pytest.importorskip("faiss")


def _index(f: Inputs) -> Path:
    """A small code index file: 20 codes of 16 bits."""
    index = CodeIndex(16, backend="numpy")
    index.add(np.random.default_rng(0).integers(0, 2, (20, 16)))
    return f.file("index.npz", index.save(f.folder / "built.npz").read_bytes())


def _codes_file(f: Inputs, name: str, array: np.ndarray) -> Path:
    return f.file(name, _npy(array))


@functools.cache
def _reinforce_bytes() -> bytes:
    """A REINFORCE model trained for 0 steps on :data:`NARROW`, as model-file bytes."""
    torch.set_num_threads(1)
    model = train("reinforce", "CentralHash-v0", {"bank": NARROW, "n_bits": 8},
                  total_timesteps=0, num_envs=2).model
    with tempfile.TemporaryDirectory() as tmp:
        return save_model(model, Path(tmp) / "model.zip", model.hashgym_info).read_bytes()


def _reinforce(f: Inputs, data: bytes | None = None,
               edit_data: Callable[[dict], Any] | None = None) -> Path:
    """A REINFORCE model file whose ``data`` entry is ``data``, or edited by ``edit_data``."""
    raw = _reinforce_bytes()
    if edit_data is not None:
        parsed = json.loads(zipfile.ZipFile(io.BytesIO(raw)).read("data"))
        edit_data(parsed)
        data = json.dumps(parsed).encode()
    return f.file("reinforce.zip", raw if data is None else _rezip(raw, {"data": data}))


def _edit(path: Callable[[dict], Any], value: Any) -> Callable[[dict], None]:
    """An ``edit`` for :meth:`Inputs.model` that sets one entry of ``hashgym.json``."""
    def edit(info: dict) -> None:
        holder, key = path(info)
        holder[key] = value
    return edit


def _policy_kwargs(info: dict) -> dict:
    return info["algo_kwargs"]["policy_kwargs"]


def _nested(depth: int, leaf: Any = 0, key: str | None = None) -> Any:
    """A JSON value ``depth`` lists (or objects under ``key``) deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value] if key is None else {key: value}
    return value


def _deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


@contextlib.contextmanager
def _unreadable(path: Path) -> Iterator[Path]:
    """``path`` with mode 000. Root reads any file regardless of its mode, so for root the
    refusal ``os.access`` would give any other user is simulated for this path."""
    path.chmod(0)
    real = os.access
    try:
        if os.geteuid() == 0:
            def access(target: Any, mode: int, **kwargs: Any) -> bool:
                if Path(target) == path and mode & os.R_OK:
                    return False
                return real(target, mode, **kwargs)
            with mock.patch("os.access", access):
                yield path
        else:
            yield path
    finally:
        path.chmod(0o644)


def _load_unreadable(path: Path, load: Callable[[Path], Any]) -> Any:
    with _unreadable(path):
        return load(path)


# ------------------------------------------------------------- 1. silent acceptance (mmap)
SILENT: list[Case] = [
    ("short-member-mmap", lambda f: FeatureBank.load(_short_member(f), mmap=True), BankError,
     (r"cannot read bank .*short\.npz: features\.npy declares a float32 array of shape "
      r"\(240, 32\) \(30\.0 KiB\) but holds 15\.0 KiB: the file is truncated, corrupted or "
      r"crafted")),
    ("short-member-mmap-unverified", lambda f: FeatureBank.load(_short_member(f), mmap=True,
                                                                verify=False),
     BankError, r"features\.npy declares a float32 array of shape \(240, 32\)"),
    ("short-member-resolve-mmap", lambda f: resolve_bank(str(_short_member(f)), mmap=True),
     BankError, r"features\.npy declares a float32 array of shape \(240, 32\)"),
    ("short-member-compressed-mmap", lambda f: FeatureBank.load(
        _short_member(f, compress=True), mmap=True),
     BankError, r"features\.npy declares a float32 array of shape \(240, 32\)"),
    ("member-size-lies-mmap", lambda f: FeatureBank.load(_size_lies(f), mmap=True), BankError,
     (r"features\.npy declares a float32 array of shape \(240, 32\) \(30\.0 KiB\) but holds "
      r"15\.0 KiB: the file is truncated, corrupted or crafted")),
    ("member-size-lies-plain", lambda f: FeatureBank.load(_size_lies(f)), BankError,
     r"cannot read bank .*short\.npz: the file is truncated or corrupted"),
    ("compressed-stream-damaged", lambda f: FeatureBank.load(_damaged_stream(f)), BankError,
     (r"cannot read bank .*bank\.npz: the file is truncated or corrupted \(features\.npy: "
      r"Error -3 while decompressing")),
    ("compressed-stream-damaged-mmap", lambda f: FeatureBank.load(_damaged_stream(f), mmap=True),
     BankError, r"the file is truncated or corrupted \(features\.npy: Error -3"),
    ("short-labels-member-mmap", lambda f: FeatureBank.load(_short_member(f, "labels"),
                                                            mmap=True),
     BankError, r"labels\.npy declares a int16 array of shape \(240, 2\)"),
]


@_table(SILENT)
def test_silent_acceptance(inputs: Inputs, case: Callable, error: type[Exception],
                           message: str) -> None:
    _refused(inputs, case, error, message)


def test_memory_mapped_bank_documents_changes_on_disk() -> None:
    doc = FeatureBank.load.__doc__ or ""
    assert "changed or replaced on disk after loading" in doc and "NaN" in doc


# ------------------------------------------------------- 2. declared sizes trusted first
def _model(f: Inputs, edit: Callable[[dict], Any]) -> Any:
    return load_model(f.model(edit=edit))


def _budget(shape: str) -> str:
    return (rf"hashgym\.json declares a larger model than its weights back: building it would "
            rf"create a tensor of shape \({shape}\), [\d,]+ values in all so far, while the "
            rf"weights file holds [\d,]+; the file is damaged or crafted")


SIZES: list[Case] = [
    ("bank-declares-364TiB", lambda f: FeatureBank.load(_huge_bank(f)), BankError,
     (r"cannot read bank .*huge\.npz: features\.npy declares a float32 array of shape "
      r"\(100000000000, 1000\) \(363\.8 TiB\) but holds 4 B")),
    ("bank-declares-364TiB-mmap", lambda f: FeatureBank.load(_huge_bank(f), mmap=True),
     BankError, r"features\.npy declares a float32 array of shape \(100000000000, 1000\)"),
    ("bank-declares-364TiB-compressed", lambda f: FeatureBank.load(_huge_bank(f, compress=True)),
     BankError, r"features\.npy declares a float32 array .* \(363\.8 TiB\) but holds 4 B"),
    ("bank-labels-declare-huge", lambda f: FeatureBank.load(_huge_bank(f, "labels")),
     BankError, r"labels\.npy declares a int64 array of shape \(100000000000000, 1\)"),
    ("codes-file-declares-huge", lambda f: load_code_file(
        f.file("codes.npy", _declaring((10**12, 64), np.uint8))),
     CodeFileError, (r"cannot read codes file .*codes\.npy: it declares a uint8 array of shape "
                      r"\(1000000000000, 64\) \(58\.2 TiB\) but holds 1 B")),
    ("index-file-declares-huge", lambda f: CodeIndex.load(f.file("index.npz", _npz({
        "format.npy": _npy(np.array("hashgym-codeindex/1")), "n_bits.npy": _npy(np.array(16)),
        "codes.npy": _declaring((10**12, 2), np.uint8)}))),
     CodeIndexError, r"codes\.npy declares a uint8 array of shape \(1000000000000, 2\)"),
    ("codes-npz-declares-huge-load_codes", lambda f: load_codes(f.file("codes.npz", _npz({
        "codes.npy": _declaring((10**12, 64), np.uint8), "rows.npy": _npy(np.arange(3)),
        "meta.npy": _npy(np.array("{}"))}))),
     CodeFileError, r"cannot read codes file .*codes\.npz: codes\.npy declares a uint8 array"),
    ("image-file-declares-huge", lambda f: attach_images(BANK, f.file("images.npz", _npz({
        "images.npy": _declaring((10**9, 32, 32, 3), np.uint8)}))),
     ImageError, (r"cannot read image file .*images\.npz: images\.npy declares a uint8 array "
                  r"of shape \(1000000000, 32, 32, 3\) \(2\.8 TiB\)")),
    ("cifar-images-declare-huge", lambda f: load_cifar100_npz(f.file("cifar.npz", _npz({
        "images.npy": _declaring((10**9, 32, 32, 3), np.uint8)}))),
     DatasetError, r"cannot read CIFAR-100 image file .*cifar\.npz: images\.npy declares"),
    ("replay-buffer-declares-huge", lambda f: load_replay_buffer(mock.Mock(), f.file(
        "buffer.npz", _npz({"buffer_size.npy": _npy(np.array(1)),
                            "actions.npy": _declaring((10**12, 1), np.int64)}))),
     ModelFileError, r"cannot read replay buffer .*buffer\.npz: actions\.npy declares"),
    ("faiss-39-bytes-declares-2**39", lambda f: (_needs_faiss(), CodeIndex.load(
        f.file("i.faiss", _faiss(nbytes=2**39))))[1],
     CodeIndexError, (r"cannot read FAISS index file .*i\.faiss: its header declares 3 codes of "
                      r"2 bytes \(549,755,813,888 bytes of codes\) but the file holds 6 bytes")),
    ("faiss-ntotal-2**38", lambda f: (_needs_faiss(), CodeIndex.load(
        f.file("i.faiss", _faiss(n=0, ntotal=2**38, nbytes=2**39))))[1],
     CodeIndexError, r"its header declares 274,877,906,944 codes of 2 bytes"),
    ("faiss-code-size-wrong", lambda f: (_needs_faiss(), CodeIndex.load(
        f.file("i.faiss", _faiss(code_size=2**30))))[1],
     CodeIndexError, r"declares d=16, code_size=1073741824, ntotal=3, which do not fit together"),
    ("faiss-header-cut", lambda f: (_needs_faiss(), CodeIndex.load(
        f.file("i.faiss", _faiss(cut=20))))[1],
     CodeIndexError, r"it is truncated \(20 bytes, the header alone is 33\)"),
    ("search-k-10**12-api", lambda f: CodeIndex.load(_index(f)).search(np.zeros((4, 16)), 10**12),
     CodeIndexError, (r"k=1,000,000,000,000 for 4 queries .* this index holds 20 codes, so a k "
                      r"above that only adds padding\) would need at least 43\.7 TiB of memory")),
    ("search-k-10**15-numpy", lambda f: CodeIndex.load(_index(f), backend="numpy").search(
        np.zeros(16), 10**15), CodeIndexError, r"k=1,000,000,000,000,000 for 1 queries"),
    ("num_envs-10**12", lambda f: gym.make_vec("HierHash-v0", num_envs=10**12, bank=BANK),
     HashEnvError, (r"num_envs=1,000,000,000,000 would need at least 232\.8 TiB of memory, more "
                    r"than this machine's")),
    ("num_envs-10**12-central", lambda f: gym.make_vec("CentralHash-v0", num_envs=10**12,
                                                       bank=BANK),
     HashEnvError, r"num_envs=1,000,000,000,000 would need at least 232\.8 TiB"),
    ("num_envs-10**11-triplet", lambda f: gym.make_vec("HierHash-v0", num_envs=10**11, bank=BANK,
                                                       mode="triplet"),
     HashEnvError, r"num_envs=100,000,000,000 would need at least"),
    ("n_bits-2**33", lambda f: _hier(n_bits=2**33, bits_per_step=16), HashEnvError,
     r"n_bits=8,589,934,592 would need at least 40\.0 GiB of memory"),
    ("n_bits-2**40-central", lambda f: _central(n_bits=2**40), HashEnvError,
     r"n_bits=1,099,511,627,776 would need at least 5\.0 TiB of memory"),
    ("n_constraints-10**12", lambda f: _hier(n_constraints=10**12), HashEnvError,
     r"n_constraints=1,000,000,000,000 would need at least 21\.8 TiB of memory"),
    ("n_constraints-10**12-second-level", lambda f: _hier(n_constraints=(10, 10**12),
                                                          level=1, prev_codes=np.zeros((192, 12))),
     HashEnvError, r"n_constraints=1,000,000,000,000 would need"),
    ("n_constraints-10**13-triplet", lambda f: _hier(n_constraints=10**13, mode="triplet"),
     HashEnvError, r"n_constraints=10,000,000,000,000 would need"),
    ("n_constraints-10**12-vec", lambda f: gym.make_vec("HierHash-v0", num_envs=2, bank=BANK,
                                                        n_constraints=10**12),
     HashEnvError, r"n_constraints=1,000,000,000,000 would need"),
    ("model-Discrete-10**13", lambda f: _model(f, _edit(lambda i: (i["action_space"], "n"),
                                                        10**13)),
     ModelFileError, _budget("10000000000000, 256")),
    ("model-net_arch-10**12", lambda f: _model(f, _edit(lambda i: (_policy_kwargs(i),
                                                                   "net_arch"), [10**12])),
     ModelFileError, _budget(r"1000000000000, \d+")),
    ("model-net_arch-moderate", lambda f: _model(f, _edit(lambda i: (_policy_kwargs(i),
                                                                     "net_arch"),
                                                          [20000, 20000])),
     ModelFileError, _budget(r"20000, \d+")),
    ("model-projection_dim-huge", lambda f: _model(f, _edit(
        lambda i: (_policy_kwargs(i)["features_extractor_kwargs"], "projection_dim"), 10**9)),
     ModelFileError, _budget(r"1000000000, 128")),
    ("model-Discrete-moderate", lambda f: _model(f, _edit(lambda i: (i["action_space"], "n"),
                                                          2**20)),
     ModelFileError, _budget("1048576, 256")),
    ("model-Box-shape-beyond-its-bounds", lambda f: _model(f, _edit(
        lambda i: (i["observation_space"]["spaces"]["features"], "shape"), [10**12])),
     ModelFileError, (r"a Box space in the model file declares shape \(1000000000000,\) but its "
                      r"bounds have shapes \(128,\) and \(128,\)")),
    ("reinforce-hidden_size-huge", lambda f: load_model(_reinforce(
        f, edit_data=lambda d: d["policy_kwargs"].update(hidden_size=10**7))),
     ModelFileError, r"declares a larger model than its weights back"),
]


@_table(SIZES)
def test_declared_sizes(inputs: Inputs, case: Callable, error: type[Exception],
                        message: str) -> None:
    _refused(inputs, case, error, message)


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
def test_radius_beyond_the_code_length_finds_every_code(inputs: Inputs, backend: str) -> None:
    """No two 16-bit codes differ in more than 16 bits: radius 10**12 means every code (FAISS
    took it as an int and failed)."""
    if backend == "faiss":
        _needs_faiss()
    index = CodeIndex.load(_index(inputs), backend=backend)
    lims, distances, ids = index.range_search(np.zeros((2, 16)), 10**12)
    assert lims.tolist() == [0, 20, 40]
    assert sorted(ids[:20].tolist()) == list(range(20))
    assert np.array_equal(distances, index.range_search(np.zeros((2, 16)), 16)[1])


# ------------------------------------------------------- 3. model files of the wrong type
def _json_entry(key: str, kind: str) -> str:
    return rf"model\.zip: hashgym\.json entry '{key}' must be {kind}.*, got "


MODEL_TYPES: list[Case] = [
    ("policy-an-object", lambda f: _model(f, _edit(lambda i: (i, "policy"), {"a": 1})),
     ModelFileError, (r"model\.zip: hashgym\.json entry 'policy' must be a policy name or "
                      r"\{\"class\": \"module:Name\"\}, got \{'a': 1\}")),
    ("num_timesteps-not-an-integer", lambda f: _model(f, _edit(lambda i: (i, "num_timesteps"),
                                                               "x")),
     ModelFileError, _json_entry("num_timesteps", "a non-negative integer") + ".*'x'"),
    ("reinforce-data-not-json", lambda f: load_model(_reinforce(f, b"{not json")),
     ModelFileError, (r"reinforce\.zip: its 'data' entry is not valid JSON \(JSONDecodeError\); "
                      r"the file is damaged")),
    ("env_kwargs.bank-a-number", lambda f: _model(f, _edit(lambda i: (i["env_kwargs"], "bank"),
                                                           5)),
     ModelFileError, _json_entry("env_kwargs.bank", "a bank path or preset name") + ".*5$"),
    ("policy_kwargs-a-string", lambda f: _model(f, _edit(
        lambda i: (i["algo_kwargs"], "policy_kwargs"), "x")),
     ModelFileError, _json_entry("algo_kwargs.policy_kwargs", r"a JSON object \(the policy's "
                                                              r"arguments\) or null")),
    ("model-path-a-folder", lambda f: load_model(f.folder_named("run")),
     ModelFileError, (r"run is a folder, not a model file: give the model's \.zip \(a training "
                      r"run's folder holds it as model\.zip\)")),
    ("num_timesteps-negative", lambda f: _model(f, _edit(lambda i: (i, "num_timesteps"), -1)),
     ModelFileError, _json_entry("num_timesteps", "a non-negative integer") + "-1"),
    ("num_timesteps-float", lambda f: _model(f, _edit(lambda i: (i, "num_timesteps"), 1.5)),
     ModelFileError, _json_entry("num_timesteps", "a non-negative integer") + r"1\.5"),
    ("num_timesteps-bool", lambda f: _model(f, _edit(lambda i: (i, "num_timesteps"), True)),
     ModelFileError, _json_entry("num_timesteps", "a non-negative integer") + "True"),
    ("env_id-a-number", lambda f: _model(f, _edit(lambda i: (i, "env_id"), 7)),
     ModelFileError, _json_entry("env_id", r"a string \(a registered env id\)") + "7"),
    ("flatten_obs-a-string", lambda f: _model(f, _edit(lambda i: (i, "flatten_obs"), "yes")),
     ModelFileError, _json_entry("flatten_obs", "true, false or null") + "'yes'"),
    ("policy-a-list", lambda f: _model(f, _edit(lambda i: (i, "policy"), ["MlpPolicy"])),
     ModelFileError, _json_entry("policy", "a policy name")),
    ("policy-class-with-extra-keys", lambda f: _model(f, _edit(
        lambda i: (i, "policy"), {"class": "stable_baselines3.dqn:MultiInputPolicy", "x": 1})),
     ModelFileError, r"entry 'policy' must be a policy name or \{\"class\""),
    ("env_kwargs.bank-a-list", lambda f: _model(f, _edit(lambda i: (i["env_kwargs"], "bank"),
                                                         ["a.npz"])),
     ModelFileError, _json_entry("env_kwargs.bank", "a bank path")),
    ("action_space-a-list", lambda f: _model(f, _edit(lambda i: (i, "action_space"), [8])),
     ModelFileError, _json_entry("action_space", r"a JSON object \(a space\)")),
    ("Discrete-n-a-string", lambda f: _model(f, _edit(lambda i: (i["action_space"], "n"), "8")),
     ModelFileError, r"Discrete n in the model file must be positive integers, got \['8'\]"),
    ("Box-dtype-unknown", lambda f: _model(f, _edit(
        lambda i: (i["observation_space"]["spaces"]["t"], "dtype"), "float99")),
     ModelFileError, r"malformed Box space in model file \(TypeError: data type 'float99'"),
    ("reinforce-data-a-list", lambda f: load_model(_reinforce(f, b"[1, 2]")),
     ModelFileError, r"reinforce\.zip: its 'data' entry must hold a JSON object, got an array"),
    ("reinforce-data-not-utf8", lambda f: load_model(_reinforce(f, b"\xff\xfe{")),
     ModelFileError, r"its 'data' entry is not valid JSON \(UnicodeDecodeError\)"),
    ("reinforce-policy_kwargs-a-string", lambda f: load_model(_reinforce(
        f, edit_data=lambda d: d.update(policy_kwargs="x"))),
     ModelFileError, r"reinforce\.zip: cannot rebuild the reinforce model from hashgym\.json"),
]


@_table(MODEL_TYPES)
def test_model_file_types(inputs: Inputs, case: Callable, error: type[Exception],
                          message: str) -> None:
    _refused(inputs, case, error, message)


# ---------------------------------------------------------------- 4. env argument types
ENV_TYPES: list[Case] = [
    ("bank-a-number", lambda f: gym.make("HierHash-v0", bank=5), BankError,
     "bank must be a FeatureBank, a bank file path or a preset name, got int 5"),
    ("bank-a-dict", lambda f: gym.make("HierHash-v0", bank={"features": [1]}), BankError,
     r"bank must be a FeatureBank, a bank file path or a preset name, got dict \{'features'"),
    ("protocol_seed-a-string", lambda f: _hier(protocol="holdout", protocol_seed="x"),
     HashEnvError, "protocol_seed must be an integer, got 'x'"),
    ("reset-options-a-list", lambda f: _hier().reset(options=[1]), HashEnvError,
     r"reset options must be a dict such as \{'indices': rows\} or None, got list \[1\]"),
    ("step-action-of-shape-1", lambda f: _step(_hier(), np.array([3])), HashEnvError,
     r"the action must be one integer in 0\.\.7 \(shape \(\)\), got an array of shape \(1,\)"),
    ("bank-a-float-central", lambda f: gym.make("CentralHash-v0", bank=3.5), BankError,
     "bank must be a FeatureBank, a bank file path or a preset name, got float 3.5"),
    ("bank-a-list-vec", lambda f: gym.make_vec("HierHash-v0", num_envs=2, bank=["b.npz"]),
     BankError, r"got list \['b\.npz'\]"),
    ("bank-a-number-resolve", lambda f: resolve_bank(7), BankError, "got int 7"),
    ("bank-a-number-encode", lambda f: encode(f.model(), bank=5), BankError, "got int 5"),
    ("protocol_seed-a-float-central", lambda f: _central(protocol_seed=1.5), HashEnvError,
     r"protocol_seed must be an integer, got 1\.5"),
    ("protocol_seed-negative", lambda f: _hier(protocol="holdout", protocol_seed=-1),
     HashEnvError, "protocol_seed must be >= 0, got -1"),
    ("protocol-seed-a-string-resolve", lambda f: resolve_bank(BANK, "holdout", seed="x"),
     BankError, r"the seed of protocol 'holdout' \(--seed\) must be an integer, got 'x'"),
    ("reset-options-a-string", lambda f: _central().reset(options="indices"), HashEnvError,
     "reset options must be a dict .* got str 'indices'"),
    ("reset-options-a-list-vec", lambda f: gym.make_vec("HierHash-v0", num_envs=2, bank=BANK)
     .reset(options=[1]), HashEnvError, r"reset options must be a dict .* got list \[1\]"),
    ("step-action-2d", lambda f: _step(_hier(), np.array([[1]])), HashEnvError,
     r"must be one integer in 0\.\.7 \(shape \(\)\), got an array of shape \(1, 1\)"),
    ("step-bits-batched", lambda f: _step(_central(n_bits=8), np.zeros((1, 8))), HashEnvError,
     r"the action must be 8 binary values \(shape \(8,\)\), got an array of shape \(1, 8\)"),
    ("step-probabilities-short", lambda f: _step(_central(n_bits=8, action_type="probability"),
                                                 np.zeros(4)),
     HashEnvError, r"must be 8 probability values \(shape \(8,\)\), got an array of shape \(4,\)"),
]


@_table(ENV_TYPES)
def test_env_argument_types(inputs: Inputs, case: Callable, error: type[Exception],
                            message: str) -> None:
    _refused(inputs, case, error, message)


# ------------------------------------------------------------------------- 5. wording
WORDING: list[Case] = [
    ("codes-file-1d", lambda f: load_code_file(_codes_file(f, "q.npy", np.zeros(12, np.uint8))),
     CodeFileError, (r"q\.npy must hold one code per row, a 2-D \[n_codes, n_bits\] array; it "
                      r"holds a 1-D array of shape \(12,\) \(one code of 12 bits\? save it with "
                      r"shape \(1, 12\)\)")),
    ("bank-mode-000", lambda f: _load_unreadable(f.bank(), FeatureBank.load), BankError,
     r"cannot read bank .*bank\.npz: permission denied \(the file's mode is 000\)"),
    ("codes-file-3d", lambda f: load_code_file(_codes_file(f, "q.npy", np.zeros((2, 3, 4)))),
     CodeFileError, r"it holds a 3-D array of shape \(2, 3, 4\)$"),
    ("codes-file-0d", lambda f: load_code_file(_codes_file(f, "q.npy", np.array(1))),
     CodeFileError, r"it holds a 0-D array of shape \(\)$"),
    ("codes-npz-1d", lambda f: load_code_file(f.npz("q.npz", codes=np.zeros(8))),
     CodeFileError, r"q\.npz must hold one code per row.*1-D array of shape \(8,\)"),
    ("bank-mode-000-mmap", lambda f: _load_unreadable(
        f.bank(), lambda p: FeatureBank.load(p, mmap=True)), BankError, "permission denied"),
    ("bank-mode-000-resolve", lambda f: _load_unreadable(
        f.bank(), lambda p: resolve_bank(str(p))), BankError, "permission denied"),
    ("bank-path-a-folder", lambda f: FeatureBank.load(f.folder_named("bank.npz")), BankError,
     r"bank\.npz is a folder, not a bank file: give the bank's \.npz"),
    ("bank-path-a-folder-resolve", lambda f: resolve_bank(str(f.folder_named("bank.npz"))),
     BankError, r"bank\.npz is a folder, not a bank file"),
    ("model-mode-000", lambda f: _load_unreadable(f.model(), load_model), ModelFileError,
     r"cannot read model file .*model\.zip: permission denied"),
]


@_table(WORDING)
def test_wording(inputs: Inputs, case: Callable, error: type[Exception], message: str) -> None:
    _refused(inputs, case, error, message)


CliCase = tuple[str, Callable[[Inputs], list[Any]], str]
CLI: list[CliCase] = [
    ("search-k-10**12", lambda f: ["search", _index(f),
                                   _codes_file(f, "q.npy", np.zeros((48, 16), np.uint8)),
                                   "--k", str(10**12)],
     (r"^hashgym search: error: k=1,000,000,000,000 for 48 queries .* would need at least "
      r"523\.9 TiB of memory")),
    ("index-search-k-10**13", lambda f: ["index", "search", _index(f),
                                         _codes_file(f, "q.npy", np.zeros((2, 16), np.uint8)),
                                         "--k", str(10**13)],
     r"^hashgym index search: error: k=10,000,000,000,000 for 2 queries"),
    ("eval-codes-1d", lambda f: ["eval", _codes_file(f, "q.npy", np.zeros(12, np.uint8)),
                                 _codes_file(f, "db.npy", np.zeros((192, 12), np.uint8)),
                                 "--bank", f.bank()],
     r"^hashgym eval: error: .*q\.npy must hold one code per row.*1-D array of shape \(12,\)"),
    ("search-query-1d", lambda f: ["search", _index(f),
                                   _codes_file(f, "q.npy", np.zeros(16, np.uint8)), "--k", "3"],
     r"^hashgym search: error: .*q\.npy must hold one code per row.*shape \(16,\)"),
    ("index-build-codes-1d", lambda f: ["index", "build",
                                        _codes_file(f, "c.npy", np.zeros(16, np.uint8)),
                                        "--out", f.folder / "i.npz"],
     r"^hashgym index build: error: .*c\.npy must hold one code per row"),
    ("bank-info-364TiB", lambda f: ["bank", "info", _huge_bank(f)],
     r"^hashgym bank info: error: cannot read bank .*declares a float32 array .*363\.8 TiB"),
    ("eval-codes-declare-huge", lambda f: ["eval", f.file("q.npy", _declaring((10**12, 12),
                                                                             np.uint8)),
                                           _codes_file(f, "db.npy", np.zeros((4, 12), np.uint8)),
                                           "--bank", f.bank()],
     r"^hashgym eval: error: cannot read codes file .*q\.npy: it declares"),
    ("search-faiss-declares-2**39", lambda f: (_needs_faiss(), [
        "search", f.file("i.faiss", _faiss(nbytes=2**39)),
        _codes_file(f, "q.npy", np.zeros((2, 16), np.uint8)), "--k", "3"])[1],
     r"^hashgym search: error: cannot read FAISS index file .*i\.faiss: its header declares"),
]


@pytest.mark.parametrize(("argv", "message"), [row[1:] for row in CLI], ids=[r[0] for r in CLI])
def test_cli(inputs: Inputs, capsys: pytest.CaptureFixture[str],
             argv: Callable[[Inputs], list[Any]], message: str) -> None:
    _cli_refused(inputs, capsys, argv, message)


# --------------------------------------------------- 6. read-only install without $HOME
_REFUSE_CACHE = """
import numba.core.caching as caching

def refuse(self):  # what numba meets when no cache folder is writable
    raise PermissionError(13, "Permission denied", self.get_cache_path())

caching._CacheLocator.ensure_cache_path = refuse
"""
_USE_KERNEL = """
import numpy as np
import hashgym.cli
from hashgym import kernels
from hashgym.metrics import mean_average_precision
rng = np.random.default_rng(0)
q, d = rng.integers(0, 2, (5, 16)), rng.integers(0, 2, (40, 16))
ql, dl = rng.integers(0, 3, 5), rng.integers(0, 3, 40)
print(kernels.AVAILABLE, mean_average_precision(q, d, ql, dl))
"""


def _without_home(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "NUMBA_CACHE_DIR",
                                                            "XDG_CACHE_HOME")}
    env.update(extra)
    return env


def _reference_map() -> str:
    from hashgym.metrics import mean_average_precision

    rng = np.random.default_rng(0)
    q, d = rng.integers(0, 2, (5, 16)), rng.integers(0, 2, (40, 16))
    ql, dl = rng.integers(0, 3, 5), rng.integers(0, 3, 40)
    return str(mean_average_precision(q, d, ql, dl))


@pytest.mark.parametrize("cli", [False, True], ids=["import", "cli-help"])
def test_imports_without_a_writable_numba_cache(cli: bool) -> None:
    """No writable cache folder and no $HOME (simulated for root, who may write anywhere):
    hashgym still imports, and the compiled kernel gives numpy's numbers."""
    pytest.importorskip("numba")
    code = _REFUSE_CACHE + (
        "import sys\nfrom hashgym.cli import main\nsys.argv = ['hashgym', '--help']\n"
        "raise SystemExit(main(['--help']))" if cli else _USE_KERNEL)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_without_home(), cwd=REPO, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    if not cli:
        assert done.stdout.split() == ["True", _reference_map()]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders; the simulated test covers it")
def test_read_only_copy_without_home_imports(tmp_path: Path) -> None:
    pytest.importorskip("numba")
    copy = tmp_path / "site"
    (copy / "hashgym").mkdir(parents=True)
    for source in (REPO / "hashgym").glob("*.py"):
        (copy / "hashgym" / source.name).write_bytes(source.read_bytes())
    for path in [copy / "hashgym", copy]:
        path.chmod(0o555)
    try:
        done = subprocess.run([sys.executable, "-c", "import hashgym.kernels"],
                              capture_output=True, text=True, check=False, timeout=300,
                              env=_without_home(PYTHONPATH=str(copy)), cwd=tmp_path)
    finally:
        for path in [copy, copy / "hashgym"]:
            path.chmod(0o755)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------------ 7. a model trained with --bank PATH
@pytest.fixture(scope="module")
def relative_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained (0 steps) in ``train/`` on ``bank.npz``, given as a relative path."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("relative")
    (root / "train").mkdir()
    NARROW.save(root / "train" / "bank.npz")
    here = Path.cwd()
    os.chdir(root / "train")
    try:
        train("dqn", "HierHash-v0", {"bank": "bank.npz"}, total_timesteps=0, num_envs=2,
              out="run")
    finally:
        os.chdir(here)
    return root


def _info(model: Path) -> dict:
    return json.loads(zipfile.ZipFile(model).read(MODEL_INFO))


def _without_bank_path(source: Path, target: Path) -> Path:
    """A copy of the model file ``source`` as written before ``bank_path`` was recorded."""
    info = _info(source)
    info.pop("bank_path")
    target.write_bytes(_rezip(source.read_bytes(), {MODEL_INFO: json.dumps(info).encode()}))
    return target


def test_relative_bank_is_recorded_and_found_from_another_folder(
        relative_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = relative_run / "train" / "run" / "model.zip"
    info = _info(model)
    assert info["env_kwargs"]["bank"] == "bank.npz"  # as given: the run's identity
    assert info["bank_path"] == str((relative_run / "train" / "bank.npz").resolve())
    elsewhere = relative_run / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    monkeypatch.chdir(elsewhere)
    codes = encode(model)
    assert codes.shape == (NARROW.indices("query").size, 12)
    monkeypatch.chdir(relative_run / "train")
    assert np.array_equal(encode(model), codes)
    monkeypatch.chdir(elsewhere)
    assert main(["encode", str(model), "--split", "query", "--out", "codes.npz"]) == 0
    with np.load(elsewhere / "codes.npz") as saved:
        assert np.array_equal(saved["codes"], codes)


def test_older_model_finds_its_bank_beside_it(relative_run: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = relative_run / "beside"
    folder.mkdir(exist_ok=True)
    (folder / "bank.npz").write_bytes((relative_run / "train" / "bank.npz").read_bytes())
    model = _without_bank_path(relative_run / "train" / "run" / "model.zip", folder / "m.zip")
    monkeypatch.chdir(relative_run)
    assert encode(model).shape == (NARROW.indices("query").size, 12)


MISSING_BANK = (r"the model's bank 'bank\.npz' \(recorded in its hashgym\.json as "
                r"env_kwargs\.bank, as given at training\) is not found; looked at .*bank\.npz, "
                r".*bank\.npz\. Pass {flag} with the bank's path")


@pytest.mark.parametrize("how", ["api", "cli", "api-bank_path-gone", "cli-bank_path-gone"])
def test_missing_relative_bank_says_where_it_came_from(
        relative_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        how: str) -> None:
    folder = relative_run / f"lost-{how}"
    folder.mkdir(exist_ok=True)
    source = relative_run / "train" / "run" / "model.zip"
    if how.endswith("gone"):  # the bank was moved after training
        info = _info(source)
        info["bank_path"] = str(folder / "moved" / "bank.npz")
        model = folder / "m.zip"
        model.write_bytes(_rezip(source.read_bytes(), {MODEL_INFO: json.dumps(info).encode()}))
    else:
        model = _without_bank_path(source, folder / "m.zip")
    monkeypatch.chdir(folder)
    if how.startswith("api"):
        with pytest.raises(EncodeError, match=MISSING_BANK.format(flag="bank=")):
            encode(model)
    else:
        assert main(["encode", str(model), "--out", "codes.npz"]) == 2
        err = capsys.readouterr().err
        assert re.search("^hashgym encode: error: " + MISSING_BANK.format(flag="--bank"), err), err
        assert not (folder / "codes.npz").exists()


# ------------------------------------------------------------------ 8. deep bank meta
def _meta_bank(f: Inputs, meta: str) -> Path:
    return f.npz("meta.npz", **{**BANK.to_arrays(), "meta": np.array(meta)})


DEEP: list[Case] = [
    ("bank-meta-100000-deep", lambda f: FeatureBank.load(_meta_bank(
        f, '{"a": ' + _deep_text(100_000) + "}")),
     BankError, (r"meta\.npz: meta is nested more than 100 levels deep \(lists or objects "
                 r"inside each other\); a bank's provenance is a few levels deep")),
    ("bank-meta-101-deep", lambda f: FeatureBank.load(_meta_bank(
        f, json.dumps({"a": _nested(100)}))), BankError, "meta is nested more than 100 levels"),
    ("bank-meta-objects-5000-deep", lambda f: FeatureBank.load(_meta_bank(
        f, json.dumps({"a": _nested(500, key="b")}))), BankError, "nested more than 100"),
    ("bank-meta-python-10000-deep", lambda f: BANK.replace(meta={"a": _nested(10_000)}),
     BankError, "meta is nested more than 100 levels deep"),
    ("bank-meta-mmap-deep", lambda f: FeatureBank.load(_meta_bank(
        f, '{"a": ' + _deep_text(50_000) + "}"), mmap=True), BankError, "nested more than 100"),
    ("model-info-100000-deep", lambda f: load_model(f.model(members={
        MODEL_INFO: b'{"format": 1, "algo": "dqn", "x": ' + _deep_text(100_000).encode() + b"}"})),
     ModelFileError, r"model\.zip: its hashgym\.json is nested more than 100 levels deep"),
    ("model-info-200-deep", lambda f: load_model(f.model(
        edit=lambda info: info.update(x=_nested(200)))),
     ModelFileError, "its hashgym.json is nested more than 100 levels deep"),
    ("reinforce-data-100000-deep", lambda f: load_model(_reinforce(
        f, b'{"x": ' + _deep_text(100_000).encode() + b"}")),
     ModelFileError, r"its 'data' entry is not valid JSON \(RecursionError\)"),
]


@_table(DEEP)
def test_deep_nesting(inputs: Inputs, case: Callable, error: type[Exception],
                      message: str) -> None:
    _refused(inputs, case, error, message)


def test_meta_at_the_depth_bound_loads(tmp_path: Path) -> None:
    bank = BANK.replace(meta={"a": _nested(MAX_META_DEPTH - 2)})
    assert FeatureBank.load(bank.save(tmp_path / "b.npz")).meta == bank.meta


# ---------------------------------------------------- 9. crafted files never run code
class _Marker:
    """Pickles to a call that creates the file ``path``: unpickling it runs code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def _pickled_npy(marker: Path) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Marker(marker)], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _torch_pickle(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"q_net.q_net.0.weight": _Marker(marker)}, buffer)
    return buffer.getvalue()


def _serialized(marker: Path) -> dict[str, str]:
    """An SB3 ``data`` entry as cloudpickle writes one, holding the marker."""
    return {":type:": "<class 'function'>",
            ":serialized:": base64.b64encode(pickle.dumps(_Marker(marker))).decode()}


def _module_on_path(f: Inputs, marker: Path) -> str:
    """A module, importable from the case's folder, that creates ``marker`` when imported."""
    (f.folder / "hashgym_probe_marker.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Policy:\n    pass\n")
    sys.path.insert(0, str(f.folder))
    return "hashgym_probe_marker:Policy"


def _replay_buffer(f: Inputs, marker: Path) -> Any:
    buffer = mock.Mock(buffer_size=1, n_envs=1)
    path = f.file("buffer.npz", _npz({
        "buffer_size.npy": _npy(np.array(1)), "n_envs.npy": _npy(np.array(1)),
        "actions.npy": _pickled_npy(marker)}))
    return load_replay_buffer(buffer, path)


NO_CODE: list[tuple[str, Callable[[Inputs, Path], Any], type[Exception], str]] = [
    ("bank-member-pickle", lambda f, m: FeatureBank.load(f.file("b.npz", _npz(
        _bank_members(features=_pickled_npy(m))))),
     BankError, "holds pickled Python objects, which hashgym never loads"),
    ("bank-member-pickle-mmap", lambda f, m: FeatureBank.load(f.file("b.npz", _npz(
        _bank_members(features=_pickled_npy(m)))), mmap=True),
     BankError, "holds pickled Python objects"),
    ("bank-meta-pickle", lambda f, m: FeatureBank.load(f.file("b.npz", _npz(
        _bank_members(meta=_pickled_npy(m))))),
     BankError, "holds pickled Python objects"),
    ("model-weights-pickle", lambda f, m: load_model(f.model(
        members={"policy.pth": _torch_pickle(m)})),
     ModelFileError, "weights are damaged or hold Python objects, which hashgym never unpickles"),
    ("model-optimizer-pickle", lambda f, m: load_model(f.model(
        members={"policy.optimizer.pth": _torch_pickle(m), "policy.pth": _torch_pickle(m)})),
     ModelFileError, "never unpickles"),
    ("model-policy-class-module", lambda f, m: load_model(f.model(edit=lambda info: info.update(
        policy={"class": _module_on_path(f, m)}))),
     ModelFileError, "refusing to import 'hashgym_probe_marker'"),
    ("model-extractor-class-module", lambda f, m: load_model(f.model(
        edit=lambda info: _policy_kwargs(info).update(
            features_extractor_class={"class": _module_on_path(f, m)}))),
     ModelFileError, "refusing to import 'hashgym_probe_marker'"),
    ("reinforce-weights-pickle", lambda f, m: load_model(f.file("r.zip", _rezip(
        _reinforce_bytes(), {"policy.pth": _torch_pickle(m)}))),
     ModelFileError, "never unpickles"),
    ("codes-file-pickle", lambda f, m: load_code_file(f.file("q.npy", _pickled_npy(m))),
     CodeFileError, "holds pickled Python objects, which hashgym never loads"),
    ("index-file-pickle", lambda f, m: CodeIndex.load(f.file("i.npz", _npz({
        "format.npy": _npy(np.array("hashgym-codeindex/1")), "n_bits.npy": _npy(np.array(16)),
        "codes.npy": _pickled_npy(m)}))),
     CodeIndexError, "cannot read code index file .*allow_pickle"),
    ("replay-buffer-pickle", _replay_buffer, ValueError, "allow_pickle"),
]


def test_marker_payload_runs_when_unpickled(tmp_path: Path) -> None:
    """The control: the payloads below are real, unpickling one creates its marker."""
    marker = tmp_path / "executed"
    pickle.loads(pickle.dumps(_Marker(marker)))
    assert marker.exists()


@pytest.mark.parametrize(("case", "error", "message"), [row[1:] for row in NO_CODE],
                         ids=[row[0] for row in NO_CODE])
def test_crafted_files_run_no_code(inputs: Inputs, case: Callable, error: type[Exception],
                                   message: str) -> None:
    marker = inputs.folder / "executed"
    try:
        with pytest.raises(error, match=message):
            case(inputs, marker)
    finally:
        if str(inputs.folder) in sys.path:
            sys.path.remove(str(inputs.folder))
    assert not marker.exists(), "loading the crafted file ran its code"
    assert "hashgym_probe_marker" not in sys.modules
    inputs.check_kept()


def test_cloudpickled_data_entries_are_never_unpickled(inputs: Inputs) -> None:
    """SB3's ``data`` entry holds cloudpickled objects; the REINFORCE loader replaces every one
    instead of unpickling it, so a crafted entry loads as ``None`` and runs nothing."""
    marker = inputs.folder / "executed"
    path = _reinforce(inputs, edit_data=lambda d: d.update(
        policy_class=_serialized(marker), lr_schedule=_serialized(marker),
        crafted=_serialized(marker)))
    model, _ = load_model(path)
    assert not marker.exists(), "loading the crafted file ran its code"
    assert model.crafted is None
    inputs.check_kept()


def test_checkpoint_state_declaring_huge_sizes_is_refused(tmp_path: Path) -> None:
    """A resumed run reads its checkpoint's state file; a member declaring more bytes than it
    holds is refused by name before anything is allocated."""
    torch.set_num_threads(1)
    run = {"algo": "dqn", "env_id": "HierHash-v0", "env_kwargs": {"bank": NARROW},
           "num_envs": 2, "out": tmp_path / "run", "checkpoint_every": 16,
           "algo_kwargs": {"learning_starts": 1000}}
    train(total_timesteps=32, **run)
    state = next((tmp_path / "run" / "checkpoints").glob("ckpt-*[0-9].npz"))
    with np.load(state, allow_pickle=False) as data:
        members = {f"{key}.npy": _npy(data[key]) for key in data.files}
    members["index.npy"] = _declaring((10**13,), np.int64)
    state.write_bytes(_npz(members))
    with pytest.raises(TrainError, match=(r"cannot read checkpoint state file .*ckpt-\d+\.npz: "
                                          r"index\.npy declares a int64 array of shape "
                                          r"\(10000000000000,\)")):
        train(total_timesteps=64, **run)
