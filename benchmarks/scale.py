"""Scale: peak memory and wall time of training + evaluating at N = 1e6, and a streamed evaluation at N = 1e7 (item 5).

    python -m grdr.benchmarks.scale                     # DR and AtomicGR at N=1e6; streamed top-k at N=1e7
    python -m grdr.benchmarks.scale --small             # N=1e5 and a streamed N=1e6, about a minute
    python -m grdr.benchmarks.scale --case dr --n-docs 1000000    # one case, in this process, prints JSON

Each case runs in its own subprocess so its peak resident memory (VmHWM) is its own:
- `dr`: synthetic corpus, DualEncoder with a free table trained by sampled softmax with row-sparse
  (lazy Adam) table updates, then exact top-k metrics and KL to the true posterior (evaluate_model);
- `atomic_gr`: the same corpus, AtomicGR trained by full softmax (its cost grows with N), evaluated alike;
- `stream`: exact top-k of M queries over N documents generated chunk by chunk inside the scan
  (`sim.retrieve.topk_streamed`): neither the N x D table nor an M x N score matrix exists.
Target: every N = 1e6 case under 8 GiB of peak memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from grdr.benchmarks.train_step import print_table, verdict, write_csv

GIB = 2**30


def _peak_rss_bytes():
    """This process's peak resident memory. VmHWM, since ru_maxrss survives exec: a child forked
    from a large parent would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB (macOS: bytes)


def run_train_eval(kind, n_docs, steps, n_train_queries=5_000, n_test_queries=200):
    from grdr.sim.corpus import CorpusSpec, make_corpus
    from grdr.sim.evaluate import evaluate_model
    from grdr.sim.models import ModelConfig
    from grdr.sim.train import TrainConfig, TrainData, model_at, train

    times = {}
    start = time.perf_counter()
    corpus = make_corpus(CorpusSpec(n_docs=n_docs, n_train_queries=n_train_queries, n_test_queries=n_test_queries,
                                    latent_rank=16))
    times["corpus_s"] = time.perf_counter() - start
    if kind == "dr":
        model_cfg = ModelConfig(kind="dr", dim=32, hidden=64, depth=1, doc_side="table")
        cfg = TrainConfig(objective="local", num_negatives=64, batch_size=128, steps=steps, sparse_table=True)
    else:
        model_cfg = ModelConfig(kind="atomic_gr", hidden=32, depth=1)
        cfg = TrainConfig(objective="global", batch_size=128, steps=steps)
    start = time.perf_counter()
    result = train(model_cfg, cfg, TrainData.from_corpus(corpus), [0])
    times["train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    metrics = evaluate_model(model_at(result, 0), corpus, k=100)
    times["eval_s"] = time.perf_counter() - start
    return {**times, "Success@1": round(metrics["Success@1"], 4), "kl_true": round(metrics["kl_true"], 4)}


def run_stream(n_docs, n_queries=1000, dim=64, k=100, check=False):
    from grdr.sim.retrieve import topk, topk_streamed

    query_key, key = jax.random.split(jax.random.key(0))
    queries_MxD = jax.random.normal(query_key, (n_queries, dim))

    def doc_chunk(start):  # documents are a pure function of their chunk: nothing of size N is stored
        return jax.random.uniform(jax.random.fold_in(key, start), (16_384, dim), minval=-1.0, maxval=1.0), None

    start = time.perf_counter()
    scores, idx = jax.block_until_ready(topk_streamed(queries_MxD, doc_chunk, n_docs, k, chunk_size=16_384))
    out = {"eval_s": time.perf_counter() - start, "top1_score_mean": round(float(scores[:, 0].mean()), 4)}
    if check:  # the same documents materialised, through the ordinary chunked top-k
        from grdr.benchmarks.topk import agreement

        docs = jnp.concatenate([doc_chunk(s)[0] for s in range(0, n_docs, 16_384)])[:n_docs]
        same, ties_only = agreement(np.asarray(queries_MxD), np.asarray(docs), np.asarray(idx),
                                    np.asarray(topk(queries_MxD, docs, k)[1]))
        out["ids_equal_to_topk"], out["differences_are_ties"] = round(same, 6), ties_only
    return out


def run_case(case, n_docs, steps):
    start = time.perf_counter()
    out = run_stream(n_docs, check=n_docs <= 1_000_000) if case == "stream" else run_train_eval(case, n_docs, steps)
    out = {k: round(v, 2) if k.endswith("_s") else v for k, v in out.items()}
    row = {"case": case, "n_docs": n_docs, "wall_s": round(time.perf_counter() - start, 2),
           "peak_rss_gib": round(_peak_rss_bytes() / GIB, 3)}
    stats = jax.devices()[0].memory_stats() if jax.default_backend() != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:  # on an accelerator, its own memory is the one that binds
        row["peak_device_gib"] = round(stats["peak_bytes_in_use"] / GIB, 3)
    return {**row, **out}


def in_subprocess(case, n_docs, steps):
    cmd = [sys.executable, "-m", "grdr.benchmarks.scale", "--case", case, "--n-docs", str(n_docs), "--steps", str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=("dr", "atomic_gr", "stream"), default=None,
                        help="run one case in this process and print its JSON (what the subprocesses do)")
    parser.add_argument("--n-docs", type=int, default=1_000_000, help="N of the training cases")
    parser.add_argument("--stream-n-docs", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--small", action="store_true", help="N=1e5, streamed N=1e6")
    parser.add_argument("--out", default="results/benchmarks/scale.csv")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.n_docs, args.steps)))
        return []
    if args.small:
        args.n_docs, args.stream_n_docs, args.steps = 100_000, 1_000_000, 100
    rows = []
    failed = []
    for case, n in (("dr", args.n_docs), ("atomic_gr", args.n_docs), ("stream", args.stream_n_docs)):
        try:  # a case that runs out of memory must not hide the others
            rows.append(in_subprocess(case, n, args.steps))
        except SystemExit as err:
            print(err, file=sys.stderr)
            failed.append({"benchmark": "5 scale", "case": f"{case} N={n}", "measure": "failed",
                           "value": str(err).strip().splitlines()[-1][:80], "target": "< 8 GiB", "met": "no"})
            continue
        print_table(rows[-1:])
    if not rows:
        return failed
    print_table(rows)
    write_csv(rows, args.out)
    summary = []
    for r in rows:
        ok = r["peak_rss_gib"] < 8 and r.get("differences_are_ties", True)
        device = f", device {r['peak_device_gib']}" if "peak_device_gib" in r else ""
        summary.append({"benchmark": "5 scale", "case": f"{r['case']} N={r['n_docs']}",
                        "measure": "peak RSS GiB (wall s)", "value": f"{r['peak_rss_gib']}{device} ({r['wall_s']})",
                        "target": "< 8 GiB", "met": verdict(ok, args.small)})
    return summary + failed


if __name__ == "__main__":
    main()
