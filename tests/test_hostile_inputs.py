"""Hostile and careless inputs get a clear error that names the problem (issue 14).

One table per area: banks, envs, metrics, model files and CLI paths. An API row is
``(id, case, error, message)``: ``case(f)`` writes any input files through ``f`` (an
:class:`Inputs`) and makes the call, which must raise ``error`` matching the regex ``message``;
the files must come out unchanged. A CLI row is ``(id, argv, message)``: ``hashgym.cli.main``
must exit with status 2, print ``message`` to stderr and write nothing. To add a case, add a row.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from hashgym.agents.encode import EncodeError, encode
from hashgym.agents.saving import MODEL_INFO, ModelFileError, load_model, resolve_class, save_model
from hashgym.agents.train import train
from hashgym.bank import BankError, FeatureBank
from hashgym.centers import CenterError
from hashgym.cli import main
from hashgym.codes import CodeError, distance_dtype
from hashgym.envs import HashEnvError
from hashgym.envs.hierhash import default_bits_per_step, default_margin
from hashgym.metrics import MetricError, evaluate, mean_average_precision, parse_metric
from hashgym.protocols import resolve_bank
from hashgym.ranking import rank
from hashgym.synthetic import make_hierarchical_bank, make_multilabel_bank

BANK = make_hierarchical_bank(seed=0)  # 240 images, 4 x 3 classes, 32-d; 192 train images
ML_BANK = make_multilabel_bank(seed=0)
NARROW = make_hierarchical_bank(dim=128, seed=0)  # the model files' bank
WIDE = make_hierarchical_bank(dim=512, seed=1)


class Inputs:
    """A case's input files, written into its temporary folder; :meth:`check_kept` asserts
    that each still holds the bytes it was written with."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: dict[Path, bytes] = {}

    def file(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        self.written[path] = data
        return path

    def npz(self, name: str, **arrays: Any) -> Path:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return self.file(name, buffer.getvalue())

    def bank(self, name: str = "bank.npz", bank: FeatureBank = BANK, compress: bool = False,
             damage: str | None = None) -> Path:
        """``bank`` saved as ``name``; ``damage`` names a member with one byte flipped."""
        data = bank.save(self.folder / name, compress=compress).read_bytes()
        return self.file(name, data if damage is None else _flip_byte(data, damage))

    def model(self, name: str = "model.zip", edit: Callable[[dict], Any] | None = None,
              members: dict[str, bytes] | None = None) -> Path:
        """A DQN model file of :data:`NARROW`: ``edit`` changes its ``hashgym.json`` in place,
        ``members`` replaces members' bytes."""
        data = _model_bytes()
        if edit is not None or members:
            info = json.loads(zipfile.ZipFile(io.BytesIO(data)).read(MODEL_INFO))
            if edit is not None:
                edit(info)
            members = {MODEL_INFO: json.dumps(info).encode(), **(members or {})}
            data = _rezip(data, members)
        return self.file(name, data)

    def folder_named(self, name: str) -> Path:
        path = self.folder / name
        path.mkdir(exist_ok=True)
        return path

    def check_kept(self) -> None:
        for path, data in self.written.items():
            assert path.read_bytes() == data, f"{path.name} was changed"


@functools.cache
def _model_bytes() -> bytes:
    """A DQN trained for 0 steps on the in-memory 128-d :data:`NARROW`, as model-file bytes."""
    import torch

    torch.set_num_threads(1)
    model = train("dqn", "HierHash-v0", {"bank": NARROW}, total_timesteps=0, num_envs=2).model
    with tempfile.TemporaryDirectory() as tmp:
        return save_model(model, Path(tmp) / "model.zip", model.hashgym_info).read_bytes()


def _rezip(data: bytes, members: dict[str, bytes]) -> bytes:
    """A copy of the zip ``data`` with some members' bytes replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, members.get(item.filename, zin.read(item)))
    return out.getvalue()


def _zip(**members: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return out.getvalue()


def _flip_byte(data: bytes, member: str) -> bytes:
    """``data`` (a zip) with the middle byte of ``member``'s stored bytes inverted."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    start = info.header_offset
    extra = int.from_bytes(data[start + 28:start + 30], "little")
    middle = start + 30 + len(info.filename.encode()) + extra + info.compress_size // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def _poke(array: np.ndarray, index: tuple[int, ...], value: Any) -> np.ndarray:
    """A copy of ``array`` with one value replaced."""
    out = np.array(array)
    out[index] = value
    return out


def _npy(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` bytes."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _silently(call: Callable[[], Any]) -> Any:
    """``call()`` with warnings raised as errors: a refusal must not warn first."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def _extractor(ref: str) -> Callable[[dict], None]:
    """An ``edit`` for :meth:`Inputs.model`: the policy's features extractor becomes ``ref``."""
    return lambda info: info["algo_kwargs"]["policy_kwargs"].update(
        features_extractor_class={"class": ref})


def _hier(**kwargs: Any) -> gym.Env:
    return gym.make("HierHash-v0", bank=BANK, **kwargs)


def _central(**kwargs: Any) -> gym.Env:
    return gym.make("CentralHash-v0", bank=BANK, **kwargs)


def _step(env: gym.Env, action: Any) -> Any:
    env.reset(seed=0)
    return env.step(action)


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return Inputs(tmp_path)


def _refused(inputs: Inputs, case: Callable[[Inputs], Any], error: type[Exception],
             message: str) -> None:
    with pytest.raises(error, match=message):
        case(inputs)
    inputs.check_kept()


Case = tuple[str, Callable[[Inputs], Any], type[Exception], str]


def _table(rows: list[Case]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("case", "error", "message"), [row[1:] for row in rows],
                                   ids=[row[0] for row in rows])


# ------------------------------------------------------------------------------------- banks
N = BANK.n
BANKS: list[Case] = [
    ("nan-feature", lambda f: BANK.replace(features=_poke(BANK.features, (3, 5), np.nan)),
     BankError, r"features contain non-finite values \(NaN or inf\): first at row 3, column 5"),
    ("inf-float16", lambda f: BANK.replace(features=np.full((N, 4), np.inf, np.float16)),
     BankError, "features contain non-finite values"),
    ("beyond-1e6", lambda f: BANK.replace(features=_poke(BANK.features, (7, 2), 2e6)),
     BankError, r"features\[7, 2\] = 2e\+06 is beyond ±1e\+06; .* standardise the features"),
    ("beyond-1e6-float64", lambda f: _silently(
        lambda: BANK.replace(features=np.full((N, 4), 1e300))),
     BankError, r"features\[0, 0\] = 1e\+300 is beyond ±1e\+06; .* standardise the features"),
    ("integer-features", lambda f: BANK.replace(features=np.ones((N, 4), np.int64)),
     BankError, "features must be float16 or float32, got int64"),
    ("1d-features", lambda f: BANK.replace(features=np.ones(N, np.float32)),
     BankError, r"features must be a non-empty \[N, D\] matrix, got shape \(240,\)"),
    ("labels-shorter", lambda f: BANK.replace(labels=BANK.labels[:-1]),
     BankError, "length mismatch: features have 240 rows but labels have 239"),
    ("split-longer", lambda f: BANK.replace(split=np.append(BANK.split, 0)),
     BankError, r"length mismatch: features have 240 rows but split has shape \(241,\)"),
    ("label-too-large", lambda f: BANK.replace(labels=_poke(BANK.labels, (5, 1), 12)),
     BankError, r"labels out of range at level 1 \('level1'\): value 12 at row 5, expected 0\.\.11"),
    ("label-negative", lambda f: BANK.replace(labels=_poke(BANK.labels, (5, 0), -1)),
     BankError, r"labels out of range at level 0 \('level0'\): value -1 at row 5"),
    ("class-names-string", lambda f: BANK.replace(labels=BANK.labels[:, 0], class_names=("abcd",),
                                                  level_names=("coarse",)),
     BankError, (r"class_names\[0\] must be the names of level 0's classes, got the string "
                 r"'abcd'; give one sequence per level")),
    ("meta-not-json-able", lambda f: BANK.replace(meta={"x": object()}),
     BankError, r"meta must hold JSON values only \(it is saved as JSON\)"),
    ("float-labels", lambda f: BANK.replace(labels=BANK.labels + 0.5),
     BankError, "labels must be integers, got float64"),
    ("two-parents", lambda f: BANK.replace(labels=_poke(BANK.labels, (5, 0), 1)),
     BankError, r"inconsistent hierarchy: class 0 \('l1_c0'\) at level 1 has parent"),
    ("no-query", lambda f: BANK.replace(split=np.zeros(N, np.int8)),
     BankError, "empty split: the bank has no query images"),
    ("split-value-2", lambda f: BANK.replace(split=_poke(BANK.split, 0, 2)),
     BankError, r"split must contain only 0 \(database\) and 1 \(query\)"),
    ("train-in-query", lambda f: BANK.replace(train=BANK.split == 1),
     BankError, "48 query images are marked for training"),
    ("multi-hot-2", lambda f: ML_BANK.replace(multi_hot=_poke(ML_BANK.multi_hot, (0, 0), 2)),
     BankError, "multi_hot labels must contain only 0 and 1"),
    ("pickled-features", lambda f: FeatureBank.load(
        f.npz("pickled.npz", **{**BANK.to_arrays(), "features": np.empty(N, object)})),
     BankError, "holds pickled Python objects, which hashgym never loads"),
    ("pickled-features-mmap", lambda f: FeatureBank.load(
        f.npz("pickled.npz", **{**BANK.to_arrays(), "features": np.empty(N, object)}), mmap=True),
     BankError, r"features\.npy holds pickled Python objects, which hashgym never loads"),
    ("corrupt-compressed", lambda f: FeatureBank.load(
        f.bank(compress=True, damage="features.npy")),
     BankError, r"cannot read bank .*bank\.npz: the file is truncated or corrupted"),
    ("corrupt-compressed-mmap", lambda f: FeatureBank.load(
        f.bank(compress=True, damage="features.npy"), mmap=True),
     BankError, r"cannot read bank .*bank\.npz: the file is truncated or corrupted"),
    ("flipped-features-mmap", lambda f: FeatureBank.load(f.bank(damage="features.npy"), mmap=True),
     BankError, r"features\.npy does not match the checksum the archive records for it"),
    ("flipped-features-resolve", lambda f: resolve_bank(str(f.bank(damage="features.npy")),
                                                        mmap=True),
     BankError, "does not match the checksum"),
    ("flipped-labels", lambda f: FeatureBank.load(f.bank(damage="labels.npy")),
     BankError, "the file is truncated or corrupted"),
    ("truncated", lambda f: FeatureBank.load(
        f.file("cut.npz", BANK.save(f.folder / "whole.npz").read_bytes()[:5000])),
     BankError, r"truncated or corrupted \(not a complete \.npz archive\)"),
    ("random-bytes", lambda f: FeatureBank.load(f.file("noise.npz", bytes(range(256)) * 16)),
     BankError, r"truncated or corrupted \(not a complete \.npz archive\)"),
    ("not-a-bank", lambda f: FeatureBank.load(f.npz("weights.npz", weights=np.ones(3))),
     BankError, "not a feature bank: the key 'features' is missing"),
    ("meta-not-json", lambda f: FeatureBank.load(
        f.npz("meta.npz", **{**BANK.to_arrays(), "meta": np.array("{not json")})),
     BankError, r"meta\.npz: meta is not valid JSON"),
    ("missing-file", lambda f: FeatureBank.load(f.folder / "absent.npz"),
     BankError, r"no bank at .*absent\.npz"),
    ("missing-file-resolve", lambda f: resolve_bank(str(f.folder / "absent.npz")),
     BankError, r"no bank at .*absent\.npz"),
    ("unknown-preset", lambda f: resolve_bank("cifar10"),
     BankError, "unknown preset 'cifar10'; known presets: cifar100, "),
    ("unknown-protocol-in-preset", lambda f: resolve_bank("cifar100-mini-bogus"),
     BankError, "unknown preset 'cifar100-mini-bogus'"),
    ("unknown-protocol", lambda f: resolve_bank(BANK, protocol="bogus"),
     BankError, "unknown protocol 'bogus'; known: standard, trees-people, csq, holdout"),
    ("protocol-needs-classes", lambda f: resolve_bank(BANK, protocol="trees-people"),
     BankError, "protocol 'trees-people' needs level-0 classes 'trees' and 'people'"),
]


@_table(BANKS)
def test_banks(inputs: Inputs, case: Callable, error: type[Exception], message: str) -> None:
    _refused(inputs, case, error, message)


# -------------------------------------------------------------------------------------- envs
ENVS: list[Case] = [
    ("n_bits-0", lambda f: _hier(n_bits=0), HashEnvError, "n_bits must be >= 1, got 0"),
    ("n_bits-float", lambda f: _hier(n_bits=12.0), HashEnvError,
     "n_bits must be an integer, got 12.0"),
    ("n_bits-bool", lambda f: _central(n_bits=True), HashEnvError,
     "n_bits must be an integer, got True"),
    ("default_bits_per_step-n_bits-0", lambda f: default_bits_per_step(0), HashEnvError,
     "n_bits must be >= 1, got 0"),
    ("default_margin-n_bits-float", lambda f: default_margin(2.5), HashEnvError,
     "n_bits must be an integer, got 2.5"),
    ("margin-unknown-rule", lambda f: _hier(margin="half"), HashEnvError,
     "unknown margin 'half'; expected one of sqrt, quarter"),
    ("bits_per_step-0", lambda f: _hier(bits_per_step=0), HashEnvError,
     "bits_per_step must be >= 1, got 0"),
    ("bits_per_step-not-dividing", lambda f: _hier(n_bits=12, bits_per_step=5), HashEnvError,
     "n_bits=12 is not divisible by bits_per_step=5; every step emits the same number of bits"),
    ("bits_per_step-not-dividing-central", lambda f: _central(n_bits=32, bits_per_step=5),
     HashEnvError, "n_bits=32 is not divisible by bits_per_step=5"),
    ("bits_per_step-action-space", lambda f: _hier(n_bits=24, bits_per_step=24), HashEnvError,
     (r"bits_per_step=24 would need Discrete\(2\*\*24\) = 16,777,216 actions; HierHash-v0 allows "
      r"at most 16 bits per step")),
    ("level-beyond-bank", lambda f: _hier(level=2), HashEnvError,
     r"level=2 is beyond the bank's 2 hierarchy level\(s\) \(valid: 0\.\.1\)"),
    ("level-negative", lambda f: _hier(level=-1), HashEnvError, "level must be >= 0, got -1"),
    ("level-without-codes", lambda f: _hier(level=1), HashEnvError,
     r"level=1 needs the previous level's codes: pass prev_codes=\[n_images, n_bits\]"),
    ("level-beyond-bank-central", lambda f: _central(level=2), HashEnvError,
     r"level=2 is beyond the bank's 2 hierarchy level\(s\)"),
    ("prev_codes-shape", lambda f: _hier(level=1, prev_codes=np.zeros((3, 12))), HashEnvError,
     r"prev_codes must have shape \(192, 12\): one 12-bit code per image of split 'train'"),
    ("prev_codes-not-binary", lambda f: _hier(level=1, prev_codes=np.full((192, 12), 2)),
     HashEnvError, r"prev_codes must contain only 0/1 or ±1 values, found 2"),
    ("num_envs-single-env", lambda f: _hier(num_envs=4), HashEnvError,
     (r"num_envs is not an argument of the single env: .*gymnasium\.make_vec\(env_id, "
      r"num_envs=n, \.\.\.\) or, for Stable-Baselines3, hashgym\.envs\.sb3\.make_sb3_vec_env")),
    ("margin-negative", lambda f: _hier(margin=-1.0), HashEnvError,
     r"margin must be a finite number in \[0\.0, inf\], got -1\.0"),
    ("margin-nan", lambda f: _hier(margin=float("nan")), HashEnvError,
     r"margin must be a finite number in \[0\.0, inf\], got nan"),
    ("margin-string", lambda f: _hier(margin="3"), HashEnvError,
     "unknown margin '3'; expected one of sqrt, quarter"),
    ("margin-list", lambda f: _hier(margin=[3]), HashEnvError, r"margin must be a number, got \[3\]"),
    ("rho-above-1", lambda f: _hier(rho=1.5), HashEnvError,
     r"rho must be a finite number in \[0\.0, 1\.0\], got 1\.5"),
    ("rho-inf", lambda f: _hier(rho=float("inf")), HashEnvError,
     r"rho must be a finite number in \[0\.0, 1\.0\], got inf"),
    ("lam-negative", lambda f: _hier(lam=-1), HashEnvError,
     r"lam must be a finite number in \[0\.0, inf\], got -1\.0"),
    ("sibling_negatives-2", lambda f: _hier(sibling_negatives=2), HashEnvError,
     r"sibling_negatives must be True, False or a fraction in \[0, 1\], got 2"),
    ("sibling_negatives-string", lambda f: _hier(sibling_negatives="yes"), HashEnvError,
     r"sibling_negatives must be True, False or a fraction in \[0, 1\], got 'yes'"),
    ("mode-unknown", lambda f: _hier(mode="bogus"), HashEnvError,
     "unknown mode 'bogus'; expected one of memory, triplet"),
    ("split-unknown", lambda f: _hier(split="val"), HashEnvError,
     "unknown split 'val'; expected 'train', 'database' or 'query'"),
    ("window-too-long", lambda f: _hier(window=13), HashEnvError, "window=13 exceeds n_bits=12"),
    ("memory_generation-string", lambda f: _hier(memory_generation="never"), HashEnvError,
     "memory_generation must be a number of environment steps, 'auto' or None, got 'never'"),
    ("n_constraints-per-level", lambda f: _hier(n_constraints=(5,)), HashEnvError,
     r"n_constraints gives 1 pool sizes; give one number, or one per level of the bank \(2\)"),
    ("hierhash-multilabel-bank", lambda f: gym.make("HierHash-v0", bank=ML_BANK), HashEnvError,
     "HierHash needs a bank with hierarchy labels; this bank has none"),
    ("action_type-unknown", lambda f: _central(action_type="bogus"), HashEnvError,
     "unknown action_type 'bogus'; expected one of binary, probability"),
    ("epsilon-0.5", lambda f: _central(epsilon=0.5), HashEnvError,
     "epsilon must lie strictly between 0 and 0.5, got 0.5"),
    ("multilabel-without-multi-hot", lambda f: _central(multilabel=True), HashEnvError,
     "multilabel=True needs a bank with multi_hot labels"),
    ("min_distance-beyond-n_bits", lambda f: _central(min_distance=100), CenterError,
     "min_distance=100 exceeds n_bits=32"),
    ("vec-max_episode_steps", lambda f: gym.make_vec("HierHash-v0", num_envs=2, bank=BANK,
                                                     max_episode_steps=5),
     HashEnvError, "max_episode_steps is not supported: episodes have a fixed length"),
    ("reset-unknown-option", lambda f: _hier().reset(options={"bogus": 1}), HashEnvError,
     r"unknown reset options \['bogus'\]; expected 'indices'"),
    ("reset-unknown-option-central", lambda f: _central().reset(options={"seed": 1}),
     HashEnvError, r"unknown reset options \['seed'\]; expected 'indices'"),
    ("reset-unknown-option-vec", lambda f: gym.make_vec("HierHash-v0", num_envs=2, bank=BANK)
     .reset(options={"bogus": 1}), HashEnvError, r"unknown reset options \['bogus'\]"),
    ("reset-row-out-of-range", lambda f: _hier().reset(options={"indices": [10**6]}),
     HashEnvError, r"indices must be bank rows in 0\.\.239"),
    ("reset-float-rows", lambda f: _hier().reset(options={"indices": [1.5]}), HashEnvError,
     "indices must be integer bank rows, got dtype float64"),
    ("reset-row-of-another-split", lambda f: _hier().reset(
        options={"indices": [int(BANK.indices("query")[0])]}), HashEnvError,
     "indices must be rows of split 'train'; row .* is not in it"),
    ("reset-rows-shape", lambda f: _hier().reset(options={"indices": [1, 2]}), HashEnvError,
     r"indices must have shape \(1,\) \(anchors\) or \(1, 3\)"),
    ("action-out-of-space", lambda f: _step(_hier(), 99), HashEnvError,
     r"action 99 is outside the action space Discrete\(8\)"),
    ("action-float", lambda f: _step(_hier(), 1.5), HashEnvError,
     r"actions must be integers in 0\.\.7, got dtype float64"),
    ("action-bits-2", lambda f: _step(_central(n_bits=8), np.full(8, 2)), HashEnvError,
     r"action value 2 is outside the action space MultiBinary\(8\): bits must be 0 or 1"),
    ("action-bits-shape", lambda f: _step(_central(n_bits=8), np.zeros(3)), HashEnvError,
     r"the action must be 8 binary values \(shape \(8,\)\), got an array of shape \(3,\)"),
]


@_table(ENVS)
def test_envs(inputs: Inputs, case: Callable, error: type[Exception], message: str) -> None:
    _refused(inputs, case, error, message)


# ----------------------------------------------------------------------------------- metrics
_rng = np.random.default_rng(0)
Q, D = _rng.integers(0, 2, (5, 8)), _rng.integers(0, 2, (20, 8))
QL, DL = _rng.integers(0, 3, 5), _rng.integers(0, 3, 20)
QH, DH = np.stack([QL, QL], axis=1), np.stack([DL, DL], axis=1)  # two-level labels
METRICS: list[Case] = [
    ("unknown-metric", lambda f: evaluate(Q, D, QL, DL, ["bogus"]), MetricError,
     r"unknown metric 'bogus'; expected e\.g\. 'mAP@all', 'mAP@1000'"),
    ("unknown-metric-suffix", lambda f: parse_metric("mAHP@10:simpson"), MetricError,
     "unknown metric 'mAHP@10:simpson'"),
    ("metric-not-a-name", lambda f: parse_metric(3), MetricError,
     "a metric must be a name or a Metric, got int"),
    ("metric-k-0", lambda f: parse_metric("P@0"), MetricError, "k must be a positive int, got 0"),
    ("metrics-empty", lambda f: evaluate(Q, D, QL, DL, []), MetricError, "metrics is empty"),
    ("chunk-bytes-0", lambda f: evaluate(Q, D, QL, DL, ["mAP@all"], chunk_bytes=0), MetricError,
     "chunk_bytes must be a positive int, got 0"),
    ("metrics-duplicate", lambda f: evaluate(Q, D, QL, DL, ["mAP@all", "mAP@all"]), MetricError,
     r"metrics has duplicate names: \['mAP@all', 'mAP@all'\]"),
    ("code-lengths-differ", lambda f: evaluate(Q, D[:, :6], QL, DL), CodeError,
     "codes have different lengths: query_codes has 8 bits, db_codes has 6"),
    ("codes-not-binary", lambda f: evaluate(Q * 2, D, QL, DL), CodeError,
     "query_codes must contain only 0/1 or ±1 values, found 2"),
    ("codes-nan", lambda f: evaluate(Q, np.where(D == 1, np.nan, 0.0), QL, DL), CodeError,
     "db_codes must contain only 0/1 or ±1 values, found nan"),
    ("codes-mixed-encodings", lambda f: evaluate(_poke(Q, (0, 0), -1), D, QL, DL), CodeError,
     "query_codes mix 0/1 and ±1 values; use one encoding"),
    ("codes-strings", lambda f: evaluate(Q.astype(str), D, QL, DL), CodeError,
     "query_codes must be numeric 0/1 or ±1, got dtype <U"),
    ("codes-empty", lambda f: evaluate(Q[:0], D, QL[:0], DL), CodeError,
     r"query_codes is empty \(shape \(0, 8\)\)"),
    ("codes-3d", lambda f: evaluate(Q[None], D, QL, DL), CodeError,
     r"query_codes must be \[N, n_bits\], got shape \(1, 5, 8\)"),
    ("distance_dtype-n_bits-negative", lambda f: distance_dtype(-1), CodeError,
     "n_bits must be >= 0, got -1"),
    ("rank-k-0", lambda f: rank(Q, D, k=0), CodeError, "k must be a positive int, got 0"),
    ("query-labels-rows", lambda f: evaluate(Q, D, QL[:4], DL), MetricError,
     "query_labels have 4 rows but query_codes have 5"),
    ("db-labels-rows", lambda f: evaluate(Q, D, QL, DL[:3]), MetricError,
     "db_labels have 3 rows but db_codes have 20"),
    ("labels-2d-ambiguous", lambda f: evaluate(Q, D, QH, DH), MetricError,
     (r"2-D labels are ambiguous \(query_labels \(5, 2\), db_labels \(20, 2\)\): pass "
      "relevance='hierarchy'")),
    ("labels-float", lambda f: evaluate(Q, D, QL + 0.5, DL), MetricError,
     "query_labels must hold integer class ids, got dtype float64"),
    ("hierarchy-columns-differ", lambda f: evaluate(Q, D, QH, DL[:, None], relevance="hierarchy"),
     MetricError, "query_labels have 2 columns but db_labels have 1"),
    ("multilabel-not-binary", lambda f: evaluate(Q, D, np.full((5, 3), 2), np.ones((20, 3), int),
                                                 relevance="multilabel"),
     MetricError, "query_labels must be multi-hot 0/1 for relevance='multilabel'"),
    ("relevance-unknown", lambda f: evaluate(Q, D, QL, DL, relevance="graded"), MetricError,
     r"relevance must be one of \('label', 'multilabel', 'hierarchy'\) or None, got 'graded'"),
    ("min_grade-too-high", lambda f: evaluate(Q, D, QL, DL, min_grade=2), MetricError,
     r"min_grade must be an int in 1\.\.1 for relevance='label', got 2"),
    ("n_jobs-0", lambda f: evaluate(Q, D, QL, DL, n_jobs=0), MetricError,
     "n_jobs must be a positive int, got 0"),
    ("unknown-option", lambda f: mean_average_precision(Q, D, QL, DL, bogus=1), MetricError,
     r"unknown option\(s\) \['bogus'\]; expected some of"),
    ("topk-0", lambda f: mean_average_precision(Q, D, QL, DL, topk=0), MetricError,
     "topk must be a positive int, got 0"),
    ("normalize-unknown", lambda f: mean_average_precision(Q, D, QL, DL, normalize="all"),
     MetricError, "normalize must be 'retrieved' or 'database', got 'all'"),
]


@_table(METRICS)
def test_metrics(inputs: Inputs, case: Callable, error: type[Exception], message: str) -> None:
    _refused(inputs, case, error, message)


# ------------------------------------------------------------------------------- model files
MODELS: list[Case] = [
    ("class-in-__main__", lambda f: load_model(f.model(edit=_extractor(
        "hashgym.agents.zoo.__main__:X"))),
     ModelFileError, "may not name classes in '__main__' modules"),
    ("class-in-private-module", lambda f: load_model(f.model(edit=_extractor("torch._dynamo:X"))),
     ModelFileError, "may not name classes in '_dynamo' modules"),
    ("class-outside-trusted", lambda f: load_model(f.model(edit=_extractor("os:system"))),
     ModelFileError, (r"refusing to import 'os': model files may only name classes from "
                      r"hashgym\.agents, stable_baselines3, sb3_contrib, torch\.nn, torch\.optim")),
    ("resolve-untrusted-hashgym", lambda f: resolve_class("hashgym.cli:main"), ModelFileError,
     "refusing to import 'hashgym.cli'"),
    ("resolve-prefix-lookalike", lambda f: resolve_class("hashgym.agentsevil:X"), ModelFileError,
     "refusing to import 'hashgym.agentsevil'"),
    ("class-through-an-import", lambda f: load_model(f.model(edit=_extractor(
        "hashgym.agents.saving:pickle.Unpickler"))),
     ModelFileError, (r"refusing class reference 'hashgym\.agents\.saving:pickle\.Unpickler': it "
                      r"leads to _pickle:Unpickler, and model files may not name classes in "
                      r"'_pickle' modules")),
    ("resolve-dunder", lambda f: resolve_class("hashgym.agents.dqn:__class__"), ModelFileError,
     (r"refusing class reference 'hashgym\.agents\.dqn:__class__': model files may not name "
      r"dunder attributes \('__class__'\)")),
    ("resolve-no-colon", lambda f: resolve_class("stable_baselines3.PPO"), ModelFileError,
     "class reference must look like 'module:Name', got 'stable_baselines3.PPO'"),
    ("resolve-not-a-class", lambda f: resolve_class("torch.nn.functional:relu"), ModelFileError,
     "'torch.nn.functional:relu' is not a class"),
    ("resolve-missing-class", lambda f: resolve_class("stable_baselines3:NoSuchThing"),
     ModelFileError, "cannot resolve class 'stable_baselines3:NoSuchThing'"),
    ("truncated-zip", lambda f: load_model(f.file("cut.zip", _model_bytes()[:2000])),
     ModelFileError, r"cut\.zip is not a model file \(not a zip archive\)"),
    ("garbage", lambda f: load_model(f.file("junk.zip", b"not a zip" * 100)),
     ModelFileError, r"junk\.zip is not a model file \(not a zip archive\)"),
    ("missing-file", lambda f: load_model(f.folder / "absent.zip"),
     ModelFileError, r"model file .*absent\.zip does not exist"),
    ("zip-without-hashgym-json", lambda f: load_model(f.file("sb3.zip", _zip(data=b"{}"))),
     ModelFileError, r"has no hashgym\.json: it was not saved by hashgym"),
    ("future-format", lambda f: load_model(f.file("future.zip", _zip(**{
        MODEL_INFO: json.dumps({"format": 99, "algo": "dqn"}).encode()}))),
     ModelFileError, r"unsupported hashgym\.json \(format 99\)"),
    ("hashgym-json-not-json", lambda f: load_model(f.model(members={MODEL_INFO: b"{not json"})),
     ModelFileError, r"model\.zip: its hashgym\.json is not valid JSON \(Expecting property name"),
    ("hashgym-json-a-list", lambda f: load_model(f.model(members={MODEL_INFO: b"[1, 2]"})),
     ModelFileError, r"model\.zip: its hashgym\.json must hold a JSON object, got an array"),
    ("unknown-algo", lambda f: load_model(f.model(edit=lambda info: info.update(algo="bogus"))),
     ModelFileError, (r"model\.zip: hashgym\.json names the unknown algorithm 'bogus'; known: "
                      r"a2c, ars, ddpg, dqn")),
    ("algo_kwargs-a-string", lambda f: load_model(f.model(
        edit=lambda info: info.update(algo_kwargs="x"))),
     ModelFileError, (r"model\.zip: hashgym\.json entry 'algo_kwargs' must be a JSON object "
                      r"\(the algorithm's constructor arguments\), got 'x'")),
    ("unknown-space", lambda f: load_model(f.model(
        edit=lambda info: info.update(action_space={"type": "Weird"}))),
     ModelFileError, "unknown space type 'Weird' in model file"),
    ("missing-space", lambda f: load_model(f.model(edit=lambda info: info.pop("observation_space"))),
     ModelFileError, "cannot rebuild the dqn model: 'observation_space'"),
    ("unknown-algo-kwarg", lambda f: load_model(f.model(
        edit=lambda info: info["algo_kwargs"].update(bogus=1))),
     ModelFileError, "cannot rebuild the dqn model: .*unexpected keyword argument 'bogus'"),
    ("pickled-weights", lambda f: load_model(f.model(
        members={"policy.pth": pickle.dumps(Path("x"), protocol=2)})),
     ModelFileError, "weights are damaged or hold Python objects, which hashgym never unpickles"),
    ("garbage-weights", lambda f: load_model(f.model(members={"policy.pth": b"not torch"})),
     ModelFileError, "the model's weights are damaged"),
    ("flipped-weights", lambda f: load_model(f.file(
        "flipped.zip", _flip_byte(_model_bytes(), "policy.pth"))),
     ModelFileError, "the model's weights are damaged"),
    ("128d-model-on-512d-bank", lambda f: encode(f.model(), WIDE, "query"),
     EncodeError, "the model was trained on 128-d features; this env gives 512-d features"),
    ("prefix-longer-than-the-model", lambda f: encode(f.model(), NARROW, "query", bits=15),
     EncodeError, r"bits=15 is longer than the model's 12-bit code: a prefix has at most 12"),
    ("prefix-not-a-whole-chunk", lambda f: encode(f.model(), NARROW, "query", bits=4),
     EncodeError, (r"bits=4 is not a multiple of the model's chunk of 3 bits: a prefix is a "
                   r"whole number of the chunks the model emits in order \(multiples of 3 up "
                   r"to 12\)")),
    ("prefix-of-no-bits", lambda f: encode(f.model(), NARROW, "query", bits=0),
     EncodeError, "bits must be a positive number of bits, got 0"),
    ("prefix-not-a-number", lambda f: encode(f.model(), NARROW, "query", bits=6.0),
     EncodeError, "bits must be a positive number of bits, got 6.0"),
]


@_table(MODELS)
def test_model_files(inputs: Inputs, case: Callable, error: type[Exception],
                     message: str) -> None:
    _refused(inputs, case, error, message)


# --------------------------------------------------------------------------------- CLI paths
CliCase = tuple[str, Callable[[Inputs], list[Any]], str]
SPLIT = ["bank", "split", "--protocol", "holdout"]
# random 0/1 codes of BANK's query and database splits, as hashgym eval's .npy inputs
QCODES = _rng.integers(0, 2, (BANK.indices("query").size, 12), dtype=np.uint8)
DBCODES = _rng.integers(0, 2, (BANK.indices("database").size, 12), dtype=np.uint8)


def _eval(f: Inputs) -> list[Any]:
    """``hashgym eval q.npy db.npy`` with random codes written through ``f``."""
    return ["eval", f.file("q.npy", _npy(QCODES)), f.file("db.npy", _npy(DBCODES))]


CLI: list[CliCase] = [
    ("encode-out-is-the-model", lambda f: ["encode", f.model(), "--out", f.model()],
     (r"^hashgym encode: error: --out .*model\.zip: codes files are \.npz files; give a path "
      r"ending in \.npz")),
    ("encode-out-is-the-bank", lambda f: ["encode", f.model(), "--bank", f.bank(),
                                          "--out", f.bank()],
     (r"^hashgym encode: error: --out .*bank\.npz is the input .*bank\.npz: writing the codes "
      r"file there would destroy it")),
    ("encode-out-is-the-bank-forced", lambda f: ["encode", f.model(), "--bank", f.bank(),
                                                 "--out", f.bank(), "--force"],
     r"^hashgym encode: error: --out .*bank\.npz is the input .*would destroy it"),
    ("encode-out-is-a-folder", lambda f: ["encode", f.model(), "--out",
                                          f.folder_named("codes.npz")],
     r"^hashgym encode: error: --out .*codes\.npz is a folder; give a \.npz file path"),
    ("encode-out-is-foreign", lambda f: ["encode", f.model(), "--out",
                                         f.npz("weights.npz", w=np.ones(3))],
     (r"^hashgym encode: error: --out .*weights\.npz exists and is not a codes file \(it lacks "
      r"codes, rows\); choose another path, or pass --force")),
    ("encode-128d-model-on-512d-bank", lambda f: ["encode", f.model(), "--bank",
                                                  f.bank("wide.npz", WIDE),
                                                  "--out", f.folder / "codes.npz"],
     "^hashgym encode: error: the model was trained on 128-d features; this env gives 512-d"),
    ("encode-prefix-not-a-whole-chunk", lambda f: ["encode", f.model(), "--bank",
                                                  f.bank("narrow.npz", NARROW), "--bits", "8",
                                                  "--out", f.folder / "codes.npz"],
     "^hashgym encode: error: bits=8 is not a multiple of the model's chunk of 3 bits"),
    ("encode-prefix-longer-than-the-model", lambda f: ["encode", f.model(), "--bank",
                                                       f.bank("narrow.npz", NARROW), "--bits",
                                                       "24", "--out", f.folder / "codes.npz"],
     "^hashgym encode: error: bits=24 is longer than the model's 12-bit code"),
    ("encode-in-memory-bank", lambda f: ["encode", f.model(), "--out", f.folder / "codes.npz"],
     "^hashgym encode: error: the model was trained on an in-memory bank: pass --bank"),
    ("encode-garbage-model", lambda f: ["encode", f.file("junk.zip", b"junk"),
                                        "--out", f.folder / "codes.npz"],
     r"^hashgym encode: error: .*junk\.zip is not a model file \(not a zip archive\)"),
    ("encode-unknown-algo", lambda f: ["encode", f.model(edit=lambda info: info.update(algo="bogus")),
                                       "--out", f.folder / "codes.npz"],
     r"^hashgym encode: error: .*model\.zip: hashgym\.json names the unknown algorithm 'bogus'"),
    ("encode-hashgym-json-not-json", lambda f: ["encode", f.model(members={MODEL_INFO: b"{"}),
                                                "--out", f.folder / "codes.npz"],
     r"^hashgym encode: error: .*model\.zip: its hashgym\.json is not valid JSON"),
    ("encode-missing-bank", lambda f: ["encode", f.model(), "--bank", f.folder / "absent.npz",
                                       "--out", f.folder / "codes.npz"],
     r"^hashgym encode: error: no bank at .*absent\.npz"),
    ("split-out-is-the-input", lambda f: [*SPLIT, f.bank(), "--out", f.bank()],
     (r"^hashgym bank split: error: --out .*bank\.npz is the input .*bank\.npz: writing the bank file there "
      r"would destroy it")),
    ("split-out-is-a-model-file", lambda f: [*SPLIT, f.bank(), "--out", f.model("model.npz")],
     (r"^hashgym bank split: error: --out .*model\.npz exists and is not a bank file \(it lacks features, "
      r"labels, split\); choose another path, or pass --force")),
    ("split-out-is-a-model-zip", lambda f: [*SPLIT, f.bank(), "--out", f.model()],
     (r"^hashgym bank split: error: --out .*model\.zip: bank files are \.npz files; give a path ending in "
      r"\.npz")),
    ("split-wrong-extension", lambda f: [*SPLIT, f.bank(), "--out", f.folder / "split.txt"],
     r"^hashgym bank split: error: --out .*split\.txt: bank files are \.npz files"),
    ("split-out-is-a-folder", lambda f: [*SPLIT, f.bank(), "--out", f.folder_named("split.npz")],
     r"^hashgym bank split: error: --out .*split\.npz is a folder; give a \.npz file path"),
    ("split-unknown-preset", lambda f: [*SPLIT, "cifar10", "--out", f.folder / "split.npz"],
     "^hashgym bank split: error: unknown preset 'cifar10'"),
    ("split-unknown-protocol", lambda f: ["bank", "split", f.bank(), "--protocol", "bogus",
                                          "--out", f.folder / "split.npz"],
     "hashgym bank split: error: argument --protocol: invalid choice: 'bogus'"),
    ("info-missing-bank", lambda f: ["bank", "info", f.folder / "absent.npz"],
     r"^hashgym bank info: error: no bank at .*absent\.npz"),
    ("index-out-is-its-codes", lambda f: ["index", "build", f.npz("codes.npz", codes=Q, rows=QL),
                                          "--out", f.folder / "codes.npz"],
     r"^hashgym index build: error: --out .*codes\.npz is the input .*would destroy it"),
    ("index-out-is-a-bank", lambda f: ["index", "build", f.npz("codes.npz", codes=Q, rows=QL),
                                       "--out", f.bank()],
     r"^hashgym index build: error: --out .*bank\.npz exists and is not a code index file"),
    ("eval-json-is-the-bank", lambda f: [*_eval(f), "--bank", f.bank(), "--json", f.bank()],
     (r"^hashgym eval: error: --json .*bank\.npz: scores files are \.json files; give a path "
      r"ending in \.json")),
    ("eval-json-is-the-model", lambda f: [*_eval(f), "--bank", f.bank(), "--json", f.model()],
     r"^hashgym eval: error: --json .*model\.zip: scores files are \.json files"),
    ("eval-json-is-the-query", lambda f: ["eval", f.file("q.json", _npy(QCODES)),
                                          f.file("db.npy", _npy(DBCODES)), "--bank", f.bank(),
                                          "--json", f.folder / "q.json"],
     (r"^hashgym eval: error: --json .*q\.json is the input .*q\.json: writing the scores file "
      r"there would destroy it")),
    ("eval-json-is-a-folder", lambda f: [*_eval(f), "--bank", f.bank(),
                                         "--json", f.folder_named("results")],
     r"^hashgym eval: error: --json .*results is a folder; give a \.json file path"),
    ("eval-json-is-foreign", lambda f: [*_eval(f), "--bank", f.bank(),
                                        "--json", f.file("notes.json", b'{"a": 1}')],
     (r"^hashgym eval: error: --json .*notes\.json exists and is not a scores file \(it lacks "
      r"database, query, relevance, scores\); choose another path, or pass --force")),
    ("eval-json-is-the-query-forced", lambda f: ["eval", f.file("q.json", _npy(QCODES)),
                                                 f.file("db.npy", _npy(DBCODES)), "--bank",
                                                 f.bank(), "--json", f.folder / "q.json",
                                                 "--force"],
     r"^hashgym eval: error: --json .*q\.json is the input .*would destroy it"),
    ("eval-prefix-longer-than-the-codes", lambda f: [*_eval(f), "--bank", f.bank(),
                                                     "--prefixes", "6,13"],
     (r"^hashgym eval: error: --prefixes: '13' is not a prefix length of 12-bit codes \(a "
      r"whole number from 1 to 12\)")),
    ("eval-prefix-not-a-number", lambda f: [*_eval(f), "--bank", f.bank(), "--prefixes", "6,x"],
     r"^hashgym eval: error: --prefixes: 'x' is not a prefix length of 12-bit codes"),
    ("eval-prefix-of-no-bits", lambda f: [*_eval(f), "--bank", f.bank(), "--prefixes", "0"],
     r"^hashgym eval: error: --prefixes: '0' is not a prefix length"),
    ("train-out-is-a-file", lambda f: ["train", "--algo", "dqn", "--bank", f.bank(),
                                       "--timesteps", "8", "--out", f.model(), "--no-progress"],
     r"^hashgym train: error: out='.*model\.zip' is a file: a run writes a folder"),
]


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (``None`` for a folder)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(("argv", "message"), [row[1:] for row in CLI], ids=[r[0] for r in CLI])
def test_cli_paths(inputs: Inputs, capsys: pytest.CaptureFixture[str],
                   argv: Callable[[Inputs], list[Any]], message: str) -> None:
    args = [str(arg) for arg in argv(inputs)]
    before = _tree(inputs.folder)
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert re.search(message, err, re.MULTILINE), err
    assert _tree(inputs.folder) == before, "a refused command wrote or changed files"
