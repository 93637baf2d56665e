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
import dataclasses
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
from grdr.experiments import work
from grdr.experiments.calibration import (CALIBRATION, CORPUS_CACHE, Shape, calibrate, features, group_seconds,
                                          program_key, real_train_seconds)

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
        trained = recs[0].get("train", {})  # padded to a larger shape's programs (experiments.cost.trained_shape)
        shape = Shape.of_record(recs[0]["config"]).padded(trained.get("pad_docs"), trained.get("pad_dim"),
                                                          trained.get("pad_hidden"))
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
        # the dry run adds model_scale's KL floors and oracles to their carrier's group (experiments.cost,
        # by experiments.work's model): so does the estimate here (for a DR carrier, the presets' own: a GR
        # record's dim is its H, not the floor's rank D), and the fit leaves that group out
        measures = work.measure_features([r["config"] for r in recs], int(first["dim"])) \
            if experiment in work.MEASURE_EXPERIMENTS and first["kind"] == "dr" else {}
        groups.append({"experiment": experiment, "results": str(results), "model": first["model"],
                       "measures_s": sum(v * work.WORK_CALIBRATION[k] for k, v in measures.items()),
                       "n_docs": int(first["n_docs"]), "steps": int(first["steps"]), "seeds": len(recs),
                       "new_corpora": new, "shape": shape, "new_program": fresh,
                       "measured": float(sum(r["seconds"] for r in recs)),
                       "compile_s": float(recs[0]["compile"].get("seconds", 0.0)),
                       "cache_hits": int(recs[0]["compile"].get("cache_hits", 0))})
    return groups


def _estimate(g: dict, cal) -> float:
    """The dry run's estimate of a measured group (experiments.cost.sweep_seconds: its training, evaluation and
    corpora by `cal`, and model_scale's per-corpus measures by experiments.work)."""
    trained = group_seconds(g["shape"], g["seeds"], g["new_corpora"], g["experiment"], cal, new_program=g["new_program"])
    return trained + g.get("measures_s", 0.0)


def _rows_for(groups):
    """(features, seconds) to fit the trained groups' coefficients to: the measures' estimated seconds taken out
    (they are experiments.work's to fit: `--results` with `--records`; `fit` leaves such groups out)."""
    return [(features(g["shape"], g["seeds"], g["new_corpora"], g["experiment"], g["new_program"]),
             max(g["measured"] - g.get("measures_s", 0.0), 1e-3)) for g in groups]


def fit(groups, source: str = ""):
    """experiments.calibration.calibrate on these groups: each group's measured compiling is taken out of its
    seconds, and the per-group cost is the mean compiling of the groups that found nothing in the
    persistent cache and were the first of their shapes in their process (the dry run estimates a cold
    run)."""
    # a group that carries model_scale's measures is left out: its training seconds are what remains after the
    # measures' estimate, which errs by more than the training takes (benchmarks/README.md, "Estimator")
    groups = [g for g in groups if not g.get("measures_s")] or groups
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


# --------------------------------------------------------------------------------------------------
# The work models of experiments.work: record experiments and model_scale's floors and oracles


