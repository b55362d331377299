"""hashgym tune: a sweep on a synthetic bank writes its trials and a config hashgym train runs;
the validation split comes from the training images only; bad spaces fail by name."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

from hashgym.agents import tune as tune_module
from hashgym.agents.tune import TuneError, load_space, tune
from hashgym.cli import main
from hashgym.synthetic import make_hierarchical_bank

torch.set_num_threads(1)
pytest.importorskip("optuna")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPACE = {
    "env": "HierHash-v0",
    "algo": "dqn",
    "levels": [0],
    "timesteps": 1_024,
    "num_envs": 16,
    "algo_kwargs": {
        "learning_starts": 32, "batch_size": 16, "buffer_size": 1000,
        "learning_rate": {"loguniform": [1e-4, 1e-2]},
        "policy_kwargs": {"net_arch": {"choice": [[16], [32, 32]]}},
    },
    "env_kwargs": {"margin": {"uniform": [1.0, 3.0]}},
}


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hierarchical_bank(seed=0).save(tmp_path_factory.mktemp("bank") / "bank.npz")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def scored_banks(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every bank a sweep's trials are coded on, in order (the sweep's ``encode`` is wrapped)."""
    banks = []
    real = tune_module.encode

    def spy(model, bank, split="query", **kwargs):  # type: ignore[no-untyped-def]
        banks.append(bank)
        return real(model, bank, split, **kwargs)

    monkeypatch.setattr(tune_module, "encode", spy)
    return banks


