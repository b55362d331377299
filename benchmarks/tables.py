"""Result tables in the papers' layout: rows = methods, columns = code length × metric.

Each cell of a table is the mean over seeds ``± the sample standard deviation`` (``ddof=1``;
with a single seed only the mean is shown). The best mean of each column is in bold — every
metric the suites report is higher-is-better — compared at the printed precision, so ties
are all bold. Methods keep the suite's order; a bank gets one table.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashgym.benchmarks.suites import BEST_BASELINE, BenchError, BenchSuite

__all__ = [
    "CSV_COLUMNS",
    "Paired",
    "Summary",
    "format_value",
    "latex_tables",
    "markdown_tables",
    "paired_differences",
    "paired_markdown",
    "results_csv",
    "summarize",
    "t_quantile",
]

CSV_COLUMNS = ("bank", "method", "bits", "seed", "metric", "value")
DECIMALS = 4


@dataclass(frozen=True)
class Summary:
    """Mean and spread of one metric over seeds.

    :param mean: the mean over seeds.
    :param std: the sample standard deviation (``ddof=1``); ``nan`` for one seed.
    :param n: the number of seeds.
    """

    mean: float
    std: float
    n: int


def results_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """``results.csv``: a header and one line per row (values as Python's shortest repr)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row[c] if c != "value" else repr(float(row[c])) for c in CSV_COLUMNS])
    return buffer.getvalue()


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, int, str], Summary]:
    """Mean ± std over seeds of every (bank, method, bits, metric).

    :param rows: rows as in ``results.csv``.
    :return: ``{(bank, method, bits, metric): Summary}``.
    """
    groups: dict[tuple[str, str, int, str], list[float]] = {}
    for row in rows:
        key = (str(row["bank"]), str(row["method"]), int(row["bits"]), str(row["metric"]))
        groups.setdefault(key, []).append(float(row["value"]))
    out = {}
    for key, values in groups.items():
        arr = np.asarray(values, dtype=np.float64)
        std = float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
        out[key] = Summary(float(arr.mean()), std, len(arr))
    return out


def format_value(summary: Summary, decimals: int = DECIMALS) -> tuple[str, str]:
    """``(mean, std)`` as text; ``std`` is empty for a single seed."""
    mean = f"{summary.mean:.{decimals}f}"
    std = "" if math.isnan(summary.std) else f"{summary.std:.{decimals}f}"
    return mean, std


def _banks(summary: Mapping[tuple[str, str, int, str], Summary], suite: BenchSuite) -> list[str]:
    present = {key[0] for key in summary}
    ordered = [b for b in suite.banks if b in present]
    return ordered + sorted(present - set(ordered))


def _grid(
    summary: Mapping[tuple[str, str, int, str], Summary], suite: BenchSuite, bank: str
) -> tuple[list[tuple[int, str]], list[tuple[str, list[tuple[str, str, bool] | None]]]]:
    """Columns ``(bits, metric)`` and rows ``(method label, [(mean, std, best) or None])``."""
    columns = [(b, m) for b in sorted(suite.bits) for m in suite.metrics]
    methods = [spec for spec in suite.methods
               if any((bank, spec.key, b, m) in summary for b, m in columns)]
    best: dict[tuple[int, str], str] = {}
    for b, m in columns:
        means = [format_value(summary[(bank, s.key, b, m)])[0] for s in methods
                 if (bank, s.key, b, m) in summary]
        if means:
            best[(b, m)] = max(means, key=float)
    rows = []
    for spec in methods:
        cells: list[tuple[str, str, bool] | None] = []
        for b, m in columns:
            item = summary.get((bank, spec.key, b, m))
            if item is None:
                cells.append(None)
                continue
            mean, std = format_value(item)
            cells.append((mean, std, float(mean) == float(best[(b, m)])))
        rows.append((spec.title, cells))
    return columns, rows


