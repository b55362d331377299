"""Check that every figure in README.md and docs/*.md comes from a committed record.

``python -m hashgym.benchmarks.check_claims`` reads README.md and every ``docs/*.md`` under
``--root`` (default: the current folder, the repository root in CI) and checks three things:

* **Generated tables.** A block ::

      <!-- table: SUITE [bank=BANK] [metric=METRIC] [columns=bits|banks] -->
      | Method | 24 bits | 48 bits |
      ...
      <!-- /table -->

  must equal the table made from ``benchmarks/results/SUITE/results.csv``: one row per method
  of ``record.json``'s ``suite.methods`` (``protocol.methods`` in records older than 0.5; their
  labels, in their order), one column per code
  length (``columns=bits``, the default) or per bank (``columns=banks``, for a suite with one
  code length), each cell the mean ``±`` the sample standard deviation over seeds at three
  decimals, the best mean of each column in bold. ``bank`` may be left out when the results
  hold one bank, ``metric`` when the record names one metric. ``--write`` rewrites every such
  block from its record, which is how the README's tables are made.
* **Claimed figures.** A figure followed at once by ``<!-- claim: SPEC -->``. ``SPEC`` is
  ``SUITE BANK METHOD BITS METRIC`` (the figure, ``0.601`` or ``0.601 ± 0.005``, equals the mean
  over seeds, and the sample std, rounded to the figure's own decimals; the metric may name a
  slice after a space, ``mAP@1000 unseen@unseen``), the same followed by
  ``seed=N`` (that seed's value), ``file PATH`` (the figure's text appears verbatim in the
  committed record ``benchmarks/results/PATH``), ``note PATH`` (the same for
  ``benchmarks/results/notes/PATH``) or ``paper SOURCE`` (a number quoted from a paper, declared
  but not checked). A figure is a number, signed or not (``−0.019``), with its attached suffix
  (``1.74M``, ``10x``, ``55.2%``) and an optional ``± spread``; surrounding ``**`` may wrap it.
* **No unmarked figures.** Outside generated tables and fenced code blocks, any number with
  three or more decimals, any rate (``… steps/s``, ``images/s``), any ratio (``10x``, ``3×``)
  and any duration (``12 s``, ``4 min``, ``1.3 h``) must be a claimed figure.

Without ``--write`` nothing is changed; every mismatch is listed as ``FILE:LINE: message`` and
the exit status is 1. CI runs the check before the tests, so a README number cannot drift from
its record.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hashgym.atomic import atomic_write
from hashgym.benchmarks.tables import Summary, format_value, summarize
from hashgym.errors import BenchError

__all__ = ["ClaimsError", "Problem", "check", "generate_table", "main"]

DECIMALS = 3
RESULTS = Path("benchmarks") / "results"

_TABLE_OPEN = re.compile(r"^\s*<!--\s*table:\s*(.*?)\s*-->\s*$")
_TABLE_CLOSE = re.compile(r"^\s*<!--\s*/table\s*-->\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CLAIM = re.compile(r"<!--\s*claim:\s*(.*?)\s*-->")
# A figure: a number, an attached suffix (M, x, ×, %), an optional "± spread", maybe in bold.
_FIGURE = re.compile(
    r"(?P<fig>(?:(?<![\w.])[−+-])?(?<![\w.])\d[\d,]*(?:\.\d+)?(?:\s?±\s?\d[\d,]*(?:\.\d+)?)?"
    r"[A-Za-z×%]*)[*`]*$")
# Figures that must carry a claim: three or more decimals, rates, ratios and durations.
_UNMARKED = (
    re.compile(r"(?<![\w.])\d+\.\d{3,}\b"),
    re.compile(r"(?<![\w.])\d[\d,.]*\s?[kKM]?\s?(?:env\s)?(?:steps|images|codes|queries)/s\b"),
    re.compile(r"(?<![\w.])\d[\d,.]*\s?(?:×|x\b)(?!\s?\d)"),  # not a product like 8×8
    re.compile(r"(?<![\w.])\d[\d,.]*\s?(?:ms|s|min|h)\b(?!-)"),
)
_COLUMNS = ("bits", "banks")


#: This module's name for :class:`~hashgym.errors.BenchError` (an alias).
ClaimsError = BenchError


@dataclass(frozen=True)
class Problem:
    """One mismatch: the file (relative to the root), its 1-based line and what is wrong."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class _SpecError(BenchError):
    """A table or claim the check cannot evaluate; becomes a :class:`Problem` at its line."""


