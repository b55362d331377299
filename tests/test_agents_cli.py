"""``hashgym train`` / ``hashgym encode``: a run killed after a checkpoint resumes where it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hashgym.cli import main
from hashgym.codefile import load_codes
from hashgym.synthetic import make_hierarchical_bank


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hierarchical_bank(seed=0).save(tmp_path_factory.mktemp("bank") / "bank.npz")


def _state(out: Path) -> dict | None:
    path = out / "checkpoints" / "state.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _run_until(cmd: list[str], out: Path, ready, timeout: float = 60.0) -> dict:
    """Start ``cmd``, SIGKILL it as soon as ``ready(state)`` holds; return the last state."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            state = _state(out)
            if state is not None and ready(state):
                break
            if proc.poll() is not None:
                pytest.fail(f"the run ended early: {proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.02)
        else:
            pytest.fail("no checkpoint appeared in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = _state(out)
    assert state is not None
    return state


@pytest.mark.slow
def test_killed_run_resumes_at_its_level_and_step(tmp_path: Path, bank_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hashgym.cli", "train", "--env", "HierHash-v0", "--algo", "dqn",
           "--bank", str(bank_path), "--levels", "0", "1", "--level-timesteps", "128", "1000000",
           "--num-envs", "16", "--checkpoint-every", "128", "--out", str(out), "--no-progress",
           "--memory-refresh", "64",
           "--algo-kwargs", "learning_starts=32", "buffer_size=2000", "batch_size=16"]
    first = _run_until(cmd, out, lambda s: s["level_index"] == 1 and s["num_timesteps"] >= 256)
    assert first["level_index"] == 1 and not first["final"]
    assert (out / "checkpoints" / first["replay_buffer"]).exists()
    second = _run_until(cmd, out, lambda s: s["num_timesteps"] > first["num_timesteps"])
    # the rerun started from the first run's last checkpoint (its log folder is named after it)
    assert (out / "logs" / f"from-{first['num_timesteps']:09d}").is_dir()
    assert second["level_index"] == 1
    assert second["num_timesteps"] > first["num_timesteps"]
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert logs == ["from-000000000", f"from-{first['num_timesteps']:09d}"]


def test_train_then_encode(tmp_path: Path, bank_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ppo"
    assert main(["train", "--env", "CentralHash-v0", "--algo", "ppo", "--bank", str(bank_path),
                 "--timesteps", "256", "--num-envs", "16", "--out", str(out), "--no-progress",
                 "--env-kwargs", "n_bits=8", "--algo-kwargs", "n_steps=8", "batch_size=64"]) == 0
    assert "trained ppo on CentralHash-v0" in capsys.readouterr().out
    codes_path = tmp_path / "codes.npz"
    assert main(["encode", str(out / "model.zip"), "--split", "query",
                 "--out", str(codes_path)]) == 0
    saved = load_codes(codes_path)
    bank = make_hierarchical_bank(seed=0)
    np.testing.assert_array_equal(saved["rows"], bank.indices("query"))
    assert saved["codes"].shape == (len(bank.indices("query")), 8)
    assert saved["meta"]["model"]["algo"] == "ppo" and saved["meta"]["split"] == "query"
    config = json.loads((out / "config.json").read_text())
    assert config["memory_refresh"] is None
    # the same command again finds the finished run and trains no further
    assert main(["train", "--env", "CentralHash-v0", "--algo", "ppo", "--bank", str(bank_path),
                 "--timesteps", "256", "--num-envs", "16", "--out", str(out), "--no-progress",
                 "--env-kwargs", "n_bits=8", "--algo-kwargs", "n_steps=8", "batch_size=64"]) == 0
    assert "resumed from step 256" in capsys.readouterr().out


def test_cli_errors(tmp_path: Path, bank_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--algo", "nope", "--bank", str(bank_path), "--out",
                 str(tmp_path / "x"), "--timesteps", "10"]) == 2
    assert "unknown algorithm 'nope'" in capsys.readouterr().err
    assert main(["train", "--algo", "sac", "--bank", str(bank_path), "--out",
                 str(tmp_path / "y"), "--timesteps", "10"]) == 2
    assert "action_type='probability'" in capsys.readouterr().err
    assert main(["train", "--env-kwargs", "n_bits", "--out", str(tmp_path / "z")]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["train", "--env", "CentralHash-v0", "--algo", "ppo", "--bank", str(bank_path),
                 "--memory-refresh", "100", "--timesteps", "10", "--out", str(tmp_path / "m"),
                 "--env-kwargs", "n_bits=8"]) == 2
    assert "memory_refresh applies to HierHash in memory mode only" in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "c.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _codes(model: Path, tmp_path: Path, name: str) -> np.ndarray:
    out = tmp_path / f"{name}.npz"
    assert main(["encode", str(model), "--out", str(out)]) == 0
    return load_codes(out)["codes"]


def test_a_runs_config_json_trains_that_run_again(tmp_path: Path, bank_path: Path) -> None:
    first = tmp_path / "first"
    assert main(["train", "--bank", str(bank_path), "--levels", "0", "1", "--level-timesteps",
                 "96", "160", "--num-envs", "8", "--seed", "3", "--algo-kwargs",
                 "learning_starts=16", "batch_size=8", "--out", str(first), "--no-progress",
                 "--no-tensorboard"]) == 0
    record = json.loads((first / "config.json").read_text())
    # the record resolves what was not given: the env's code shape, the budget, the pools
    assert record["resolved"]["n_bits"] == 12 and record["level_timesteps"] == [96, 160]
    second = tmp_path / "second"
    assert main(["train", "--config", str(first / "config.json"), "--out", str(second),
                 "--no-progress", "--no-tensorboard"]) == 0
    again = json.loads((second / "config.json").read_text())
    for key in ("algo", "algo_kwargs", "env_id", "levels", "level_timesteps", "n_constraints",
                "num_envs", "seed", "resolved"):
        assert again[key] == record[key], key
    assert np.array_equal(_codes(first / "model.zip", tmp_path, "first"),
                          _codes(second / "model.zip", tmp_path, "second"))


@pytest.mark.parametrize(("config", "key", "value"), [
    # hashgym tune's best.json before 0.5.x and hand-written files: the old names
    ({"env": "CentralHash-v0", "timesteps": 64, "bank": "cifar100-mini"}, "env_id",
     "CentralHash-v0"),
    ({"env": "CentralHash-v0", "timesteps": 64}, "total_timesteps", 64),
    ({"bank": "cifar100-mini", "protocol": "holdout"}, "env_kwargs",
     {"bank": "cifar100-mini", "protocol": "holdout"}),
    # a run's config.json: its bank as resolved, its code shape pinned, its record ignored
    ({"env_id": "HierHash-v0", "env_kwargs": {"bank": "b.npz"}, "bank_path": "/data/b.npz",
      "resolved": {"n_bits": 12, "bits_per_step": 3}, "observation_space": {}},
     "env_kwargs", {"bank": "/data/b.npz", "n_bits": 12, "bits_per_step": 3}),
])
def test_old_config_names_are_read_as_the_run_configs(config: dict, key: str, value) -> None:
    from hashgym.agents.config import RunConfig

    assert getattr(RunConfig.from_mapping(config), key) == value


@pytest.mark.parametrize(("config", "message"), [
    ({"timesteps": 8, "total_timesteps": 8}, "gives both 'timesteps' and 'total_timesteps'"),
    ({"bank": "a", "env_kwargs": {"bank": "b"}}, "gives bank twice"),
    ({"total_timesteps": 8, "level_timesteps": 8}, "give total_timesteps or level_timesteps"),
    ({"n_constraints": 8, "triplets_per_image": 2}, "give n_constraints or triplets_per_image"),
])
def test_a_config_that_says_one_thing_twice_is_refused(tmp_path: Path, capsys, config: dict,
                                                       message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
