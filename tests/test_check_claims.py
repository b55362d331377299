"""The claims check: README.md and docs/*.md agree with the committed records, and a copy that
does not is refused at the line that differs. Every case works on a temporary copy of the
README, the docs and the records (``--root``); the repository itself is never written."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hashgym.benchmarks.check_claims import ClaimsError, check, generate_table, main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of README.md, docs/ and the committed records (without their plots)."""
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copytree(REPO / "benchmarks" / "results", tmp_path / "benchmarks" / "results",
                    ignore=shutil.ignore_patterns("*.png"))
    return tmp_path


def _append(root: Path, text: str) -> int:
    """Append one line to the copy's README; return its 1-based line number."""
    readme = root / "README.md"
    lines = readme.read_text(encoding="utf-8").rstrip("\n").split("\n")
    readme.write_text("\n".join([*lines, "", text, ""]), encoding="utf-8")
    return len(lines) + 2


def _values(suite: str, bank: str, method: str, bits: int, metric: str) -> dict[int, float]:
    """Per-seed values straight from the committed results.csv, for the expected figures."""
    with (REPO / "benchmarks" / "results" / suite / "results.csv").open(newline="") as handle:
        return {int(r["seed"]): float(r["value"]) for r in csv.DictReader(handle)
                if (r["bank"], r["method"], int(r["bits"]), r["metric"])
                == (bank, method, bits, metric)}


DQN = ("drlhih-0.5.0", "cifar100", "dqn-hier", 12, "NDCG@20")
SPEC = " ".join(map(str, DQN))


def _problems(root: Path) -> list[str]:
    return [str(p) for p in check(root)[0]]


def test_the_repository_agrees_with_its_records(capsys) -> None:
    assert main(["--root", str(REPO)]) == 0
    assert "agree with their records" in capsys.readouterr().out


def test_a_copy_agrees_before_it_is_altered(root: Path) -> None:
    problems, tables, claims = check(root)
    assert problems == []
    assert tables >= 1 and claims >= 1


def test_an_altered_table_number_is_named_at_its_line(root: Path, capsys) -> None:
    readme = root / "README.md"
    lines = readme.read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("<!-- table:"))
    row = next(i for i in range(start + 1, len(lines)) if re.search(r"\d\.\d{3}", lines[i]))
    old = re.search(r"\d\.\d{3}", lines[row]).group(0)
    new = f"{(float(old) + 0.1) % 1:.3f}"
    lines[row] = lines[row].replace(old, new, 1)
    readme.write_text("\n".join(lines), encoding="utf-8")

    assert main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"README.md:{row + 1}: table " in err
    assert new in err and old in err


def test_write_restores_a_generated_table(root: Path) -> None:
    readme = root / "README.md"
    original = readme.read_text(encoding="utf-8")
    lines = original.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("<!-- table:"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "<!-- /table -->")
    readme.write_text("\n".join(lines[:start + 1] + ["| stale |"] + lines[end:]), encoding="utf-8")
    assert main(["--root", str(root)]) == 1

    assert main(["--root", str(root), "--write"]) == 0
    assert readme.read_text(encoding="utf-8") == original


def test_a_record_figure_must_equal_its_mean_and_std(root: Path) -> None:
    values = np.array(list(_values(*DQN).values()))
    mean, std = values.mean(), values.std(ddof=1)
    good = _append(root, f"NDCG@20 **{mean:.3f} ± {std:.3f}**<!-- claim: {SPEC} -->.")
    assert _problems(root) == []

    text = (root / "README.md").read_text(encoding="utf-8")
    altered = f"{mean + 0.01:.3f}"
    head, _, tail = text.rpartition(f"{mean:.3f} ± ")  # the appended figure, not the table's
    (root / "README.md").write_text(f"{head}{altered} ± {tail}", encoding="utf-8")
    problems = _problems(root)
    assert len(problems) == 1
    assert problems[0].startswith(f"README.md:{good}: ")
    assert f"expected {mean:.3f} ± {std:.3f}, found {altered} ± {std:.3f}" in problems[0]


def test_a_figure_is_compared_at_its_own_decimals_and_per_seed(root: Path) -> None:
    seeds = _values(*DQN)
    seed = min(seeds)
    _append(root, f"mean {np.mean(list(seeds.values())):.2f}<!-- claim: {SPEC} -->, seed {seed} "
            f"{seeds[seed]:.4f}<!-- claim: {SPEC} seed={seed} -->")
    assert _problems(root) == []


def test_a_sliced_metric_is_claimed_by_its_full_name(root: Path) -> None:
    itq = ("unseen", "cifar100-unseen", "itq", 32, "mAP@1000 unseen@unseen")
    values = np.array(list(_values(*itq).values()))
    spec = " ".join(map(str, itq))
    _append(root, f"ITQ {values.mean():.3f} ± {values.std(ddof=1):.3f}<!-- claim: {spec} -->")
    assert _problems(root) == []
    line = _append(root, f"ITQ {values.mean() + 0.1:.3f}<!-- claim: {spec} -->")
    assert _problems(root) == [(f"README.md:{line}: {spec}: expected {values.mean():.3f}, "
                               f"found {values.mean() + 0.1:.3f}")]


def test_a_figure_keeps_its_sign(root: Path) -> None:
    mean = np.mean(list(_values(*DQN).values()))
    _append(root, f"+{mean:.3f}<!-- claim: {SPEC} -->")
    assert _problems(root) == []
    line = _append(root, f"a −{mean:.3f}<!-- claim: {SPEC} -->")
    assert _problems(root) == [f"README.md:{line}: {SPEC}: expected {mean:.3f}, found -{mean:.3f}"]


