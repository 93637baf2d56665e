"""Sweep throughput: runs per minute of drift_corpus and compilations per sweep (item 6), and `grdr demo`'s time.

    python -m grdr.benchmarks.sweep                     # drift_corpus --preset quick, then grdr demo --preset quick
    python -m grdr.benchmarks.sweep --small             # --preset smoke, no demo
    python -m grdr.benchmarks.sweep --preset smoke --demo

The sweep runs twice in this process through `experiments.sweep.runner.run_experiment` (into a
temporary directory, so nothing stored is reused): a cold pass, which compiles one training
program per shape, and a warm pass over the same grid with fresh seeds, which must compile
nothing (seeds of a point train together under vmap; sweep points of the same shapes share a
compiled program). `sim.train.compile_count()` gives the compilations. `grdr demo` is timed in a
fresh subprocess, as a user runs it.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time

from grdr.benchmarks.train_step import print_table, verdict, write_csv
from grdr.experiments import drift_corpus
from grdr.experiments.sweep.runner import run_experiment
from grdr.sim.train import compile_count


def sweep_pass(cfg, out, label):
    before = compile_count()
    summary = run_experiment(drift_corpus, cfg, out, progress=False)
    return {"pass": label, "runs": summary["ran"], "seconds": round(summary["seconds"], 2),
            "runs_per_minute": round(60 * summary["ran"] / summary["seconds"], 2),
            "compilations": compile_count() - before, "sweep_points": summary["ran"] // len(cfg.seeds)}


def time_demo(preset):
    with tempfile.TemporaryDirectory() as out:
        code = f"from grdr.cli import cmd_demo; from pathlib import Path; cmd_demo(Path({out!r}), {preset!r}, False)"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"grdr demo failed:\n{proc.stderr[-3000:]}")
        return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=sorted(drift_corpus.PRESETS))
    parser.add_argument("--demo", action=argparse.BooleanOptionalAction, default=None,
                        help="also time `grdr demo` at the preset (default: on unless --small)")
    parser.add_argument("--small", action="store_true", help="--preset smoke and no demo")
    parser.add_argument("--out", default="results/benchmarks/sweep.csv")
    args = parser.parse_args(argv)
    if args.small:
        args.preset = "smoke"
    demo = (not args.small) if args.demo is None else args.demo
    cfg = drift_corpus.PRESETS[args.preset]
    fresh = dataclasses.replace(cfg, seeds=tuple(s + 1000 for s in cfg.seeds))
    with tempfile.TemporaryDirectory() as out:
        rows = [sweep_pass(cfg, out, "cold"), sweep_pass(fresh, out, "warm (same shapes, new seeds)")]
    for r in rows:
        r["preset"] = args.preset
    if demo:
        rows.append({"pass": f"grdr demo --preset {args.preset}", "seconds": round(time_demo(args.preset), 1),
                     "preset": args.preset})
    print_table(rows)
    write_csv(rows, args.out)
    cold, warm = rows[0], rows[1]
    out = [{"benchmark": "6 sweep", "case": f"drift_corpus {args.preset}", "measure": "runs/min cold, warm",
            "value": f"{cold['runs_per_minute']}, {warm['runs_per_minute']}", "target": "", "met": ""},
           {"benchmark": "6 sweep", "case": f"drift_corpus {args.preset}", "measure": "compilations cold, warm",
            "value": f"{cold['compilations']}, {warm['compilations']}", "target": "warm = 0",
            "met": verdict(warm["compilations"] == 0, False)}]
    if demo:
        out.append({"benchmark": "6 sweep", "case": f"grdr demo --preset {args.preset}", "measure": "seconds",
                    "value": rows[2]["seconds"], "target": "", "met": ""})
    return out


if __name__ == "__main__":
    main()