@dataclass(frozen=True)
class _Record:
    """One suite's committed results: summaries, per-seed values and the methods' labels."""

    summary: dict[tuple[str, str, int, str], Summary]
    values: dict[tuple[str, str, int, str, int], float]
    methods: list[tuple[str, str]]
    metrics: list[str]
    banks: list[str]


class _Records:
    """Loads each suite's ``results.csv`` and ``record.json`` once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, _Record] = {}

    def get(self, suite: str) -> _Record:
        if suite not in self._cache:
            self._cache[suite] = self._load(suite)
        return self._cache[suite]

    def _load(self, suite: str) -> _Record:
        folder = self.root / RESULTS / suite
        csv_path, json_path = folder / "results.csv", folder / "record.json"
        for path in (csv_path, json_path):
            if not path.is_file():
                raise _SpecError(f"suite {suite!r}: no committed record {path.relative_to(self.root)}")
        with csv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        record = json.loads(json_path.read_text(encoding="utf-8"))
        # "suite" since hashgym 0.5; records written before it call the same object "protocol".
        protocol = record.get("suite") or record.get("protocol") or {}
        values = {(r["bank"], r["method"], int(r["bits"]), r["metric"], int(r["seed"])):
                  float(r["value"]) for r in rows}
        methods = [(m["key"], m["label"]) for m in protocol.get("methods", [])]
        banks = [b for b in protocol.get("banks", []) if any(r["bank"] == b for r in rows)]
        banks += sorted({r["bank"] for r in rows} - set(banks))
        return _Record(summarize(rows), values, methods, list(protocol.get("metrics", [])), banks)


def _options(spec: str, allowed: Sequence[str]) -> tuple[str, dict[str, str]]:
    """``SUITE key=value ...`` split into the suite and its options."""
    words = spec.split()
    if not words or "=" in words[0]:
        raise _SpecError(f"{spec!r} does not start with a suite name")
    options = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or key not in allowed or not value:
            raise _SpecError(f"{word!r}: expected one of {', '.join(k + '=…' for k in allowed)}")
        options[key] = value
    return words[0], options


def _cell(summary: Summary | None, best: str | None) -> str:
    if summary is None:
        return "–"
    mean, std = format_value(summary, DECIMALS)
    text = f"{mean} ± {std}" if std else mean
    return f"**{text}**" if best is not None and float(mean) == float(best) else text


def generate_table(root: str | Path, spec: str, records: _Records | None = None) -> list[str]:
    """The Markdown lines of the table ``<!-- table: SPEC -->`` stands for.

    :param root: the repository root holding ``benchmarks/results/``.
    :param spec: ``SUITE [bank=BANK] [metric=METRIC] [columns=bits|banks]``.
    :return: the header, the separator and one line per method with results.
    """
    records = records or _Records(Path(root))
    suite, options = _options(spec, ("bank", "metric", "columns"))
    record = records.get(suite)
    columns = options.get("columns", "bits")
    if columns not in _COLUMNS:
        raise _SpecError(f"columns={columns}: expected bits or banks")
    metric = options.get("metric")
    if metric is None:
        if len(record.metrics) != 1:
            raise _SpecError(f"suite {suite!r} reports {record.metrics}; name one with metric=")
        metric = record.metrics[0]
    if columns == "banks":
        if "bank" in options:
            raise _SpecError("bank= and columns=banks exclude each other")
        bits = sorted({k[2] for k in record.summary if k[3] == metric})
        if len(bits) != 1:
            raise _SpecError(f"columns=banks needs one code length; {suite!r} has {bits}")
        keys = [(bank, bits[0]) for bank in record.banks]
        header = [f"`{bank}`" for bank in record.banks]
    else:
        bank = options.get("bank")
        if bank is None:
            if len(record.banks) != 1:
                raise _SpecError(f"suite {suite!r} has banks {record.banks}; name one with bank=")
            bank = record.banks[0]
        bits = sorted({k[2] for k in record.summary if k[0] == bank and k[3] == metric})
        keys = [(bank, b) for b in bits]
        header = [f"{b} bits" for b in bits]
    if not keys or not header:
        raise _SpecError(f"suite {suite!r} has no {metric} results for {spec!r}")
    grid = [(label, [record.summary.get((bank, key, b, metric)) for bank, b in keys])
            for key, label in record.methods]
    grid = [(label, cells) for label, cells in grid if any(c is not None for c in cells)]
    best = [max((format_value(row[i], DECIMALS)[0] for _, row in grid if row[i] is not None),
                key=float, default=None) for i in range(len(keys))]
    lines = ["| Method | " + " | ".join(header) + " |", "|---|" + "---:|" * len(keys)]
    for label, cells in grid:
        lines.append("| " + " | ".join([label, *(_cell(c, b) for c, b in zip(cells, best))]) + " |")
    return lines


def _check_number(records: _Records, figure: str, spec: str) -> str | None:
    """A record-backed figure against its mean (± std), or one seed's value; None when equal."""
    words = spec.split()
    seed = None
    if words and words[-1].startswith("seed="):
        try:
            seed = int(words.pop()[5:])
        except ValueError as error:
            raise _SpecError(f"{spec!r}: seed= takes an integer") from error
    if len(words) < 5:
        raise _SpecError(f"{spec!r}: expected SUITE BANK METHOD BITS METRIC [seed=N], "
                         "file PATH, note PATH or paper SOURCE")
    suite, bank, method, bits_text = words[:4]
    metric = " ".join(words[4:])  # a sliced metric has a space: "mAP@1000 unseen@unseen"
    if not bits_text.isdigit():
        raise _SpecError(f"{spec!r}: BITS {bits_text!r} is not a number")
    record = records.get(suite)
    key = (bank, method, int(bits_text), metric)
    if key not in record.summary:
        raise _SpecError(f"{spec!r}: no such results in {suite}/results.csv")
    mean_text, _, std_text = (part.strip() for part in figure.replace("−", "-").partition("±"))
    if not re.fullmatch(r"[-+]?\d+(\.\d+)?", mean_text) or (std_text and not re.fullmatch(
            r"\d+(\.\d+)?", std_text)):
        return f"figure {figure!r} is not a plain number (or number ± number)"
    if seed is not None:
        if std_text:
            return f"figure {figure!r}: one seed has no ±"
        if key + (seed,) not in record.values:
            raise _SpecError(f"{spec!r}: seed {seed} not in {suite}/results.csv")
        expected = [_rounded(record.values[key + (seed,)], mean_text)]
    else:
        summary = record.summary[key]
        expected = [_rounded(summary.mean, mean_text)]
        if std_text:
            if math.isnan(summary.std):
                return f"figure {figure!r}: one seed has no ±"
            expected.append(_rounded(summary.std, std_text))
    found = [mean_text] + ([std_text] if std_text else [])
    if found != expected:
        return f"{spec}: expected {' ± '.join(expected)}, found {' ± '.join(found)}"
    return None