def test_an_unmarked_three_decimal_figure_is_named(root: Path) -> None:
    line = _append(root, "The agent reached 0.123 on the queries.")
    assert _problems(root) == [f"README.md:{line}: unmarked figure '0.123': add <!-- claim: … -->"]


@pytest.mark.parametrize("text, figure", [
    ("It ran at 1,234 images/s.", "1,234 images/s"),
    ("It took 12 min.", "12 min"),
    ("It is 3.5× faster.", "3.5×"),
    ("It held 10x the codes.", "10x"),
], ids=["rate", "duration", "ratio-sign", "ratio-x"])
def test_unmarked_speeds_ratios_and_times_are_named(root: Path, text: str, figure: str) -> None:
    line = _append(root, text)
    assert _problems(root) == [f"README.md:{line}: unmarked figure {figure!r}: add <!-- claim: … -->"]


def test_fenced_code_and_products_are_not_figures(root: Path) -> None:
    _append(root, "```bash\nhashgym eval --threshold 0.123  # 12 min\n```\n8×8 images, "
            "10,000 × 50,000 codes")
    assert _problems(root) == []


def test_a_file_claim_whose_text_is_absent_is_named(root: Path) -> None:
    line = _append(root, "9.99M<!-- claim: file bench_envs.txt --> steps/s")
    message = f"README.md:{line}: '9.99M' does not appear in benchmarks/results/bench_envs.txt"
    assert _problems(root) == [message]


def test_file_note_and_paper_claims_pass_when_they_hold(root: Path) -> None:
    figure = re.search(r"\d[\d,]+", (REPO / "benchmarks/results/bench_envs.txt").read_text()
                       ).group(0)
    note = (REPO / "benchmarks/results/notes/end-to-end.md").read_text()
    note_figure = re.search(r"\d+\.\d{3}", note).group(0)
    _append(root, f"{figure}<!-- claim: file bench_envs.txt --> and "
            f"{note_figure}<!-- claim: note end-to-end.md --> and "
            "0.785<!-- claim: paper DRLHIH Table 1 -->")
    assert _problems(root) == []


# Specs the check cannot evaluate: (id, appended text, message regex). Each is named at its line.
BAD = [
    ("unknown-suite", "<!-- table: nosuch -->\n<!-- /table -->", r"no committed record"),
    ("unknown-option", "<!-- table: quick size=3 -->\n<!-- /table -->", r"'size=3': expected"),
    ("bad-columns", "<!-- table: quick metric=mAP@all columns=seeds -->\n<!-- /table -->",
     r"columns=seeds: expected bits or banks"),
    ("metric-needed", "<!-- table: quick -->\n<!-- /table -->", r"name one with metric="),
    ("bank-needed", "<!-- table: drlhih-0.5.0 metric=NDCG@20 -->\n<!-- /table -->",
     r"name one with bank="),
    ("bank-and-banks",
     "<!-- table: drlhih-0.5.0 bank=cifar100 metric=NDCG@20 columns=banks -->\n<!-- /table -->",
     r"exclude each other"),
    ("unclosed", "<!-- table: quick metric=mAP@all -->", r"without <!-- /table -->"),
    ("no-figure", "text<!-- claim: paper DRLHIH Table 1 -->", r"follows no figure"),
    ("paper-without-source", "0.785<!-- claim: paper -->", r"without a SOURCE"),
    ("short-spec", "0.601<!-- claim: drlhih cifar100 dqn-hier -->", r"expected SUITE BANK"),
    ("no-such-rows", "0.601<!-- claim: drlhih-0.5.0 cifar100 nosuch 12 NDCG@20 -->",
     r"no such results"),
    ("no-such-seed", f"0.601<!-- claim: {SPEC} seed=99 -->", r"seed 99 not in"),
    ("seed-with-spread", f"0.601 ± 0.005<!-- claim: {SPEC} seed=0 -->", r"one seed has no ±"),
    ("missing-file", "1.0<!-- claim: file nosuch.txt -->", r"no such record"),
    ("file-outside-results", "1.0<!-- claim: file ../../README.md -->", r"no such record"),
]


@pytest.mark.parametrize("text, message", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_specs_the_check_cannot_evaluate_are_named(root: Path, text: str, message: str) -> None:
    line = _append(root, text)
    problems = _problems(root)
    assert problems, text
    assert all(p.startswith(f"README.md:{line}: ") for p in problems), problems
    assert re.search(message, problems[0]), problems[0]


def test_a_root_without_readme_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(ClaimsError, match="no README.md"):
        check(tmp_path)
    assert main(["--root", str(tmp_path)]) == 2
    assert "no README.md" in capsys.readouterr().err


def test_generate_table_rows_follow_the_record(root: Path) -> None:
    record = json.loads((root / "benchmarks/results/quick/record.json").read_text())
    suite = record.get("suite") or record["protocol"]
    with (root / "benchmarks/results/quick/results.csv").open(newline="") as handle:
        bits = sorted({int(r["bits"]) for r in csv.DictReader(handle)})
    lines = generate_table(root, "quick metric=mAP@all")
    assert lines[0] == "| Method | " + " | ".join(f"{b} bits" for b in bits) + " |"
    labels = [line.split(" | ")[0].removeprefix("| ") for line in lines[2:]]
    assert labels == [m["label"] for m in suite["methods"]]
    for column in range(len(bits)):  # the best mean of each column is bold
        cells = [line.strip("|").split(" | ")[column + 1].strip() for line in lines[2:]]
        best = max(float(c.strip("*").split(" ± ")[0]) for c in cells)
        assert all(c.startswith("**") == (float(c.strip("*").split(" ± ")[0]) == best)
                   for c in cells)
