"""Exact top-k under multi-vector late interaction (MaxSim) against the plain dot product, N = 1e6.

    python -m grdr.benchmarks.maxsim_topk               # N=1e6 D=64 M=200 k=100, m = m' in 1 2 4 8: minutes
    python -m grdr.benchmarks.maxsim_topk --small       # N=2e4, D=32, M=50, m = m' in 1 2 4: seconds
    python -m grdr.benchmarks.maxsim_topk --vectors 1 4 --repeats 3 --out results/benchmarks/maxsim_topk.csv

MaxSim (ColBERT): s(q, d) = sum_i max_j <q_i, d_j> over the m query vectors q_i and the m' document
vectors d_j, all of dimension D. Both scorers run through the project's own code paths on their
representations (Gaussian, float32): `MaxSim(...).topk` (`sim.retrieve.topk_scored`: documents
scanned in chunks of `MaxSim._chunk(M)`, at most ~4M query-document vector pairs at once) and
`Scorer(...).topk` (`sim.retrieve.topk`, the two-stage chunked top-k of benchmarks/topk.py) over
an N x D table. For each m, in this one process:

- correctness first: on a subsample of queries, both top-k lists are compared with a float64 numpy
  brute force over all N documents: the k best float64 scores must equal the float64 rescoring of
  the returned ids (so the ids are the true top k up to ties and float32 rounding) and the returned
  scores must match that rescoring. If not, the script stops before timing anything;
- compile time apart (`compile_s`: an ahead-of-time compile of the same MaxSim program; jit does not
  reuse it, so `first_call_s`, the warm-up call, includes a compilation too);
- `--repeats` calls of the dot product and of MaxSim, alternating, so that other jobs on the
  machine slow both alike; medians of wall time (and of process CPU time) are kept, and the
  ratio MaxSim / dot is the ratio of the medians. It is printed beside the FLOP ratio m m' (MaxSim
  costs 2 M N m m' D FLOPs, the dot product 2 M N D): ratio / (m m') near 1 means the cost is the
  arithmetic, well above 1 overhead;
- memory: the document array (N m' D float32), what a dense M x N x m x m' array of vector
  products would take, XLA's planned scratch memory of the compiled scan (`memory_analysis`), and
  the measured growth of peak resident memory over the RSS before a call (VmHWM, reset through
  /proc/self/clear_refs), for the first call (compilation included) and for a warm one.
The 1-minute load average (`os.getloadavg()`) is printed before and after the timings.

D = 64 keeps the largest document array (m' = 8) at 2 GiB (1.9 GiB): with the copy made when it
moves to JAX and the scan's own memory the process peaked at 4.5 GiB of the machine's 24 GiB.

Measured on the 2-core development machine, 2026-12-02, no other jobs (benchmarks/README.md,
"Measured"): N=1e6 D=64 M=200 k=100, MaxSim / dot wall-time ratio 2.1 at m=1 (FLOP ratio 1), 6.5 at
m=2 (4), 15.9 at m=4 (16), 41 at m=8 (64); MaxSim at m=8 9.6 s, 21 queries/s (dot 0.23 s). XLA's
scratch for the scan 1.3-44 MiB, where a dense M x N x m x m' array would take 0.75-47.7 GiB.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from grdr.benchmarks.train_step import matmul_peak_gflops, print_table, verdict, write_csv
from grdr.sim.retrieve import topk_scored
from grdr.sim.scorers import MaxSim, Scorer

MIB, GIB = 2**20, 2**30


# ----------------------------------------------------------------------------- memory


def _status_bytes(field):
    """A field of /proc/self/status (VmRSS, VmHWM) in bytes, or None where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_growth(fn):
    """(bytes by which peak RSS rose above the RSS before `fn()`, or None; fn's result).

    A lower bound on what the call allocates: pages an earlier call freed but the allocator kept
    are reused without raising the RSS (warm calls at small sizes read 0)."""
    before = _status_bytes("VmRSS")
    can_reset = _reset_peak_rss()
    result = fn()
    peak = _status_bytes("VmHWM")
    if before is None or peak is None or not can_reset:
        return None, result
    return max(0, peak - before), result


# ----------------------------------------------------------------------------- brute force