def _texts(cells: list[tuple[str, str, bool] | None], missing: str, plus_minus: str,
           bold: str) -> list[str]:
    """The printed table cells: ``mean<plus_minus>std``, best ones through the ``bold`` format."""
    texts = []
    for item in cells:
        if item is None:
            texts.append(missing)
            continue
        mean, std, is_best = item
        text = f"{mean}{plus_minus}{std}" if std else mean
        texts.append(bold.format(text) if is_best else text)
    return texts


def _seed_note(summary: Mapping[tuple[str, str, int, str], Summary], bank: str) -> str:
    counts = sorted({s.n for k, s in summary.items() if k[0] == bank})
    text = "/".join(map(str, counts))
    return f"mean ± sample std over {text} seeds" if counts != [1] else "one seed"


def markdown_tables(
    summary: Mapping[tuple[str, str, int, str], Summary], suite: BenchSuite
) -> str:
    """``table.md``: one Markdown table per bank (best value per column in bold)."""
    parts = [f"# Benchmark `{suite.name}`", "", suite.description, ""]
    for bank in _banks(summary, suite):
        columns, rows = _grid(summary, suite, bank)
        parts += [f"## {bank}", "", f"{_seed_note(summary, bank)}; best value per column in bold.",
                  ""]
        header = ["Method"] + [f"{m} ({b} bits)" for b, m in columns]
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" + "---:|" * len(columns))
        for label, cells in rows:
            texts = _texts(cells, missing="–", plus_minus=" ± ", bold="**{}**")
            parts.append("| " + " | ".join([label, *texts]) + " |")
        parts.append("")
    return "\n".join(parts)


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}"}


def _tex(text: str) -> str:
    out = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    return out.replace("<=", r"$\leq$").replace("≤", r"$\leq$")


def latex_tables(
    summary: Mapping[tuple[str, str, int, str], Summary], suite: BenchSuite
) -> str:
    """``table.tex``: one booktabs ``table`` per bank, bits as grouped column headers."""
    parts = [f"% hashgym benchmark {suite.name}: {suite.description}",
             "% needs \\usepackage{booktabs}", ""]
    metrics = list(suite.metrics)
    for bank in _banks(summary, suite):
        columns, rows = _grid(summary, suite, bank)
        bits = sorted(suite.bits)
        parts += [r"\begin{table}[t]", r"\centering",
                  (rf"\caption{{{_tex(suite.name)} on {_tex(bank)}: "
                   rf"{_tex(_seed_note(summary, bank))}.}}"),
                  r"\begin{tabular}{l" + "c" * len(columns) + "}", r"\toprule"]
        group = [rf"\multicolumn{{{len(metrics)}}}{{c}}{{{b} bits}}" for b in bits]
        parts.append(" & ".join(["", *group]) + r" \\")
        rules = [rf"\cmidrule(lr){{{2 + i * len(metrics)}-{1 + (i + 1) * len(metrics)}}}"
                 for i in range(len(bits))]
        parts.append(" ".join(rules))
        parts.append(" & ".join(["Method", *[_tex(m) for _, m in columns]]) + r" \\")
        parts.append(r"\midrule")
        for label, cells in rows:
            texts = _texts(cells, missing="--", plus_minus=r" $\pm$ ", bold=r"\textbf{{{}}}")
            parts.append(" & ".join([_tex(label), *texts]) + r" \\")
        parts += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(parts)


# Student's t, 97.5 % quantiles for 1..30 degrees of freedom (two-sided 95 % intervals).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959964


