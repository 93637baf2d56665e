"""Sweeps on a Ray cluster: one Ray task per group of points (the points that differ only in seed,
which train together under vmap), each declaring its CPUs and GPUs (docs/design.md, section 3,
"Executors").

Every task runs `experiments.sweep.group.run_one_group`, the same unit of work as the local executor:
it claims its points in the shared results folder, trains them and writes their records
atomically, so a rerun resumes, several drivers may share a folder, and a record is never stored
twice. A task whose worker dies is retried by Ray (`max_retries`); the retry reclaims the points of
its earlier attempt by the task's token, on whichever node it lands. A task that cannot finish
(its worker died on every attempt) leaves failure records for its points, and the driver reports
them. Ray is an optional dependency (`pip install -e '.[ray]'`); the local executor needs none.

    grdr run model_scale --preset paper --executor ray --address auto --gpus-per-task 1
"""
from __future__ import annotations

import importlib
import uuid

from tqdm.auto import tqdm

from grdr.experiments.sweep import claims, store, xla_cache
from grdr.experiments.sweep.group import COUNTS, heartbeats, run_one_group

__all__ = ["run_groups"]


def _group_task(module_name: str, cfg, points, out: str, retry_failed: bool, token: str, cache_dir: str | None):
    """One group in a Ray worker: the driver's JAX compilation cache, then the shared unit of work."""
    xla_cache.enable(cache_dir)
    module = importlib.import_module(module_name)
    with heartbeats(out, module.NAME):
        return run_one_group(module, cfg, points, out, retry_failed, token=token)


def run_groups(module, cfg, out, todo_groups, *, progress: bool = True, retry_failed: bool = False,
               address: str | None = None, cpus_per_task: float = 1.0, gpus_per_task: float = 0.0,
               max_retries: int = 3) -> dict:
    """Run every group as a Ray task and gather their counts (see experiments.sweep.runner.run_experiment).

    Args:
      address: the cluster to join ("auto", or HOST:PORT of a head node); None starts a Ray instance
        on this machine for the run (ignored when Ray is already initialised in this process).
      cpus_per_task, gpus_per_task: resources each task declares (a group's training is one JAX
        program: give it a GPU each on a GPU cluster).
      max_retries: how often Ray reruns a task whose worker died.
    """
    try:
        import ray
    except ImportError:
        raise ValueError("executor 'ray' needs Ray: pip install -e '.[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    counts = dict.fromkeys(COUNTS, 0)
    bar = tqdm(total=sum(len(g) for g in todo_groups), desc=f"{module.NAME} (ray)", disable=not progress,
               unit="run")
    try:
        task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries)(_group_task)
        cache_dir = xla_cache.current()
        pending = {task.remote(module.__name__, cfg, points, str(out), retry_failed, uuid.uuid4().hex, cache_dir):
                   points for points in todo_groups}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                points = pending.pop(ref)
                try:
                    got = ray.get(ref)
                except ray.exceptions.RayError as err:  # the task could not finish on any attempt
                    for point in points:
                        if not store.exists(out, module.NAME, point.record()):
                            claims.write_failure(out, module.NAME, point.record(), err)
                    counts["failed"] += len(points)
                    first = points[0].record()
                    bar.write(f"{module.NAME}: a Ray task failed: {len(points)} point(s) of model "
                              f"{first.get('model')} (run_id {store.run_id(module.NAME, first)}, seeds "
                              f"{sorted({p.seed for p in points}, key=str)}): {type(err).__name__}: "
                              f"{(str(err).splitlines() or [''])[0]}")
                else:
                    for k in COUNTS:
                        counts[k] += got[k]
                    for message in got["errors"]:
                        bar.write(message)
                bar.update(len(points))
    finally:
        bar.close()
        if started_here:
            ray.shutdown()
    return counts