def maxsim64(queries_Sxmxd, docs_SxKxnxd):
    """MaxSim in float64 of each query against its own K documents: S x K."""
    products = np.einsum("sid,skjd->skij", queries_Sxmxd.astype(np.float64), docs_SxKxnxd.astype(np.float64))
    return products.max(axis=3).sum(axis=2)


def brute_force_topk(queries_Sxmxd, docs_Nxnxd, k, chunk=16_384):
    """The k best float64 MaxSim scores of every query over all N documents and their ids, best first.

    Documents go through in chunks, one float64 matmul each, so memory is S m x chunk m' scores."""
    num_queries, m, dim = queries_Sxmxd.shape
    q_SmxD = queries_Sxmxd.reshape(num_queries * m, dim).astype(np.float64)
    scores_SxN = np.empty((num_queries, docs_Nxnxd.shape[0]))
    for lo in range(0, docs_Nxnxd.shape[0], chunk):
        docs_C = docs_Nxnxd[lo:lo + chunk].astype(np.float64)
        count, n_vec = docs_C.shape[:2]
        products = (q_SmxD @ docs_C.reshape(count * n_vec, dim).T).reshape(num_queries, m, count, n_vec)
        scores_SxN[:, lo:lo + count] = products.max(axis=3).sum(axis=1)
    part_SxK = np.argpartition(-scores_SxN, k - 1, axis=1)[:, :k]
    order_SxK = np.argsort(-np.take_along_axis(scores_SxN, part_SxK, axis=1), axis=1, kind="stable")
    idx_SxK = np.take_along_axis(part_SxK, order_SxK, axis=1)
    return np.take_along_axis(scores_SxN, idx_SxK, axis=1), idx_SxK


def check_topk(queries_Sxmxd, docs_Nxnxd, scores_SxK, idx_SxK, rtol=1e-5):
    """Whether returned top-k lists are exact: a dict with
    - `ids_valid`: k distinct ids per query, all in range, scores best first;
    - `scores_match`: the returned float32 scores equal the float64 MaxSim of the returned ids;
    - `same_topk`: the float64 scores of the returned ids (sorted) equal the k best float64 scores of
      a brute force over all documents, i.e. the ids are the true top k up to ties and rounding;
    - `ok`: all three. Tolerances are `rtol` times the largest |score|.
    Also `id_overlap`: the fraction of returned ids among the brute force's (below 1 only by ties)."""
    num_docs, k = docs_Nxnxd.shape[0], idx_SxK.shape[1]
    idx_SxK = np.asarray(idx_SxK, np.int64)
    scores_SxK = np.asarray(scores_SxK, np.float64)
    in_range = bool(np.all((idx_SxK >= 0) & (idx_SxK < num_docs)))
    distinct = all(len(set(row)) == k for row in idx_SxK.tolist())
    ordered = bool(np.all(np.diff(scores_SxK, axis=1) <= 0))
    out = {"ids_valid": in_range and distinct and ordered, "scores_match": False, "same_topk": False}
    overlap = 0.0
    if in_range:
        rescored_SxK = maxsim64(queries_Sxmxd, docs_Nxnxd[idx_SxK])
        best_SxK, best_idx_SxK = brute_force_topk(queries_Sxmxd, docs_Nxnxd, k)
        overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(idx_SxK.tolist(), best_idx_SxK.tolist())])
        tol = rtol * (np.abs(best_SxK).max() + 1e-30)
        out["scores_match"] = bool(np.all(np.abs(rescored_SxK - scores_SxK) <= tol))
        out["same_topk"] = bool(np.all(np.abs(-np.sort(-rescored_SxK, axis=1) - best_SxK) <= tol))
    out["ok"] = all(out.values())
    out["id_overlap"] = round(float(overlap), 5)
    return out


# ----------------------------------------------------------------------------- timing


def timed(fn):
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def gaussian(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)  # float32 straight away: no float64 copy


