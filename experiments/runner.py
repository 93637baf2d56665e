"""Runs an experiment's sweep: groups points that differ only in seed (trained together under
vmap), skips points whose record exists, writes one record per run as soon as its group is done.

An experiment module provides NAME, Config, PRESETS, `sweep(cfg)` (yielding points with a
`record()` flat config and a `seed`), `report(df)`, and either `measure(model, corpus, docids,
point)` (extra metrics for the shared train-and-evaluate path of experiments.pipeline) or its own
`run_group(cfg, points, out)` (experiments that are not "train a model on a synthetic corpus").
"""
from __future__ import annotations

import importlib
import time
from collections import OrderedDict

from tqdm.auto import tqdm

from experiments import store

__all__ = ["EXPERIMENTS", "load_experiment", "claim", "groups", "run_experiment"]

EXPERIMENTS = ("drift_corpus", "negatives", "capacity_dim", "model_scale", "critical_n", "real_scaling")


def load_experiment(name: str):
    if name not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"experiments.{name}")


def claim(module) -> str:
    return (module.__doc__ or "").strip().splitlines()[0]


def groups(module, cfg) -> list[list]:
    """The sweep's points, grouped by everything but the seed (one vmapped training each)."""
    found: OrderedDict = OrderedDict()
    for point in module.sweep(cfg):
        key = point.group_key()
        found.setdefault(key, []).append(point)
    return list(found.values())


def _run_group(module, cfg, points, out):
    if hasattr(module, "run_group"):
        return module.run_group(cfg, points, out)
    from experiments.pipeline import train_and_evaluate

    return train_and_evaluate(points, getattr(module, "measure", None))


def run_experiment(module, cfg, out, progress: bool = True) -> dict:
    """Run every point of module.sweep(cfg) not yet stored under `out`. Returns counts."""
    name = module.NAME
    todo_groups = groups(module, cfg)
    done = skipped = 0
    t0 = time.perf_counter()
    bar = tqdm(total=sum(len(g) for g in todo_groups), desc=name, disable=not progress, unit="run")
    for points in todo_groups:
        todo = [pt for pt in points if not store.exists(out, name, pt.record())]
        skipped += len(points) - len(todo)
        bar.update(len(points) - len(todo))
        if not todo:
            continue
        results, seconds = _run_group(module, cfg, todo, out)
        for point, (metrics, extra) in zip(todo, results):
            derived = {k: extra.pop(k) for k in ("params", "corpus_seed_used") if k in extra} or None
            store.write_record(out, name, point.record(), metrics, seconds / len(todo), derived, train=extra)
        done += len(todo)
        bar.update(len(todo))
    bar.close()
    return {"experiment": name, "ran": done, "skipped": skipped, "seconds": time.perf_counter() - t0}
