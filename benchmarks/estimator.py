"""How close the dry run's time estimate (experiments.calibration, summed by experiments.cost) comes to measured runs.

    python -m grdr.benchmarks.estimator --results /tmp/runs-a /tmp/runs-b     # records already stored
    python -m grdr.benchmarks.estimator --run smoke quick --work /tmp/est    # run the presets first (cold cache)
    python -m grdr.benchmarks.estimator --small                             # smoke presets only, into a temp folder

Each stored record holds its group's measured seconds (`seconds` x the group's size) and its flat
config, from which experiments.calibration rebuilds the group's features (steps, FLOPs per kind, evaluation,
the corpora it was the first in its process to build: records of one command line, in the order they
were written). The
script then prints, per group and per experiment (and preset folder):
- `shipped`: the estimate of the coefficients in experiments.calibration.CALIBRATION, which the dry run uses,
  and its ratio to the measured seconds;
- `held_out`: coefficients fitted (experiments.calibration.calibrate) to the groups of every other results
  folder only (another preset), so the ratio says how the model predicts runs it was not fitted to;
- `in_sample`: coefficients fitted to all groups (the values to ship, printed at the end).
The targets: every experiment's shipped estimate within 30% of its measured time. Groups are noisier
than experiments (a small group is mostly its fixed cost); their spread is printed too. Measured
times depend on the machine's load: say what else ran when quoting them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from grdr.benchmarks.train_step import print_table, verdict, write_csv
from grdr.experiments.calibration import (CALIBRATION, CORPUS_CACHE, Shape, calibrate, features, group_seconds,
                                          program_key)

EXPERIMENTS = ("drift_corpus", "model_scale", "capacity_dim")
TARGET = 0.30  # relative error of an experiment's total


def _corpus_key(config: dict) -> tuple:
    """The corpus a record trained on (its size, its fields and the seed it was drawn with)."""
    corpus = tuple(sorted((k, json.dumps(v)) for k, v in config.items() if k.startswith("corpus_")))
    return (config["n_docs"], config.get("seed"), corpus)


def measured_groups(results: Path, experiment: str) -> list[dict]:
    """The groups of one experiment's records under `results`, in the order they were written: each
    with its Shape, seeds, measured seconds and how many corpora it built first."""
    folder = Path(results) / experiment
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        config = rec.get("config", {})
        if "steps" not in config or "kind" not in config or not rec.get("compile"):
            continue
        records.append((path.stat().st_mtime, rec))
    found: dict = {}
    for mtime, rec in sorted(records, key=lambda r: r[0]):
        config = rec["config"]
        key = (json.dumps({k: v for k, v in config.items() if k not in ("seed", "corpus_seed_used")}, sort_keys=True),
               json.dumps(rec["compile"], sort_keys=True), round(rec["seconds"], 6))
        found.setdefault(key, []).append((mtime, rec))
    seen: dict[str, OrderedDict] = {}  # per process: records written by one command line share its corpus cache
    programs: dict[str, set] = {}  # and its compiled programs
    groups = []
    for members in sorted(found.values(), key=lambda m: m[0][0]):
        recs = [r for _, r in members]
        shape = Shape.of_record(recs[0]["config"])
        compiled = programs.setdefault(recs[0].get("command", ""), set())
        key = program_key(shape, len(recs))
        fresh, _ = key not in compiled, compiled.add(key)
        new = 0
        for r in recs:
            cache = seen.setdefault(r.get("command", ""), OrderedDict())
            corpus = _corpus_key(r["config"])
            if corpus in cache:
                cache.move_to_end(corpus)
            else:
                new += 1
                cache[corpus] = True
                if len(cache) > CORPUS_CACHE:
                    cache.popitem(last=False)
        first = recs[0]["config"]
        groups.append({"experiment": experiment, "results": str(results), "model": first["model"],
                       "n_docs": int(first["n_docs"]), "steps": int(first["steps"]), "seeds": len(recs),
                       "new_corpora": new, "shape": shape, "new_program": fresh,
                       "measured": float(sum(r["seconds"] for r in recs)),
                       "compile_s": float(recs[0]["compile"].get("seconds", 0.0)),
                       "cache_hits": int(recs[0]["compile"].get("cache_hits", 0))})
    return groups


def _estimate(g: dict, cal) -> float:
    return group_seconds(g["shape"], g["seeds"], g["new_corpora"], g["experiment"], cal, new_program=g["new_program"])


def _rows_for(groups):
    return [(features(g["shape"], g["seeds"], g["new_corpora"], g["experiment"], g["new_program"]), g["measured"])
            for g in groups]


def fit(groups, source: str = ""):
    """experiments.calibration.calibrate on these groups: each group's measured compiling is taken out of its
    seconds, and the per-group cost is the mean compiling of the groups that found nothing in the
    persistent cache and were the first of their shapes in their process (the dry run estimates a cold
    run)."""
    cold = ([g["compile_s"] for g in groups if g["cache_hits"] == 0 and g["new_program"]]
            or [g["compile_s"] for g in groups])
    return calibrate(_rows_for(groups), source=source, compile_seconds=[g["compile_s"] for g in groups],
                     group_seconds=float(np.mean(cold)))


def compare(groups: list[dict]) -> tuple[list[dict], list[dict], object]:
    """Per-group and per-(experiment, folder) rows of measured and estimated seconds, and the
    coefficients fitted to all groups."""
    fitted = fit(groups, source="fitted to every group measured")
    held = {}
    for folder in {g["results"] for g in groups}:
        others = [g for g in groups if g["results"] != folder]
        held[folder] = fit(others) if len(others) >= 8 else None
    group_rows = []
    for g in groups:
        row = {k: g[k] for k in ("experiment", "model", "n_docs", "steps", "seeds", "new_corpora")}
        row.update(measured_s=round(g["measured"], 2), shipped_s=round(_estimate(g, CALIBRATION), 2),
                   in_sample_s=round(_estimate(g, fitted), 2),
                   held_out_s=round(_estimate(g, held[g["results"]]), 2) if held[g["results"]] else "",
                   results=g["results"])
        row["shipped/measured"] = round(row["shipped_s"] / max(g["measured"], 1e-9), 3)
        group_rows.append(row)
    totals = []
    for key in dict.fromkeys((g["experiment"], g["results"]) for g in groups):
        part = [r for r in group_rows if (r["experiment"], r["results"]) == key]
        measured = sum(r["measured_s"] for r in part)
        row = {"experiment": key[0], "results": key[1], "groups": len(part), "measured_s": round(measured, 1)}
        for col in ("shipped_s", "held_out_s", "in_sample_s"):
            if all(r[col] != "" for r in part):
                est = sum(r[col] for r in part)
                row[col] = round(est, 1)
                row[col[:-2] + "/measured"] = round(est / measured, 3)
        ratios = np.array([r["shipped/measured"] for r in part])
        row["group ratio p10-p90"] = f"{np.percentile(ratios, 10):.2f}-{np.percentile(ratios, 90):.2f}"
        row["within 30%"] = verdict(abs(row.get("shipped/measured", np.inf) - 1) <= TARGET, False)
        totals.append(row)
    return group_rows, totals, fitted


def run_presets(presets: list[str], experiments: list[str], work: Path) -> list[Path]:
    """Run each preset of each experiment in a fresh subprocess with an empty compilation cache, as the
    calibration assumes; one results folder per preset."""
    folders = []
    for preset in presets:
        out = work / preset
        env = {**os.environ, "GRDR_COMPILE_CACHE": str(work / f"xla-{preset}")}
        for name in experiments:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "grdr.cli", "run", name, "--preset", preset, "--out",
                                   str(out), "--no-progress"], env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"grdr run {name} --preset {preset} failed:\n{proc.stderr[-3000:]}")
            print(f"{name} --preset {preset}: {time.perf_counter() - start:.1f} s wall", flush=True)
        folders.append(out)
    return folders


def _coefficients(cal) -> str:
    rates = ", ".join(f"{k} {1 / v / 1e0:,.1f}" if v > 0 else f"{k} -" for k, v in cal.flop)
    measure = ", ".join(f"{k} {v:.3g}" for k, v in cal.measure) or "none"
    return (f"per group {cal.group:.2f} s, per step {cal.step * 1e3:.3f} ms, GFLOP/s by kind: {rates}; "
            f"evaluation {1 / cal.eval if cal.eval else float('inf'):,.2f} GFLOP/s; per new corpus {cal.corpus:.3g} s "
            f"per G(docs x (training queries x rank + test queries x draws)); per-corpus measures {measure} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="run the smoke presets only, into a temporary folder")
    parser.add_argument("--results", nargs="*", type=Path, default=[], help="results folders of measured runs")
    parser.add_argument("--run", nargs="*", default=[], help="presets to run first (into --work)")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS))
    parser.add_argument("--work", type=Path, default=None, help="where --run writes (default: a temporary folder)")
    parser.add_argument("--out", default="results/benchmarks/estimator.csv")
    args = parser.parse_args(argv)
    presets = ["smoke"] if args.small and not args.run else args.run
    folders = list(args.results)
    if presets:
        work = args.work or Path(tempfile.mkdtemp(prefix="grdr-estimator-"))
        print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
        folders += run_presets(presets, args.experiments, work)
        print(f"load after: {os.getloadavg()[0]:.2f}", flush=True)
    groups = [g for folder in folders for name in args.experiments for g in measured_groups(folder, name)]
    if not groups:
        raise SystemExit("no measured groups: give --results folders with records, or --run presets")
    group_rows, totals, fitted = compare(groups)
    print_table(totals)
    write_csv(group_rows, args.out)
    write_csv(totals, str(Path(args.out).with_name(Path(args.out).stem + "_totals.csv")))
    print(f"\nshipped coefficients ({CALIBRATION.source}):\n  {_coefficients(CALIBRATION)}")
    print(f"fitted to these {len(groups)} groups:\n  {_coefficients(fitted)}")
    return [{"benchmark": "estimator", "case": f"{r['experiment']} ({Path(r['results']).name})",
             "measure": "dry-run estimate / measured seconds", "value": r.get("shipped/measured", ""),
             "target": f"within {TARGET:.0%}", "met": r["within 30%"] + (" (--small)" if args.small else "")}
            for r in totals]


if __name__ == "__main__":
    main()