def measure(m, args, rng, dot_fn, dot_check):
    """One row: MaxSim with m = m' vectors against the dot product, timed alternately."""
    n, dim, num_q, k = args.n_docs, args.dim, args.n_queries, args.k
    scorer = MaxSim(dim=dim, vectors=m, doc_vectors=m)
    queries_np = gaussian(rng, (num_q, m, dim))
    docs_dev = jnp.asarray(gaussian(rng, (n, m, dim)))  # the numpy original is freed at once
    queries_dev = jnp.asarray(queries_np)
    docs_np = np.asarray(docs_dev)  # a read-only view on the CPU backend, for the brute force
    chunk = max(k, args.chunk_size or scorer._chunk(num_q))  # as MaxSim.topk and topk_scored set it

    def maxsim_fn():
        return jax.block_until_ready(scorer.topk(queries_dev, docs_dev, k, chunk_size=args.chunk_size))

    start = time.perf_counter()
    compiled = topk_scored.lower(queries_dev, docs_dev, k, scorer, chunk_size=chunk).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    xla_temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None
    del compiled

    start = time.perf_counter()
    rss_first, (scores, idx) = peak_rss_growth(maxsim_fn)  # compiles again (the jit cache is its own) and runs
    first_call_s = time.perf_counter() - start

    sub = np.linspace(0, num_q - 1, min(args.check_queries, num_q)).astype(int)
    check = check_topk(queries_np[sub], docs_np, np.asarray(scores)[sub], np.asarray(idx)[sub])
    if not check["ok"] or not dot_check["ok"]:
        raise SystemExit(f"m={m}: top-k disagrees with the float64 brute force (MaxSim {check}, dot {dot_check}): "
                         "no timings printed")

    rss_warm, _ = peak_rss_growth(maxsim_fn)
    load_before = os.getloadavg()[0]
    runs = {"dot": [], "maxsim": []}
    for _ in range(args.repeats):  # alternating, so that a busy machine slows both alike
        runs["dot"].append(timed(dot_fn))
        runs["maxsim"].append(timed(maxsim_fn))
    load_after = os.getloadavg()[0]

    def median(name, which):
        return statistics.median(run[which] for run in runs[name])

    maxsim_s, dot_s = median("maxsim", 0), median("dot", 0)
    flop_ratio = m * m
    maxsim_flop = 2.0 * num_q * n * m * m * dim
    row = {
        "m": m, "m_doc": m, "n_docs": n, "dim": dim, "n_queries": num_q, "k": k, "chunk": chunk,
        "compile_s": round(compile_s, 3), "first_call_s": round(first_call_s, 3),
        "maxsim_s": round(maxsim_s, 4), "maxsim_min_s": round(min(w for w, _ in runs["maxsim"]), 4),
        "maxsim_cpu_s": round(median("maxsim", 1), 4), "maxsim_qps": round(num_q / maxsim_s, 1),
        "dot_s": round(dot_s, 4), "dot_cpu_s": round(median("dot", 1), 4), "dot_qps": round(num_q / dot_s, 1),
        "ratio": round(maxsim_s / dot_s, 2), "cpu_ratio": round(median("maxsim", 1) / median("dot", 1), 2),
        "flop_ratio": flop_ratio, "ratio_per_flop": round(maxsim_s / dot_s / flop_ratio, 3),
        "maxsim_gflops": round(maxsim_flop / maxsim_s / 1e9, 1),
        "dot_gflops": round(2.0 * num_q * n * dim / dot_s / 1e9, 1),
        "checked_queries": len(sub), "maxsim_exact": check["ok"], "maxsim_id_overlap": check["id_overlap"],
        "dot_exact": dot_check["ok"], "dot_id_overlap": dot_check["id_overlap"],
        "docs_gib": round(docs_np.nbytes / GIB, 3),
        "dense_products_gib": round(4.0 * num_q * n * m * m / GIB, 3),
        "xla_temp_mib": "" if xla_temp is None else round(xla_temp / MIB, 1),
        "rss_growth_first_call_mib": "" if rss_first is None else round(rss_first / MIB, 1),
        "rss_growth_warm_call_mib": "" if rss_warm is None else round(rss_warm / MIB, 1),
        "load_1min": round((load_before + load_after) / 2, 2), "cpus": os.cpu_count(),
    }
    del docs_np, docs_dev
    return row


FULL = dict(n_docs=1_000_000, dim=64, n_queries=200, vectors=[1, 2, 4, 8], repeats=5, check_queries=16)
SMALL = dict(n_docs=20_000, dim=32, n_queries=50, vectors=[1, 2, 4], repeats=3, check_queries=8)
TIME_COLUMNS = ("m", "chunk", "compile_s", "first_call_s", "dot_s", "maxsim_s", "dot_qps", "maxsim_qps", "ratio",
                "cpu_ratio", "flop_ratio", "ratio_per_flop", "dot_gflops", "maxsim_gflops", "load_1min")
