"""Benchmark of hashgym's retrieval evaluation and code index (not a test; prints what it measured).

Part 1 — metrics. mAP@all, precision within Hamming radius 2 and NDCG@100 (graded by the
CIFAR-100 hierarchy) for 10,000 query x 50,000 database codes of 48 bits, timed side by side
with the straightforward implementation common in public hashing code (DeepHash-pytorch style:
Hamming distance from a matrix product of ±1 codes, then one argsort per query). That reference
lives here, not in the library. Codes are sign random projections (LSH) of the shared CIFAR-100
ResNet-18 feature bank (random codes if the bank is absent), so distances have a realistic spread.

Part 2 — index. 1,000,000 database codes of 64 bits (100,000 random centres with 10 noisy copies
each, so radius searches find near duplicates), 1,000 noisy queries; k-NN with k = 100 and radius
search with radius 2, FAISS vs numpy, with a check that both return identical results.

Run:  python -m hashgym.benchmarks.bench_eval --out benchmarks/results/bench_eval.txt
(``--quick`` for a small smoke run.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hashgym import kernels
from hashgym.atomic import OutputPathError, atomic_write, check_output
from hashgym.codes import hamming_words, pack_words
from hashgym.index import CodeIndex, faiss_available
from hashgym.metrics import evaluate, mean_average_precision, ndcg_at_k, precision_at_radius
from hashgym.protocols import data_dir

CIFAR_FEATURES = data_dir() / "cifar100" / "cifar100_resnet18_features.npz"


class Report:
    """Prints lines and keeps them for the results file (``--out``, a ``.txt``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    @staticmethod
    def add_out_argument(parser: argparse.ArgumentParser) -> None:
        """A benchmark script's ``--out`` (and ``--force``) options."""
        parser.add_argument("--out", type=Path, default=None,
                            help="also write the report here (a .txt; an existing file that is "
                                 "not text needs --force)")
        parser.add_argument("--force", action="store_true",
                            help="let --out replace an existing file that is not text")

    @staticmethod
    def check_out(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
        """Refuse a bad ``--out`` before the benchmark runs (:func:`hashgym.atomic.check_output`),
        as the script's usage error."""
        if args.out is not None:
            try:
                check_output(args.out, suffix=".txt", kind="report", keys=(), force=args.force)
            except OutputPathError as exc:
                parser.error(str(exc))

    def write(self, out: Path | None) -> None:
        """Write the lines to ``out`` (atomically), when it is given."""
        if out is not None:
            with atomic_write(out) as handle:
                handle.write(("\n".join(self.lines) + "\n").encode())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median wall time of ``repeats`` calls, all the times, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def fmt_times(times: list[float]) -> str:
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"


# ------------------------------------------------------------------------------------------------
# the straightforward reference implementation (one query at a time)


def naive_hamming(q_signs: np.ndarray, db_signs: np.ndarray) -> np.ndarray:
    """Hamming distances of one ±1 query to all ±1 codes: (n_bits - <q, b>) / 2."""
    return 0.5 * (q_signs.shape[0] - db_signs @ q_signs)


def naive_map(qs, ds, ql, dl, sort_kind: str = "stable") -> np.ndarray:
    values = np.zeros(len(qs))
    for i in range(len(qs)):
        order = np.argsort(naive_hamming(qs[i], ds), kind=sort_kind)
        hits = np.flatnonzero(dl[order] == ql[i])
        if hits.size:
            values[i] = np.mean(np.arange(1, hits.size + 1) / (hits + 1.0))
    return values


def naive_precision_radius(qs, ds, ql, dl, radius: int = 2) -> np.ndarray:
    values = np.zeros(len(qs))
    for i in range(len(qs)):
        inside = naive_hamming(qs[i], ds) <= radius
        if inside.any():
            values[i] = np.mean(dl[inside] == ql[i])
    return values


def naive_ndcg(qs, ds, qh, dh, k: int = 100) -> np.ndarray:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = np.zeros(len(qs))
    for i in range(len(qs)):
        order = np.argsort(naive_hamming(qs[i], ds), kind="stable")
        grades = (dh == qh[i]).sum(axis=1)
        dcg = ((2.0 ** grades[order[:k]] - 1) * discounts).sum()
        idcg = ((2.0 ** np.sort(grades)[::-1][:k] - 1) * discounts).sum()
        values[i] = dcg / idcg if idcg > 0 else 0.0
    return values


# ------------------------------------------------------------------------------------------------


def load_codes(n_bits: int, n_query: int, n_db: int, seed: int, report: Report):
    rng = np.random.default_rng(seed)
    if CIFAR_FEATURES.exists():
        data = np.load(CIFAR_FEATURES, allow_pickle=False)
        split = data["split"]
        q_rows, d_rows = np.flatnonzero(split == 1)[:n_query], np.flatnonzero(split == 0)[:n_db]
        feats = data["features"].astype(np.float32)
        hier = np.stack([data["coarse_labels"], data["fine_labels"]], axis=1).astype(np.int64)
        centred = feats - feats[d_rows].mean(axis=0)
        projection = rng.standard_normal((feats.shape[1], n_bits)).astype(np.float32)
        codes = (centred @ projection > 0).astype(np.uint8)
        report(f"codes: LSH (sign of {n_bits} Gaussian projections, seed {seed}) of the CIFAR-100 "
               f"ResNet-18 bank {CIFAR_FEATURES}")
        return codes[q_rows], codes[d_rows], hier[q_rows], hier[d_rows]
    report(f"codes: uniform random bits (seed {seed}); {CIFAR_FEATURES} not found")
    q = rng.integers(0, 2, (n_query, n_bits), dtype=np.uint8)
    d = rng.integers(0, 2, (n_db, n_bits), dtype=np.uint8)
    fine_q, fine_d = rng.integers(0, 100, n_query), rng.integers(0, 100, n_db)
    return q, d, np.stack([fine_q // 5, fine_q], 1), np.stack([fine_d // 5, fine_d], 1)


def compare(report: Report, name: str, fast: np.ndarray, slow: np.ndarray) -> None:
    diff = float(np.max(np.abs(fast - slow)))
    verdict = "identical" if np.array_equal(fast, slow) else (
        f"agree (max |diff| = {diff:.1e})" if diff <= 1e-12 else f"DIFFER (max |diff| = {diff:.3g})")
    report(f"  {name}: hashgym mean {fast.mean():.6f}, reference mean {slow.mean():.6f}: per-query values {verdict}")


def bench_metrics(args: argparse.Namespace, report: Report) -> None:
    n_bits = 48
    q, d, qh, dh = load_codes(n_bits, args.n_query, args.n_db, args.seed, report)
    qf, df = qh[:, 1], dh[:, 1]
    report(f"sizes: {len(q):,} queries x {len(d):,} database codes, {n_bits} bits; relevance: same "
           "fine class (mAP, P@r<=2); graded = agreeing levels of (coarse, fine) (NDCG@100)")
    qs, ds = (2.0 * q - 1).astype(np.float32), (2.0 * d - 1).astype(np.float32)
    rows, fast_values = [], {}
    cases = [
        ("mAP@all", lambda nj: mean_average_precision(q, d, qf, df, per_query=True, n_jobs=nj)[1],
         lambda: naive_map(qs, ds, qf, df)),
        ("P@r<=2", lambda nj: precision_at_radius(q, d, qf, df, 2, per_query=True, n_jobs=nj)[1],
         lambda: naive_precision_radius(qs, ds, qf, df)),
        ("NDCG@100", lambda nj: ndcg_at_k(q, d, qh, dh, 100, relevance="hierarchy", per_query=True, n_jobs=nj)[1],
         lambda: naive_ndcg(qs, ds, qh, dh)),
    ]
    for name, fast_fn, slow_fn in cases:
        t1, times1, fast = timed(lambda fn=fast_fn: fn(1), args.repeats)
        t2, times2, fast2 = timed(lambda fn=fast_fn: fn(2), args.repeats)
        ts, times_s, slow = timed(slow_fn, args.baseline_repeats)
        report(f"{name}:")
        report(f"  hashgym, 1 thread : median {t1:7.2f} s  runs {fmt_times(times1)}")
        report(f"  hashgym, 2 threads: median {t2:7.2f} s  runs {fmt_times(times2)}")
        report(f"  reference (matrix product + one argsort per query): median {ts:7.2f} s  runs {fmt_times(times_s)}")
        report(f"  speed-up: {ts / t1:.1f}x (1 thread), {ts / t2:.1f}x (2 threads)")
        assert np.array_equal(fast, fast2)
        compare(report, name, fast, slow)
        rows.append((name, t1, t2, ts))
        fast_values[name] = fast
    popcount_ratios(args, report, q, d, rows[0][1], fast_values["mAP@all"],
                    lambda: cases[0][1](1))
    t_all, times_all, res = timed(
        lambda: evaluate(q, d, qf, df, ["mAP@all", "P@r<=2", "R@r<=2", "P@100"], n_jobs=1), args.repeats)
    report(f"evaluate(['mAP@all', 'P@r<=2', 'R@r<=2', 'P@100']) in one pass, 1 thread: median "
           f"{t_all:.2f} s runs {fmt_times(times_all)}; {', '.join(f'{k} {v:.4f}' for k, v in res.items())}")
    # what the unstable default sort of public code does to the same numbers
    t_q, _, unstable = timed(lambda: naive_map(qs, ds, qf, df, sort_kind="quicksort"), 1)
    stable = fast_values["mAP@all"]
    diff = np.abs(unstable - stable)
    report(f"reference mAP@all with numpy's default (unstable) argsort instead: {t_q:.2f} s, mean "
           f"{unstable.mean():.6f} vs {stable.mean():.6f} with ties in database order; "
           f"{int((diff > 1e-12).sum())} of {len(diff)} queries differ (max |diff| {diff.max():.2e})")
    report("target mAP@all <= 2.5 s on 2 cores: "
           + ("met" if rows[0][2] <= 2.5 else "MISSED") + f" ({rows[0][2]:.2f} s with 2 threads, "
           f"{rows[0][1]:.2f} s with 1); target >= 10x the per-query argsort way: "
           + ("met" if rows[0][3] / rows[0][1] >= 10 else "MISSED") + f" ({rows[0][3] / rows[0][1]:.1f}x with 1 thread)")


def popcount_pass(q: np.ndarray, d: np.ndarray) -> None:
    """All query-database Hamming distances, 16 MiB of them at a time, then dropped: the least any
    mAP@all must do (numpy's XOR and popcount on 64-bit words, :func:`hashgym.codes.hamming_words`)."""
    qw, dw = pack_words(q), pack_words(d)
    rows = max(1, (1 << 24) // max(1, len(d)))
    for start in range(0, len(q), rows):
        hamming_words(qw[start:start + rows], dw, dtype=np.uint8)


def popcount_ratios(args: argparse.Namespace, report: Report, q: np.ndarray, d: np.ndarray,
                    t_default: float, default_values: np.ndarray,
                    map_all: Callable[[], np.ndarray]) -> None:
    """mAP@all (1 thread) over the popcount pass, with numba and with numba disabled (numpy's path,
    what an install without numba runs; ``HASHGYM_NUMBA=0`` gives the same), and whether the two
    paths give identical values."""
    t_pop, pop_times, _ = timed(lambda: popcount_pass(q, d), args.repeats)
    report(f"popcount pass (all distances, numpy XOR + bitwise_count, 1 thread): median "
           f"{t_pop:.2f} s runs {fmt_times(pop_times)}")
    if kernels.AVAILABLE:
        report(f"mAP@all with numba (the default install), 1 thread: {t_default:.2f} s = "
               f"{t_default / t_pop:.2f}x the popcount pass")
    else:
        report("mAP@all: numba is not installed (or HASHGYM_NUMBA=0), numpy's path only")
    saved = kernels.AVAILABLE
    kernels.AVAILABLE = False
    try:
        t_np, np_times, numpy_values = timed(map_all, args.repeats)
    finally:
        kernels.AVAILABLE = saved
    report(f"mAP@all without numba (numpy's path), 1 thread: median {t_np:.2f} s runs "
           f"{fmt_times(np_times)} = {t_np / t_pop:.2f}x the popcount pass; target <= 1.5x: "
           + ("met" if t_np <= 1.5 * t_pop else "MISSED")
           + f"; values identical to the default path: {np.array_equal(numpy_values, default_values)}")


def bench_index(args: argparse.Namespace, report: Report) -> None:
    rng = np.random.default_rng(args.seed)
    n_bits, n_centres, copies = 64, args.n_index // 10, 10
    centres = rng.integers(0, 2, (n_centres, n_bits), dtype=np.uint8)
    db = np.repeat(centres, copies, axis=0) ^ (rng.random((n_centres * copies, n_bits)) < 1.5 / n_bits)
    queries = centres[rng.choice(n_centres, args.n_index_queries, replace=False)] ^ (
        rng.random((args.n_index_queries, n_bits)) < 1.0 / n_bits)
    report(f"index: {len(db):,} database codes of {n_bits} bits ({n_centres:,} random centres x "
           f"{copies} copies, each bit flipped with p = 1.5/64), {len(queries):,} queries (a centre "
           "with p = 1/64 flips); k = 100, radius 2")
    backends = ["faiss", "numpy"] if faiss_available() else ["numpy"]
    results: dict[str, tuple] = {}
    for backend in backends:
        start = time.perf_counter()
        index = CodeIndex(n_bits, backend=backend)
        index.add(db.astype(np.uint8))
        t_add = time.perf_counter() - start
        start = time.perf_counter()
        index.range_search(queries[:1], 2)  # builds the radius table (hashgym.buckets)
        t_build = time.perf_counter() - start
        t_knn, knn_times, knn = timed(lambda ix=index: ix.search(queries, 100), args.index_repeats)
        t_rng, rng_times, rng_res = timed(lambda ix=index: ix.range_search(queries, 2),
                                          max(3, args.index_repeats))
        results[backend] = (knn, rng_res)
        report(f"{backend}: add {t_add:.2f} s; first radius-2 search of one query (builds the radius "
               f"table) {t_build:.2f} s")
        report(f"  k-NN k=100      : median {t_knn:7.3f} s  runs {fmt_times(knn_times)}")
        report(f"  radius-2 search : median {t_rng:7.3f} s  runs "
               + "[" + ", ".join(f"{t:.3f}" for t in rng_times) + "]"
               + f"; {int(rng_res[0][-1]):,} hits in all")
        if backend == "faiss":
            report("  target radius-2 search of 1,000 queries over 1,000,000 codes < 0.1 s with FAISS: "
                   + ("met" if t_rng < 0.1 else "MISSED") + f" ({t_rng:.3f} s, table build excluded)")
    if len(results) == 2:
        same_knn = all(np.array_equal(a, b) for a, b in zip(results["faiss"][0], results["numpy"][0]))
        same_rng = all(np.array_equal(a, b) for a, b in zip(results["faiss"][1], results["numpy"][1]))
        report(f"faiss and numpy results identical: k-NN {same_knn}, radius search {same_rng}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each hashgym timing")
    parser.add_argument("--baseline-repeats", type=int, default=3, help="runs of each reference timing")
    parser.add_argument("--index-repeats", type=int, default=3)
    parser.add_argument("--n-query", type=int, default=None,
                        help="query codes of the metrics part (default 10,000; 500 with --quick)")
    parser.add_argument("--n-db", type=int, default=None,
                        help="database codes of the metrics part (default 50,000; 5,000 with --quick)")
    parser.add_argument("--skip-index", action="store_true", help="run the metrics part only")
    Report.add_out_argument(parser)
    args = parser.parse_args(argv)
    Report.check_out(parser, args)
    n_query, n_db, args.n_index, args.n_index_queries = (
        (500, 5000, 20000, 100) if args.quick else (10_000, 50_000, 1_000_000, 1_000))
    args.n_query = n_query if args.n_query is None else args.n_query
    args.n_db = n_db if args.n_db is None else args.n_db
    report = Report()
    try:
        import faiss

        faiss_text = f"faiss {faiss.__version__} (OpenMP threads: {faiss.omp_get_max_threads()})"
    except ImportError:
        faiss_text = "faiss not installed"

    report("# hashgym benchmark: retrieval evaluation and code index")
    report(f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    report(f"machine: {cpu_model()}; {os.cpu_count()} logical CPUs ({len(os.sched_getaffinity(0))} usable); "
           f"{platform.system()} {platform.release()}")
    report(f"versions: python {platform.python_version()}, numpy {np.__version__}, {faiss_text}")
    report(f"seed: {args.seed}; hashgym runs: {args.repeats}, reference runs: {args.baseline_repeats} "
           "(medians quoted)")
    report(f"load average at start (1/5/15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
           "— other processes share these cores")
    report()
    bench_metrics(args, report)
    if not args.skip_index:
        report()
        bench_index(args, report)
    report()
    report(f"load average at end (1/5/15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report.write(args.out)


if __name__ == "__main__":
    sys.exit(main())
