"""Benchmark of codes at scale: packing, index building, memory and search from 10^6 codes up.

For each database size N (default 10^6 and 10^7; ``--max 1e8`` adds 10^8 where memory allows)
it builds synthetic 64-bit codes that cluster like real hash codes (N / 10 random centres, ten
copies of each with every bit flipped with probability 1.5 / 64), 1,000 queries near random
centres, and measures with :class:`hashgym.index.CodeIndex` on FAISS and, up to
``--numpy-max``, on numpy:

* packing throughput (0/1 codes to bytes, :func:`hashgym.codes.pack`), in codes/s;
* adding the packed codes, and building the radius table (:class:`hashgym.buckets.BucketTable`,
  on the first radius search);
* memory: the packed codes, the index's own count of what it holds (``CodeIndex.nbytes``) and
  the growth of the process's resident memory from before the index was made to after its radius
  table was built (which also counts the allocator's slack and freed temporaries it kept);
* k-NN (k = 100) and radius-2 search of the 1,000 queries, median of ``--repeats`` runs;
* on FAISS, approximate k-NN (``CodeIndex(knn="ivf")``, ``--nprobe`` lists per query): the
  IVF's build (training and filling, at the first search), its search time beside the exact
  one, and its recall of the exact top 10 and top 100 (the share of them it returns; the
  synthetic codes have ten near copies each, so past the tenth the exact neighbours are far
  codes that any cluster-pruning index misses).

Codes are generated in chunks of 10^6 into one packed array, then added to the index in the
same chunks; the index's memory is the growth of the process's resident memory from after the
codes exist to after the index and its radius table are built. The
growth of each time with N is printed as an exponent (time ∝ N^e between consecutive sizes),
and each figure is extrapolated to 10^9 codes with the arithmetic shown. This is a benchmark,
not a test: it prints what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
from hashgym.benchmarks.bench_eval import Report, cpu_model, fmt_times, timed

from hashgym.atomic import atomic_write
from hashgym.codes import pack
from hashgym.index import CodeIndex, faiss_available

N_BITS = 64
CHUNK = 1_000_000


def _codes(rng: np.random.Generator, centres: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """0/1 codes of the given copies: their centre with each bit flipped with p = 1.5 / 64."""
    flips = rng.random((len(rows), N_BITS)) < 1.5 / N_BITS
    return (centres[rows // 10] ^ flips).astype(np.uint8)


def _available_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_bytes() -> int:
    """The process's resident memory now (``/proc/self/statm``; peak RSS where it is absent)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_size(n: int, backend: str, args: argparse.Namespace, report: Report) -> dict[str, float]:
    """Build an index of ``n`` codes on ``backend`` and time what the module docstring lists."""
    rng = np.random.default_rng(args.seed)
    centres = rng.integers(0, 2, (max(1, n // 10), N_BITS), dtype=np.uint8)
    queries = centres[rng.choice(len(centres), args.queries, replace=len(centres) < args.queries)]
    queries = queries ^ (rng.random(queries.shape) < 1.0 / N_BITS)
    packed = np.empty((n, N_BITS // 8), dtype=np.uint8)
    pack_s = 0.0
    for start in range(0, n, CHUNK):
        codes = _codes(rng, centres, np.arange(start, min(n, start + CHUNK)))
        t0 = time.perf_counter()
        packed[start : start + len(codes)] = pack(codes)
        pack_s += time.perf_counter() - t0
    del codes  # the generator's temporaries are freed before the index is measured
    rss_before = _rss_bytes()
    index = CodeIndex(N_BITS, backend=backend)
    t0 = time.perf_counter()
    for start in range(0, n, CHUNK):
        index.add_packed(packed[start : start + CHUNK])
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.range_search(queries[:1], 2)  # builds the radius table
    build_s = time.perf_counter() - t0
    knn_s, knn_times, _ = timed(lambda: index.search(queries, 100), args.repeats)
    rng_s, rng_times, (lims, _, _) = timed(lambda: index.range_search(queries, 2), args.repeats)
    out = {"pack_rate": n / pack_s, "add_s": add_s, "build_s": build_s, "knn_s": knn_s,
           "radius_s": rng_s, "packed_bytes": float(n * N_BITS // 8),
           "index_bytes": float(_rss_bytes() - rss_before), "held_bytes": float(index.nbytes)}
    report(f"  {backend:5s} N={n:>13,}: pack {out['pack_rate']:,.0f} codes/s; add {add_s:.2f} s; "
           f"radius table {build_s:.2f} s; packed codes {out['packed_bytes'] / 2**20:,.0f} MiB, "
           f"index in memory {out['index_bytes'] / 2**20:,.0f} MiB "
           f"({out['index_bytes'] / out['packed_bytes']:.1f}x the packed codes; the index's own "
           f"count, CodeIndex.nbytes, {out['held_bytes'] / 2**20:,.0f} MiB = "
           f"{out['held_bytes'] / out['packed_bytes']:.2f}x)")
    report(f"        k-NN k=100: median {knn_s:.3f} s {fmt_times(knn_times)}; radius 2: median "
           f"{rng_s:.3f} s {fmt_times(rng_times)}, {int(lims[-1]):,} hits")
    if backend == "faiss":
        out.update(_bench_ivf(index, packed, queries, args, report, knn_s))
    return out


def _bench_ivf(exact: CodeIndex, packed: np.ndarray, queries: np.ndarray,
               args: argparse.Namespace, report: Report, exact_s: float) -> dict[str, float]:
    """Approximate k-NN through the IVF beside ``exact``'s: build, time and recall@100."""
    index = CodeIndex(N_BITS, backend="faiss", knn="ivf", nprobe=args.nprobe)
    for start in range(0, len(packed), CHUNK):
        index.add_packed(packed[start : start + CHUNK])
    t0 = time.perf_counter()
    index.search(queries[:1], 100)  # trains and fills the IVF
    build_s = time.perf_counter() - t0
    ivf_s, ivf_times, (_, ids) = timed(lambda: index.search(queries, 100), args.repeats)
    _, exact_ids = exact.search(queries, 100)
    recall = {k: float(np.mean([np.isin(e[:k], i).mean()
                                for e, i in zip(exact_ids, ids, strict=True)]))
              for k in (10, 100)}
    report(f"        IVF k-NN, {index.ivf_lists:,} lists, nprobe {args.nprobe}: build "
           f"{build_s:.2f} s; k=100 median {ivf_s:.3f} s {fmt_times(ivf_times)} "
           f"({exact_s / ivf_s:.0f}x faster than exact); of the exact top 10 it returns "
           f"{recall[10]:.3f}, of the top 100 {recall[100]:.3f}; holds "
           f"{index.nbytes / 2**20:,.0f} MiB")
    return {"ivf_build_s": build_s, "ivf_knn_s": ivf_s, "ivf_recall": recall[100]}


def extrapolate(report: Report, name: str, sizes: list[int], values: list[float], unit: str) -> None:
    """Print how ``values`` grow with N and their extrapolation to 10^9 from the last two sizes."""
    if len(sizes) < 2 or min(values[-2:]) <= 0:
        report(f"  {name}: one size only, no growth measured")
        return
    e = math.log(values[-1] / values[-2]) / math.log(sizes[-1] / sizes[-2])
    target = values[-1] * (1e9 / sizes[-1]) ** e
    report(f"  {name}: grows as N^{e:.2f} from {sizes[-2]:.0e} to {sizes[-1]:.0e}; at 10^9: "
           f"{values[-1]:.3g} {unit} x ({1e9:.0e} / {sizes[-1]:.0e})^{e:.2f} = {target:.3g} {unit}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=float, default=1e7, help="largest N (1e6, 1e7 or 1e8)")
    parser.add_argument("--min", type=float, default=1e6, help="smallest N")
    parser.add_argument("--numpy-max", type=float, default=1e7,
                        help="largest N also measured on numpy (k-NN there is a full scan)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nprobe", type=int, default=16, help="IVF lists scanned per query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    sizes = [10 ** e for e in range(round(math.log10(args.min)), round(math.log10(args.max)) + 1)]
    report = Report()
    report("# hashgym benchmark: codes at scale")
    report(f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    report(f"machine: {cpu_model()}; {os.cpu_count()} logical CPUs; {platform.system()} "
           f"{platform.release()}; load average at start {os.getloadavg()[0]:.2f}")
    report(f"codes: {N_BITS} bits, N / 10 random centres x 10 copies (each bit flipped with p = "
           f"1.5 / 64); {args.queries:,} queries near random centres; seed {args.seed}; medians "
           f"of {args.repeats} runs")
    backends = (["faiss"] if faiss_available() else []) + ["numpy"]
    results: dict[str, dict[int, dict[str, float]]] = {b: {} for b in backends}
    for n in sizes:
        need = n * N_BITS // 8 * 5  # packed codes, the index's copy, the table and its build
        if need > _available_bytes():
            report(f"N={n:,}: skipped, needs about {need / 2**30:.1f} GiB, "
                   f"{_available_bytes() / 2**30:.1f} GiB available")
            continue
        for backend in backends:
            if backend == "numpy" and n > args.numpy_max:
                continue
            results[backend][n] = bench_size(n, backend, args, report)
    report()
    report("## Growth with N and extrapolation to 10^9 codes")
    for backend, by_size in results.items():
        ns = sorted(by_size)
        report(f"{backend}:")
        for key, unit in (("add_s", "s"), ("build_s", "s"), ("knn_s", "s"), ("radius_s", "s"),
                          ("ivf_build_s", "s"), ("ivf_knn_s", "s"), ("index_bytes", "bytes"),
                          ("held_bytes", "bytes")):
            if all(key in by_size[n] for n in ns):
                extrapolate(report, key, ns, [by_size[n][key] for n in ns], unit)
    if args.out is not None:
        with atomic_write(args.out) as handle:
            handle.write(("\n".join(report.lines) + "\n").encode())


if __name__ == "__main__":
    main()
