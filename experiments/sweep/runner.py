"""Runs an experiment's sweep: groups points that differ only in seed (trained together under
vmap), skips points whose record exists, writes one record per run as soon as its group is done.

Several writers may share one results folder: each point is claimed before it runs (see
experiments.store), so two processes never run it twice, and a dead process's claims are taken
over. A group that raises leaves a failure record per point and the sweep goes on; reruns skip
failed points unless `retry_failed`.

An experiment module provides NAME, Config, PRESETS, `sweep(cfg)` (yielding points with a
`record()` flat config and a `seed`), `report(df)`, and either `measure(model, corpus, docids,
point)` (extra metrics for the shared train-and-evaluate path of experiments.pipeline) or its own
`run_group(cfg, points, out)` (experiments that are not "train a model on a synthetic corpus").
"""
from __future__ import annotations

import importlib
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager

from tqdm.auto import tqdm

from experiments.sweep import store

__all__ = ["EXPERIMENTS", "load_experiment", "claim", "claim_of", "groups", "run_one_group", "run_experiment"]

EXPERIMENTS = ("drift_corpus", "drift_mechanism", "negatives", "capacity_dim", "model_scale", "critical_n", "real_scaling",
               "theory_curves", "similarity")


def load_experiment(name: str):
    if name not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"experiments.{name}")


def claim(module) -> str:
    return (module.__doc__ or "").strip().splitlines()[0]


def claim_of(name: str) -> str:
    """An experiment's claim (its docstring's first line) read from its source, without importing it
    (an experiment imports JAX, which `grdr list` and `grdr --help` do not need)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(f"experiments.{name}")
    if spec is None or spec.origin is None:
        raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    with open(spec.origin, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


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


@contextmanager
def _heartbeats(out, name: str):
    """Touch this process's claims every CLAIM_TTL / 10 seconds while the block runs."""
    stop = threading.Event()

    def beat():
        while not stop.wait(store.CLAIM_TTL / 10):
            store.heartbeat(out, name)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


_COUNTS = ("ran", "skipped", "failed", "failed_before", "elsewhere")


def run_one_group(module, cfg, points, out, retry_failed: bool = False, on_error=None,
                  token: str | None = None) -> dict:
    """Claim, run and store one group of points (those that differ only in seed); the unit of work
    of every executor. `token` names the task, so that a retried task reclaims its own points on
    any host. Returns the counts (see run_experiment) and `errors` (messages)."""
    name = module.NAME
    counts = dict.fromkeys(_COUNTS, 0)
    todo = []
    for pt in points:
        rec = pt.record()
        if store.exists(out, name, rec):
            counts["skipped"] += 1
        elif not retry_failed and store.failure(out, name, rec) is not None:
            counts["failed_before"] += 1
        elif not store.claim(out, name, rec, token):
            counts["elsewhere"] += 1
        elif store.exists(out, name, rec):  # stored by another writer since we looked
            store.release(out, name, rec)
            counts["skipped"] += 1
        else:
            todo.append(pt)
    if not todo:
        return {**counts, "errors": []}
    from experiments.sweep import compile_stats

    before = compile_stats.snapshot()
    try:
        results, seconds = _run_group(module, cfg, todo, out)
    except KeyboardInterrupt:
        for point in todo:
            store.release(out, name, point.record())
        raise
    except Exception as err:  # noqa: BLE001 - kept as failure records; the sweep goes on
        for point in todo:
            store.write_failure(out, name, point.record(), err)
            store.release(out, name, point.record())
        counts["failed"] += len(todo)
        message = (f"{name}: {len(todo)} point(s) failed ({type(err).__name__}: {err}); "
                   f"kept in {store.record_path(out, name, 'x').parent / 'failed'}")
        if on_error is not None:
            on_error(message)
        return {**counts, "errors": [message]}
    compiled = {**compile_stats.since(before), "group_size": len(todo)}  # the group's, in each of its records
    for point, (metrics, extra) in zip(todo, results):
        derived = {k: extra.pop(k) for k in ("params", "corpus_seed_used") if k in extra} or None
        curve = extra.pop("curve", None)
        store.write_record(out, name, point.record(), metrics, seconds / len(todo), derived, train=extra,
                           compile=compiled, **({"curve": curve} if curve else {}))
        store.clear_failure(out, name, point.record())
        store.release(out, name, point.record())
    counts["ran"] += len(todo)
    return {**counts, "errors": []}


def run_experiment(module, cfg, out, progress: bool = True, retry_failed: bool = False,
                   executor: str = "local", **ray_options) -> dict:
    """Run every point of module.sweep(cfg) not yet stored under `out` (nor failed, unless
    retry_failed, nor claimed by another live writer).

    Args:
      executor: "local" (this process, one group after another) or "ray" (one Ray task per group;
        see experiments.ray_executor for ray_options: address, cpus_per_task, gpus_per_task).

    Returns:
      counts: ran, skipped (stored already), failed (this run), failed_before (skipped
      failures), elsewhere (claimed by other live writers), and seconds.
    """
    t0 = time.perf_counter()
    todo_groups = groups(module, cfg)
    if executor == "ray":
        from experiments.sweep.ray_executor import run_groups

        counts = run_groups(module, cfg, out, todo_groups, progress=progress, retry_failed=retry_failed,
                            **ray_options)
    elif executor == "local":
        counts = dict.fromkeys(_COUNTS, 0)
        bar = tqdm(total=sum(len(g) for g in todo_groups), desc=module.NAME, disable=not progress, unit="run")
        try:
            with _heartbeats(out, module.NAME):
                for points in todo_groups:
                    got = run_one_group(module, cfg, points, out, retry_failed, on_error=bar.write)
                    for k in _COUNTS:
                        counts[k] += got[k]
                    bar.update(len(points))
        finally:
            bar.close()
    else:
        raise ValueError(f"executor={executor!r}: expected 'local' or 'ray'")
    return {"experiment": module.NAME, **counts, "seconds": time.perf_counter() - t0}
