"""PNG plots of a benchmark run (matplotlib, Agg backend; written atomically).

* ``pr_<bank>_<bits>bits.png``: precision–recall curves of Hamming-radius retrieval (radius
  0..n_bits), one line per method, averaged over seeds at each radius.
* ``precision_r2_<bank>.png``: precision within Hamming radius 2 against the code length, mean ±
  std over seeds (read off the PR curve at radius 2, which is exactly ``P@r<=2``).
* ``length_<metric>_<bank>.png`` (suites of several code lengths): each of the suite's metrics
  against the code length, the mean over seeds with a min–max band; ``length_seconds_<bank>.png``
  the same for each cell's training (fit) seconds, on a log axis.
* ``ndcg_<bank>_<bits>bits.png``: NDCG@k against k with graded relevance, mean over seeds.
* ``training_<bank>_<bits>bits.png``: the RL agents' training curves (mean over seeds with a
  min–max band where the seeds share their abscissa, else one line per seed); only drawn when an
  agent ran.
* ``learning_<bank>_<bits>bits.png``: the retrieval metric of the agents' codes against
  environment steps (the ``learning_curve`` of :func:`hashgym.benchmarks.methods.run_agent`):
  the mean over seeds with a min–max band, ITQ and the best baseline as horizontal lines; only
  drawn when an agent recorded one.

Every plot names its bank, code length and metric; step axes read ``200k``, ``12M``. Every value
comes from the cells the runner saved; nothing is recomputed here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from hashgym.atomic import atomic_write
from hashgym.benchmarks.cells import CellResult
from hashgym.benchmarks.suites import BenchSuite, MethodSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hashgym.benchmarks.runner import CellResult

__all__ = ["draw_all", "length_plot", "save_figure", "slug", "steps_label"]

_RADIUS = 2


def steps_label(value: float, _position: Any = None) -> str:
    """A step count as a tick label: ``200k``, ``1.5M``, ``12M`` (not ``0.2 ... 1e7``)."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def _step_axis(ax: Any) -> None:
    ax.xaxis.set_major_formatter(FuncFormatter(steps_label))


def slug(text: str) -> str:
    """A file-name-safe form of a bank name or path."""
    stem = Path(text).stem if ("/" in text or text.endswith(".npz")) else text
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-") or "bank"


def save_figure(fig: Figure, path: Path) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    return path


def _select(results: Sequence[CellResult], bank: str, spec: MethodSpec,
            bits: int | None = None) -> list[CellResult]:
    return [r for r in results if r.cell.bank == bank and r.cell.method.key == spec.key
            and (bits is None or r.cell.n_bits == bits)]


def _mean_curve(cells: Sequence[CellResult], name: str, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    xs = np.asarray(cells[0].data["curves"][name][x], dtype=np.float64)
    ys = np.mean([c.data["curves"][name][y] for c in cells], axis=0)
    return xs, ys


def _pr_plot(results: Sequence[CellResult], suite: BenchSuite, bank: str, bits: int) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    for spec in suite.methods:
        cells = _select(results, bank, spec, bits)
        if not cells:
            continue
        recall = np.mean([c.data["curves"]["pr"]["recall"] for c in cells], axis=0)
        precision = np.mean([c.data["curves"]["pr"]["precision"] for c in cells], axis=0)
        ax.plot(recall, precision, marker=".", label=spec.title)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1),
           title=f"{bank}, {bits} bits: PR (Hamming radius 0..{bits})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _by_length(results: Sequence[CellResult], suite: BenchSuite, bank: str, spec: MethodSpec,
               value: Any) -> tuple[list[int], list[np.ndarray]]:
    """The code lengths at which ``spec`` has cells on ``bank``, and ``value(cell)`` of each
    seed's cell at each of them."""
    xs, values = [], []
    for bits in sorted(suite.bits):
        cells = _select(results, bank, spec, bits)
        if cells:
            xs.append(bits)
            values.append(np.array([value(c) for c in cells], dtype=np.float64))
    return xs, values


