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

Before the index sizes it measures **streaming encode** (``--encode``, default 10^5 and 10^6
images; ``--only encode`` runs just that part): a synthetic bank of that many 512-d float16
features (the shared CIFAR-100 bank's width) saved uncompressed and loaded memory-mapped, coded
at 64 bits by an untrained DRLHIH DQN with hashgym's network (``DQN_DEFAULTS``, 8 bits per step,
8 steps; the weights do not change the cost) through :func:`hashgym.agents.encode.encode`,
which reads the bank in batches of ``--encode-batch`` rows. It prints images/s and the peak
growth of the process's *anonymous* resident memory during the encode (``RssAnon``, sampled
every 5 ms; the file's pages that the map brings in are the page cache's, not the process's),
which stays flat in N when the encode streams.

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
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from hashgym.agents.encode import encode
from hashgym.agents.train import train
from hashgym.bank import FeatureBank
from hashgym.benchmarks.bench_eval import Report, cpu_model, fmt_times, timed
from hashgym.codes import pack
from hashgym.index import CodeIndex, faiss_available

N_BITS = 64
CHUNK = 1_000_000


def _codes(rng: np.random.Generator, centres: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """0/1 codes of the given copies: their centre with each bit flipped with p = 1.5 / 64."""
    flips = rng.random((len(rows), N_BITS)) < 1.5 / N_BITS
    return (centres[rows // 10] ^ flips).astype(np.uint8)


def _proc_kib(path: str, key: str) -> int:
    """The ``key:`` field of a ``/proc`` file counted in kB, in bytes (0 where it is absent)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _available_bytes() -> int:
    """Memory the kernel could give a new allocation (``MemAvailable``)."""
    return _proc_kib("/proc/meminfo", "MemAvailable")


def _rss_bytes() -> int:
    """The process's resident memory now (``/proc/self/statm``; peak RSS where it is absent)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _anon_rss_bytes() -> int:
    """The process's anonymous resident memory (``RssAnon``): heap and arrays, without the file
    pages a memory map has brought in."""
    return _proc_kib("/proc/self/status", "RssAnon")


@contextmanager
def _peak_anon_rss() -> Iterator[list[int]]:
    """Samples :func:`_anon_rss_bytes` every 5 ms in a thread while the block runs; the yielded
    one-item list holds the largest value seen (final once the block has left)."""
    peak = [_anon_rss_bytes()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _anon_rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], _anon_rss_bytes())


def _feature_bank(n: int, dim: int, seed: int) -> FeatureBank:
    """``n`` images of ``dim``-d float16 features (non-negative, like pooled CNN features) in 100
    classes under 20, a tenth of them queries; built in chunks of 10^5 rows."""
    rng = np.random.default_rng(seed)
    features = np.empty((n, dim), dtype=np.float16)
    for start in range(0, n, 100_000):
        m = min(n, start + 100_000) - start
        features[start:start + m] = np.abs(rng.standard_normal((m, dim), dtype=np.float32))
    fine = np.arange(n) % 100
    return FeatureBank(features=features, labels=np.stack([fine // 5, fine], axis=1),
                       class_names=(tuple(f"c{i}" for i in range(20)),
                                    tuple(f"f{i}" for i in range(100))),
                       split=(np.arange(n) % 10 == 0).astype(np.int8))


def bench_encode(sizes: list[int], args: argparse.Namespace, report: Report) -> None:
    """Streaming encode of memory-mapped synthetic banks (module docstring), one row per size."""
    torch.set_num_threads(args.encode_threads)
    report(f"## Streaming encode: DQN (DQN_DEFAULTS network), {N_BITS} bits in 8 steps of 8, "
           f"memory-mapped 512-d float16 features, batches of {args.encode_batch:,} rows, "
           f"{args.encode_threads} torch thread(s); medians of {args.repeats} runs")
    model = None
    rates: list[float] = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            path = _feature_bank(n, 512, args.seed).save(Path(folder) / "bank.npz")
            bank = FeatureBank.load(path, mmap=True)
            if model is None:
                model = train("dqn", env_kwargs={"bank": bank, "n_bits": N_BITS}, levels=[1],
                              total_timesteps=0, num_envs=16, seed=args.seed).model
            encode(model, bank, indices=np.arange(min(n, args.encode_batch)))  # warm-up
            times, peaks = [], []
            for _ in range(args.repeats):
                before = _anon_rss_bytes()
                with _peak_anon_rss() as peak:
                    t0 = time.perf_counter()
                    codes = encode(model, bank, "all", batch_size=args.encode_batch)
                    times.append(time.perf_counter() - t0)
                peaks.append(peak[0] - before - codes.nbytes)
                del codes
            wall = float(np.median(times))
            rates.append(n / wall)
            report(f"  N={n:>11,}: {n / wall:,.0f} images/s, median {wall:.2f} s "
                   f"{fmt_times(times)}; bank file {path.stat().st_size / 2**20:,.0f} MiB; "
                   f"anonymous memory peak growth beyond the codes {max(peaks) / 2**20:,.0f} "
                   f"MiB (a batch of features as float32: "
                   f"{args.encode_batch * 512 * 4 / 2**20:,.0f} MiB)")
            del bank
    if rates:
        rate = rates[-1]
        report(f"  at the last size's rate, one process codes 10^8 images in 1e8 / {rate:,.0f} = "
               f"{1e8 / rate / 3600:.1f} h and 10^9 in {1e9 / rate / 3600:.0f} h; the rows are "
               f"independent, so k processes or machines over disjoint row ranges divide this "
               f"by k")
    report()


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
    parser.add_argument("--encode", default="1e5,1e6",
                        help="comma-separated bank sizes of the streaming-encode part ('' for none)")
    parser.add_argument("--encode-batch", type=int, default=8192, help="rows per encode batch")
    parser.add_argument("--encode-threads", type=int, default=1, help="torch threads for encode")
    parser.add_argument("--only", choices=("encode", "index"), default=None,
                        help="run only the streaming encode or only the index sizes")
    Report.add_out_argument(parser)
    args = parser.parse_args(argv)
    Report.check_out(parser, args)
    sizes = [10 ** e for e in range(round(math.log10(args.min)), round(math.log10(args.max)) + 1)]
    report = Report()
    report("# hashgym benchmark: codes at scale")
    report(f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
    report(f"machine: {cpu_model()}; {os.cpu_count()} logical CPUs; {platform.system()} "
           f"{platform.release()}; load average at start {os.getloadavg()[0]:.2f}")
    if args.only != "index" and args.encode:
        bench_encode([round(float(x)) for x in args.encode.split(",")], args, report)
    if args.only == "encode":
        sizes = []
    else:
        report(f"## Index: {N_BITS}-bit codes, N / 10 random centres x 10 copies (each bit "
               f"flipped with p = 1.5 / 64); {args.queries:,} queries near random centres; seed "
               f"{args.seed}; medians of {args.repeats} runs")
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
    if not sizes:
        report.write(args.out)
        return
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
    report.write(args.out)


if __name__ == "__main__":
    main()