def _rounded(value: float, like: str) -> str:
    """``value`` printed as ``like`` is: its decimals, and a ``+`` where ``like`` has one."""
    decimals = len(like.partition(".")[2])
    sign = "+" if like.startswith("+") else ""
    return f"{value:{sign}.{decimals}f}"


def _check_claim(records: _Records, figure: str, spec: str) -> str | None:
    kind, _, rest = spec.partition(" ")
    rest = rest.strip()
    if kind == "paper":
        return None if rest else "paper claim without a SOURCE"
    if kind in ("file", "note"):
        if not rest:
            raise _SpecError(f"{kind} claim without a PATH")
        base = records.root / RESULTS / ("notes" if kind == "note" else "")
        path = (base / rest).resolve()
        if not path.is_relative_to((records.root / RESULTS).resolve()) or not path.is_file():
            raise _SpecError(f"{kind} {rest}: no such record under {RESULTS}/"
                             + ("notes/" if kind == "note" else ""))
        if figure not in path.read_text(encoding="utf-8"):
            return f"{figure!r} does not appear in {path.relative_to(records.root.resolve())}"
        return None
    return _check_number(records, figure, spec)


def _scan_line(records: _Records, text: str) -> list[str]:
    """Problems of one prose line: claims that disagree with their records, unmarked figures."""
    problems = []
    masked = list(text)
    for match in _CLAIM.finditer(text):
        masked[match.start():match.end()] = " " * (match.end() - match.start())
        figure = _FIGURE.search(text[:match.start()])
        if figure is None:
            problems.append(f"claim {match.group(1)!r} follows no figure")
            continue
        start, end = figure.span("fig")
        masked[start:end] = " " * (end - start)
        try:
            message = _check_claim(records, figure.group("fig"), match.group(1))
        except _SpecError as error:
            message = str(error)
        if message:
            problems.append(message)
    for pattern in _UNMARKED:  # each figure once: what one pattern reports is masked
        for match in list(pattern.finditer("".join(masked))):
            problems.append(f"unmarked figure {match.group(0).strip()!r}: add <!-- claim: … -->")
            masked[match.start():match.end()] = " " * (match.end() - match.start())
    return problems