def t_quantile(df: int) -> float:
    """Student's t 97.5 % quantile with ``df`` degrees of freedom: the half-width factor of a
    two-sided 95 % confidence interval. Tabled up to 30; beyond, the Cornish-Fisher expansion
    around the normal quantile (within 0.001 of the exact value there).

    :raises BenchError: for ``df < 1``.
    """
    if df < 1:
        raise BenchError(f"a t interval needs at least 1 degree of freedom, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Paired:
    """One headline comparison in one column: ``method`` minus ``other``, paired by seed.

    :param bank: the bank.
    :param bits: the code length.
    :param metric: the metric.
    :param method: the method's key.
    :param other: the other method's key (the best baseline, when the suite asked for it).
    :param seeds: the seeds both methods ran.
    :param mean: the mean per-seed difference.
    :param low: the 95 % interval's lower end (``mean - t * sd / sqrt(n)``; ``nan`` for one
        seed).
    :param high: its upper end.
    """

    bank: str
    bits: int
    metric: str
    method: str
    other: str
    seeds: tuple[int, ...]
    mean: float
    low: float
    high: float


def paired_differences(rows: Iterable[Mapping[str, Any]], suite: BenchSuite) -> list[Paired]:
    """The suite's ``comparisons`` in every bank × length × metric where both methods ran.

    Each is the mean over seeds of ``value(method, seed) - value(other, seed)`` with a Student
    t interval on those differences: paired, so that what a seed does to both methods (its
    draws of the training data) cancels out. A :data:`BEST_BASELINE` opponent is the baseline
    with the highest mean in that column.
    """
    values: dict[tuple[str, int, str, str], dict[int, float]] = {}
    for row in rows:
        key = (str(row["bank"]), int(row["bits"]), str(row["metric"]), str(row["method"]))
        values.setdefault(key, {})[int(row["seed"])] = float(row["value"])
    baselines = [m.key for m in suite.methods if m.kind == "baseline"]
    banks = list(dict.fromkeys([*suite.banks, *sorted({k[0] for k in values})]))
    metrics = list(dict.fromkeys([*suite.metrics, *sorted({k[2] for k in values})]))
    columns = sorted({k[:3] for k in values},
                     key=lambda c: (banks.index(c[0]), c[1], metrics.index(c[2])))
    out = []
    for bank, bits, metric in columns:
        done = set()
        def seeds_of(method: str, column: tuple[str, int, str] = (bank, bits, metric)) -> dict:
            return values.get((*column, method), {})

        for method, other in suite.comparisons:
            if other == BEST_BASELINE:
                ran = [b for b in baselines if seeds_of(b)]
                if not ran:
                    continue
                other = max(ran, key=lambda b: float(np.mean(list(seeds_of(b).values()))))
            a, b = seeds_of(method), seeds_of(other)
            common = tuple(sorted(set(a) & set(b)))
            if not common or (method, other) in done:
                continue
            done.add((method, other))
            diff = np.array([a[seed] - b[seed] for seed in common])
            mean = float(diff.mean())
            if len(common) > 1:
                half = t_quantile(len(common) - 1) * float(diff.std(ddof=1)) / math.sqrt(len(common))
            else:
                half = math.nan
            out.append(Paired(bank, bits, metric, method, other, common, mean, mean - half,
                              mean + half))
    return out


def paired_markdown(rows: Iterable[Mapping[str, Any]], suite: BenchSuite) -> str:
    """The headline comparisons as a Markdown table (empty when the suite has none)."""
    pairs = paired_differences(rows, suite)
    if not pairs:
        return ""
    labels = {m.key: m.label or m.key for m in suite.methods}
    lines = ["## Paired differences", "",
             ("Method minus the other, per seed, mean and 95 % t interval over the seeds both ran; "
             "an interval above 0 means the method is better on these seeds' draws."), "",
             "| Bank | Bits | Metric | Method | Other | Seeds | Difference | 95 % interval |",
             "|---|---:|---|---|---|---:|---:|---|"]
    for p in pairs:
        interval = ("–" if math.isnan(p.low) else
                    f"[{p.low:+.{DECIMALS}f}, {p.high:+.{DECIMALS}f}]")
        lines.append(f"| {p.bank} | {p.bits} | {p.metric} | {labels.get(p.method, p.method)} | "
                     f"{labels.get(p.other, p.other)} | {len(p.seeds)} | "
                     f"{p.mean:+.{DECIMALS}f} | {interval} |")
    return "\n".join(lines) + "\n"
