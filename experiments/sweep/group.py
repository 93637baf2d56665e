"""The unit of work of every executor: claim, run and store one group of points (those that differ
only in seed, trained together under vmap), and the heartbeats that keep a writer's claims alive.
The local runner and the Ray executor both call `run_one_group`; neither imports the other."""
from __future__ import annotations

import threading
from contextlib import contextmanager

from grdr.experiments.sweep import claims, compile_stats, store

__all__ = ["COUNTS", "heartbeats", "run_one_group"]


def _run_group(module, cfg, points, out):
    if hasattr(module, "run_group"):
        return module.run_group(cfg, points, out)
    from grdr.experiments.pipeline import train_and_evaluate  # here: it imports JAX, which `grdr list` does not need

    # an experiment whose sweep varies widths may train each inside a shared padded width (sim.widths), and
    # one whose sweep varies N may pad a group's documents (and its corpora's references) to a larger N's bucket
    padded = getattr(module, "padded_model", None)
    docs = getattr(module, "padded_docs", None)
    refs = getattr(module, "reference_docs", None)
    return train_and_evaluate(points, getattr(module, "measure", None), pad_to=padded(cfg, points) if padded else None,
                              pad_docs=docs(cfg, points) if docs else None, reference_docs=refs(cfg, points) if refs else None)


@contextmanager
def heartbeats(out, name: str):
    """Touch this process's claims every CLAIM_TTL / 10 seconds while the block runs."""
    stop = threading.Event()

    def beat():
        while not stop.wait(claims.CLAIM_TTL / 10):
            claims.heartbeat(out, name)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


COUNTS = ("ran", "skipped", "failed", "failed_before", "elsewhere")


def run_one_group(module, cfg, points, out, retry_failed: bool = False, on_error=None,
                  token: str | None = None) -> dict:
    """Claim, run and store one group of points (those that differ only in seed); the unit of work
    of every executor. `token` names the task, so that a retried task reclaims its own points on
    any host. Returns the counts (see run_experiment) and `errors` (messages)."""
    name = module.NAME
    counts = dict.fromkeys(COUNTS, 0)
    todo = []
    for pt in points:
        rec = pt.record()
        if store.exists(out, name, rec):
            counts["skipped"] += 1
        elif not retry_failed and claims.failure(out, name, rec) is not None:
            counts["failed_before"] += 1
        elif not claims.claim(out, name, rec, token):
            counts["elsewhere"] += 1
        elif store.exists(out, name, rec):  # stored by another writer since we looked
            claims.release(out, name, rec)
            counts["skipped"] += 1
        else:
            todo.append(pt)
    if not todo:
        return {**counts, "errors": []}
    before = compile_stats.snapshot()
    try:
        results, seconds = _run_group(module, cfg, todo, out)
    except KeyboardInterrupt:  # released here, counted by the handler's claims.release_mine
        claims.release_interrupted(out, name, [point.record() for point in todo])
        raise
    except Exception as err:  # noqa: BLE001 - kept as failure records; the sweep goes on
        for point in todo:
            claims.write_failure(out, name, point.record(), err)
            claims.release(out, name, point.record())
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
        claims.clear_failure(out, name, point.record())
        claims.release(out, name, point.record())
    counts["ran"] += len(todo)
    return {**counts, "errors": []}
