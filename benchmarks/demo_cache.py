"""Compiling: how much of `grdr demo` is XLA compilation, and what JAX's persistent compilation
cache saves.

    python -m grdr.benchmarks.demo_cache                          # grdr demo --preset quick, cold then warm
    python -m grdr.benchmarks.demo_cache --preset smoke --experiments critical_n

Each pass runs `grdr demo` (or `grdr run` for each named experiment) in a fresh subprocess, as a
user runs it, into a new results folder, with GRDR_COMPILE_CACHE pointing at one new cache folder:
the cold pass starts with it empty, the warm pass finds what the cold pass compiled. Wall time is
measured around the subprocess; compile counts and seconds come from the records
(experiments.compile_stats: XLA compilations of each group of points, from jax.monitoring), so
the fraction compiling counts every program the runs compiled, evaluation included. It then reads
critical_n's compilations per searched d from its records.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grdr.benchmarks.train_step import print_table, verdict, write_csv


def run_pass(label: str, preset: str, experiments: list[str] | None, cache: Path, out: Path) -> dict:
    env = {**os.environ, "GRDR_COMPILE_CACHE": str(cache)}
    commands = ([["demo", "--out", str(out), "--preset", preset, "--no-progress"]] if not experiments else
                [["run", name, "--preset", preset, "--out", str(out), "--no-progress"] for name in experiments])
    start = time.perf_counter()
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "grdr.cli", *args], env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"grdr {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    wall = time.perf_counter() - start
    return {"pass": label, "seconds": round(wall, 1), **compiled(out)}


def compiled(out: Path) -> dict:
    """Compilations summed over every record of every experiment under out (each group's once)."""
    from grdr.experiments.sweep import store

    count = secs = hits = 0.0
    per_experiment = {}
    for name in store.experiments_in(out):
        df = store.load(out, name)
        if "compile_count" not in df:
            continue
        df = df[df["compile_count"].notna()]
        share = 1.0 / df["compile_group_size"]
        c, s, h = (df["compile_count"] * share).sum(), (df["compile_seconds"] * share).sum(), \
            (df["compile_cache_hits"] * share).sum()
        per_experiment[name] = f"{c:.0f} / {s:.0f} s / {h:.0f}"
        count, secs, hits = count + c, secs + s, hits + h
    return {"compiles": int(round(count)), "compile_seconds": round(secs, 1), "cache_hits": int(round(hits)),
            "per_experiment (compiles / s / cache hits)": "; ".join(f"{k}: {v}" for k, v in per_experiment.items())}


def critical_n_compiles(out: Path) -> list[dict]:
    from grdr.experiments.sweep import store

    if "critical_n" not in store.experiments_in(out):
        return []
    df = store.load(out, "critical_n")
    crit = df[(df["record"] == "critical") & df.get("compile_count", df["record"]).notna()]
    return [{"model": r["model"], "d": int(r["dim"]), "critical_n": int(r["critical_n"]), "probes": int(r["probes"]),
             "compiles": int(r["compile_count"]), "compile_s": round(float(r["compile_seconds"]), 1),
             "seconds": round(float(r["seconds"]), 1)} for _, r in crit.sort_values(["model", "dim"]).iterrows()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=("smoke", "quick", "paper"))
    parser.add_argument("--experiments", nargs="*", default=None, help="run these (grdr run) instead of grdr demo")
    parser.add_argument("--out", default="results/benchmarks/demo_cache.csv")
    parser.add_argument("--keep", default=None, help="keep the cache and both results folders here (new folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(args.keep or tmp)
        if args.keep and tmp.exists():
            raise SystemExit(f"--keep {tmp}: exists; expected a new folder")
        cold = run_pass("cold (empty cache)", args.preset, args.experiments, tmp / "cache", tmp / "cold")
        warm = run_pass("warm (same cache, new --out)", args.preset, args.experiments, tmp / "cache", tmp / "warm")
        per_d = critical_n_compiles(tmp / "cold")
    for row in (cold, warm):
        row["compiling_fraction"] = round(row["compile_seconds"] / row["seconds"], 3)
    rows = [cold, warm]
    print_table(rows)
    if per_d:
        print_table(per_d)
    write_csv(rows, args.out)
    ratio = warm["seconds"] / cold["seconds"]
    what = "grdr demo" if not args.experiments else f"grdr run {' '.join(args.experiments)}"
    out = [{"benchmark": "compile cache", "case": f"{what} --preset {args.preset}", "measure": "warm / cold wall time",
            "value": round(ratio, 3), "target": "<= 0.40", "met": verdict(ratio <= 0.40, False)}]
    if per_d:
        worst = max(r["compiles"] for r in per_d)
        out.append({"benchmark": "compile cache", "case": "critical_n, cold", "measure": "compilations per d (max)",
                    "value": worst, "target": "<= 1", "met": verdict(worst <= 1, False)})
    print_table(out)
    return out


if __name__ == "__main__":
    main()
