"""Run a benchmark suite: every bank × method × code length × seed cell, then the tables.

:func:`run_benchmark` resolves the protocol's banks (:func:`hashgym.protocols.resolve_bank`),
runs each cell through :func:`hashgym.benchmarks.methods.run_method`, scores the codes with
:func:`hashgym.metrics.evaluate` (the metrics are never re-implemented here) and writes into
``out``:

=================  ========================================================================
``results.csv``    one row per bank, method, bits, seed and metric: ``value``
``table.md``       Markdown tables in the papers' layout: rows = methods, columns = bits ×
                   metric, mean ± sample std over seeds, the best mean per column in bold
``table.tex``      the same as LaTeX (booktabs)
``*.png``          precision–recall curves, precision@r≤2 against bits, NDCG@k against k,
                   the agents' training curves (:mod:`hashgym.benchmarks.plots`)
``record.json``    versions, the commit that ran, the env ids, machine, suite (with where
                   its settings were chosen), seeds, bank metadata, wall time per cell
``cells/``         one ``<key>.json`` (metrics, curves, timings) and ``<key>.npz`` (packed
                   query and database codes) per finished cell
=================  ========================================================================

Resume
    A cell's key is a hash of everything that decides its codes: the bank's contents (features,
    labels and split, see :meth:`hashgym.bank.FeatureBank.fingerprint`), the method's kind and parameters, the code
    length and the seed. A cell is saved (atomically: codes first, then the JSON that marks it
    finished) as soon as it finishes, and a rerun of the same command loads finished cells
    instead of recomputing them. If only the evaluation changed (metrics, relevance), the saved
    codes are re-scored without retraining. The key includes every resolved hyperparameter of a
    baseline (so a changed library default is a new cell) and the hashgym version; after
    changing a method's implementation without a version bump, run with ``resume=False``
    (``--no-resume``) or another output folder.

Concurrent runs
    Several runs may share one output folder (e.g. one per method, to use every core): a run
    claims a cell (``cells/<key>.claim``, created atomically with its process id and host)
    before computing it, skips cells another live run has claimed, and comes back to them once
    it has done the rest, loading them when they are finished or computing them itself when
    their run was killed. No cell is computed twice; each run's ``record.json`` counts the
    cells it computed, and the last run to finish writes the tables over every cell.

Reproducibility
    The same seed gives the same codes and hence the same ``results.csv`` (the methods are
    deterministic on the CPU; torch runs with ``threads`` threads). Wall times live only in
    ``record.json`` and the cells.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import hashgym
from hashgym.atomic import atomic_write
from hashgym.bank import FeatureBank
from hashgym.benchmarks.cells import CELL_FORMAT, Cell, CellResult, cell_key
from hashgym.benchmarks.methods import MethodOutput, on_device, run_method
from hashgym.benchmarks.plots import draw_all
from hashgym.benchmarks.suites import (
    EXECUTORS,
    BenchError,
    BenchSuite,
    get_suite,
)
from hashgym.benchmarks.tables import (
    latex_tables,
    markdown_tables,
    paired_markdown,
    results_csv,
    summarize,
)
from hashgym.codes import pack, unpack
from hashgym.metrics import evaluate, precision_recall_curve
from hashgym.owners import exit_with_parent, owner_alive, owner_record
from hashgym.protocols import class_slices, resolve_bank
from hashgym.ray_pool import RayPool, RayPoolError
from hashgym.validation import check_choice, check_count, is_integer, is_number

__all__ = [
    "CELL_FORMAT",
    "BenchResult",
    "Cell",
    "CellResult",
    "default_out_dir",
    "run_benchmark",
    "write_json",
]

logger = logging.getLogger(__name__)
BankSpec = str | os.PathLike[str] | FeatureBank


def default_out_dir(suite: str) -> Path:
    """``runs/bench/<suite>`` under the current folder."""
    return Path("runs") / "bench" / suite


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    with atomic_write(path) as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


@dataclass
class BenchResult:
    """What :func:`run_benchmark` produced.

    :param suite: the suite as run (after ``methods``/``bits``/``banks``/``seeds``).
    :param out: the output folder.
    :param cells: every cell's result, in run order.
    :param rows: the rows of ``results.csv`` as dicts.
    :param files: every file written (besides the cells).
    :param computed: how many cells were computed in this run (the rest were resumed).
    """

    suite: BenchSuite
    out: Path
    cells: list[CellResult]
    rows: list[dict[str, Any]]
    files: list[Path]
    computed: int


# ----------------------------------------------------------------------------------------------
# evaluation of one cell


def _labels(bank: FeatureBank, suite: BenchSuite) -> tuple[np.ndarray, np.ndarray, str]:
    """Query and database labels in the layout of the suite's relevance."""
    q, db = bank.indices("query"), bank.indices("database")
    if bank.n_levels == 0:
        if bank.multi_hot is None:
            raise BenchError("the bank has neither hierarchy labels nor multi-hot labels")
        return bank.multi_hot[q], bank.multi_hot[db], "multilabel"
    if suite.relevance == "hierarchy":
        return bank.labels[q], bank.labels[db], "hierarchy"
    if not -bank.n_levels <= suite.level < bank.n_levels:
        raise BenchError(
            f"suite {suite.name!r} evaluates label level {suite.level}, but the bank "
            f"has {bank.n_levels} level(s)"
        )
    return bank.labels[q, suite.level], bank.labels[db, suite.level], "label"


