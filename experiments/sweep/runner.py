"""Runs an experiment's sweep: groups points that differ only in seed (trained together under
vmap), skips points whose record exists, writes one record per run as soon as its group is done.

Several writers may share one results folder: each point is claimed before it runs (see
experiments.sweep.store), so two processes never run it twice, and a dead process's claims are taken
over. A group that raises leaves a failure record per point and the sweep goes on; reruns skip
failed points unless `retry_failed`.

The runner knows an experiment only as the module handed to it (experiments.registry loads them):
NAME, `sweep(cfg)` (yielding points with a `record()` flat config, a `seed` and a `group_key()`), and
either `measure(model, corpus, docids, point)` (extra metrics for the shared train-and-evaluate path
of experiments.pipeline) or its own `run_group(cfg, points, out)` (experiments that are not "train a
model on a synthetic corpus").
"""
from __future__ import annotations

import time

from tqdm.auto import tqdm

from grdr.experiments.sweep.group import COUNTS, heartbeats, run_one_group
from grdr.experiments.sweep.grouping import groups
from grdr.experiments.sweep.ray_executor import run_groups

__all__ = ["groups", "run_one_group", "run_experiment", "outcome"]


def run_experiment(module, cfg, out, progress: bool = True, retry_failed: bool = False,
                   executor: str = "local", **ray_options) -> dict:
    """Run every point of module.sweep(cfg) not yet stored under `out` (nor failed, unless
    retry_failed, nor claimed by another live writer).

    Args:
      executor: "local" (this process, one group after another) or "ray" (one Ray task per group;
        see experiments.sweep.ray_executor for ray_options: address, cpus_per_task, gpus_per_task).

    Returns:
      counts: ran, skipped (stored already), failed (this run), failed_before (skipped
      failures), elsewhere (claimed by other live writers), and seconds.
    """
    t0 = time.perf_counter()
    todo_groups = groups(module, cfg)
    if executor == "ray":
        counts = run_groups(module, cfg, out, todo_groups, progress=progress, retry_failed=retry_failed,
                            **ray_options)
    elif executor == "local":
        counts = dict.fromkeys(COUNTS, 0)
        bar = tqdm(total=sum(len(g) for g in todo_groups), desc=module.NAME, disable=not progress, unit="run")
        try:
            with heartbeats(out, module.NAME):
                for points in todo_groups:
                    got = run_one_group(module, cfg, points, out, retry_failed, on_error=bar.write)
                    for k in COUNTS:
                        counts[k] += got[k]
                    bar.update(len(points))
        finally:
            bar.close()
    else:
        raise ValueError(f"executor={executor!r}: expected 'local' or 'ray'")
    return {"experiment": module.NAME, **counts, "seconds": time.perf_counter() - t0}


def outcome(summary: dict) -> str:
    """One line: what a sweep did, with failures and points left to other writers when there were any."""
    parts = [f"{summary['ran']} runs done", f"{summary['skipped']} already stored"]
    if summary.get("failed"):
        parts.append(f"{summary['failed']} FAILED (kept under failed/; rerun with --retry-failed)")
    if summary.get("failed_before"):
        parts.append(f"{summary['failed_before']} failed before, skipped (--retry-failed runs them)")
    if summary.get("elsewhere"):
        parts.append(f"{summary['elsewhere']} claimed by other live writers")
    return f"{summary['experiment']}: {', '.join(parts)}, {summary['seconds']:.1f} s"
