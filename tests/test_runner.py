"""The benchmark runner: output files, resume, interruption, determinism, tables, errors."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hashgym
from hashgym.bank import FeatureBank
from hashgym.benchmarks import methods as bench_methods
from hashgym.benchmarks import runner
from hashgym.benchmarks.methods import on_device, resolved_params, run_agent
from hashgym.benchmarks.plots import length_plot, steps_label
from hashgym.benchmarks.runner import run_benchmark
from hashgym.benchmarks.suites import BenchError, BenchSuite, MethodSpec
from hashgym.benchmarks.tables import latex_tables, markdown_tables, results_csv, summarize
from hashgym.cli import main
from hashgym.codes import unpack
from hashgym.metrics import evaluate
from hashgym.ray_pool import RayPool
from hashgym.synthetic import make_hierarchical_bank

TINY = BenchSuite(
    name="tiny",
    description="two fast methods on a synthetic bank",
    banks=("synthetic",),
    bits=(8, 12),
    metrics=("mAP@all", "P@r<=2", "NDCG@5"),
    relevance="hierarchy",
    seeds=2,
    ndcg_ks=(1, 5, 10),
    methods=(
        MethodSpec("lsh", "baseline", {"name": "lsh"}, "LSH"),
        MethodSpec("itq", "baseline", {"name": "itq", "n_iter": 5}, "ITQ"),
    ),
)
N_CELLS = 1 * 2 * 2 * 2  # banks × methods × bits × seeds


@pytest.fixture(scope="module")
def bank() -> FeatureBank:
    return make_hierarchical_bank(branching=(3, 2), n_per_class=15, dim=16, seed=0)


def _run(bank: FeatureBank, out: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("plots", False)
    return run_benchmark(TINY, banks={"synthetic": bank}, out=out, progress=False, **kwargs)


def _counting(monkeypatch: pytest.MonkeyPatch, fail_on: int | None = None,
              error: type[BaseException] = RuntimeError) -> list[int]:
    """Count calls of the baseline adapter; optionally raise ``error`` on call number
    ``fail_on``."""
    calls: list[int] = []
    original: Callable[..., Any] = bench_methods.METHOD_KINDS["baseline"]

    def wrapped(bank: FeatureBank, n_bits: int, seed: int, params: Mapping[str, Any]) -> Any:
        calls.append(n_bits)
        if fail_on is not None and len(calls) == fail_on:
            raise error("injected failure")
        return original(bank, n_bits, seed, params)

    monkeypatch.setitem(bench_methods.METHOD_KINDS, "baseline", wrapped)
    return calls


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_writes_every_output_file(bank: FeatureBank, tmp_path: Path) -> None:
    result = _run(bank, tmp_path, plots=True)
    names = {p.name for p in tmp_path.iterdir()}
    expected = {"results.csv", "table.md", "table.tex", "record.json", "cells",
                "precision_r2_synthetic.png"}
    expected |= {f"{kind}_synthetic_{b}bits.png" for kind in ("pr", "ndcg") for b in (8, 12)}
    # two code lengths: each metric and the training seconds against the length
    expected |= {f"length_{m}_synthetic.png" for m in ("mAP-all", "P-r-2", "NDCG-5", "seconds")}
    assert names == expected
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind

    rows = _read_csv(tmp_path / "results.csv")
    assert list(rows[0]) == ["bank", "method", "bits", "seed", "metric", "value"]
    assert len(rows) == N_CELLS * 3
    assert {(r["method"], r["bits"], r["seed"], r["metric"]) for r in rows} == {
        (m, b, s, k) for m in ("lsh", "itq") for b in ("8", "12") for s in ("0", "1")
        for k in TINY.metrics
    }
    assert result.computed == N_CELLS and len(result.cells) == N_CELLS

    table = (tmp_path / "table.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Method"))
    assert header.strip("| ").split(" | ") == ["Method"] + [
        f"{m} ({b} bits)" for b in (8, 12) for m in TINY.metrics]
    assert any(line.startswith("| LSH |") for line in table.splitlines())
    assert any(line.startswith("| ITQ |") for line in table.splitlines())
    assert "mean ± sample std over 2 seeds" in table
    tex = (tmp_path / "table.tex").read_text()
    assert r"\multicolumn{3}{c}{8 bits}" in tex and r"\textbf{" in tex and "LSH &" in tex

    record = json.loads((tmp_path / "record.json").read_text())
    assert record["suite"]["name"] == "tiny"
    assert record["seeds"] == [0, 1]
    assert {"python", "numpy", "torch", "stable-baselines3", "gymnasium", "hashgym"} <= set(
        record["versions"])
    assert record["banks"]["synthetic"]["fingerprint"] == bank.fingerprint()
    assert record["banks"]["synthetic"]["summary"]["query"] == len(bank.indices("query"))
    assert len(record["cells"]) == N_CELLS
    assert all(c["total_s"] >= 0 and not c["resumed"] for c in record["cells"])
    assert "cpu_count" in record["machine"]
    # the code that ran: this checkout's commit (the tests run from one); no agent, no env
    head = subprocess.run(["git", "-C", str(Path(runner.__file__).resolve().parents[1]),
                           "rev-parse", "HEAD"], check=False, capture_output=True, text=True)
    if head.returncode == 0:
        assert record["source"]["commit"] == head.stdout.strip()
        assert isinstance(record["source"]["dirty"], bool)
    assert record["envs"] == {}
    assert record["suite"]["settings"] == TINY.settings


def test_length_plots_show_the_cells_means_and_seed_range(bank: FeatureBank,
                                                         tmp_path: Path) -> None:
    result = _run(bank, tmp_path)
    for metric in (*TINY.metrics, None):
        fig = length_plot(result.cells, TINY, "synthetic", metric)
        ax = fig.axes[0]
        for spec, line, band in zip(TINY.methods, ax.lines, ax.collections, strict=True):
            assert line.get_label() == spec.title
            np.testing.assert_array_equal(line.get_xdata(), [8, 12])
            for bits, y, (low, high) in zip((8, 12), line.get_ydata(), _band(band), strict=True):
                values = [c.data["timing"]["fit_s"] if metric is None else c.metrics[metric]
                          for c in result.cells
                          if c.cell.method.key == spec.key and c.cell.n_bits == bits]
                assert len(values) == 2
                assert y == pytest.approx(np.mean(values))
                assert (low, high) == pytest.approx((min(values), max(values)))
        assert ax.get_yscale() == ("log" if metric is None else "linear")


def _band(collection: Any) -> list[tuple[float, float]]:
    """A ``fill_between`` band's (low, high) at each of its x values, in x order."""
    vertices = collection.get_paths()[0].vertices
    out: dict[float, list[float]] = {}
    for x, y in vertices:
        out.setdefault(float(x), []).append(float(y))
    return [(min(ys), max(ys)) for _, ys in sorted(out.items())]