def evaluation_config(suite: BenchSuite) -> dict[str, Any]:
    """The part of a suite that decides a cell's scores (not its codes)."""
    return {"metrics": list(suite.metrics), "relevance": suite.relevance,
            "level": suite.level, "ndcg_ks": list(suite.ndcg_ks)}


def score_cell(
    query_codes: np.ndarray, db_codes: np.ndarray, bank: FeatureBank, suite: BenchSuite
) -> tuple[dict[str, float], dict[str, Any]]:
    """The suite's metrics and the plotted curves of one cell's codes.

    Curves: the precision–recall curve over Hamming radii 0..n_bits (the suite's relevance),
    and NDCG@k for ``suite.ndcg_ks`` with graded relevance (all label levels; multi-hot
    banks: shared labels).

    :return: ``(metrics, curves)``.
    """
    ql, dl, relevance = _labels(bank, suite)
    plain = [m for m in suite.metrics if " " not in m]
    metrics = (evaluate(query_codes, db_codes, ql, dl, plain, relevance=relevance)
               if plain else {})
    sliced = [m for m in suite.metrics if " " in m]
    if sliced:
        slices = class_slices(bank)
        for name, (q_mask, d_mask) in slices.items():
            wanted = [m.split(" ", 1)[0] for m in sliced if m.split(" ", 1)[1] == name]
            if wanted:
                values = evaluate(query_codes[q_mask], db_codes[d_mask], ql[q_mask],
                                  dl[d_mask], wanted, relevance=relevance)
                metrics.update({f"{m} {name}": v for m, v in values.items()})
    pr = precision_recall_curve(query_codes, db_codes, ql, dl, relevance=relevance)
    if bank.n_levels:
        gq, gd, graded = bank.labels[bank.indices("query")], bank.labels[bank.indices("database")], "hierarchy"
    else:
        gq, gd, graded = ql, dl, relevance
    ks = [k for k in suite.ndcg_ks if k <= len(gd)] or [len(gd)]
    ndcg = evaluate(query_codes, db_codes, gq, gd, [f"NDCG@{k}" for k in ks], relevance=graded)
    curves = {
        "pr": {"radius": pr.radius.tolist(), "precision": pr.precision.tolist(),
               "recall": pr.recall.tolist()},
        "ndcg": {"k": ks, "value": [ndcg[f"NDCG@{k}"] for k in ks]},
    }
    return {k: float(v) for k, v in metrics.items()}, curves


# ----------------------------------------------------------------------------------------------
# the cell store