@pytest.mark.slow
def test_a_sweep_writes_its_trials_and_a_config_that_trains(bank_path: Path, tmp_path: Path,
                                                            capsys) -> None:
    result = tune({**SPACE, "bank": str(bank_path)}, trials=4, rungs=2, out=tmp_path / "sweep")
    rows = _rows(tmp_path / "sweep" / "trials.csv")
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["state"] for r in rows} <= {"complete", "pruned"}
    assert set(rows[0]) == {"trial", "state", "value", "steps", "seconds",
                            "algo_kwargs.learning_rate", "algo_kwargs.policy_kwargs.net_arch",
                            "env_kwargs.margin"}
    done = [r for r in rows if r["state"] == "complete"]
    best = max(done, key=lambda r: float(r["value"]))
    config = json.loads((tmp_path / "sweep" / "best.json").read_text())
    assert config["env_kwargs"]["bank"] == str(bank_path) and config["seed"] == 0
    assert config["total_timesteps"] == SPACE["timesteps"]  # one schema: RunConfig's keys
    assert config["algo_kwargs"]["learning_rate"] == pytest.approx(
        float(best["algo_kwargs.learning_rate"]), rel=1e-5)
    assert json.dumps(config["algo_kwargs"]["policy_kwargs"]["net_arch"]) == (
        best["algo_kwargs.policy_kwargs.net_arch"])
    assert config["validation"]["value"] == pytest.approx(result.best_value)
    assert 0.0 <= result.best_value <= 1.0
    # the same space and seed propose the same trials
    again = tune({**SPACE, "bank": str(bank_path)}, trials=2, rungs=1, out=tmp_path / "again")
    assert [r["algo_kwargs.learning_rate"] for r in again.trials] == [
        r["algo_kwargs.learning_rate"] for r in result.trials[:2]]
    # hashgym train --config runs the chosen setting
    code = main(["train", "--config", str(tmp_path / "sweep" / "best.json"), "--timesteps",
                 "512", "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    trained = json.loads((tmp_path / "run" / "config.json").read_text())
    assert trained["algo_kwargs"]["learning_rate"] == config["algo_kwargs"]["learning_rate"]
    assert trained["env_kwargs"]["margin"] == config["env_kwargs"]["margin"]


@pytest.mark.slow
def test_a_stopped_sweep_resumes_with_the_missing_trials(bank_path: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna

    space = {**SPACE, "bank": str(bank_path)}
    first = tune(space, trials=2, rungs=1, out=tmp_path)
    # a third trial whose process died mid-run: RUNNING in the journal, never told
    study = optuna.load_study(study_name=tune_module.STUDY,
                              storage=tune_module._storage(optuna, str(tmp_path / "study.journal")))
    study.ask()
    runs = []
    real_train = tune_module.train
    monkeypatch.setattr(tune_module, "train", lambda *a, **k: runs.append(1) or real_train(*a, **k))
    resumed = tune(space, trials=4, rungs=1, out=tmp_path)
    assert len(runs) == 2  # trials 0 and 1 were not trained again; 3 and 4 were
    rows = _rows(tmp_path / "trials.csv")
    assert [(r["trial"], r["state"]) for r in rows] == [
        ("0", "complete"), ("1", "complete"), ("2", "interrupted"), ("3", "complete"),
        ("4", "complete")]
    assert [r["value"] for r in resumed.trials[:2]] == [r["value"] for r in first.trials]
    # asking for no more trials than are finished trains nothing and rewrites the same files
    tune(space, trials=4, rungs=1, out=tmp_path)
    assert len(runs) == 2 and _rows(tmp_path / "trials.csv") == rows
    # another space in the same folder is refused; --no-resume starts over
    other = {**space, "env_kwargs": {"margin": {"uniform": [1.0, 2.0]}}}
    with pytest.raises(TuneError, match="holds a sweep of another search space, metric, rungs, "
                                        "seed or bank; give another --out, or --no-resume"):
        tune(other, trials=1, rungs=1, out=tmp_path)
    with pytest.raises(TuneError, match="holds a sweep of another"):  # the same space, another bank
        tune(space, trials=4, rungs=1, out=tmp_path, bank=make_hierarchical_bank(seed=1))
    fresh = tune(other, trials=1, rungs=1, out=tmp_path, resume=False)
    assert [r["trial"] for r in fresh.trials] == [0] and len(runs) == 3


@pytest.mark.slow
def test_parallel_workers_share_one_sweep(bank_path: Path, tmp_path: Path, capsys) -> None:
    code = main(["tune", "--space", str(EXAMPLES / "dqn_space.yaml"), "--bank", str(bank_path),
                 "--timesteps", "1024", "--trials", "3", "--rungs", "1", "--jobs", "2",
                 "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert "3 trials: 3 complete, 0 pruned, 0 failed, 0 interrupted" in capsys.readouterr().out
    rows = _rows(tmp_path / "trials.csv")
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert all(0.0 <= float(r["value"]) <= 1.0 and int(r["steps"]) >= 1024 for r in rows)
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["validation"]["value"] == max(float(r["value"]) for r in rows)


@pytest.mark.slow
def test_ray_workers_share_one_sweep(bank_path: Path, tmp_path: Path, capsys,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """--executor ray: the workers are tasks of a local Ray started for the sweep (and gone
    after it), reading the bank and the journal by absolute paths from another folder."""
    pytest.importorskip("ray")
    import ray

    monkeypatch.chdir(tmp_path)
    code = main(["tune", "--space", str(EXAMPLES / "dqn_space.yaml"), "--bank",
                 str(bank_path), "--timesteps", "1024", "--trials", "3", "--rungs", "1",
                 "--jobs", "2", "--executor", "ray", "--out", "sweep"])
    assert code == 0, capsys.readouterr().err
    assert "3 trials: 3 complete, 0 pruned, 0 failed, 0 interrupted" in capsys.readouterr().out
    rows = _rows(tmp_path / "sweep" / "trials.csv")
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert all(0.0 <= float(r["value"]) <= 1.0 for r in rows)
    assert not ray.is_initialized()


def test_trials_are_scored_on_training_images_only(bank_path: Path, tmp_path: Path,
                                                   scored_banks: list) -> None:
    tune({**SPACE, "bank": str(bank_path)}, trials=1, rungs=1, out=tmp_path)
    n_train = len(make_hierarchical_bank(seed=0).indices("train"))
    seen = [(bank.meta["protocol"]["name"], bank.n) for bank in scored_banks]
    assert seen and all(entry == ("holdout", n_train) for entry in seen)


def test_the_shipped_dqn_space_loads() -> None:
    space = load_space(EXAMPLES / "dqn_space.yaml")
    assert space["algo"] == "dqn" and space["total_timesteps"] > 0


@pytest.mark.parametrize(("text", "message"), [
    ("algo: dqn\nlearning_rate: {uniform: [0.1, 0.2]}\n",
     r"unknown keys \['learning_rate'\]; known: algo, env_id"),
    ("algo_kwargs:\n  learning_rate: 0.001\n", "has no dimension to search"),
    ("algo_kwargs:\n  learning_rate: {uniform: [0.2, 0.1]}\n",
     r"dimension algo_kwargs.learning_rate: uniform needs \[low, high\] with low < high"),
    ("algo_kwargs:\n  learning_rate: {loguniform: [0, 0.1]}\n", "loguniform needs low > 0"),
    ("algo_kwargs:\n  target_update_interval: {int: [1.5, 9]}\n", "int needs integer bounds"),
    ("algo_kwargs:\n  net_arch: {choice: []}\n", "choice needs a non-empty list"),
    ("- 1\n- 2\n", "must be a mapping of train\\(\\) arguments"),
    ("algo: [unclosed\n", "is not valid YAML"),
])
def test_bad_spaces_fail_by_name(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(TuneError, match=message):
        load_space(path)


def test_sweep_errors(bank_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys) -> None:
    space = {**SPACE, "bank": str(bank_path)}
    with pytest.raises(TuneError, match="needs a fixed budget: total_timesteps"):
        tune({k: v for k, v in space.items() if k != "timesteps"}, trials=1, out=tmp_path)
    with pytest.raises(TuneError, match="trials must be a positive int, got 0"):
        tune(space, trials=0, out=tmp_path)
    with pytest.raises(TuneError, match="jobs must be a positive int, got 0"):
        tune(space, trials=1, jobs=0, out=tmp_path)
    with pytest.raises(TuneError, match="threads must be a positive int, got -1"):
        tune(space, trials=1, threads=-1, out=tmp_path)
    with pytest.raises(TuneError, match="metric: "):
        tune(space, trials=1, metric="NDCG@x", out=tmp_path)
    with pytest.raises(TuneError, match="unknown executor 'dask'; expected one of process, ray"):
        tune(space, trials=1, executor="dask", out=tmp_path)
    with pytest.raises(TuneError, match="ray_address is for the ray executor, not 'process'"):
        tune(space, trials=1, ray_address="auto", out=tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # what a missing package looks like
    with pytest.raises(TuneError, match=r"the ray executor needs Ray, an optional extra"):
        tune(space, trials=2, jobs=2, executor="ray", out=tmp_path / "ray")
    assert main(["tune", "--space", str(tmp_path / "missing.yaml")]) == 2
    assert "hashgym tune: error: cannot read the search space" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(TuneError, match=r"hashgym tune needs Optuna, an optional extra: pip "
                                        r"install -e \"\.\[tune\]\""):
        tune(space, trials=1, out=tmp_path)
    assert not (tmp_path / "trials.csv").exists()


@pytest.mark.parametrize(("text", "message"), [
    ('{"algo": "dqn", "lr": 1}', r"has unknown keys \['lr'\]"),
    ("[1, 2]", "must hold a JSON object of options"),
    ("{nope", "cannot read --config"),
])
def test_train_config_errors(tmp_path: Path, capsys, text: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert message.replace("\\", "") in capsys.readouterr().err or pytest.fail(message)


def _tune_on_the_twin(bank: str, twin: str, tmp_path: Path, capsys) -> Path:
    """Run a one-trial ``hashgym tune --bank bank``, check that it says it chose on ``twin``
    and that its ``best.json`` trains on ``bank``; the space file's path is returned."""
    space = tmp_path / "space.json"
    space.write_text(json.dumps({**SPACE, "timesteps": 256}))
    code = main(["tune", "--space", str(space), "--bank", bank, "--trials", "1",
                 "--rungs", "1", "--out", str(tmp_path / "twin")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (f"{bank}'s queries are a test set; choosing on its development twin "
            f"{twin}") in captured.err
    assert f"validation split ({twin})" in captured.out
    config = json.loads((tmp_path / "twin" / "best.json").read_text())
    assert config["env_kwargs"]["bank"] == bank  # trains on the bank asked for
    assert config["validation"]["split"] == twin
    return space


def test_the_builtin_bank_is_tuned_on_its_builtin_twin(tmp_path: Path, capsys, scored_banks: list,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """cifar100-mini's queries are shared test queries: its trials train and score on
    cifar100-dev-mini, which is built in too, so no data folder is needed."""
    monkeypatch.setenv("HASHGYM_DATA", str(tmp_path / "no-data"))
    _tune_on_the_twin("cifar100-mini", "cifar100-dev-mini", tmp_path, capsys)
    seen = [(bank.meta.get("development"), bank.meta["source"], bank.n) for bank in scored_banks]
    assert seen and all(entry == (True, "cifar100_resnet18_dev_features.npz", 9000)
                        for entry in seen)


@pytest.mark.slow
def test_a_shared_test_preset_is_tuned_on_its_development_twin(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
        scored_banks: list) -> None:
    monkeypatch.setenv("HASHGYM_DATA", str(shared_data))
    space = _tune_on_the_twin("cifar100-csq", "cifar100-dev-csq", tmp_path, capsys)
    # scored on the twin's csq split: 1,000 validation queries among its 50,000 images
    seen = [(bank.meta.get("development"), bank.meta["protocol"]["name"], bank.n)
            for bank in scored_banks]
    assert seen and all(entry == (True, "csq", 50_000) for entry in seen)

    scored_banks.clear()
    code = main(["tune", "--space", str(space), "--bank", "cifar100-csq", "--trials", "1",
                 "--rungs", "1", "--out", str(tmp_path / "test"), "--on-test-bank"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "development twin" not in captured.err
    seen = [(bank.meta.get("development"), bank.meta["protocol"]["name"]) for bank in scored_banks]
    assert seen and all(entry == (None, "holdout") for entry in seen)
    assert json.loads((tmp_path / "test" / "best.json").read_text())["validation"]["split"] == (
        "holdout")