def test_saved_codes_reproduce_the_metrics(bank: FeatureBank, tmp_path: Path) -> None:
    result = _run(bank, tmp_path)
    q, db = bank.indices("query"), bank.indices("database")
    for cell in result.cells:
        with np.load(tmp_path / "cells" / f"{cell.key}.npz", allow_pickle=False) as archive:
            query = unpack(archive["query"], cell.cell.n_bits)
            database = unpack(archive["database"], cell.cell.n_bits)
        assert query.shape == (len(q), cell.cell.n_bits) and database.shape[0] == len(db)
        again = evaluate(query, database, bank.labels[q], bank.labels[db], list(TINY.metrics),
                         relevance="hierarchy")
        assert again == cell.metrics
        curves = cell.data["curves"]
        assert len(curves["pr"]["precision"]) == cell.cell.n_bits + 1
        assert curves["ndcg"]["k"] == [1, 5, 10]
        assert math.isclose(curves["ndcg"]["value"][1], cell.metrics["NDCG@5"])
        # the PR curve at radius 2 is exactly precision within radius 2
        assert math.isclose(curves["pr"]["precision"][2], cell.metrics["P@r<=2"])


def test_second_run_resumes_without_recomputing(
    bank: FeatureBank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(bank, tmp_path)
    calls = _counting(monkeypatch)
    second = _run(bank, tmp_path)
    assert calls == []
    assert second.computed == 0
    assert all(c.resumed for c in second.cells)
    assert second.rows == first.rows
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["cells_resumed"] == N_CELLS and record["cells_computed"] == 0


def test_no_resume_recomputes(bank: FeatureBank, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    run_benchmark(TINY, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"], bits=[8],
                  seeds=1, progress=False, plots=False)
    calls = _counting(monkeypatch)
    again = run_benchmark(TINY, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"],
                          bits=[8], seeds=1, progress=False, plots=False, resume=False)
    assert calls == [8] and again.computed == 1


def test_changed_library_default_is_a_new_cell(bank: FeatureBank, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from hashgym.benchmarks.baselines import BASELINES

    defaults = BASELINES["itq"].__init__.__kwdefaults__
    monkeypatch.setitem(defaults, "n_iter", 3)
    plain_itq = dataclasses.replace(TINY, methods=(MethodSpec("itq", "baseline", {"name": "itq"}),))
    options = {"banks": {"synthetic": bank}, "out": tmp_path, "bits": [8], "seeds": 1, "progress": False,
                   "plots": False}
    run_benchmark(plain_itq, **options)
    calls = _counting(monkeypatch)
    assert run_benchmark(plain_itq, **options).computed == 0
    monkeypatch.setitem(defaults, "n_iter", 4)  # the library's default changes
    assert run_benchmark(plain_itq, **options).computed == 1 and calls == [8]


def test_record_names_the_imported_code_version(bank: FeatureBank, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # an editable install's metadata keeps the version it was installed at; the record and the
    # cell keys follow the code that ran
    options = {"banks": {"synthetic": bank}, "out": tmp_path, "methods": ["lsh"], "bits": [8],
               "seeds": 1, "progress": False, "plots": False}
    run_benchmark(TINY, **options)
    monkeypatch.setattr(hashgym, "__version__", "99.0.0")
    assert run_benchmark(TINY, **options).computed == 1
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["versions"]["hashgym"] == "99.0.0"


def test_interrupted_run_keeps_finished_cells_and_completes(
    bank: FeatureBank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _counting(monkeypatch, fail_on=2, error=KeyboardInterrupt)  # the run is stopped (Ctrl-C)
    with pytest.raises(KeyboardInterrupt, match="injected failure"):
        _run(bank, tmp_path)
    assert len(list((tmp_path / "cells").glob("*.json"))) == 1
    assert not (tmp_path / "results.csv").exists()
    monkeypatch.undo()
    calls = _counting(monkeypatch)
    result = _run(bank, tmp_path)
    assert len(calls) == N_CELLS - 1
    assert result.computed == N_CELLS - 1
    assert len(_read_csv(tmp_path / "results.csv")) == N_CELLS * 3


def test_same_seed_gives_identical_results(bank: FeatureBank, tmp_path: Path) -> None:
    _run(bank, tmp_path / "a")
    _run(bank, tmp_path / "b")
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()
    assert (tmp_path / "a" / "table.md").read_text() == (tmp_path / "b" / "table.md").read_text()


def test_other_seed_gives_other_codes(bank: FeatureBank, tmp_path: Path) -> None:
    result = run_benchmark(TINY, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"],
                           bits=[12], seeds=[0, 1], progress=False, plots=False)
    codes = [np.load(tmp_path / "cells" / f"{c.key}.npz")["database"] for c in result.cells]
    assert not np.array_equal(codes[0], codes[1])


def test_changed_evaluation_rescores_saved_codes(
    bank: FeatureBank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_benchmark(TINY, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"], bits=[8],
                  seeds=1, progress=False, plots=False)
    calls = _counting(monkeypatch)
    more = BenchSuite(**{**TINY.__dict__, "metrics": ("mAP@all", "ACG@5")})
    result = run_benchmark(more, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"],
                           bits=[8], seeds=1, progress=False, plots=False)
    assert calls == [] and result.computed == 0
    assert set(result.cells[0].metrics) == {"mAP@all", "ACG@5"}


def test_unreadable_cell_is_recomputed(bank: FeatureBank, tmp_path: Path) -> None:
    first = run_benchmark(TINY, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"],
                          bits=[8], seeds=1, progress=False, plots=False)
    (tmp_path / "cells" / f"{first.cells[0].key}.json").write_text("{truncated")
    again = run_benchmark(TINY, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"],
                          bits=[8], seeds=1, progress=False, plots=False)
    assert again.computed == 1 and again.rows == first.rows


def test_different_bank_is_a_different_cell(bank: FeatureBank, tmp_path: Path) -> None:
    other = make_hierarchical_bank(branching=(3, 2), n_per_class=15, dim=16, seed=1)
    assert other.fingerprint() != bank.fingerprint()
    assert make_hierarchical_bank(branching=(3, 2), n_per_class=15, dim=16,
                                  seed=0).fingerprint() == bank.fingerprint()
    run_benchmark(TINY, banks={"synthetic": bank}, out=tmp_path, methods=["lsh"], bits=[8],
                  seeds=1, progress=False, plots=False)
    result = run_benchmark(TINY, banks={"synthetic": other}, out=tmp_path, methods=["lsh"],
                           bits=[8], seeds=1, progress=False, plots=False)
    assert result.computed == 1


# ---------------------------------------------------------------------------------- tables

def _rows(values: dict[str, list[float]]) -> list[dict[str, Any]]:
    return [{"bank": "b", "method": m, "bits": 8, "seed": s, "metric": "mAP@all", "value": v}
            for m, vs in values.items() for s, v in enumerate(vs)]


def test_tables_bold_the_best_mean_and_show_the_std() -> None:
    suite = BenchSuite(name="t", description="d", banks=("b",), bits=(8,),
                          metrics=("mAP@all",), methods=(
                              MethodSpec("a", "baseline", label="A"),
                              MethodSpec("c", "baseline", label="C")))
    summary = summarize(_rows({"a": [0.1, 0.3], "c": [0.5, 0.6]}))
    md = markdown_tables(summary, suite)
    # a: mean 0.2, sample std sqrt(0.02) = 0.1414; c: mean 0.55, std sqrt(0.005) = 0.0707
    assert "| A | 0.2000 ± 0.1414 |" in md
    assert "| C | **0.5500 ± 0.0707** |" in md
    tex = latex_tables(summary, suite)
    assert r"C & \textbf{0.5500 $\pm$ 0.0707} \\" in tex
    assert r"A & 0.2000 $\pm$ 0.1414 \\" in tex


def test_tables_bold_every_tie_and_single_seed_has_no_std() -> None:
    suite = BenchSuite(name="t", description="d", banks=("b",), bits=(8,),
                          metrics=("mAP@all",), methods=(
                              MethodSpec("a", "baseline"), MethodSpec("c", "baseline"),
                              MethodSpec("e", "baseline")))
    md = markdown_tables(summarize(_rows({"a": [0.5], "c": [0.1], "e": [0.50001]})), suite)
    assert "| a | **0.5000** |" in md and "| e | **0.5000** |" in md
    assert "| c | 0.1000 |" in md
    assert "one seed" in md


def test_results_csv_round_trips_values() -> None:
    text = results_csv(_rows({"a": [0.1 + 0.2]}))
    assert text.splitlines() == ["bank,method,bits,seed,metric,value",
                                 "b,a,8,0,mAP@all,0.30000000000000004"]


# ---------------------------------------------------------------------------------- errors

def test_unknown_suite_and_method_errors(bank: FeatureBank, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"unknown benchmark suite 'nope'; known: drlhih"):
        run_benchmark("nope", out=tmp_path)
    with pytest.raises(BenchError, match=r"suite 'tiny' has no method 'sift'; its methods: lsh, itq"):
        _run(bank, tmp_path, methods=["sift"])
    with pytest.raises(BenchError, match="seeds must be at least 1"):
        _run(bank, tmp_path, seeds=0)
    with pytest.raises(BenchError, match="seeds has duplicates"):
        _run(bank, tmp_path, seeds=[1, 1])
    bad = BenchSuite(**{**TINY.__dict__, "methods": (MethodSpec("x", "magic"),)})
    with pytest.raises(BenchError, match=r"method 'x' has unknown kind 'magic'; known kinds: baseline, agent"):
        run_benchmark(bad, banks={"synthetic": bank}, out=tmp_path, progress=False, plots=False)
    assert not list((tmp_path / "cells").glob("*.json")) if (tmp_path / "cells").exists() else True


def test_cli_errors_and_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--suite", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark suite 'nope'; known: drlhih, scihcgrl, scihcgrl-e2e, agents, quick" in (
        capsys.readouterr().err)
    assert main(["bench", "--suite", "quick", "--methods", "lsh,sift", "--out", str(tmp_path)]) == 2
    assert "has no method 'sift'" in capsys.readouterr().err
    assert main(["bench", "--suite", "quick", "--bits", "a,b", "--out", str(tmp_path)]) == 2
    assert "--bits must be a comma-separated list of int" in capsys.readouterr().err
    assert main(["bench"]) == 2
    assert "--suite is required" in capsys.readouterr().err
    assert main(["bench", "--suite", "quick", "--protocol", "drlhih", "--out", str(tmp_path)]) == 2
    assert "--suite quick and --protocol drlhih disagree" in capsys.readouterr().err
    assert main(["bench", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "quick:" in listing and "scihcgrl:" in listing and "methods  lsh" in listing
    assert "bits     16, 24, 32, 48, 64; seeds 100-104" in listing


def test_a_run_without_seeds_takes_the_suites_own(bank: FeatureBank, tmp_path: Path) -> None:
    suite = dataclasses.replace(TINY, seeds=1, first_seed=7, bits=(8,))
    result = run_benchmark(suite, banks={"synthetic": bank}, out=tmp_path, progress=False,
                           plots=False)
    assert {c.cell.seed for c in result.cells} == {7}
    assert json.loads((tmp_path / "record.json").read_text())["seeds"] == [7]


def test_cli_runs_a_suite_on_a_bank_file(bank: FeatureBank, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = bank.save(tmp_path / "bank.npz")
    out = tmp_path / "out"
    code = main(["bench", "--suite", "quick", "--bank", str(path), "--methods", "lsh",
                 "--bits", "8", "--out", str(out), "--no-plots", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| LSH |" in printed and "1 cells (1 computed, 0 resumed)" in printed
    rows = _read_csv(out / "results.csv")
    assert {r["bank"] for r in rows} == {str(path)} and {r["bits"] for r in rows} == {"8"}
    args = ["bench", "--suite", "quick", "--bank", str(path), "--methods", "lsh", "--bits", "8",
            "--out", str(out), "--no-plots", "--no-progress"]
    assert main(args) == 0
    assert "1 cells (0 computed, 1 resumed)" in capsys.readouterr().out
    assert main([*args, "--no-resume"]) == 0
    assert "1 cells (1 computed, 0 resumed)" in capsys.readouterr().out
    # the option's name before 0.5 still works, with a warning
    old_name = [a if a != "--suite" else "--protocol" for a in args]
    assert main(old_name) == 0
    captured = capsys.readouterr()
    assert "1 cells (0 computed, 1 resumed)" in captured.out
    assert ("hashgym bench: warning: --protocol is deprecated and will be removed in hashgym "
            "0.6; use --suite") in captured.err


# ---------------------------------------------------------------------------------- agents

AGENTS = BenchSuite(
    name="tiny-agents",
    description="both agents with tiny budgets",
    banks=("synthetic",),
    bits=(6,),
    metrics=("mAP@all", "NDCG@5"),
    seeds=1,
    ndcg_ks=(5,),
    methods=(
        MethodSpec("itq", "baseline", {"name": "itq", "n_iter": 5}, "ITQ"),
        MethodSpec("dqn-l1", "agent", {
            "algo": "dqn", "levels": [1], "total_timesteps": 600, "num_envs": 8,
            "env_kwargs": {"bits_per_step": 3}, "curve_points": 5,
            "algo_kwargs": {"learning_starts": 100, "batch_size": 32, "buffer_size": 1000}}),
        MethodSpec("dqn-hier", "agent", {
            "algo": "dqn", "levels": [0, 1], "level_timesteps": 300, "num_envs": 8,
            "env_kwargs": {"bits_per_step": 3}, "triplets_per_image": 2, "memory_refresh": 64,
            "curve_points": 5,
            "learning_curve": {"metric": "NDCG@5", "relevance": "hierarchy", "points": 3},
            "algo_kwargs": {"learning_starts": 100, "batch_size": 32, "buffer_size": 1000}}),
        MethodSpec("reinforce", "agent", {
            "algo": "reinforce", "env_id": "CentralHash-v0", "total_timesteps": 600,
            "num_envs": 16, "curve_points": 5}),
    ),
)


@pytest.mark.slow
def test_agents_run_as_methods(bank: FeatureBank, tmp_path: Path) -> None:
    result = run_benchmark(AGENTS, banks={"synthetic": bank}, out=tmp_path / "a",
                           progress=False, plots=True)
    assert result.computed == 4
    agents = [cell for cell in result.cells if cell.cell.method.kind == "agent"]
    for cell in agents:
        curve = cell.data["curves"]["training"]
        assert curve is not None and len(curve["x"]) >= 2
        assert curve["x"] == sorted(curve["x"]) and curve["x"][-1] <= 600
        assert cell.data["info"]["num_timesteps"] >= 600
        with np.load(tmp_path / "a" / "cells" / f"{cell.key}.npz") as archive:
            assert unpack(archive["query"], 6).shape == (len(bank.indices("query")), 6)
    assert cell.data["info"]["algo"] == "reinforce"
    hier = agents[1].data["info"]
    assert hier["levels"] == [0, 1] and hier["memory_refresh"] == 64
    assert hier["n_constraints"] == [2 * len(bank.indices("train"))] * 2
    assert (tmp_path / "a" / "training_synthetic_6bits.png").is_file()
    # the learning curve: three evenly spaced points, the last the final codes' score
    learning = hier["learning_curve"]
    assert len(learning["x"]) == 3 and learning["x"] == sorted(learning["x"])
    assert learning["ylabel"] == "NDCG@5 (hierarchy)"
    final = next(c for c in result.cells if c.cell.method.key == "dqn-hier").data["metrics"]
    assert learning["y"][-1] == pytest.approx(final["NDCG@5"])
    assert (tmp_path / "a" / "learning_synthetic_6bits.png").is_file()
    again = run_benchmark(AGENTS, banks={"synthetic": bank}, out=tmp_path / "b",
                          methods=["dqn-l1", "reinforce"], progress=False, plots=False)
    first = {r["method"]: r for r in result.rows if r["metric"] == "mAP@all"}
    assert all(r["value"] == first[r["method"]]["value"] for r in again.rows
               if r["metric"] == "mAP@all")


def test_agent_parameter_errors(bank: FeatureBank, tmp_path: Path) -> None:
    def suite(params: dict[str, Any]) -> BenchSuite:
        return BenchSuite(**{**AGENTS.__dict__, "methods": (MethodSpec("x", "agent", params),)})

    with pytest.raises(BenchError, match=r"params has unknown keys \['epochs'\]"):
        run_benchmark(suite({"algo": "dqn", "total_timesteps": 10, "epochs": 3}),
                      banks={"synthetic": bank}, out=tmp_path, progress=False, plots=False)
    with pytest.raises(BenchError, match=r"needs a budget: params\['total_timesteps'\]"):
        run_benchmark(suite({"algo": "reinforce", "env_id": "CentralHash-v0"}),
                      banks={"synthetic": bank}, out=tmp_path, progress=False, plots=False)
    with pytest.raises(BenchError, match="give n_constraints or triplets_per_image, not both"):
        run_benchmark(suite({"algo": "dqn", "total_timesteps": 10, "n_constraints": 50,
                             "triplets_per_image": 2}),
                      banks={"synthetic": bank}, out=tmp_path, progress=False, plots=False)
    with pytest.raises(BenchError, match=r"needs params\['algo'\]"):
        run_benchmark(suite({"total_timesteps": 10}), banks={"synthetic": bank}, out=tmp_path,
                      progress=False, plots=False)


def _one_cell_key(bank: FeatureBank, folder: Path) -> str:
    """The key of the (lsh, 8 bits, seed 0) cell, from a run of that cell alone."""
    run_benchmark(TINY, banks={"synthetic": bank}, out=folder, methods=["lsh"], bits=[8],
                  seeds=1, progress=False, plots=False)
    (path,) = (folder / "cells").glob("*.json")
    return path.stem


def _claim(cells: Path, key: str, pid: int) -> None:
    cells.mkdir(parents=True, exist_ok=True)
    (cells / f"{key}.claim").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))


def test_a_killed_runs_claims_are_taken_over(bank: FeatureBank, tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    key = _one_cell_key(bank, tmp_path / "probe")
    _claim(tmp_path / "cells", key, int(dead.stdout))
    result = _run(bank, tmp_path)
    assert result.computed == N_CELLS
    assert not list((tmp_path / "cells").glob("*.claim"))


def test_a_cell_another_live_run_claimed_is_waited_for_not_computed(
    bank: FeatureBank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claimed cell comes last; when the other run finishes it, it is loaded (computed
    once in all); when the other run dies instead, this run computes it."""
    key = _one_cell_key(bank, tmp_path / "probe")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _claim(tmp_path / "cells", key, other.pid)
        waits: list[float] = []

        def other_run_finishes(seconds: float) -> None:
            waits.append(seconds)
            # the other run: computes the cell under its claim, then drops the claim
            shutil.copy(tmp_path / "probe" / "cells" / f"{key}.json", tmp_path / "cells")
            shutil.copy(tmp_path / "probe" / "cells" / f"{key}.npz", tmp_path / "cells")
            (tmp_path / "cells" / f"{key}.claim").unlink()

        monkeypatch.setattr(runner.time, "sleep", other_run_finishes)
        calls = _counting(monkeypatch)
        result = _run(bank, tmp_path)
        assert len(waits) == 1
        assert result.computed == N_CELLS - 1 and len(calls) == N_CELLS - 1
        assert [c.key for c in result.cells if c.resumed] == [key]
        assert len(_read_csv(tmp_path / "results.csv")) == N_CELLS * 3

        # a second folder, where the other run is killed while this one waits
        _claim(tmp_path / "again" / "cells", key, other.pid)
        monkeypatch.setattr(runner.time, "sleep", lambda seconds: (other.kill(), other.wait()))
        again = _run(bank, tmp_path / "again")
        assert again.computed == N_CELLS
    finally:
        other.kill()
        other.wait()


def test_step_ticks_read_as_counts() -> None:
    assert [steps_label(v) for v in (0, 950, 200_000, 1_500_000, 12_000_000, 2e9)] == [
        "0", "950", "200k", "1.5M", "12M", "2G"]


@pytest.mark.slow
def test_process_executor_gives_the_serial_values(bank: FeatureBank, tmp_path: Path) -> None:
    """Two worker processes compute the cells, the driver writes them: results.csv is the serial
    run's, byte for byte, and a second run resumes every cell."""
    serial = _run(bank, tmp_path / "serial")
    pooled = _run(bank, tmp_path / "pool", executor="process", jobs=2)
    assert pooled.computed == serial.computed == N_CELLS
    assert (tmp_path / "pool" / "results.csv").read_bytes() == (
        tmp_path / "serial" / "results.csv").read_bytes()
    assert not list((tmp_path / "pool" / "cells").glob("*.claim"))
    assert _run(bank, tmp_path / "pool", executor="process", jobs=2).computed == 0


@pytest.mark.slow
def test_process_executor_reports_a_failed_cell_and_keeps_the_others(
        bank: FeatureBank, tmp_path: Path) -> None:
    """ITQ cannot make 24-bit codes of 16-d features: those cells fail in their workers, every
    other cell is computed and saved, and the run names the failures."""
    suite = dataclasses.replace(TINY, bits=(8, 24), seeds=1)
    with pytest.raises(BenchError, match=r"1 of 4 cell\(s\) failed.*itq.*24 bits.*BenchError: "
                                         r"ITQ needs n_bits <= feature dimension"):
        run_benchmark(suite, banks={"synthetic": bank}, out=tmp_path, progress=False,
                      plots=False, executor="process", jobs=2)
    assert len(list((tmp_path / "cells").glob("*.json"))) == 3
    assert not list((tmp_path / "cells").glob("*.claim"))


@pytest.mark.slow
def test_ray_executor_gives_the_serial_values(bank: FeatureBank, tmp_path: Path) -> None:
    """Each cell a task of a local 2-CPU Ray that the run starts and stops: results.csv is the
    serial run's, byte for byte; a failing cell is reported and the others are saved."""
    pytest.importorskip("ray")
    import ray

    serial = _run(bank, tmp_path / "serial")
    tasks = _run(bank, tmp_path / "ray", executor="ray", jobs=2)
    assert tasks.computed == serial.computed == N_CELLS
    assert (tmp_path / "ray" / "results.csv").read_bytes() == (
        tmp_path / "serial" / "results.csv").read_bytes()
    assert not ray.is_initialized()  # the local Ray was the run's, and is gone
    suite = dataclasses.replace(TINY, bits=(8, 24), seeds=1)
    with pytest.raises(BenchError, match=r"1 of 4 cell\(s\) failed.*itq.*24 bits.*ITQ needs "
                                         r"n_bits <= feature dimension"):
        run_benchmark(suite, banks={"synthetic": bank}, out=tmp_path / "fail", progress=False,
                      plots=False, executor="ray", jobs=2)
    assert len(list((tmp_path / "fail" / "cells").glob("*.json"))) == 3
    assert not list((tmp_path / "fail" / "cells").glob("*.claim"))


def test_ray_executor_without_ray_names_the_extra(bank: FeatureBank, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what a missing package looks like
    with pytest.raises(BenchError, match=r"the ray executor needs Ray, an optional extra: "
                                         r"pip install -e \"\.\[ray\]\""):
        _run(bank, tmp_path, executor="ray", jobs=1)
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"executor": "dask"}, "unknown executor 'dask'; expected one of serial, process, ray"),
    ({"executor": "process", "jobs": 0}, "jobs must be a positive int, got 0"),
    ({"executor": "process", "ray_address": "auto"},
     "ray_address is for the ray executor, not 'process'"),
    ({"device": "tpu"}, "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    ({"gpus": 1}, ("gpus is the GPU request of each Ray task .--executor ray.; the serial "
                  "executor's cells use --device directly")),
    ({"executor": "ray", "gpus": -1}, "gpus must be a number >= 0, got -1"),
])
def test_executor_arguments_are_checked(bank: FeatureBank, tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(BenchError, match=message):
        _run(bank, tmp_path, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_a_gpu_device_needs_cuda_here(bank: FeatureBank, tmp_path: Path) -> None:
    for executor in ("serial", "process"):
        with pytest.raises(BenchError, match="device='cuda', but torch sees no CUDA device"):
            _run(bank, tmp_path, device="cuda", executor=executor)
    assert not (tmp_path / "cells").exists() or not list((tmp_path / "cells").iterdir())


def test_on_device_moves_only_the_torch_methods_and_keeps_cpu_keys() -> None:
    lsh = MethodSpec("lsh", "baseline", {"name": "lsh"})
    csq = MethodSpec("csq", "baseline", {"name": "csq", "epochs": 2})
    dqn = AGENTS.methods[1]
    for spec in (lsh, csq, dqn):
        assert on_device(spec, "cpu") is spec  # a CPU run's cells keep their keys
    assert on_device(lsh, "cuda") is lsh  # numpy: nothing to move
    assert on_device(csq, "cuda").params == {"name": "csq", "epochs": 2, "device": "cuda"}
    assert on_device(dqn, "cuda:1").params == {**dqn.params, "device": "cuda:1"}
    assert resolved_params(on_device(csq, "cuda"), 8, 0)["device"] == "cuda"
    assert resolved_params(csq, 8, 0)["device"] == "cpu"


def test_an_agent_cell_takes_its_device(bank: FeatureBank, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = bench_methods.resolve_run

    def spy(config: Any, device: str = "cpu") -> Any:
        seen.append(device)
        return real(config, device)

    monkeypatch.setattr(bench_methods, "resolve_run", spy)
    spec = on_device(AGENTS.methods[1], "cpu")
    run_agent(bank, 6, 0, {**spec.params, "device": "cpu"})
    assert seen == ["cpu"]


def test_ray_tasks_ask_for_the_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """RayPool passes gpus_per_task to Ray's task options (a stand-in ray module records them:
    this machine has no GPU for a real Ray to hand out)."""
    asked: list[dict[str, Any]] = []

    class FakeRay:
        @staticmethod
        def is_initialized() -> bool:
            return True

        @staticmethod
        def put(value: Any) -> Any:
            return value

        @staticmethod
        def remote(**options: Any) -> Any:
            asked.append(options)
            return lambda fn: fn

    monkeypatch.setitem(sys.modules, "ray", FakeRay)
    RayPool(2, 1, {}, gpus_per_task=0.5)
    RayPool(2, 3, {})
    assert asked == [{"num_cpus": 1, "num_gpus": 0.5, "max_retries": 0},
                     {"num_cpus": 3, "num_gpus": 0.0, "max_retries": 0}]


def test_metrics_on_class_slices_against_brute_force() -> None:
    from hashgym.benchmarks.runner import score_cell
    from hashgym.benchmarks.suites import BenchSuite, MethodSpec
    from hashgym.metrics import evaluate
    from hashgym.protocols import apply_protocol
    from hashgym.synthetic import make_hierarchical_bank

    bank = apply_protocol(make_hierarchical_bank(seed=3), "unseen", seed=2)
    unseen = bank.meta["protocol"]["unseen_classes"]
    rng = np.random.default_rng(0)
    q, db = bank.indices("query"), bank.indices("database")
    qc = rng.integers(0, 2, (len(q), 8), dtype=np.uint8)
    dc = rng.integers(0, 2, (len(db), 8), dtype=np.uint8)
    suite = BenchSuite(name="t", description="", banks=("b",), bits=(8,), relevance="label",
                       metrics=("mAP@all", "mAP@all unseen@unseen", "NDCG@5 unseen@all",
                                "mAP@10 seen@seen"),
                       methods=(MethodSpec("lsh", "baseline", {"name": "lsh"}),))
    scores, _ = score_cell(qc, dc, bank, suite)
    fine_q, fine_d = bank.labels[q, 1], bank.labels[db, 1]
    is_uq, is_ud = np.isin(fine_q, unseen), np.isin(fine_d, unseen)
    for name, qm, dm in (("mAP@all", slice(None), slice(None)),
                         ("mAP@all unseen@unseen", is_uq, is_ud),
                         ("NDCG@5 unseen@all", is_uq, slice(None)),
                         ("mAP@10 seen@seen", ~is_uq, ~is_ud)):
        metric = name.split(" ")[0]
        expected = evaluate(qc[qm], dc[dm], fine_q[qm], fine_d[dm], [metric],
                            relevance="label")[metric]
        assert scores[name] == pytest.approx(expected), name
    assert set(scores) == set(suite.metrics)