def _cell_problem(data: Any, key: str) -> str | None:
    """Why a cell's JSON cannot be used (damaged, another format or another cell's), or
    ``None``: the parts a run reads back are checked, so a damaged file is recomputed instead of
    crashing the run."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    if data.get("format") != CELL_FORMAT or data.get("key") != key:
        return "another format or another cell"
    for name in ("evaluation", "metrics", "curves", "timing", "info"):
        if not isinstance(data.get(name), dict):
            return f"its {name!r} is not an object"
    if not all(is_number(v) for v in data["metrics"].values()):
        return "a metric is not a number"
    if not isinstance(data["curves"].get("pr"), dict):
        return "its precision-recall curve is missing"
    return None


class CellStore:
    """Finished cells under ``<out>/cells/``: ``<key>.npz`` codes and ``<key>.json`` results.

    :param root: the ``cells`` folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def json_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def codes_path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> dict[str, Any] | None:
        """The saved cell, or ``None`` when it is missing or unreadable (then it is recomputed)."""
        path = self.json_path(key)
        if not path.is_file() or not self.codes_path(key).is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("ignoring unreadable cell %s (%s); recomputing it", path, exc)
            return None
        problem = _cell_problem(data, key)
        if problem is not None:
            logger.warning("ignoring cell %s (%s); recomputing it", path, problem)
            return None
        return data

    def load_codes(self, key: str, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
        """The query and database codes of a saved cell (``uint8`` 0/1)."""
        with np.load(self.codes_path(key), allow_pickle=False) as archive:
            return unpack(archive["query"], n_bits), unpack(archive["database"], n_bits)

    def claim_path(self, key: str) -> Path:
        return self.root / f"{key}.claim"

    def claim(self, key: str) -> str | None:
        """Claim a cell for this process before computing it, so that two runs on one output
        folder never compute it twice.

        The claim is ``<key>.claim`` holding this process's owner record (id, host and start
        time, :func:`hashgym.owners.owner_record`), written to a private file first and then
        hard-linked into place, which fails when the claim exists: no run ever sees a claim
        without its owner. A claim whose process no longer runs on this host is stale and taken
        over, also when its id now belongs to another process (the start time differs).

        :return: ``None`` when this process holds the claim; otherwise who holds it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.claim_path(key)
        mine = self.root / f".{key}.{os.getpid()}.claim"
        mine.write_text(json.dumps(owner_record()))
        try:
            return self._link_claim(mine, path)
        finally:
            mine.unlink(missing_ok=True)

    def _link_claim(self, mine: Path, path: Path) -> str | None:
        """Link ``mine`` to ``path`` unless a live claim is there: ``None`` once linked, or
        who holds the claim."""
        for _ in range(3):
            try:
                os.link(mine, path)
            except FileExistsError:
                try:
                    owner = json.loads(path.read_text())
                except (OSError, ValueError):
                    owner = None  # damaged: treated as stale
                if owner_alive(owner) is False:
                    path.unlink(missing_ok=True)  # stale: its run was killed
                    continue
                return f"process {owner['pid']} on {owner['host']}"
            except OSError:  # a file system without hard links: exclusive create, then write
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w") as handle:
                    handle.write(mine.read_text())
            return None
        return "another run"

    def release(self, key: str) -> None:
        """Drop this process's claim on a cell (once it is saved, or given up)."""
        self.claim_path(key).unlink(missing_ok=True)

    def save(self, key: str, data: dict[str, Any], output: MethodOutput) -> None:
        """Save codes, then the JSON (whose presence marks the cell finished)."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, query=pack(output.query_codes), database=pack(output.db_codes),
                            n_bits=np.int64(output.query_codes.shape[1]))
        with atomic_write(self.codes_path(key)) as handle:
            handle.write(buffer.getvalue())
        write_json(self.json_path(key), data)


# ----------------------------------------------------------------------------------------------
# the runner


def _resolve_banks(
    suite: BenchSuite, banks: Sequence[BankSpec] | Mapping[str, BankSpec] | None
) -> list[tuple[str, FeatureBank]]:
    if banks is None:
        named: list[tuple[str, BankSpec]] = [(b, b) for b in suite.banks]
    elif isinstance(banks, Mapping):
        named = list(banks.items())
    else:
        named = []
        for i, spec in enumerate(banks):
            if isinstance(spec, FeatureBank):
                named.append((str(spec.meta.get("name", f"bank{i}")), spec))
            else:
                named.append((os.fspath(spec), spec))
    if not named:
        raise BenchError("no bank to run on")
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise BenchError(f"bank names must be unique, got {names}")
    return [(name, resolve_bank(spec, seed=suite.split_seed)) for name, spec in named]


def _versions() -> dict[str, str]:
    """The versions a record names: hashgym's from the imported code (an editable install's
    metadata keeps the version it was installed at), the others from their installed metadata.
    """
    out = {"python": platform.python_version(), "hashgym": hashgym.__version__}
    for dist in ("numpy", "torch", "stable-baselines3", "sb3-contrib", "gymnasium", "pandas",
                 "matplotlib"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _source() -> dict[str, Any]:
    """The commit of the code that ran, when it runs from a git checkout (an editable install):
    ``{"commit": sha, "dirty": uncommitted changes}``; ``{}`` for an installed wheel."""
    root = Path(hashgym.__file__).resolve().parent.parent
    try:
        # no timeout: git answers at once, and a timed wait would poll through time.sleep
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": sha, "dirty": bool(dirty)}


def _env_versions(suite: BenchSuite) -> dict[str, str]:
    """Each env id the suite's agents train on, with the entry point registered for it and the
    defaults the id sets (an id names one behaviour: a changed env ships under a new id)."""
    ids = sorted({str(m.params.get("env_id", "HierHash-v0")) for m in suite.methods
                  if m.kind == "agent"})
    return {env_id: str(gym.spec(env_id).entry_point) + "".join(
        f" {key}={value!r}" for key, value in sorted(gym.spec(env_id).kwargs.items()))
        for env_id in ids}


def _machine(threads: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
    }
    if "torch" in sys.modules:
        import torch

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def _check_seeds(seeds: int | Sequence[int]) -> list[int]:
    if is_integer(seeds):
        if seeds < 1:
            raise BenchError(f"seeds must be at least 1, got {seeds}")
        return list(range(int(seeds)))
    values = list(seeds)  # type: ignore[arg-type]
    if not values or any(not is_integer(s) or s < 0
                         for s in values):
        raise BenchError(f"seeds must be a positive count or a list of non-negative ints, got {seeds!r}")
    if len(set(values)) != len(values):
        raise BenchError(f"seeds has duplicates: {values}")
    return [int(s) for s in values]


#: Seconds between looks at cells another run on the same output folder is computing.
_CLAIM_POLL_S = 2.0


def _rescore(store: CellStore, cell: Cell, key: str, data: dict[str, Any], bank: FeatureBank,
             suite: BenchSuite, eval_config: dict[str, Any]) -> dict[str, Any]:
    """Score a saved cell's codes again under a changed evaluation, and save it."""
    logger.info("cell %s: re-scoring the saved codes for the new evaluation", cell.describe())
    query, database = store.load_codes(key, cell.n_bits)
    start = time.perf_counter()
    data["metrics"], curves = score_cell(query, database, bank, suite)
    data["curves"].update(curves)
    data["evaluation"] = eval_config
    data["timing"]["eval_s"] = time.perf_counter() - start
    write_json(store.json_path(key), data)
    return data