def _radius_plot(results: Sequence[CellResult], suite: BenchSuite, bank: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    for spec in suite.methods:
        xs, values = _by_length(
            results, suite, bank, spec,
            lambda c: c.data["curves"]["pr"]["precision"][min(_RADIUS, c.cell.n_bits)])
        if xs:
            means = [v.mean() for v in values]
            stds = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=spec.title)
    ax.set(xlabel="bits", ylabel=f"precision within Hamming radius {_RADIUS}",
           xticks=sorted(suite.bits), ylim=(0, 1), title=f"{bank}: precision@r<={_RADIUS}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def length_plot(results: Sequence[CellResult], suite: BenchSuite, bank: str,
                metric: str | None) -> Figure:
    """A suite metric against the code length: per method the mean over seeds, with the seeds'
    min–max band.

    :param results: the run's cells.
    :param suite: the suite as run.
    :param bank: the bank whose cells are drawn.
    :param metric: one of the suite's metrics; ``None`` for each cell's training (fit) seconds,
        on a log axis.
    """
    fig, ax = plt.subplots(figsize=(5, 4))
    for spec in suite.methods:
        xs, values = _by_length(
            results, suite, bank, spec,
            lambda c: c.data["timing"]["fit_s"] if metric is None else c.metrics[metric])
        if xs:
            (line,) = ax.plot(xs, [v.mean() for v in values], marker="o", label=spec.title)
            ax.fill_between(xs, [v.min() for v in values], [v.max() for v in values],
                            color=line.get_color(), alpha=0.2)
    ylabel = "training seconds per cell" if metric is None else metric
    ax.set(xlabel="bits", ylabel=ylabel, xticks=sorted(suite.bits),
           title=f"{bank}: {ylabel} against code length (min–max over seeds)")
    if metric is None:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _ndcg_plot(results: Sequence[CellResult], suite: BenchSuite, bank: str, bits: int) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    for spec in suite.methods:
        cells = _select(results, bank, spec, bits)
        if cells:
            ks, values = _mean_curve(cells, "ndcg", "k", "value")
            ax.plot(ks, values, marker="o", label=spec.title)
    ax.set(xlabel="k", ylabel="NDCG@k (graded relevance)", xscale="log", ylim=(0, 1),
           title=f"{bank}, {bits} bits: NDCG@k")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def _training_plot(results: Sequence[CellResult], agents: Sequence[MethodSpec], bank: str,
                   bits: int) -> Figure | None:
    """One panel per agent: its rewards are on its own environment's scale."""
    panels: list[tuple[MethodSpec, list[dict[str, Any]]]] = []
    for spec in agents:
        curves = [{**c.data["curves"]["training"], "seed": c.cell.seed}
                  for c in _select(results, bank, spec, bits) if c.data["curves"].get("training")]
        if curves:
            panels.append((spec, curves))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (spec, curves) in zip(axes[0], panels):
        if all(c["x"] == curves[0]["x"] for c in curves):
            y = np.array([c["y"] for c in curves])
            (line,) = ax.plot(curves[0]["x"], y.mean(axis=0),
                              label=f"mean of {len(curves)} seed{'s' * (len(curves) > 1)}")
            if len(curves) > 1:
                ax.fill_between(curves[0]["x"], y.min(axis=0), y.max(axis=0),
                                color=line.get_color(), alpha=0.2, label="min-max over seeds")
        else:
            for c in curves:
                ax.plot(c["x"], c["y"], alpha=0.7, label=f"seed {c['seed']}")
        ax.set(xlabel=curves[0]["xlabel"], ylabel=curves[0]["ylabel"], title=spec.title)
        if "step" in curves[0]["xlabel"]:
            _step_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{bank}, {bits} bits: training curves")
    fig.tight_layout()
    return fig


def _learning_plot(results: Sequence[CellResult], suite: BenchSuite, bank: str,
                   bits: int) -> Figure | None:
    """Every agent's learning curve on one axis, against ITQ and the best baseline."""
    lines = []
    for spec in suite.methods:
        curves = [c.data["info"]["learning_curve"] for c in _select(results, bank, spec, bits)
                  if (c.data.get("info") or {}).get("learning_curve")]
        if curves:
            lines.append((spec, curves, spec.params["learning_curve"]["metric"]))
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for spec, curves, _ in lines:
        n = min(len(c["x"]) for c in curves)
        x = np.mean([c["x"][:n] for c in curves], axis=0)
        y = np.array([c["y"][:n] for c in curves])
        (line,) = ax.plot(x, y.mean(axis=0), marker=".",
                          label=f"{spec.title} ({len(curves)} seed{'s' * (len(curves) > 1)})")
        if len(curves) > 1:
            ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=line.get_color(), alpha=0.2)
    metric = lines[0][2]
    means: dict[str, tuple[str, float]] = {}  # baseline key -> (title, mean over seeds)
    for spec in suite.methods:
        cells = _select(results, bank, spec, bits)
        if spec.kind == "baseline" and cells and metric in cells[0].data["metrics"]:
            means[spec.key] = (spec.title,
                               float(np.mean([c.data["metrics"][metric] for c in cells])))
    if "itq" in means:
        ax.axhline(means["itq"][1], color="grey", linestyle="--",
                   label=f"ITQ ({means['itq'][1]:.3f})")
    if means:
        best = max(means, key=lambda key: means[key][1])
        if best != "itq":
            title, value = means[best]
            ax.axhline(value, color="black", linestyle=":",
                       label=f"best baseline: {title} ({value:.3f})")
    ax.set(xlabel=lines[0][1][0]["xlabel"], ylabel=lines[0][1][0]["ylabel"],
           title=f"{bank}, {bits} bits: {metric} while training (mean, min-max over seeds)")
    _step_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def draw_all(out_dir: Path, suite: BenchSuite, results: Sequence[CellResult]) -> list[Path]:
    """Draw every plot of a run into ``out_dir``.

    :param out_dir: the run's output folder.
    :param suite: the suite as run.
    :param results: the finished cells.
    :return: the files written.
    """
    files = []
    agents = [spec for spec in suite.methods if spec.kind != "baseline"]
    for bank in suite.banks:
        name = slug(bank)
        for bits in sorted(suite.bits):
            files.append(save_figure(_pr_plot(results, suite, bank, bits),
                                     out_dir / f"pr_{name}_{bits}bits.png"))
            files.append(save_figure(_ndcg_plot(results, suite, bank, bits),
                                     out_dir / f"ndcg_{name}_{bits}bits.png"))
            fig = _training_plot(results, agents, bank, bits)
            if fig is not None:
                files.append(save_figure(fig, out_dir / f"training_{name}_{bits}bits.png"))
            fig = _learning_plot(results, suite, bank, bits)
            if fig is not None:
                files.append(save_figure(fig, out_dir / f"learning_{name}_{bits}bits.png"))
        files.append(save_figure(_radius_plot(results, suite, bank),
                                 out_dir / f"precision_r2_{name}.png"))
        if len(suite.bits) > 1:
            for metric in (*suite.metrics, None):
                label = "seconds" if metric is None else slug(metric)
                files.append(save_figure(length_plot(results, suite, bank, metric),
                                         out_dir / f"length_{label}_{name}.png"))
    return files
