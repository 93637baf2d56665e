"""How much of a run is compiling: XLA compilations, their seconds and persistent-cache hits in
this process, counted from JAX's monitoring events (`jax.monitoring`), so that every compiled
program counts (training steps, evaluation, retrieval, theory), not only those the trainer knows.

The runner snapshots the counters around each group of points and stores the difference in each
of its records (`compile`: count, seconds, cache_hits, group_size); the report sums them per
experiment (docs/design.md, section 3, "Records").
"""
from __future__ import annotations

__all__ = ["install", "snapshot", "since"]

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"
_STATS = {"count": 0, "seconds": 0.0, "cache_hits": 0}
_INSTALLED = [False]


def _on_duration(event: str, duration: float, **_) -> None:
    if event == _BACKEND_COMPILE:
        _STATS["count"] += 1
        _STATS["seconds"] += float(duration)


def _on_event(event: str, **_) -> None:
    if event == _CACHE_HIT:
        _STATS["cache_hits"] += 1


def install() -> None:
    """Start counting (once per process)."""
    if not _INSTALLED[0]:
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(_on_duration)
        monitoring.register_event_listener(_on_event)
        _INSTALLED[0] = True


def snapshot() -> dict:
    """The counters so far in this process (install() first)."""
    install()
    return dict(_STATS)


def since(before: dict) -> dict:
    """What was compiled since `before` (a snapshot): `count` programs compiled by XLA, `cache_hits`
    programs loaded from the persistent cache instead, and `seconds` spent on both (JAX times a
    cache lookup inside the same event as a compilation)."""
    now = snapshot()
    hits = now["cache_hits"] - before["cache_hits"]
    return {"count": now["count"] - before["count"] - hits, "seconds": round(now["seconds"] - before["seconds"], 4),
            "cache_hits": hits}
