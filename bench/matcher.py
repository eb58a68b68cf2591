"""Matcher micro-benchmark: 1:N identification time against gallery size and batch size.

Run: .venv/bin/python bench/matcher.py [--repeats N] [--dim D]

Random unit vectors stand in for embeddings (the cost of the maths does not depend on what the
vectors hold); 5 samples per person, and 1 negative sample for every 20th person. Per row it
prints the median and p95 of one ``Matcher.match`` call and the time per query, and, as the
reference, the same call on the plain row layout (``queries @ samples.T`` on a samples×dim
matrix, then the same per-person reduction), side by side as a ratio.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vision.matcher import Matcher, limit_blas_threads


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def timed(fn: Callable[[], object], repeats: int) -> np.ndarray:
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return np.asarray(out)


def reference(queries: np.ndarray, rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The plain way: samples as a row-major (samples, dim) matrix, one product, the same reduction."""
    out: np.ndarray = np.maximum.reduceat(queries @ rows.T, starts, axis=1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--blas-threads", type=int, nargs="+", default=[1, 2], help="BLAS thread counts to try")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    columns = ["BLAS threads", "samples", "persons", "batch", "build ms", "match ms p50", "p95", "ms/query"]
    columns += ["row layout ms p50", "ratio"]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for threads, n in [(t, n) for t in args.blas_threads for n in (1_000, 10_000, 100_000)]:
        if not limit_blas_threads(threads):
            print("threadpoolctl is not installed: BLAS threads left as they are", file=sys.stderr)
        persons = n // 5
        pids = np.repeat(np.arange(persons), 5)
        rows = unit_rows(rng, n, args.dim)
        names = [f"p{p}" for p in pids]
        neg_p = np.arange(0, persons, 20)
        negs = unit_rows(rng, len(neg_p), args.dim)
        t = time.perf_counter()
        m = Matcher("bench", pids, names, rows, negatives=(neg_p, negs), threshold=0.5, margin=0.05)
        build = (time.perf_counter() - t) * 1000.0
        starts = np.arange(0, n, 5)
        for batch in (1, 8, 32):
            queries = unit_rows(rng, batch, args.dim)
            ours = timed(functools.partial(m.match, queries, model="bench"), args.repeats)
            ref = timed(functools.partial(reference, queries, rows, starts), args.repeats)
            p50 = float(np.median(ours))
            print(
                f"| {threads} | {n:,} | {persons:,} | {batch} | {build:.0f} | {p50:.2f} "
                f"| {np.percentile(ours, 95):.2f} "
                f"| {p50 / batch:.2f} | {np.median(ref):.2f} | {np.median(ref) / p50:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
