"""Runs an experiment's sweep: groups points that differ only in seed (trained together under
vmap), skips points whose record exists, writes one record per run as soon as its group is done.
"""
from __future__ import annotations

import importlib
import inspect
import time
from collections import OrderedDict

from tqdm.auto import tqdm

from experiments import store

__all__ = ["EXPERIMENTS", "load_experiment", "run_experiment"]

EXPERIMENTS = ("drift_corpus", "negatives", "capacity_dim", "model_scale", "critical_n", "real_scaling")


def load_experiment(name: str):
    if name not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"experiments.{name}")


def claim(module) -> str:
    return (module.__doc__ or "").strip().splitlines()[0]


def run_experiment(module, cfg, out, progress: bool = True) -> dict:
    """Run every point of module.sweep(cfg) not yet stored under `out`. Returns counts."""
    name = module.__name__.rsplit(".", 1)[-1]
    groups: OrderedDict = OrderedDict()
    for point in module.sweep(cfg):
        key = tuple(sorted((k, repr(v)) for k, v in point.items() if k != "seed"))
        groups.setdefault(key, []).append(point)
    done = skipped = 0
    t0 = time.perf_counter()
    bar = tqdm(total=sum(len(g) for g in groups.values()), desc=name, disable=not progress, unit="run")
    for points in groups.values():
        todo = [p for p in points if not store.exists(out, name, p)]
        skipped += len(points) - len(todo)
        bar.update(len(points) - len(todo))
        if not todo:
            continue
        # experiments that write files beside their records (e.g. TREC runs) take the results folder
        wants_out = "out" in inspect.signature(module.run_point).parameters
        results, seconds = module.run_point(cfg, todo, out=out) if wants_out else module.run_point(cfg, todo)
        for point, (metrics, extra) in zip(todo, results):
            derived = {"params": extra.pop("params")} if "params" in extra else None
            store.write_record(out, name, point, metrics, seconds / len(todo), derived, train=extra)
        done += len(todo)
        bar.update(len(todo))
    bar.close()
    return {"experiment": name, "ran": done, "skipped": skipped, "seconds": time.perf_counter() - t0}
