"""Nothing lost, round 2 (issue 30): outputs that never hit inputs, work shared by several runs,
requests that would silently do less than asked, and errors that name the argument.

Tables by class, as in ``tests/test_hostile_inputs.py``. A CLI row is ``(id, argv, message)``:
``argv(f)`` writes its input files through ``f`` (a :class:`Files`) and returns the command line;
``hashgym.cli.main`` must exit with status 2, print ``message`` (a regex) on stderr and leave every
file of the folder as it was. An API row is ``(id, case, error, message)``: ``case(f)`` must
raise ``error`` matching ``message``, with the files kept. Shared folders (``hashgym bench``
claims, ``hashgym tune`` sweeps) have their own tests below the tables.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hashgym.agents.saving import load_model
from hashgym.agents.train import TrainError, train
from hashgym.atomic import OutputPathError
from hashgym.bank import BankError
from hashgym.benchmarks import runner
from hashgym.benchmarks.bench_eval import main as bench_eval_main
from hashgym.benchmarks.runner import CellStore, run_benchmark
from hashgym.benchmarks.suites import BenchError, BenchSuite, MethodSpec
from hashgym.cli import main
from hashgym.codefile import save_codes
from hashgym.devices import DeviceError
from hashgym.features import FeatureError, extract_features
from hashgym.owners import owner_alive, owner_record, process_start
from hashgym.protocols import resolve_bank
from hashgym.synthetic import make_hierarchical_bank

torch.set_num_threads(1)
BANK = make_hierarchical_bank(seed=0)  # 240 images, 4 x 3 classes, 32-d
QUERY, DATABASE = BANK.indices("query"), BANK.indices("database")
_rng = np.random.default_rng(0)
CODES = _rng.integers(0, 2, (BANK.n, 12), dtype=np.uint8)  # a 12-bit code per bank row
NO_CUDA = "cuda:99"  # a GPU no test machine has: refused with or without CUDA


class Files:
    """A case's folder: input files written into it, and a snapshot of everything in it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: dict[str, bytes] = {}

    def _keep(self, path: Path) -> Path:
        self.written[path.name] = path.read_bytes()
        return path

    def file(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return self._keep(path)

    def npz(self, name: str, **arrays: Any) -> Path:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return self.file(name, buffer.getvalue())

    def npy(self, name: str, array: np.ndarray) -> Path:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return self.file(name, buffer.getvalue())

    def bank(self, name: str = "bank.npz") -> Path:
        return self._keep(BANK.save(self.folder / name))

    def images(self, name: str = "images.npz") -> Path:
        """A CIFAR-100-style image file (``hashgym features --source cifar100-npz``)."""
        fine = np.arange(8) % 4
        return self.npz(name, images=np.zeros((8, 8, 8, 3), np.uint8), fine_labels=fine,
                        coarse_labels=fine // 2, fine_names=np.array(["a", "b", "c", "d"]),
                        coarse_names=np.array(["x", "y"]))

    def weights(self, name: str = "w.pt") -> Path:
        """A ``torch.save`` file."""
        torch.save({"fc.weight": torch.zeros(2, 2)}, self.folder / name)
        return self._keep(self.folder / name)

    def model(self, name: str = "model.zip") -> Path:
        """A file that stands for a model (a zip whose members sit at the top level)."""
        return self.file(name, _zip_bytes({"data": b"{}", "policy.pth": b"weights"}))

    def codes(self, name: str, rows: np.ndarray) -> Path:
        """A codes file as ``hashgym encode`` writes it: the bank's codes of ``rows``."""
        return self._keep(save_codes(self.folder / name, CODES[rows], BANK, rows,
                                     meta={"split": name}))

    def config(self, **options: Any) -> Path:
        return self.file("config.json", json.dumps(options).encode())

    def space(self, text: str) -> Path:
        return self.file("space.yaml", text.encode())

    def folder_named(self, name: str) -> Path:
        path = self.folder / name
        path.mkdir(exist_ok=True)
        return path

    def tree(self) -> dict[str, bytes | None]:
        """Every path under the folder with its bytes (``None`` for a folder)."""
        return {str(p.relative_to(self.folder)): None if p.is_dir() else p.read_bytes()
                for p in sorted(self.folder.rglob("*"))}


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


CliCase = tuple[str, Callable[[Files], list[Any]], str]
ApiCase = tuple[str, Callable[[Files], Any], type[Exception], str]


def _refused_cli(files: Files, capsys: pytest.CaptureFixture[str],
                 argv: Callable[[Files], list[Any]], message: str) -> None:
    args = [str(arg) for arg in argv(files)]
    before = files.tree()
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    captured = capsys.readouterr()
    assert status == 2, captured.err
    assert re.search(message, captured.err, re.MULTILINE), captured.err
    assert files.tree() == before, "a refused command wrote or changed files"


def _refused_api(files: Files, case: Callable[[Files], Any], error: type[Exception],
                 message: str) -> None:
    with pytest.raises(error, match=message):
        case(files)
    # the call's input files, written by the case itself, are all there is, unchanged
    assert files.tree() == files.written, "a refused call wrote or changed files"


def _cli_table(rows: list[CliCase]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("argv", "message"), [row[1:] for row in rows],
                                   ids=[row[0] for row in rows])


def _api_table(rows: list[ApiCase]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("case", "error", "message"), [row[1:] for row in rows],
                                   ids=[row[0] for row in rows])


# ------------------------------------------------------------------ data loss: output paths
FEATURES = ["features", "--source", "cifar100-npz", "--no-progress", "--device", "cpu"]

DATA_LOSS: list[CliCase] = [
    # the probe's cases
    ("features-out-is-the-images", lambda f: [*FEATURES, "--images", f.images(),
                                              "--out", f.folder / "images.npz"],
     (r"^hashgym features: error: --out .*images\.npz is the input .*images\.npz: writing the "
      r"bank file there would destroy it")),
    ("features-out-is-a-model", lambda f: [*FEATURES, "--images", f.images(), "--out", f.model()],
     r"^hashgym features: error: --out .*model\.zip: bank files are \.npz files"),
    ("features-save-weights-is-the-weights", lambda f: [
        *FEATURES, "--images", f.images(), "--weights", f.weights(), "--epochs", "1",
        "--save-weights", f.folder / "w.pt", "--out", f.folder / "bank.npz"],
     (r"^hashgym features: error: --save-weights .*w\.pt is the input .*w\.pt: writing the "
      r"weights file there would destroy it")),
    ("features-out-is-the-split-bank", lambda f: [*FEATURES, "--images", f.images(),
                                                  "--split-from", f.bank(),
                                                  "--out", f.folder / "bank.npz"],
     r"^hashgym features: error: --out .*bank\.npz is the input .*bank\.npz"),
    # more of the kind
    ("features-out-is-the-split-bank-forced", lambda f: [
        *FEATURES, "--images", f.images(), "--split-from", f.bank(), "--force",
        "--out", f.folder / "bank.npz"],
     r"^hashgym features: error: --out .*bank\.npz is the input .*would destroy it"),
    ("features-out-is-foreign", lambda f: [*FEATURES, "--images", f.images(),
                                           "--out", f.npz("notes.npz", x=np.ones(2))],
     (r"^hashgym features: error: --out .*notes\.npz exists and is not a bank file \(it lacks "
      r"features, labels, split\); choose another path, or pass --force")),
    ("features-out-is-a-folder", lambda f: [*FEATURES, "--images", f.images(),
                                            "--out", f.folder_named("bank.npz")],
     r"^hashgym features: error: --out .*bank\.npz is a folder"),
    ("features-save-weights-is-the-images", lambda f: [
        *FEATURES, "--images", f.images("images.pt"), "--epochs", "1",
        "--save-weights", f.folder / "images.pt", "--out", f.folder / "bank.npz"],
     r"^hashgym features: error: --save-weights .*images\.pt is the input"),
    ("features-save-weights-is-a-model", lambda f: [
        *FEATURES, "--images", f.images(), "--epochs", "1", "--save-weights", f.model(),
        "--out", f.folder / "bank.npz"],
     (r"^hashgym features: error: --save-weights .*model\.zip: weights files are \.pt or \.pth "
      r"files")),
    ("features-save-weights-is-foreign", lambda f: [
        *FEATURES, "--images", f.images(), "--epochs", "1",
        "--save-weights", f.file("notes.pt", b"my notes"), "--out", f.folder / "bank.npz"],
     (r"^hashgym features: error: --save-weights .*notes\.pt exists and is not a weights file; "
      r"choose another path, or pass --force")),
    ("show-out-is-foreign", lambda f: [
        "show", f.codes("q.npz", QUERY), f.codes("db.npz", DATABASE), "--bank", f.bank(),
        "--out", f.file("photo.png", b"not a png")],
     r"^hashgym show: error: --out .*photo\.png exists and is not a figure file"),
    ("train-out-holds-its-config", lambda f: [
        "train", "--config", f.config(algo="dqn", timesteps=64), "--bank", "cifar100-mini",
        "--out", f.folder, "--no-progress"],
     (r"^hashgym train: error: out='.*' holds a config.json that is not a hashgym run's \(a "
      r"--config file\?\); the run would replace it")),
    ("tune-out-is-a-file", lambda f: [
        "tune", "--space", f.space("algo_kwargs:\n  learning_rate: {uniform: [0.1, 0.2]}\n"),
        "--timesteps", "64", "--bank", f.bank(), "--out", f.model()],
     r"^hashgym tune: error: out='.*model\.zip' is a file: a sweep writes a folder"),
    ("bench-out-is-a-file", lambda f: ["bench", "--suite", "quick", "--out", f.model()],
     r"^hashgym bench: error: out='.*model\.zip' is a file: a benchmark writes a folder"),
]


@_cli_table(DATA_LOSS)
def test_data_loss(files: Files, capsys: pytest.CaptureFixture[str],
                   argv: Callable[[Files], list[Any]], message: str) -> None:
    _refused_cli(files, capsys, argv, message)


DATA_LOSS_API: list[ApiCase] = [
    ("extract-out-is-the-split-bank", lambda f: extract_features(
        _image_set(), split=f.bank(), out=f.folder / "bank.npz", force=True),
     OutputPathError, r"--out .*bank\.npz is the input"),
    ("extract-save-weights-is-the-weights", lambda f: extract_features(
        _image_set(), weights=f.weights(), train_epochs=1, save_weights=f.folder / "w.pt"),
     OutputPathError, r"--save-weights .*w\.pt is the input"),
    ("extract-save-weights-is-foreign", lambda f: extract_features(
        _image_set(), train_epochs=1, save_weights=f.file("w.pth", b"junk")),
     OutputPathError, r"w\.pth exists and is not a weights file"),
]


def _image_set() -> Any:
    from hashgym.datasets import ImageSet

    fine = np.arange(8) % 4
    return ImageSet(labels=np.stack([fine // 2, fine], axis=1), class_names=(("x", "y"),
                    ("a", "b", "c", "d")), level_names=("coarse", "fine"),
                    images=np.zeros((8, 8, 8, 3), np.uint8), source="test")


@_api_table(DATA_LOSS_API)
def test_data_loss_api(files: Files, case: Callable[[Files], Any], error: type[Exception],
                       message: str) -> None:
    _refused_api(files, case, error, message)


def test_benchmark_scripts_check_their_report_path(files: Files,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A benchmark script's --out is checked before it measures anything."""
    for out, message in ((files.bank(), r"--out .*bank\.npz: report files are \.txt files"),
                         (files.file("r.txt", b"\x00\xff binary"),
                          r"--out .*r\.txt exists and is not a report file")):
        before = files.tree()
        with pytest.raises(SystemExit) as exit_info:
            bench_eval_main(["--quick", "--out", str(out)])
        assert exit_info.value.code == 2
        assert re.search(message, capsys.readouterr().err)
        assert files.tree() == before


def test_a_previous_weights_file_is_replaced_and_a_forced_one_too(files: Files) -> None:
    """Outputs of the same kind are replaced as before; --force replaces another kind."""
    previous = files.weights("old.pt")
    images = files.images()
    assert main([*FEATURES, "--images", str(images), "--epochs", "1", "--batch-size", "8",
                 "--image-size", "8", "--save-weights", str(previous),
                 "--out", str(files.folder / "bank.npz")]) == 0
    assert "conv1.weight" in torch.load(previous, weights_only=True)
    foreign = files.file("notes.pt", b"my notes")
    assert main([*FEATURES, "--images", str(images), "--epochs", "1", "--batch-size", "8",
                 "--image-size", "8", "--save-weights", str(foreign), "--force",
                 "--out", str(files.folder / "bank2.npz")]) == 0
    assert "conv1.weight" in torch.load(foreign, weights_only=True)


# ------------------------------------------------------------------ silent acceptance
SELF = r"a query then retrieves itself and the scores come out above the real ones; pass " \
       r"--allow-overlap"
TRAIN = ["train", "--bank", "cifar100-mini", "--timesteps", "64", "--no-progress"]

SILENT: list[CliCase] = [
    # the probe's cases
    ("eval-a-file-against-itself", lambda f: ["eval", f.codes("q.npz", QUERY),
                                              f.folder / "q.npz"],
     rf"^hashgym eval: error: the query and database files are one file .*q\.npz\): {SELF}"),
    ("train-level-timesteps-0", lambda f: [*TRAIN[:3], "--level-timesteps", "0",
                                           "--out", f.folder / "run"],
     r"^hashgym train: error: --level-timesteps must be >= 1, got 0"),
    ("train-device-absent", lambda f: [*TRAIN, "--device", NO_CUDA, "--out", f.folder / "run"],
     (r"^hashgym train: error: --device='cuda:99', but (torch sees no CUDA device on this "
      r"machine|this machine has \d+ CUDA device)")),
    ("encode-device-absent", lambda f: ["encode", f.model(), "--device", NO_CUDA,
                                        "--out", f.folder / "codes.npz"],
     r"^hashgym encode: error: --device='cuda:99', but"),
    ("features-device-absent", lambda f: [*FEATURES[:-2], "--images", f.images(),
                                          "--device", NO_CUDA, "--out", f.folder / "b.npz"],
     r"^hashgym features: error: device='cuda:99', but"),
    # more of the kind: a file paired with itself
    ("eval-a-copy-of-the-query-file", lambda f: [
        "eval", f.codes("q.npz", QUERY), f.file("copy.npz", (f.folder / "q.npz").read_bytes())],
     (rf"^hashgym eval: error: the query and database codes share {QUERY.size} of the "
      rf"{QUERY.size} query images \(the same bank rows\): {SELF}")),
    ("eval-database-holds-the-queries", lambda f: [
        "eval", f.codes("q.npz", QUERY), f.codes("all.npz", np.arange(BANK.n))],
     rf"^hashgym eval: error: the query and database codes share {QUERY.size} of the"),
    ("eval-one-split-on-both-sides", lambda f: [
        "eval", f.npy("q.npy", CODES[DATABASE]), f.npy("d.npy", 1 - CODES[DATABASE]),
        "--bank", f.bank(), "--query-split", "database"],
     (rf"^hashgym eval: error: the query and database codes share {DATABASE.size} of the "
      rf"{DATABASE.size} query images")),
    ("eval-same-rows-files", lambda f: [
        "eval", f.npy("q.npy", CODES[:20]), f.npy("d.npy", 1 - CODES[:20]), "--bank", f.bank(),
        "--query-rows", f.npy("r.npy", np.arange(20)), "--db-rows", f.folder / "r.npy"],
     r"^hashgym eval: error: the query and database codes share 20 of the 20 query images"),
    ("eval-identical-arrays", lambda f: [
        "eval", f.npy("q.npy", CODES[:30]), f.npy("d.npy", CODES[:30]),
        "--query-labels", f.npy("ql.npy", BANK.labels[:30, -1]),
        "--db-labels", f.npy("dl.npy", BANK.labels[:30, -1]), "--relevance", "label"],
     (rf"^hashgym eval: error: the query and database codes are identical arrays \(30 rows\): "
      rf"{SELF}")),
    ("show-a-file-against-itself", lambda f: [
        "show", f.codes("q.npz", QUERY), f.folder / "q.npz", "--bank", f.bank(),
        "--out", f.folder / "grid.png"],
     r"^hashgym show: error: the query and database files are one file"),
    # more of the kind: budgets that train nothing, devices that are not there
    ("train-level-timesteps-one-zero", lambda f: [*TRAIN[:3], "--level-timesteps", "64", "0",
                                                  "--out", f.folder / "run"],
     r"^hashgym train: error: --level-timesteps must be >= 1, got 0"),
    ("train-num-envs-0", lambda f: [*TRAIN, "--num-envs", "0", "--out", f.folder / "run"],
     r"^hashgym train: error: --num-envs must be >= 1, got 0"),
    ("train-n-constraints-0", lambda f: [*TRAIN, "--n-constraints", "0",
                                         "--out", f.folder / "run"],
     r"^hashgym train: error: --n-constraints must be >= 1, got 0"),
    ("train-config-timesteps-0", lambda f: ["train", "--config", f.config(timesteps=0),
                                            "--out", f.folder / "run", "--no-progress"],
     r"^hashgym train: error: --timesteps must be >= 1, got 0"),
    ("train-device-unknown", lambda f: [*TRAIN, "--device", "gpu0", "--out", f.folder / "run"],
     r"^hashgym train: error: unknown --device 'gpu0'"),
    ("bench-device-absent", lambda f: ["bench", "--suite", "quick", "--device", NO_CUDA,
                                       "--out", f.folder / "bench"],
     r"^hashgym bench: error: device='cuda:99', but"),
]


@pytest.fixture(autouse=False)
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without CUDA, as torch reports it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@_cli_table(SILENT)
def test_silent_acceptance(files: Files, capsys: pytest.CaptureFixture[str], no_cuda: None,
                           argv: Callable[[Files], list[Any]], message: str) -> None:
    _refused_cli(files, capsys, argv, message)


SILENT_API: list[ApiCase] = [
    ("train-cuda-without-cuda", lambda f: train("dqn", "HierHash-v0", {"bank": BANK},
                                                total_timesteps=0, device="cuda"),
     TrainError, r"device='cuda', but torch sees no CUDA device on this machine \(use 'cpu'\)"),
    ("load-model-cuda-without-cuda", lambda f: load_model(f.model(), device="cuda"),
     DeviceError, r"device='cuda', but torch sees no CUDA device"),
    ("extract-cuda-without-cuda", lambda f: extract_features(_image_set(), device="cuda"),
     FeatureError, r"device='cuda', but torch sees no CUDA device"),
    ("train-mps-without-mps", lambda f: train("dqn", "HierHash-v0", {"bank": BANK},
                                              total_timesteps=0, device="mps"),
     TrainError, r"device='mps', but torch sees no MPS device"),
]


@_api_table(SILENT_API)
def test_silent_acceptance_api(files: Files, no_cuda: None, monkeypatch: pytest.MonkeyPatch,
                               case: Callable[[Files], Any], error: type[Exception],
                               message: str) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    _refused_api(files, case, error, message)


def test_overlap_is_scored_when_asked_and_disjoint_files_as_before(
        files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    query = files.codes("q.npz", QUERY)
    assert main(["eval", str(query), str(query), "--allow-overlap"]) == 0
    assert f"{QUERY.size} queries against {QUERY.size} database codes" in capsys.readouterr().out
    assert main(["eval", str(query), str(files.codes("d.npz", DATABASE))]) == 0


# ------------------------------------------------------------------ unclear errors
SPACE = "algo_kwargs:\n  learning_rate: {uniform: [0.001, 0.002]}\n"


def _config(**options: Any) -> Callable[[Files], list[Any]]:
    """``hashgym train --config FILE`` with a config file of these options."""
    return lambda f: ["train", "--config", f.config(**options), "--out", f.folder / "run"]

UNCLEAR: list[CliCase] = [
    # the probe's cases
    ("config-env-kwargs-a-list", _config(env_kwargs=[1]),
     (r"^hashgym train: error: --config .*config\.json: env_kwargs must be a JSON object of env "
      r"arguments, got \[1\]")),
    ("config-timesteps-a-string", _config(timesteps="100"),
     r"^hashgym train: error: --config .*: timesteps must be an integer, got '100'"),
    ("env-cartpole", lambda f: [*TRAIN, "--env", "CartPole-v1", "--out", f.folder / "run"],
     (r"^hashgym train: error: env id 'CartPole-v1' is a Gymnasium env but not a hashgym one "
      r"\(it takes no bank\); expected one of HierHash-v0, HierHash-v1, CentralHash-v0$")),
    ("tune-bank-a-dimension", lambda f: [
        "tune", "--space", f.space(SPACE + "bank: {choice: [cifar100-mini, cifar100]}\n"),
        "--timesteps", "64", "--out", f.folder / "sweep"],
     (r"^hashgym tune: error: bank of the search space .*space\.yaml is one value for the whole "
      r"sweep, not a dimension")),
    ("split-seed-negative", lambda f: ["bank", "split", f.bank(), "--protocol", "holdout",
                                       "--seed", "-1", "--out", f.folder / "split.npz"],
     r"^hashgym bank split: error: the seed of protocol 'holdout' \(--seed\) must be >= 0, got -1"),
    ("tune-timesteps-negative", lambda f: ["tune", "--space", f.space(SPACE), "--bank", f.bank(),
                                           "--timesteps", "-5", "--out", f.folder / "sweep"],
     (r"^hashgym tune: error: total_timesteps of the search space must be a positive integer "
      r"\(environment steps per trial\), got -5")),
    ("features-error-on-stderr", lambda f: [*FEATURES, "--source", "cifar10"],
     r"^hashgym features: error: --images is required for --source cifar10"),
    # more of the kind
    ("config-levels-a-string", _config(levels="0"),
     r"^hashgym train: error: --config .*: levels must be a list of integers, got '0'"),
    ("config-bank-a-number", _config(bank=5),
     r"^hashgym train: error: --config .*: bank must be a string, got 5"),
    ("config-algo-kwargs-a-string", _config(algo_kwargs="x"),
     r"^hashgym train: error: --config .*: algo_kwargs must be a JSON object"),
    ("config-seed-a-float", _config(seed=1.5),
     r"^hashgym train: error: --config .*: seed must be an integer, got 1\.5"),
    ("env-frozenlake", lambda f: [*TRAIN, "--env", "FrozenLake-v1", "--out", f.folder / "run"],
     r"^hashgym train: error: env id 'FrozenLake-v1' is a Gymnasium env but not a hashgym one"),
    ("env-unknown", lambda f: [*TRAIN, "--env", "NoSuch-v0", "--out", f.folder / "run"],
     r"^hashgym train: error: unknown env id 'NoSuch-v0'"),
    ("tune-env-a-dimension", lambda f: [
        "tune", "--space", f.space(SPACE + "env: {choice: [HierHash-v0, CentralHash-v0]}\n"),
        "--timesteps", "64", "--out", f.folder / "sweep"],
     r"^hashgym tune: error: env of the search space .* is one value for the whole sweep"),
    ("tune-algo-a-number", lambda f: ["tune", "--space", f.space(SPACE + "algo: 5\n"),
                                      "--timesteps", "64", "--out", f.folder / "sweep"],
     r"^hashgym tune: error: algo of the search space .* must be a string, got 5"),
    ("tune-timesteps-zero", lambda f: ["tune", "--space", f.space(SPACE), "--bank", f.bank(),
                                       "--timesteps", "0", "--out", f.folder / "sweep"],
     r"^hashgym tune: error: total_timesteps of the search space must be a positive integer"),
    ("tune-timesteps-dimension-from-zero", lambda f: [
        "tune", "--space", f.space(SPACE + "timesteps: {int: [0, 64]}\n"), "--bank", f.bank(),
        "--out", f.folder / "sweep"],
     r"^hashgym tune: error: timesteps of the search space .* must be a positive integer"),
    ("info-seed-negative", lambda f: ["bank", "info", f.bank(), "--protocol", "trees-people",
                                      "--seed", "-3"],
     r"^hashgym bank info: error: the seed of protocol 'trees-people' \(--seed\) must be >= 0, got -3"),
    ("features-threads-on-stderr", lambda f: [*FEATURES, "--threads", "0"],
     r"^hashgym features: error: --threads must be >= 1, got 0"),
    ("features-missing-images-on-stderr", lambda f: [*FEATURES, "--images",
                                                     f.folder / "none.npz"],
     r"^hashgym features: error: .*none\.npz"),
]


@_cli_table(UNCLEAR)
def test_unclear_errors(files: Files, capsys: pytest.CaptureFixture[str],
                        argv: Callable[[Files], list[Any]], message: str) -> None:
    _refused_cli(files, capsys, argv, message)


def test_tune_refuses_a_bad_budget_before_any_trial(files: Files,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from hashgym.agents import tune as tune_module

    pytest.importorskip("optuna")
    trained: list[int] = []
    monkeypatch.setattr(tune_module, "train", lambda *a, **k: trained.append(1))
    with pytest.raises(tune_module.TuneError, match="timesteps of the search space must be a "
                                                    "positive integer"):
        tune_module.tune({"timesteps": -5, "bank": str(files.bank()),
                          "algo_kwargs": {"learning_rate": {"uniform": [0.1, 0.2]}}},
                         trials=2, out=files.folder / "sweep")
    assert trained == [] and not (files.folder / "sweep").exists()


def test_protocol_seed_is_named_in_the_api() -> None:
    with pytest.raises(BankError, match=r"the seed of protocol 'holdout' \(--seed\) must be >= "
                                        r"0, got -1"):
        resolve_bank(BANK, protocol="holdout", seed=-1)


# ------------------------------------------------------------------ bench: cells and claims
NARROW_SUITE = BenchSuite(
    name="narrow", description="ITQ and LSH on 32-d features", banks=("synthetic",),
    bits=(8, 48), metrics=("mAP@all",), relevance="hierarchy", seeds=1, ndcg_ks=(5,),
    methods=(MethodSpec("lsh", "baseline", {"name": "lsh"}, "LSH"),
             MethodSpec("itq", "baseline", {"name": "itq", "n_iter": 3}, "ITQ")),
)


def _bench(out: Path, **kwargs: Any) -> Any:
    return run_benchmark(kwargs.pop("suite", NARROW_SUITE), banks={"synthetic": BANK}, out=out,
                         progress=False, plots=False, **kwargs)


def test_an_impossible_cell_fails_alone_under_the_serial_executor(tmp_path: Path) -> None:
    """ITQ at 48 bits on 32-d features cannot be made: the serial run reports it as the process
    executor does, and saves the three other cells (a rerun resumes them)."""
    with pytest.raises(BenchError, match=r"1 of 4 cell\(s\) failed, the others are saved in .*"
                                         r"itq.*48 bits.*BenchError: ITQ needs n_bits <= "
                                         r"feature dimension"):
        _bench(tmp_path)
    assert len(list((tmp_path / "cells").glob("*.json"))) == 3
    assert not list((tmp_path / "cells").glob("*.claim"))
    again = _bench(tmp_path, bits=[8])
    assert again.computed == 0


@pytest.mark.parametrize(("damage", "why"), [
    ("[1, 2]", "it holds a JSON list, not an object"),  # the probe's case
    ("null", "it holds a JSON NoneType"),
    ('"text"', "it holds a JSON str"),
    (None, "its 'metrics' is not an object"),
])
def test_a_damaged_cell_json_is_recomputed(tmp_path: Path, damage: str | None, why: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    first = _bench(tmp_path, bits=[8], methods=["lsh"])
    path = tmp_path / "cells" / f"{first.cells[0].key}.json"
    if damage is None:
        data = json.loads(path.read_text())
        data["metrics"] = ["not", "an", "object"]
        damage = json.dumps(data)
    path.write_text(damage)
    again = _bench(tmp_path, bits=[8], methods=["lsh"])
    assert again.computed == 1 and again.rows == first.rows
    assert why in caplog.text


def _claim(cells: Path, key: str, owner: dict[str, Any]) -> Path:
    cells.mkdir(parents=True, exist_ok=True)
    path = cells / f"{key}.claim"
    path.write_text(json.dumps(owner))
    return path


@pytest.fixture
def live() -> Iterator[subprocess.Popen]:
    """An unrelated live process (a killed run's PID may be given to such a one)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _reused(pid: int) -> dict[str, Any]:
    """A claim written by a process that had ``pid`` before the live one got it."""
    start = process_start(pid)
    return {"pid": pid, "host": socket.gethostname(), "start": (start or 0) - 1}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times need /proc")
def test_a_claim_whose_pid_was_reused_is_taken_over(tmp_path: Path, live: subprocess.Popen,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's hang: a stale claim whose PID now names a live, unrelated process. The run
    takes the cell over at once instead of waiting for it."""
    monkeypatch.setattr(runner.time, "sleep", lambda s: pytest.fail("the run waited"))
    key = _bench(tmp_path / "probe", bits=[8], methods=["lsh"]).cells[0].key
    claim = _claim(tmp_path / "run" / "cells", key, _reused(live.pid))
    result = _bench(tmp_path / "run", bits=[8], methods=["lsh"])
    assert result.computed == 1 and not claim.exists()


@pytest.mark.parametrize(("owner", "held"), [
    (lambda p: _reused(p.pid), False),                                    # the PID was reused
    (lambda p: {"pid": p.pid, "host": socket.gethostname(),
                "start": process_start(p.pid)}, True),                    # its owner runs
    (lambda p: {"pid": p.pid, "host": socket.gethostname()}, True),       # an older claim
    (lambda p: ["not", "a", "claim"], False),                             # damaged
    (lambda p: {"pid": "12", "host": socket.gethostname()}, False),       # damaged
    (lambda p: {"pid": p.pid, "host": "another-host", "start": 1}, True),  # not seen from here
])
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times need /proc")
def test_claims_are_held_only_by_their_live_owner(tmp_path: Path, live: subprocess.Popen,
                                                  owner: Callable[[Any], Any],
                                                  held: bool) -> None:
    store = CellStore(tmp_path)
    _claim(tmp_path, "cell", owner(live))
    holder = store.claim("cell")
    assert (holder is not None) == held, holder
    if not held:  # taken over: this process owns it now
        assert owner_alive(json.loads((tmp_path / "cell.claim").read_text())) is True


def test_owner_records_name_this_process() -> None:
    mine = owner_record()
    assert mine["pid"] == os.getpid() and owner_alive(mine) is True
    assert owner_alive({**mine, "pid": 2 ** 22 + 7}) is False  # beyond any PID Linux gives


# ------------------------------------------------------------------ tune: shared folders
TUNE_SPACE = {
    "env": "HierHash-v0", "algo": "dqn", "levels": [0], "timesteps": 256, "num_envs": 16,
    "algo_kwargs": {"learning_starts": 32, "batch_size": 16, "buffer_size": 1000,
                    "learning_rate": {"loguniform": [1e-4, 1e-2]}},
}


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Any, Any, dict[str, Any]]:
    """A finished one-trial sweep in ``tmp_path / "sweep"``: (the tune module, its study, space)."""
    optuna = pytest.importorskip("optuna")
    from hashgym.agents import tune as tune_module

    space = {**TUNE_SPACE, "bank": str(BANK.save(tmp_path / "bank.npz"))}
    tune_module.tune(space, trials=1, rungs=1, out=tmp_path / "sweep")
    study = optuna.load_study(study_name=tune_module.STUDY, storage=tune_module._storage(
        optuna, str(tmp_path / "sweep" / "study.journal")))
    return tune_module, study, space


def _running_trial(study: Any, owner: Any) -> int:
    """A trial another process has just started (``owner``: its record, or ``None``)."""
    trial = study.ask()
    if owner is not None:
        trial.set_user_attr("owner", owner)
    return trial.number


def test_a_second_sweep_leaves_a_live_sweeps_trial_alone(
        sweep: tuple[Any, Any, dict[str, Any]], live: subprocess.Popen, tmp_path: Path) -> None:
    """The probe's loss: the second sweep marked the first's running trial failed, and the first
    crashed telling its result (``Cannot tell a FAIL trial``). Now the trial stays the first's:
    the second sweep runs only what is missing beyond it, and the first can still tell it."""
    import optuna

    tune_module, study, space = sweep
    owner = {"pid": live.pid, "host": socket.gethostname(), "start": process_start(live.pid)}
    number = _running_trial(study, owner)
    result = tune_module.tune(space, trials=2, rungs=1, out=tmp_path / "sweep")
    assert [r["state"] for r in result.trials] == ["complete", "running"]
    study.tell(number, 0.5)  # the first sweep finishes its trial: no error, nothing lost
    assert study.trials[number].state == optuna.trial.TrialState.COMPLETE


@pytest.mark.parametrize(("who", "kept"), [
    ("reused-pid", False),       # its PID now names an unrelated process: interrupted
    ("other-host", True),        # cannot be seen from here: left alone
    ("unmarked-alone", False),   # no owner yet and no other sweep on the folder: interrupted
    ("unmarked-beside-a-live-sweep", True),  # it may be that sweep's trial an instant old
])
def test_only_trials_whose_process_is_gone_are_interrupted(
        sweep: tuple[Any, Any, dict[str, Any]], live: subprocess.Popen, tmp_path: Path,
        who: str, kept: bool) -> None:
    tune_module, study, space = sweep
    here = socket.gethostname()
    owner = {"reused-pid": _reused(live.pid),
             "other-host": {"pid": live.pid, "host": "another-host", "start": 1}}.get(who)
    if who == "unmarked-beside-a-live-sweep":
        study.set_user_attr("sweeper:live", {"pid": live.pid, "host": here,
                                             "start": process_start(live.pid)})
    _running_trial(study, owner)
    result = tune_module.tune(space, trials=3, rungs=1, out=tmp_path / "sweep")
    states = [r["state"] for r in result.trials]
    assert states[1] == ("running" if kept else "interrupted"), states


def test_no_resume_is_refused_while_another_sweep_runs(
        sweep: tuple[Any, Any, dict[str, Any]], live: subprocess.Popen, tmp_path: Path) -> None:
    tune_module, study, space = sweep
    study.set_user_attr("sweeper:live", {"pid": live.pid, "host": socket.gethostname(),
                                         "start": process_start(live.pid)})
    journal = (tmp_path / "sweep" / "study.journal").read_bytes()
    with pytest.raises(tune_module.TuneError, match=rf"holds a sweep that is running now "
                                                    rf"\(process {live.pid} on .*\); "
                                                    rf"--no-resume would delete its trials"):
        tune_module.tune(space, trials=1, rungs=1, out=tmp_path / "sweep", resume=False)
    assert (tmp_path / "sweep" / "study.journal").read_bytes() == journal
    live.kill()
    live.wait()
    fresh = tune_module.tune(space, trials=1, rungs=1, out=tmp_path / "sweep", resume=False)
    assert [r["trial"] for r in fresh.trials] == [0]
