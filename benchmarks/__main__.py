"""Every benchmark, one combined table: `python -m grdr.benchmarks [--small] [--only NAME ...]`.

Runs train_step (items 1, 2), topk (item 3), sparse_table (item 4), scale (item 5), sweep
(item 6), maxsim_topk (MaxSim against the dot product) and estimator (the dry run's time estimate
against the smoke and quick presets run cold) in turn, each writing its own CSV
under --out-dir, then prints one row per ratio with its target and whether it was met, and
writes that table as <out-dir>/summary.csv. With --small every script runs at its quick-check
sizes (targets are set for the full sizes).
"""
from __future__ import annotations

import argparse
import csv
import os
import traceback

from grdr.benchmarks import estimator, maxsim_topk, scale, sparse_table, sweep, train_step
from grdr.benchmarks.train_step import print_table, verdict, write_csv

NAMES = ("train_step", "topk", "sparse_table", "scale", "sweep", "maxsim_topk", "estimator")


def _topk(argv, small):
    from grdr.benchmarks import topk

    out = argv[argv.index("--out") + 1]
    topk.main(argv)
    with open(out) as handle:
        rows = {r["method"]: r for r in csv.DictReader(handle)}
    faiss_row = next((r for name, r in rows.items() if name.startswith("faiss")), None)
    if faiss_row is None:
        return [{"benchmark": "3 exact top-k vs faiss", "case": "", "measure": "grdr / faiss seconds",
                 "value": "faiss not installed", "target": "<= 1.5", "met": "no"}]
    ratio = float(rows["grdr topk"]["seconds"]) / float(faiss_row["seconds"])
    return [{"benchmark": "3 exact top-k vs faiss", "case": f"N={faiss_row['n_docs']} D={faiss_row['dim']} "
             f"M={faiss_row['n_queries']} k={faiss_row['k']}", "measure": "grdr / faiss seconds",
             "value": round(ratio, 2), "target": "<= 1.5", "met": verdict(ratio <= 1.5, small)}]


def run_all(plan, out_dir, small=False):
    """Run each benchmark of `plan` (name -> extra argv), print and write the combined table."""
    runners = {"train_step": train_step.main, "sparse_table": sparse_table.main, "scale": scale.main, "sweep": sweep.main,
               "maxsim_topk": maxsim_topk.main,
               "estimator": lambda argv: estimator.main(argv if "--small" in argv else argv + ["--run", "smoke", "quick"])}
    summary = []
    for name, extra in plan.items():
        print(f"\n=== {name} ===", flush=True)
        script_argv = ["--out", os.path.join(out_dir, f"{name}.csv")] + (["--small"] if small else []) + list(extra)
        try:
            summary += _topk(script_argv, small) if name == "topk" else runners[name](script_argv)
        except (SystemExit, Exception) as err:  # one failing benchmark must not hide the others
            traceback.print_exc()
            summary.append({"benchmark": name, "case": "", "measure": "failed", "value": str(err)[:80],
                            "target": "", "met": "no"})
    print("\n=== summary" + (" (--small sizes: targets are for the full sizes)" if small else "") + " ===")
    print_table(summary)
    write_csv(summary, os.path.join(out_dir, "summary.csv"))
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="every script at its quick-check sizes")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--out-dir", default="results/benchmarks")
    args = parser.parse_args(argv)
    run_all({name: [] for name in args.only}, args.out_dir, args.small)


if __name__ == "__main__":
    main()
