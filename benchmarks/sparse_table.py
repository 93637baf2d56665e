"""Row-sparse table updates: the DR-local step with a free table, dense vs sparse, as N grows (item 4).

    python -m grdr.benchmarks.sparse_table              # N = 1e4 and 1e6
    python -m grdr.benchmarks.sparse_table --small      # N = 1e4 and 1e5
    python -m grdr.benchmarks.sparse_table --optimizer sgd

A sampled-softmax step touches B(K+1) rows of the document table, but a dense optimizer update
reads and writes all N rows (and Adam's two moments). With `TrainConfig(sparse_table=True)` only
the touched rows are updated (exact for SGD, lazy Adam for "adamw"), so the step time should
hardly grow with N. Target: sparse step time at N = 1e6 within 2x of N = 1e4.

Step time is measured inside `sim.train.train` itself: each compiled scan of `steps_per_call` = S
steps is timed as it runs (the first, which compiles, is dropped) and the median is divided by S,
so model initialisation, compilation and transfers are left out. What a call costs once (whatever
XLA does to its N-row inputs outside the scan) is spread over its S steps, exactly as in training;
`--steps` changes S.
"""
from __future__ import annotations

import argparse

import numpy as np

from grdr.benchmarks.train_step import print_table, verdict, write_csv
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig, TrainData, train


def step_seconds(n_docs, sparse, optimizer, steps, calls=6, batch=128, negatives=16, dim=32, n_queries=4096, feature_dim=8):
    """Median time of one step, from `calls` compiled scans of `steps` steps each (the first, which compiles, dropped)."""
    rng = np.random.default_rng(0)
    data = TrainData(rng.standard_normal((n_queries, feature_dim), dtype=np.float32),
                     rng.integers(0, n_docs, n_queries).astype(np.int32),
                     np.zeros((n_docs, feature_dim), np.float32))  # unused by a free table
    model_cfg = ModelConfig(kind="dr", dim=dim, hidden=dim, depth=1, doc_side="table")
    cfg = TrainConfig(objective="local", num_negatives=negatives, batch_size=batch, steps=calls * steps,
                      steps_per_call=steps, optimizer=optimizer, sparse_table=sparse, learning_rate=1e-3)
    seconds = train(model_cfg, cfg, data, [0]).call_seconds
    return float(np.median(seconds[1:])) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-docs", type=int, nargs=2, default=(10_000, 1_000_000), help="the small and the large N")
    parser.add_argument("--optimizer", default="adamw", choices=("adamw", "sgd"))
    parser.add_argument("--steps", type=int, default=100, help="S: steps per compiled scan (TrainConfig.steps_per_call)")
    parser.add_argument("--calls", type=int, default=4, help="compiled scans per case (the first is dropped)")
    parser.add_argument("--small", action="store_true", help="N = 1e4 and 1e5")
    parser.add_argument("--out", default="results/benchmarks/sparse_table.csv")
    args = parser.parse_args(argv)
    if args.small:
        args.n_docs = (10_000, 100_000)
    rows = []
    for n in args.n_docs:
        for sparse in (False, True):
            seconds = step_seconds(n, sparse, args.optimizer, args.steps, args.calls)
            rows.append({"n_docs": n, "update": "sparse" if sparse else "dense", "optimizer": args.optimizer,
                         "step_ms": round(1e3 * seconds, 3)})
            print_table(rows[-1:])
    ms = {(r["n_docs"], r["update"]): r["step_ms"] for r in rows}
    lo, hi = args.n_docs
    for r in rows:
        r[f"ratio_to_N={lo}"] = round(r["step_ms"] / ms[(lo, r["update"])], 2)
    print_table(rows)
    write_csv(rows, args.out)
    ratio = ms[(hi, "sparse")] / ms[(lo, "sparse")]
    return [{"benchmark": "4 sparse table", "case": f"DR-local table {args.optimizer}",
             "measure": f"sparse step time N={hi} / N={lo}", "value": round(ratio, 2), "target": "<= 2",
             "met": verdict(ratio <= 2, args.small)},
            {"benchmark": "4 sparse table", "case": f"DR-local table {args.optimizer}",
             "measure": f"dense / sparse step time at N={hi}", "value": round(ms[(hi, "dense")] / ms[(hi, "sparse")], 2),
             "target": "", "met": ""}]


if __name__ == "__main__":
    main()
