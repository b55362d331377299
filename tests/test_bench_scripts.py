"""Smoke runs of the benchmark scripts at tiny sizes: they run end to end and print what they
measured (their numbers are recorded in benchmarks/results/, never asserted here)."""

from __future__ import annotations

import pytest
import torch

from hashgym.benchmarks import (
    bench_agents,
    bench_envs,
    bench_eval,
    bench_images,
    bench_scale,
    diagnose_hierhash,
    profile_dqn,
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_bench_eval_smoke(capsys) -> None:
    bench_eval.main(["--quick", "--repeats", "1", "--baseline-repeats", "1",
                     "--index-repeats", "1"])
    out = capsys.readouterr().out
    assert "mAP@all:" in out and "per-query values" in out and "faiss and numpy" in out
    # both mAP@all paths are timed against the popcount pass and give the same values
    assert "popcount pass" in out and "x the popcount pass; target <= 1.5x" in out
    assert "values identical to the default path: True" in out


@pytest.mark.slow
def test_bench_scale_smoke(capsys, tmp_path) -> None:
    bench_scale.main(["--min", "1e3", "--max", "1e4", "--numpy-max", "1e4", "--queries", "20",
                      "--repeats", "1", "--encode", "300,1000", "--encode-batch", "256",
                      "--out", str(tmp_path / "scale.txt")])
    out = capsys.readouterr().out
    assert "N=        1,000" in out and "N=       10,000" in out and "at 10^9" in out
    assert "N=        300:" in out and "N=      1,000:" in out and "images/s" in out
    assert (tmp_path / "scale.txt").read_text().splitlines()[0] == "# hashgym benchmark: codes at scale"
    bench_scale.main(["--only", "encode", "--encode", "300", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "N=        300:" in out and "Growth" not in out and "faiss N=" not in out


@pytest.mark.slow
def test_bench_envs_smoke(capsys) -> None:
    bench_envs.main(["--bank", "cifar100-mini", "--sizes", "4", "--repeats", "1",
                     "--sync-limit", "4", "--skip-sb3"])
    out = capsys.readouterr().out
    assert "HierHash-v0" in out and "CentralHash-v0" in out and "env steps/s" in out


@pytest.mark.slow
def test_diagnose_hierhash_smoke(capsys) -> None:
    diagnose_hierhash.main(["--bank", "cifar100-dev-mini", "--teacher", "itq", "--epochs", "1",
                            "--frozen-steps", "1024", "--paper-steps", "1024", "--skip-shipped"])
    out = capsys.readouterr().out
    for rung in ("ITQ (reference)", "1 teacher (itq)", "2 capacity", "3 learner", "5 paper"):
        assert rung in out


@pytest.mark.parametrize(("bank", "twin"), [("cifar100-csq", "cifar100-dev-csq"),
                                            ("cifar100-mini", "cifar100-dev-mini")])
def test_diagnose_hierhash_refuses_a_test_preset(capsys, bank: str, twin: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        diagnose_hierhash.main(["--bank", bank])
    assert exit_info.value.code == 2
    assert (f"{bank}'s queries are a test set: diagnose on its development twin "
            f"{twin}, or pass --on-test-bank") in capsys.readouterr().err


@pytest.mark.slow
def test_bench_agents_smoke(shared_data, capsys) -> None:
    bench_agents.main(["--quick"])
    out = capsys.readouterr().out
    assert "DQN hierarchical" in out and "REINFORCE (RNN)" in out and "images/s" in out
    # the fast encode paths give the codes of predict on the 50,000 database images
    assert out.count("the same codes") == 2 and "CODES DIFFER" not in out


@pytest.mark.slow
def test_bench_images_smoke(shared_data, capsys) -> None:
    bench_images.main(["--quick"])
    out = capsys.readouterr().out
    assert "CPU, 1 thread" in out and "CPU, 2 threads" in out and "encode img/s" in out
    share = float(out.split(" of bits as the first row")[0].rsplit(" ", 1)[1])
    assert share >= 0.999  # the same model's codes on 2 threads (float sums may differ in order)


@pytest.mark.slow
def test_profile_dqn_smoke(capsys) -> None:
    profile_dqn.main(["profile", "--bank", "cifar100-mini", "--generation", "1024", "--top", "5",
                      "--clocks", "cpu"])
    out = capsys.readouterr().out
    assert "DQN.train (gradient steps)" in out and "Top 5 by tottime, cpu clock" in out
    profile_dqn.main(["time", "--bank", "cifar100-mini", "--generation", "1024", "--repeats", "2"])
    runs = [line.split() for line in capsys.readouterr().out.splitlines()[-2:]]
    assert [run[0] for run in runs] == ["0", "1"] and runs[0][-1] == runs[1][-1]  # same codes