MEMORY_COLUMNS = ("m", "docs_gib", "dense_products_gib", "xla_temp_mib", "rss_growth_first_call_mib",
                  "rss_growth_warm_call_mib", "checked_queries", "maxsim_exact", "maxsim_id_overlap", "dot_exact",
                  "dot_id_overlap")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-docs", type=int, default=None, help="N (default 1e6; --small 2e4)")
    parser.add_argument("--dim", type=int, default=None, help="D of every vector (default 64; --small 32)")
    parser.add_argument("--n-queries", type=int, default=None, help="M (default 200; --small 50)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--vectors", type=int, nargs="+", default=None,
                        help="m = m' values (default 1 2 4 8; --small 1 2 4)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls of each scorer (default 5; --small 3)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="documents per MaxSim chunk (default: MaxSim's own, ~4M vector pairs at once)")
    parser.add_argument("--check-queries", type=int, default=None,
                        help="queries checked against the brute force (default 16; --small 8)")
    parser.add_argument("--small", action="store_true", help="N=2e4 D=32 M=50, m in 1 2 4: seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/benchmarks/maxsim_topk.csv")
    args = parser.parse_args(argv)
    for name, value in (SMALL if args.small else FULL).items():  # sizes given on the command line win
        if getattr(args, name) is None:
            setattr(args, name, value)
    n, dim, num_q, k = args.n_docs, args.dim, args.n_queries, args.k
    rng = np.random.default_rng(args.seed)
    peak = matmul_peak_gflops()
    print(f"N={n} D={dim} M={num_q} k={k} m=m' in {args.vectors}; {os.cpu_count()} CPUs; "
          f"JAX float32 matmul peak {peak:.0f} GFLOP/s; load average {os.getloadavg()}", flush=True)

    # The dot product: one N x D table for every m, checked like MaxSim (as m = m' = 1).
    dot_q_np = gaussian(rng, (num_q, dim))
    dot_docs = jnp.asarray(gaussian(rng, (n, dim)))
    dot_q = jnp.asarray(dot_q_np)
    dot_scorer = Scorer(dim=dim)

    def dot_fn():
        return jax.block_until_ready(dot_scorer.topk(dot_q, dot_docs, k))

    start = time.perf_counter()
    dot_scores, dot_idx = dot_fn()
    print(f"dot: first call (compile + run) {time.perf_counter() - start:.2f} s", flush=True)
    sub = np.linspace(0, num_q - 1, min(args.check_queries, num_q)).astype(int)
    dot_check = check_topk(dot_q_np[sub, None, :], np.asarray(dot_docs)[:, None, :], np.asarray(dot_scores)[sub],
                           np.asarray(dot_idx)[sub])

    rows = []
    for m in args.vectors:
        rows.append(measure(m, args, rng, dot_fn, dot_check))
        print_table(rows[-1:], TIME_COLUMNS)
        print(flush=True)
    print(f"\nMaxSim vs dot product top-k, N={n} D={dim} M={num_q} k={k} (seconds: medians of {args.repeats}, "
          "alternating; ratio = MaxSim / dot, flop_ratio = m m')")
    print_table(rows, TIME_COLUMNS)
    print("\nmemory: document array, a dense M x N x m x m' float32 array, XLA scratch of the scan, "
          "peak RSS growth of a call")
    print_table(rows, MEMORY_COLUMNS)
    print(f"load average after the timings {os.getloadavg()} on {os.cpu_count()} CPUs (the benchmark adds "
          "about one per CPU; above that, other jobs share them)")
    print(f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB:.2f} GiB")
    write_csv(rows, args.out)
    summary = []
    for r in rows:  # target: the first call (its compilation included) grows memory by less than the
        growth = r["rss_growth_first_call_mib"]  # dense M x N x m x m' array the scan never builds
        summary.append({
            "benchmark": "MaxSim top-k vs dot", "case": f"m=m'={r['m']} N={n} D={dim} M={num_q} k={k}",
            "measure": "MaxSim/dot s (FLOP ratio); 1st-call RSS growth / dense",
            "value": f"{r['ratio']} ({r['flop_ratio']}); {growth} MiB / {r['dense_products_gib']} GiB",
            "target": "growth < dense array",
            "met": verdict(growth != "" and growth * MIB < r["dense_products_gib"] * GIB, args.small)})
    return summary


if __name__ == "__main__":
    main()