@dataclass
class _Report:
    problems: list[Problem]
    tables: int = 0
    claims: int = 0


def _check_file(records: _Records, path: Path, name: str, write: bool, report: _Report) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    out: list[str] = []
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        opening = None if fenced else _TABLE_OPEN.match(line)
        if opening is None:
            if not fenced:
                for message in _scan_line(records, line):
                    report.problems.append(Problem(name, i + 1, message))
                report.claims += len(_CLAIM.findall(line))
            out.append(line)
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if _TABLE_CLOSE.match(lines[j])), None)
        if end is None:
            report.problems.append(Problem(name, i + 1, "table block without <!-- /table -->"))
            out.extend(lines[i:])
            break
        report.tables += 1
        found = lines[i + 1:end]
        try:
            expected = generate_table(records.root, opening.group(1), records)
        except _SpecError as error:
            report.problems.append(Problem(name, i + 1, f"table {opening.group(1)!r}: {error}"))
            expected = found
        if write:
            found = expected
        for k in range(max(len(expected), len(found))):
            want = expected[k] if k < len(expected) else "(nothing)"
            have = found[k] if k < len(found) else "(nothing)"
            if want != have:
                report.problems.append(Problem(
                    name, i + 2 + k, f"table {opening.group(1)!r}: expected {want!r}, "
                    f"found {have!r}"))
        out += [line, *found, lines[end]]
        i = end + 1
    if write and out != lines:
        with atomic_write(path) as handle:
            handle.write("\n".join(out).encode("utf-8"))


def check(root: str | Path = ".", write: bool = False) -> tuple[list[Problem], int, int]:
    """Check (or, with ``write``, first regenerate the tables of) README.md and docs/*.md.

    :param root: the repository root.
    :param write: rewrite every generated table from its record before checking.
    :return: ``(problems, tables, claims)``: every mismatch and how many blocks and claims
        were read.
    """
    base = Path(root)
    if not (base / "README.md").is_file():
        raise ClaimsError(f"{base}: no README.md (pass the repository root as --root)")
    records = _Records(base)
    report = _Report([])
    for path in [base / "README.md", *sorted((base / "docs").glob("*.md"))]:
        _check_file(records, path, path.relative_to(base).as_posix(), write, report)
    return report.problems, report.tables, report.claims


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hashgym.benchmarks.check_claims",
        description="Check README.md and docs/*.md against the committed records in "
        "benchmarks/results/ (generated tables, claimed figures, no unmarked figures).")
    parser.add_argument("--root", default=".", help="the repository root (default: .)")
    parser.add_argument("--write", action="store_true",
                        help="rewrite every generated table from its record, then check")
    args = parser.parse_args(argv)
    try:
        problems, tables, claims = check(args.root, write=args.write)
    except ClaimsError as error:
        print(f"check_claims: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check_claims: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_claims: {tables} generated table(s) and {claims} claimed figure(s) agree with "
          "their records; no unmarked figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
