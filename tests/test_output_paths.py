"""Output paths that would lose data are refused before anything runs: ``check_output`` case by
case, and ``hashgym encode`` / ``hashgym bank split`` keeping their inputs byte for byte; and
``hashgym train`` values that would silently do nothing or exhaust memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hashgym.agents.train import TrainError, train
from hashgym.atomic import OutputPathError, check_output
from hashgym.cli import main
from hashgym.synthetic import make_hierarchical_bank

CODES_KEYS = ("codes", "rows")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small bank file and a model trained on it."""
    folder = tmp_path_factory.mktemp("outputs")
    bank_path = make_hierarchical_bank(seed=0).save(folder / "bank.npz")
    out = folder / "run"
    assert main(["train", "--env", "CentralHash-v0", "--algo", "ppo", "--bank", str(bank_path),
                 "--timesteps", "64", "--num-envs", "16", "--out", str(out), "--no-progress",
                 "--env-kwargs", "n_bits=8", "--algo-kwargs", "n_steps=4", "batch_size=64"]) == 0
    return bank_path, out / "model.zip"


def test_check_output_accepts_a_new_path_and_a_previous_result(tmp_path: Path) -> None:
    assert check_output(tmp_path / "new.npz", suffix=".npz", kind="codes",
                        keys=CODES_KEYS) == tmp_path / "new.npz"
    previous = tmp_path / "old.npz"
    np.savez(previous, codes=np.zeros((2, 4), np.uint8), rows=np.arange(2))
    assert check_output(previous, suffix=".npz", kind="codes", keys=CODES_KEYS) == previous


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("codes.zip", "codes files are .npz files; give a path ending in .npz"),
        ("folder.npz", "is a folder; give a .npz file path"),
        ("other.npz", "exists and is not a codes file (it lacks codes, rows)"),
        ("text.npz", "exists and is not a codes file"),
    ],
)
def test_check_output_refuses(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "folder.npz").mkdir()
    np.savez(tmp_path / "other.npz", features=np.zeros(3))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(OutputPathError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_output(tmp_path / name, suffix=".npz", kind="codes", keys=CODES_KEYS)


def test_force_replaces_another_kind_but_never_an_input(tmp_path: Path) -> None:
    other = tmp_path / "other.npz"
    np.savez(other, features=np.zeros(3))
    assert check_output(other, suffix=".npz", kind="codes", keys=CODES_KEYS, force=True) == other
    link = tmp_path / "link.npz"
    link.symlink_to(other)
    for given in (other, link):
        with pytest.raises(OutputPathError, match="is the input .*would destroy it"):
            check_output(given, suffix=".npz", kind="codes", keys=CODES_KEYS, force=True,
                         inputs=(None, "cifar100-mini", other))


def test_encode_refuses_its_own_inputs(trained: tuple[Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    bank_path, model = trained
    kept = {p: p.read_bytes() for p in (bank_path, model)}
    assert main(["encode", str(model), "--out", str(model)]) == 2
    assert "codes files are .npz files" in capsys.readouterr().err
    assert main(["encode", str(model), "--bank", str(bank_path), "--out", str(bank_path)]) == 2
    assert f"is the input {bank_path}" in capsys.readouterr().err
    assert main(["encode", str(model), "--bank", str(bank_path), "--out", str(bank_path),
                 "--force"]) == 2
    assert all(p.read_bytes() == data for p, data in kept.items())
    # a foreign .npz needs --force; a previous codes file is simply replaced
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(4))
    assert main(["encode", str(model), "--out", str(foreign)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["encode", str(model), "--out", str(foreign), "--force"]) == 0
    assert main(["encode", str(model), "--split", "query", "--out", str(foreign)]) == 0


def test_bank_split_refuses_to_overwrite(trained: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    bank_path, model = trained
    kept = {p: p.read_bytes() for p in (bank_path, model)}
    args = ["bank", "split", "cifar100-mini", "--protocol", "trees-people", "--out"]
    assert main([*args, str(model)]) == 2
    assert "bank files are .npz files" in capsys.readouterr().err
    assert main(["bank", "split", str(bank_path), "--protocol", "trees-people", "--out",
                 str(bank_path)]) == 2
    assert "would destroy it" in capsys.readouterr().err
    codes = tmp_path / "codes.npz"
    np.savez(codes, codes=np.zeros((2, 4), np.uint8), rows=np.arange(2))
    assert main([*args, str(codes)]) == 2
    assert "is not a bank file" in capsys.readouterr().err
    assert all(p.read_bytes() == data for p, data in kept.items())
    assert main([*args, str(codes), "--force"]) == 0
    assert main([*args, str(codes)]) == 0  # now a bank: replaced without --force


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--timesteps", "0"], "--timesteps must be >= 1, got 0"),
        (["--timesteps", "-5"], "--timesteps must be >= 1, got -5"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1, got 0"),
        (["--env-kwargs", "bits_per_step=24", "n_bits=24"],
         ("bits_per_step=24 would need Discrete(2**24) = 16,777,216 actions; HierHash-v0 allows "
          "at most 16 bits per step")),
    ],
)
def test_train_refuses_values_that_would_do_nothing_or_exhaust_memory(
        trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
        argv: list[str], message: str) -> None:
    bank_path, _ = trained
    assert main(["train", "--algo", "dqn", "--bank", str(bank_path), "--out",
                 str(tmp_path / "run"), "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.zip").exists()


def test_train_names_a_negative_total() -> None:
    with pytest.raises(TrainError, match="total_timesteps must be >= 0, got -5"):
        train("dqn", "HierHash-v0", {"bank": make_hierarchical_bank(seed=0)}, total_timesteps=-5)


def test_damaged_checkpoints_and_refused_values_are_named(trained: tuple[Path, Path],
                                                          tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    bank_path, _ = trained
    run = tmp_path / "run"
    args = ["train", "--algo", "dqn", "--bank", str(bank_path), "--timesteps", "64",
            "--num-envs", "16", "--out", str(run), "--no-progress", "--checkpoint-every", "32"]
    assert main(args) == 0
    state = run / "checkpoints" / "state.json"
    record = json.loads(state.read_text())
    state.write_text("garbage")
    assert main(args) == 2
    assert f"the checkpoint in {run / 'checkpoints'} is damaged (JSONDecodeError" in (
        capsys.readouterr().err)
    state.write_text(json.dumps(record))
    (run / "checkpoints" / record["model"]).unlink()
    assert main(args) == 2
    assert f"lacks its model file {record['model']!r}" in capsys.readouterr().err
    # a missing replay buffer, then a truncated curriculum state, of a fresh run
    again = [*args[:-5], "--out", str(tmp_path / "again"), "--no-progress",
             "--checkpoint-every", "32"]
    assert main(again) == 0
    ckpt = tmp_path / "again" / "checkpoints"
    record = json.loads((ckpt / "state.json").read_text())
    buffer = (ckpt / record["replay_buffer"]).read_bytes()
    (ckpt / record["replay_buffer"]).unlink()
    assert main(again) == 2
    assert f"lacks its replay_buffer file {record['replay_buffer']!r}" in capsys.readouterr().err
    (ckpt / record["replay_buffer"]).write_bytes(buffer)
    state_file = ckpt / record["state"]
    state_file.write_bytes(state_file.read_bytes()[:40])
    assert main(again) == 2
    assert f"the checkpoint in {ckpt} is damaged" in capsys.readouterr().err
    assert main([*args[:-5], "--out", str(tmp_path / "lr"), "--algo-kwargs",
                 "learning_rate=-1"]) == 2
    assert "bad arguments for DQN: Invalid learning rate: -1" in capsys.readouterr().err


def test_train_out_naming_a_file_is_refused_and_kept(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main(["train", "--algo", "dqn", "--bank", "cifar100-mini", "--timesteps", "64",
                 "--out", str(target), "--no-progress"]) == 2
    assert "is a file: a run writes a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"