def _compute(store: CellStore, cell: Cell, key: str, config: dict[str, Any], bank: FeatureBank,
             suite: BenchSuite, eval_config: dict[str, Any]) -> dict[str, Any]:
    """Run a cell's method, score its codes and save the cell."""
    data, output = _run_cell(cell, key, config, bank, suite, eval_config)
    store.save(key, data, output)
    return data


def _serial_cell(store: CellStore, cell: Cell, key: str, config: dict[str, Any],
                 data: dict[str, Any] | None, bank: FeatureBank, suite: BenchSuite,
                 eval_config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A cell in this process: its saved codes re-scored when ``data`` is a saved cell of
    another evaluation (computed afresh when those codes cannot be read), else computed; and
    whether it was computed."""
    if data is not None:
        try:
            return _rescore(store, cell, key, data, bank, suite, eval_config), False
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("cell %s: its saved codes cannot be read (%s: %s); recomputing it",
                           cell.describe(), type(exc).__name__, exc)
    return _compute(store, cell, key, config, bank, suite, eval_config), True


def _failure(cell: Cell, exc: Exception) -> str:
    """Log a cell that raised, and describe it for the error that ends the run."""
    logger.error("cell %s failed: %s: %s", cell.describe(), type(exc).__name__, exc)
    return f"{cell.describe()}: {type(exc).__name__}: {exc}"


#: The banks of a process executor's worker, set once per worker by :func:`_init_worker`.
_WORKER_BANKS: dict[str, FeatureBank] = {}


def _init_worker(banks: dict[str, FeatureBank], threads: int) -> None:
    """Start a process-executor worker: its banks (sent once, not per cell), torch threads, and
    its end when the driver ends (a driver killed by a signal would leave it computing)."""
    import torch

    exit_with_parent()
    _WORKER_BANKS.clear()
    _WORKER_BANKS.update(banks)
    torch.set_num_threads(threads)


def _run_cell_in_worker(cell: Cell, key: str, config: dict[str, Any], suite: BenchSuite,
                        eval_config: dict[str, Any]) -> tuple[dict[str, Any], MethodOutput]:
    """:func:`_run_cell` in a worker process; the driver saves what it returns."""
    return _run_cell(cell, key, config, _WORKER_BANKS[cell.bank], suite, eval_config)


def _run_cell_in_task(banks: dict[str, FeatureBank], threads: int, cell: Cell, key: str,
                      config: dict[str, Any], suite: BenchSuite, eval_config: dict[str, Any]
                      ) -> tuple[dict[str, Any], MethodOutput]:
    """:func:`_run_cell` in a Ray task (:mod:`hashgym.ray_pool`), the banks read
    from Ray's object store; the driver saves what it returns."""
    import torch

    torch.set_num_threads(threads)
    return _run_cell(cell, key, config, banks[cell.bank], suite, eval_config)


def _run_cell(cell: Cell, key: str, config: dict[str, Any], bank: FeatureBank,
              suite: BenchSuite, eval_config: dict[str, Any]
              ) -> tuple[dict[str, Any], MethodOutput]:
    """Run a cell's method and score its codes: the cell's JSON data and the method's output.
    Nothing is written (the caller saves the cell)."""
    logger.info("cell %s: running", cell.describe())
    start = time.perf_counter()
    output = run_method(cell.method, bank, cell.n_bits, cell.seed)
    eval_start = time.perf_counter()
    metrics, curves = score_cell(output.query_codes, output.db_codes, bank, suite)
    end = time.perf_counter()
    curves["training"] = output.curve.to_dict() if output.curve is not None else None
    data = {
        "format": CELL_FORMAT,
        "key": key,
        "config": config,
        "cell": {"bank": cell.bank, "method": cell.method.to_dict(), "bits": cell.n_bits,
                 "seed": cell.seed},
        "evaluation": eval_config,
        "metrics": metrics,
        "curves": curves,
        "timing": {"fit_s": output.fit_seconds, "encode_s": output.encode_seconds,
                   "eval_s": end - eval_start, "total_s": end - start},
        "info": output.info,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    logger.info("cell %s: %s in %.1f s", cell.describe(),
                ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), end - start)
    return data, output


def _check_device(device: str, gpus: float | None, executor: str) -> float:
    """Validate ``device`` and ``gpus`` (see :func:`run_benchmark`); the GPUs per Ray task."""
    if not isinstance(device, str) or re.fullmatch(r"cpu|cuda(:\d+)?", device) is None:
        raise BenchError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if gpus is None:
        gpus = 1.0 if executor == "ray" and device != "cpu" else 0.0
    if not is_number(gpus) or not gpus >= 0:
        raise BenchError(f"gpus must be a number >= 0, got {gpus!r}")
    if gpus and executor != "ray":
        raise BenchError(f"gpus is the GPU request of each Ray task (--executor ray); the "
                         f"{executor} executor's cells use --device directly")
    if device != "cpu" and executor != "ray":
        import torch

        if not torch.cuda.is_available():
            raise BenchError(f"device={device!r}, but torch sees no CUDA device on this machine")
    return float(gpus)


def run_benchmark(
    suite: str | BenchSuite,
    *,
    banks: Sequence[BankSpec] | Mapping[str, BankSpec] | None = None,
    seeds: int | Sequence[int] | None = None,
    out: str | os.PathLike[str] | None = None,
    methods: Sequence[str] | None = None,
    bits: Sequence[int] | None = None,
    threads: int = 1,
    plots: bool = True,
    progress: bool = True,
    resume: bool = True,
    command: str | None = None,
    executor: str = "serial",
    jobs: int | None = None,
    ray_address: str | None = None,
    device: str = "cpu",
    gpus: float | None = None,
) -> BenchResult:
    """Run (or resume) a benchmark suite and write its results.

    :param suite: a preset name (:data:`~hashgym.benchmarks.suites.BENCH_SUITES`) or a
        :class:`~hashgym.benchmarks.suites.BenchSuite`.
    :param banks: banks to run on instead of the suite's: preset names, paths, banks, or a
        ``{name: bank}`` mapping (the names label the results).
    :param seeds: a number of seeds (``0 .. n-1``) or the seeds themselves; default the
        suite's (:attr:`~hashgym.benchmarks.suites.BenchSuite.seed_list`).
    :param out: output folder; default ``runs/bench/<suite>``.
    :param methods: method keys to run (default all of the suite's).
    :param bits: code lengths to run (default the suite's).
    :param threads: torch CPU threads (``torch.set_num_threads``).
    :param plots: draw the PNG plots.
    :param progress: show a progress bar.
    :param resume: load finished cells of an earlier run from ``out/cells`` (``False``:
        recompute and overwrite them).
    :param command: the command line, for the record.
    :param executor: ``"serial"`` (default: cells one after another in this process) or
        ``"process"``: cells in a pool of ``jobs`` worker processes (``spawn``ed, each with
        ``threads`` torch threads and the banks sent once). The driver alone writes files, each
        cell as it finishes; resume, claims, the record and the tables are those of a serial
        run, and every cell's values are the same (seeds belong to cells, not to workers). With
        every executor, a cell that raises (e.g. ITQ asked for more bits than the features
        have dimensions) is logged and the others go on and are saved; the run then raises
        :class:`BenchError` naming every failed cell. ``"ray"``: every cell a Ray task asking
        for ``threads`` CPUs (:mod:`hashgym.ray_pool`), on a local Ray of
        ``jobs × threads`` CPUs started for the run or on the cluster at ``ray_address``; the
        driver's part is the process executor's.
    :param jobs: worker processes of the ``"process"`` executor, tasks at once of a local
        ``"ray"`` (default: the CPU count).
    :param ray_address: the Ray cluster of the ``"ray"`` executor (``"auto"`` or an address);
        ``None`` starts a local Ray for the run.
    :param device: the torch device of the methods that use torch (the deep baselines and
        the agents; :func:`~hashgym.benchmarks.methods.on_device`): ``"cpu"`` (default: every
        value reproducible to the bit) or ``"cuda"`` / ``"cuda:N"``. On a GPU those cells are
        other cells than the CPU ones (their key records the device).
    :param gpus: GPUs each Ray task asks for (``"ray"`` only; default 1 when ``device`` is a
        GPU, else 0; a fraction lets several cells share one GPU).
    :raises BenchError: for an unknown suite, method or executor, bad seeds, bits or jobs,
        a ``ray_address`` or ``gpus`` without the ray executor, a bad device or one torch
        cannot see here (serial and process), Ray missing or unreachable, and when cells
        failed.
    """
    plan = _plan_run(get_suite(suite).select(methods=methods, bits=bits), banks=banks,
                     seeds=seeds, out=out, threads=threads, executor=executor, jobs=jobs,
                     ray_address=ray_address, device=device, gpus=gpus)
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run = _CellRun(plan, _open_pool(plan), resume, progress)
    results = run.run()
    rows = [{"bank": r.cell.bank, "method": r.cell.method.key, "bits": r.cell.n_bits,
             "seed": r.cell.seed, "metric": metric, "value": r.metrics[metric]}
            for r in results for metric in plan.suite.metrics]
    files = _write_outputs(plan.out, plan.suite, results, rows, plots)
    record = _record(plan, results, run.computed, files, command=command,
                     started_at=started_at, wall_s=time.perf_counter() - started)
    record_path = plan.out / "record.json"
    write_json(record_path, record)
    files.append(record_path)
    return BenchResult(plan.suite, plan.out, results, rows, files, run.computed)


@dataclass
class _BenchPlan:
    """A benchmark run resolved: the suite on its banks, the cells in run order, where they
    are saved and how they are run (see :func:`run_benchmark`'s arguments)."""

    suite: BenchSuite
    seeds: list[int]
    out: Path
    threads: int
    executor: str
    jobs: int
    ray_address: str | None
    gpus: float
    banks: list[tuple[str, FeatureBank]]
    fingerprints: dict[str, str]
    cells: list[Cell]
    store: CellStore
    evaluation: dict[str, Any]

    @property
    def bank_of(self) -> dict[str, FeatureBank]:
        return dict(self.banks)


def _plan_run(suite: BenchSuite, *, banks: Any, seeds: Any, out: Any, threads: int,
              executor: str, jobs: int | None, ray_address: str | None, device: str,
              gpus: float | None) -> _BenchPlan:
    """Check the options, resolve the banks, put the methods on ``device`` and list the cells
    (torch is imported here, with ``threads`` threads)."""
    seed_list = _check_seeds(suite.seed_list if seeds is None else seeds)
    if not is_integer(threads) or threads < 1:
        raise BenchError(f"threads must be a positive integer, got {threads!r}")
    check_choice(executor, "executor", EXECUTORS, BenchError)
    jobs = (os.cpu_count() or 1) if jobs is None else check_count(jobs, "jobs", 1, BenchError)
    if ray_address is not None and executor != "ray":
        raise BenchError(f"ray_address is for the ray executor, not {executor!r}")
    gpus = _check_device(device, gpus, executor)
    out_dir = Path(out) if out is not None else default_out_dir(suite.name)
    if out_dir.exists() and not out_dir.is_dir():
        raise BenchError(f"out={os.fspath(out_dir)!r} is a file: a benchmark writes a folder "
                         f"(cells/, results.csv, tables, plots, record.json); give a folder path")

    import torch

    torch.set_num_threads(threads)
    resolved = _resolve_banks(suite, banks)
    suite = suite.select(banks=[name for name, _ in resolved])
    suite = replace(suite, methods=tuple(on_device(m, device) for m in suite.methods))
    cells = [Cell(name, spec, n_bits, seed) for name, _ in resolved for spec in suite.methods
             for n_bits in suite.bits for seed in seed_list]
    return _BenchPlan(suite, seed_list, out_dir, threads, executor, jobs, ray_address, gpus,
                      resolved, {name: bank.fingerprint() for name, bank in resolved}, cells,
                      CellStore(out_dir / "cells"), evaluation_config(suite))


def _open_pool(plan: _BenchPlan) -> Any:
    """The executor's pool of workers (``None`` for the serial executor)."""
    if plan.executor == "process":
        return ProcessPoolExecutor(max_workers=plan.jobs,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(plan.bank_of, plan.threads))
    if plan.executor == "ray":
        try:
            return RayPool(plan.jobs, plan.threads, plan.bank_of, address=plan.ray_address,
                           gpus_per_task=plan.gpus)
        except RayPoolError as exc:
            raise BenchError(str(exc)) from exc
    return None


class _CellRun:
    """Runs a plan's cells: loads the finished ones, claims and computes the rest (here, or in
    the pool's workers, whose results this process saves), comes back to the cells other runs
    hold, and reports every failed cell at the end."""

    def __init__(self, plan: _BenchPlan, pool: Any, resume: bool, progress: bool) -> None:
        from tqdm.auto import tqdm

        self.plan, self.pool, self.resume = plan, pool, resume
        self.store = plan.store
        self.done: dict[int, CellResult] = {}
        self.computed = 0
        self.failures: list[str] = []
        self.running: dict[Future[Any], tuple[int, Cell, str]] = {}
        self.bar = tqdm(total=len(plan.cells), desc=f"bench {plan.suite.name}", unit="cell",
                        disable=not progress)

    def run(self) -> list[CellResult]:
        """Every cell's result, in the plan's order.

        :raises BenchError: naming every cell that failed (the others are saved).
        """
        pending, first_pass = list(enumerate(self.plan.cells)), True
        try:
            while pending or self.running:
                waiting = [(index, cell) for index, cell in pending
                           if not self._start(index, cell, first_pass)]
                if waiting and first_pass:
                    logger.warning(
                        "waiting for %d cell(s) that other runs on %s are computing; a claim of "
                        "a run killed on another host is never stale here: delete its "
                        "cells/<key>.claim", len(waiting), self.plan.out)
                if self.running:
                    self._collect(_CLAIM_POLL_S if waiting else None)
                elif waiting:
                    time.sleep(_CLAIM_POLL_S)
                pending, first_pass = waiting, False
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
                for _, _, key in self.running.values():  # interrupted: nothing of theirs saved
                    self.store.release(key)
        self.bar.close()
        if self.failures:
            raise BenchError(f"{len(self.failures)} of {len(self.plan.cells)} cell(s) failed, "
                             f"the others are saved in {self.store.root} (a rerun resumes from "
                             f"them): " + "; ".join(self.failures))
        return [self.done[index] for index in sorted(self.done)]

    def _start(self, index: int, cell: Cell, first_pass: bool) -> bool:
        """Load, compute or submit ``cell``; ``False`` when another run holds it (come back)."""
        plan = self.plan
        self.bar.set_postfix_str(cell.describe())
        config = cell.config(plan.fingerprints[cell.bank])
        key = cell_key(config)
        # a cell another run finished while this one waited is loaded even without resume
        data = self.store.load(key) if self.resume or not first_pass else None
        if data is not None and data["evaluation"] == plan.evaluation:
            logger.info("cell %s: finished earlier (%s), not recomputed", cell.describe(), key)
            self.done[index] = CellResult(cell, key, data, resumed=True)
            self.bar.update()
            return True
        owner = self.store.claim(key)
        if owner is not None:
            logger.info("cell %s: %s is computing it; coming back to it", cell.describe(), owner)
            return False
        if self.pool is not None and data is None:  # the workers compute, the driver saves
            if plan.executor == "ray":
                future = self.pool.submit(_run_cell_in_task, plan.threads, cell, key, config,
                                          plan.suite, plan.evaluation)
            else:
                future = self.pool.submit(_run_cell_in_worker, cell, key, config, plan.suite,
                                          plan.evaluation)
            self.running[future] = (index, cell, key)
            return True
        try:
            data, fresh = _serial_cell(self.store, cell, key, config, data,
                                       plan.bank_of[cell.bank], plan.suite, plan.evaluation)
        except Exception as exc:  # noqa: BLE001 (reported at the end, the others go on)
            self.failures.append(_failure(cell, exc))
            self.bar.update()
            return True
        finally:
            self.store.release(key)
        self.computed += fresh
        self.done[index] = CellResult(cell, key, data, resumed=not fresh)
        self.bar.update()
        return True

    def _collect(self, timeout: float | None) -> None:
        """Save the cells the workers finished (waiting at most ``timeout`` seconds)."""
        finished, _ = wait(self.running, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in finished:
            index, cell, key = self.running.pop(future)
            try:
                data, output = future.result()
                self.store.save(key, data, output)
            except Exception as exc:  # noqa: BLE001 (reported at the end, the others go on)
                self.failures.append(_failure(cell, exc))
            else:
                self.computed += 1
                self.done[index] = CellResult(cell, key, data, resumed=False)
            finally:
                self.store.release(key)
            self.bar.update()


def _record(plan: _BenchPlan, results: list[CellResult], computed: int, files: list[Path], *,
            command: str | None, started_at: str, wall_s: float) -> dict[str, Any]:
    """``record.json``: the suite, seeds, command, times, versions, machine, banks, cells."""
    return {
        "suite": plan.suite.to_dict(),
        "seeds": plan.seeds,
        "command": command,
        "started_at": started_at,
        "wall_s": wall_s,
        "cells_computed": computed,
        "cells_resumed": len(results) - computed,
        "versions": _versions(),
        "source": _source(),
        "envs": _env_versions(plan.suite),
        "machine": _machine(plan.threads),
        "banks": {name: {"fingerprint": plan.fingerprints[name], "summary": bank.summary()}
                  for name, bank in plan.banks},
        "cells": [{"bank": r.cell.bank, "method": r.cell.method.key, "bits": r.cell.n_bits,
                   "seed": r.cell.seed, "key": r.key, "resumed": r.resumed, **r.data["timing"]}
                  for r in results],
        "files": sorted(p.name for p in files),
    }


def _write_outputs(
    out_dir: Path, suite: BenchSuite, results: list[CellResult], rows: list[dict[str, Any]],
    plots: bool,
) -> list[Path]:

    files = []
    csv_path = out_dir / "results.csv"
    with atomic_write(csv_path) as handle:
        handle.write(results_csv(rows).encode())
    files.append(csv_path)
    summary = summarize(rows)
    paired = paired_markdown(rows, suite)
    for name, text in (("table.md", markdown_tables(summary, suite) + (
                           "\n" + paired if paired else "")),
                       ("table.tex", latex_tables(summary, suite))):
        with atomic_write(out_dir / name) as handle:
            handle.write(text.encode())
        files.append(out_dir / name)
    if plots:
        files.extend(draw_all(out_dir, suite, results))
    return files