def _records_by_id(folder: Path, experiment: str) -> dict[str, dict]:
    """The records under `folder` by run_id, each with its file's modification time (`mtime`)."""
    out = {}
    for path in sorted((Path(folder) / experiment).glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out[rec.get("run_id", path.stem)] = {**rec, "mtime": path.stat().st_mtime}
    return out


def probe_steps(folders) -> dict[str, float]:
    """The mean steps of the critical_n probes stored under `folders` at the protocol's budget (LIMIT's
    100,000 steps; the smoke preset's 2,000 cut its probes short), per kind: a search's time is linear in its
    probes' steps, so their mean, not their median (quick's SeqGR probes: median 5,759, mean 10,964)."""
    from grdr.experiments.critical_n import Config

    steps: dict[str, list] = {}
    for folder in folders:
        for rec in _records_by_id(folder, "critical_n").values():
            c = rec["config"]
            if c.get("record") == "probe" and c.get("max_steps") == Config().max_steps:
                steps.setdefault(c["kind"], []).append(rec["metrics"]["steps"])
    return {k: float(np.mean(v)) for k, v in steps.items()}


def _search_key(config: dict) -> tuple:
    return tuple(config.get(k) for k in ("model", "dim", "seed", "vectors", "doc_vectors"))


def _stored_probes(stored: dict) -> dict[tuple, list]:
    """critical_n's stored probe records (config, metrics) by their search (model, d, seed, m, m')."""
    out: dict[tuple, list] = {}
    for rec in stored.values():
        if rec["config"].get("record") == "probe":
            out.setdefault(_search_key(rec["config"]), []).append((rec["config"], rec["metrics"]))
    return out


def _sum(dicts) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + v
    return out


def work_groups(folder: Path, experiment: str, preset: str, cal) -> list[dict]:
    """Per group of the preset's sweep (in the runner's order), experiments.work's units of work and the
    seconds its stored records measured (groups with no stored record are left out)."""
    import importlib

    from grdr.experiments.sweep.runner import groups
    from grdr.experiments.sweep.store import run_id
    from grdr.experiments.work import probe_features, record_features

    module = importlib.import_module(f"grdr.experiments.{experiment}")
    cfg = module.PRESETS[preset]
    stored = _records_by_id(folder, experiment)
    compiled: set = set()
    rows = []
    probes_of = _stored_probes(stored) if experiment == "critical_n" else None
    for g in groups(module, cfg):
        recs = {id(pt): stored.get(run_id(experiment, pt.record())) for pt in g}
        g = [pt for pt in g if recs[id(pt)] is not None]  # the preset may have grown since (more seeds)
        if not g:
            continue
        features = record_features(experiment, cfg, g, compiled, cal, train_seconds=real_train_seconds)
        row = {"experiment": experiment, "results": str(folder), "features": features,
               "measured": float(sum(recs[id(pt)]["seconds"] for pt in g))}
        if probes_of is not None:  # fitted to the probes the searches made, at the steps they took; the
            # estimates (`features`) replay the search as the dry run does
            row["fit_features"] = _sum(probe_features(c["kind"], c["n_padded"], c, m["steps"])
                                       for pt in g for c, m in probes_of.get(_search_key(pt.record()), []))
        rows.append(row)
    return rows


def measure_work_groups(folder: Path, cal) -> list[dict]:
    """model_scale's groups under `folder`, in the order written: experiments.work's units of work of
    their floors and oracles, and the seconds those took (each record's evaluation seconds, less the
    median of its model's evaluations in groups that built no corpus)."""
    from grdr.experiments.work import measure_features

    by_group: dict[str, list] = {}
    for rec in _records_by_id(folder, "model_scale").values():
        if not rec.get("train"):
            continue
        c = rec["config"]
        key = json.dumps({k: v for k, v in c.items() if k not in ("seed", "corpus_seed_used", "oracle_widths")},
                         sort_keys=True)
        by_group.setdefault(key, []).append(rec)
    seen: set = set()
    plain: dict[str, list] = {}
    parts = []
    for recs in sorted(by_group.values(), key=lambda rs: min(r["mtime"] for r in rs)):
        new = sum(r["config"]["corpus_seed_used"] not in seen for r in recs)
        seen.update(r["config"]["corpus_seed_used"] for r in recs)
        parts.append((recs, new))
        if not new:
            plain.setdefault(recs[0]["config"]["model"], []).extend(r["train"]["eval_seconds"] for r in recs)
    rows = []
    for recs, new in parts:
        if new and recs[0]["config"]["kind"] == "dr":  # a GR record's dim is its H: DR's D is the floor's rank
            features = measure_features([r["config"] for r in recs], recs[0]["config"]["dim"], cal)
            if not features:  # a group that does not carry its corpora's measures (model_scale.carrier)
                continue
            base = float(np.median(plain.get(recs[0]["config"]["model"], [0.0])))
            rows.append({"experiment": "model_scale (floors, oracles)", "results": str(folder), "features": features,
                         "measured": sum(max(r["train"]["eval_seconds"] - base, 0.0) for r in recs)})
    return rows


def time_measures(preset: str) -> list[dict]:
    """model_scale's KL floor and each oracle width, timed one by one on the first corpus of a preset
    (each compiles its own programs first, as in a cold run): one row each, with what it did."""
    from grdr.experiments.pipeline import corpus_for, docids_for
    from grdr.sim.logprobs import low_rank_kl, seq_gr_oracle_kl, true_log_probs

    from grdr.experiments import model_scale

    cfg = model_scale.PRESETS[preset]
    point = next(iter(model_scale.sweep(cfg)))
    spec = point.corpus_spec()
    target, docids = true_log_probs(corpus_for(spec)), docids_for(cfg.docids, spec)
    base = {"preset": preset, "corpus_n_test_queries": target.shape[0], "n_docs": target.shape[1],
            "dim": cfg.model.dim, "docid_vocab": docids.vocab}
    start = time.perf_counter()
    floor = low_rank_kl(target, cfg.model.dim, restarts=cfg.floor_restarts, max_iter=cfg.floor_max_iter)
    rows = [{**base, "what": "floor", "floor_restarts": cfg.floor_restarts, "floor_max_iter": cfg.floor_max_iter,
             "converged": floor.converged, "seconds": time.perf_counter() - start}]
    for width in cfg.oracle_widths:
        start = time.perf_counter()
        fit = seq_gr_oracle_kl(target, docids, width, seed=spec.seed % 2**31)
        rows.append({**base, "what": "oracle", "width": width, "steps": fit.steps, "converged": fit.converged,
                     "seconds": time.perf_counter() - start})
    return rows


# critical_n probes to time (kind, d, n, padded n): quick's shapes and the paper preset's larger d, where the
# records of the smoke and quick presets (d <= 16 for DR, <= 3 for SeqGR) cannot tell a step's fixed cost from
# its multiply-adds
PROBE_CASES = (("dr", 4, 9, 16), ("dr", 16, 81, 88), ("dr", 32, 296, 300), ("maxsim", 4, 21, 24),
               ("maxsim", 8, 60, 64), ("seq_gr", 3, 11, 16), ("seq_gr", 8, 24, 32), ("seq_gr", 12, 48, 64),
               ("seq_gr", 32, 128, 128))


def time_probes(cases=PROBE_CASES, max_steps: int = 300) -> list[dict]:
    """critical_n probes timed one by one, each compiling its own program first (as a search's first probe
    does), to at most `max_steps` steps (patience off; a probe stops early when solved): one row each."""
    from grdr.sim.free_embedding import FreeEmbeddingConfig, train_free_embedding

    rows = []
    for kind, d, n, pad in cases:
        vectors = 2 if kind == "maxsim" else 1
        cfg = FreeEmbeddingConfig(dim=d, kind=kind, max_steps=max_steps, patience=10 * max_steps,
                                  vectors=vectors, doc_vectors=vectors)
        start = time.perf_counter()
        r = train_free_embedding(cfg, n, [0], pad_to=pad)
        rows.append({"what": "probe", "preset": "probes", "kind": kind, "dim": d, "n_docs": n, "n_pad": pad,
                     "vectors": vectors, "doc_vectors": vectors, "docid_vocab": cfg.docid_vocab,
                     "steps": int(r.steps_S[0]), "seconds": time.perf_counter() - start})
        print(f"  {kind} d={d} n={n} (padded {pad}): {rows[-1]['steps']} steps in {rows[-1]['seconds']:.1f} s",
              flush=True)
    return rows


def measure_timing_rows(timings: list[dict], cal) -> list[dict]:
    """time_measures' rows as (experiments.work units, seconds): a floor as measure_features counts it, an
    oracle at the steps it took."""
    from grdr.experiments.work import measure_features

    from grdr.experiments.work import probe_features

    rows = []
    for t in timings:
        if t["what"] == "probe":
            rows.append({"experiment": "critical_n (probes)", "results": "timed probes", "measured": t["seconds"],
                         "features": probe_features(t["kind"], t["n_pad"], t, t["steps"])})
            continue
        record = {**t, "floor_restarts": t.get("floor_restarts", 0), "floor_max_iter": t.get("floor_max_iter", 1),
                  "oracle_widths": [t["width"]] if t["what"] == "oracle" else []}
        features = measure_features([record], t["dim"], cal)
        if t["what"] == "oracle":
            steps = cal.probe_steps("oracle", 20_000)
            features = {k: v * (1.0 if k.endswith("program") else t["steps"] / steps)
                        for k, v in features.items() if k.startswith("model_scale.oracle")}
        else:
            features = {k: v for k, v in features.items() if k.startswith("model_scale.floor")}
        rows.append({"experiment": "model_scale (floors, oracles)", "results": f"timed {t['preset']}",
                     "features": features, "measured": t["seconds"]})
    return rows


def compare_work(rows, cal) -> tuple[list[dict], object]:
    """Per (experiment, folder): measured seconds, the shipped coefficients' estimate, those fitted to
    every other folder's rows (`held_out`: a preset the fit has not seen) and to every row
    (experiments.work.calibrate_work). A row's `fit_features` (critical_n: the probes its searches made,
    at the steps they took), where present, are what the coefficients are fitted to; every estimate reads
    `features` (the search replayed as the dry run does), so for critical_n `in_sample` is the dry run's
    error with coefficients fitted to these folders, not a residual of the fit."""
    from grdr.experiments.work import WorkCalibration, calibrate_work

    def fit_on(part):  # nothing measured elsewhere (one folder alone): no coefficient, no held-out estimate
        if not part:
            return WorkCalibration((), cal.steps, "nothing to fit")
        return calibrate_work([(r.get("fit_features", r["features"]), r["measured"]) for r in part], "", cal.steps)

    fitted = dataclasses.replace(fit_on(rows), source="fitted to every group measured")
    totals = []
    for key in dict.fromkeys((r["experiment"], r["results"]) for r in rows):
        part = [r for r in rows if (r["experiment"], r["results"]) == key]
        others = [r for r in rows if (r["experiment"], r["results"]) != key]
        measured = sum(r["measured"] for r in part)
        est = {name: sum(sum(v * c[k] for k, v in r["features"].items()) for r in part)
               for name, c in (("shipped", cal), ("held_out", fit_on(others)), ("in_sample", fitted))}
        row = {"experiment": key[0], "results": key[1], "groups": len(part), "measured_s": round(measured, 1)}
        for name, value in est.items():
            row[f"{name}_s"], row[f"{name}/measured"] = round(value, 1), round(value / max(measured, 1e-9), 3)
        row["within 30%"] = verdict(abs(est["shipped"] / max(measured, 1e-9) - 1) <= TARGET, False)
        totals.append(row)
    return totals, fitted


def run_presets(presets: list[str], experiments: list[str], folder: Path) -> list[Path]:
    """Run each preset of each experiment in a fresh subprocess with an empty compilation cache, as the
    calibration assumes; one results folder per preset."""
    folders = []
    for preset in presets:
        out = folder / preset
        env = {**os.environ, "GRDR_COMPILE_CACHE": str(folder / f"xla-{preset}")}
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
    parser.add_argument("--records", nargs="*", default=[], metavar="PRESET=FOLDER",
                        help="results folders of critical_n, theory_curves and real_scaling run at PRESET: compare "
                             "experiments.work's estimates with them (and model_scale's floors and oracles in --results)")
    parser.add_argument("--time-measures", nargs="*", default=[], metavar="PRESET",
                        help="time model_scale's KL floor and oracles at these presets (appended to --timings)")
    parser.add_argument("--time-probes", action="store_true",
                        help="time critical_n probes at quick's and larger shapes (PROBE_CASES; appended to --timings)")
    parser.add_argument("--timings", type=Path, default=None, help="a JSON-lines file of such timings")
    args = parser.parse_args(argv)
    if args.records or args.time_measures or args.timings or args.time_probes:
        return main_work(args)
    presets = ["smoke"] if args.small and not args.run else args.run
    folders = list(args.results)
    if presets:
        folder = args.work or Path(tempfile.mkdtemp(prefix="grdr-estimator-"))
        print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
        folders += run_presets(presets, args.experiments, folder)
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


def main_work(args):
    """The comparison of experiments.work's estimates with measured records and timings."""
    from grdr.experiments.work import RECORD_EXPERIMENTS, WORK_CALIBRATION

    timings = []
    if args.timings and args.timings.is_file():
        timings = [json.loads(line) for line in args.timings.read_text().splitlines() if line.strip()]
    runs = [("critical_n probes", time_probes)] if args.time_probes else []
    runs += [(f"model_scale's floor and oracles at --preset {preset}", lambda p=preset: time_measures(p))
             for preset in args.time_measures]
    for what, timed in runs:
        print(f"timing {what} (load {os.getloadavg()[0]:.2f})", flush=True)
        new = timed()
        timings += new
        if args.timings:  # appended as they come, so an interrupted run keeps what it timed
            with args.timings.open("a") as f:
                f.writelines(json.dumps(t) + "\n" for t in new)
    folders = [entry.split("=", 1) for entry in args.records]
    steps = {**dict(WORK_CALIBRATION.steps), **probe_steps([Path(f) for _, f in folders])}
    oracle_steps = [t["steps"] for t in timings if t["what"] == "oracle"]
    if oracle_steps:
        steps["oracle"] = float(np.median(oracle_steps))
    cal = dataclasses.replace(WORK_CALIBRATION, steps=tuple(sorted(steps.items())))
    rows = [r for preset, folder in folders for name in RECORD_EXPERIMENTS if (Path(folder) / name).is_dir()
            for r in work_groups(Path(folder), name, preset, cal)]
    rows += [r for folder in args.results for r in measure_work_groups(Path(folder), cal)]
    rows += measure_timing_rows(timings, cal)
    if not rows:
        raise SystemExit("nothing to compare: give --records PRESET=FOLDER, --results or --timings")
    totals, fitted = compare_work(rows, cal)
    print_table(totals)
    write_csv(totals, str(Path(args.out).with_name(Path(args.out).stem + "_work.csv")))
    print(f"\nshipped ({WORK_CALIBRATION.source}):\n  {WORK_CALIBRATION.coefficients}\n  steps {WORK_CALIBRATION.steps}")
    print(f"fitted to these {len(rows)} groups (typical steps {cal.steps}):\n  "
          + ", ".join(f"({k!r}, {v:.4g})" for k, v in fitted.coefficients))
    return totals


if __name__ == "__main__":
    main()
