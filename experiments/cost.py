"""`grdr run NAME --dry-run`: a sweep's points and a rough estimate of what they cost.

The estimate counts the floating-point work of each group of points (forward and backward of the
towers, the score matrix, a dense Adam update of any per-document table, the evaluation's M x N
pass) and converts it at an assumed sustained rate, plus a fixed compile cost per group. The rate
is what small shapes sustain on the 2-core development machine, far below its matmul peak; on an
accelerator divide by its speed-up. It is an order of magnitude to plan a sweep, not a benchmark.
"""
from __future__ import annotations

from experiments.points import Point

__all__ = ["describe", "group_flops", "makespan"]

SUSTAINED_FLOPS = 8e9  # per second, small shapes on 2 CPU cores (calibrated on the quick presets)
COMPILE_SECONDS = 4.0  # per group: training step, retrieval and evaluation programs


def _tower(f_in: int, hidden: int, out: int, depth: int) -> float:
    sizes = [f_in] + [hidden] * depth + [out]
    return 2.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def group_flops(point: Point, n_seeds: int) -> float:
    """Floating-point operations to train and evaluate a group of `n_seeds` points like `point`."""
    m, t, c = point.model_cfg, point.train, point.corpus
    v = point.variant
    N, B, K, F = c.n_docs, t.batch_size, t.num_negatives, c.feature_dim
    width = m.dim if v.kind == "dr" else m.hidden
    query = B * _tower(F, m.hidden, width, m.depth)
    docs = N if t.objective == "global" else B * (K + 1)
    if v.kind == "seq_gr":
        step = query + B * 10 * (2 * m.hidden * 2 * m.hidden * 2 * m.decoder_depth + 2 * m.hidden * point.docids.vocab)
    else:
        doc_side = docs * _tower(F, m.hidden, width, m.depth) if v.doc_side == "tower" and v.kind == "dr" else 0.0
        step = query + doc_side + 2.0 * B * docs * width
    step *= 3.0  # forward and backward
    if v.has_doc_table:
        step += 10.0 * N * width  # a dense Adam update of the table
    evaluation = c.n_test_queries * N * (2.0 * width + 20.0)
    return n_seeds * (t.steps * step + evaluation)


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of groups of the given costs on `workers` equal workers, each group one task, the
    longest first to the least loaded worker (the LPT rule: within 4/3 of the optimum)."""
    if workers < 1:
        raise ValueError(f"workers={workers}: expected at least 1")
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads)


def describe(module, cfg) -> str:
    """The points of module.sweep(cfg), grouped as the runner trains them, with a cost estimate."""
    from experiments.runner import groups

    found = groups(module, cfg)
    lines = [f"{module.NAME}: {sum(len(g) for g in found)} runs in {len(found)} groups (seeds trained together)"]
    total, costs = 0.0, []
    for g in found:
        first = g[0]
        if not isinstance(first, Point):
            lines.append(f"  {len(g)} x {first.record()}")
            continue
        seconds = group_flops(first, len(g)) / SUSTAINED_FLOPS + COMPILE_SECONDS
        total += seconds
        costs.append(seconds)
        lines.append(f"  {first.model:28s} N={first.corpus.n_docs:<8,} steps={first.train.steps:<6} "
                     f"B={first.train.batch_size:<4} pairs/doc={first.pairs_per_doc:<8.1f} "
                     f"seeds={[pt.seed for pt in g]}  ~{seconds:,.0f} s")
    if total:
        lines.append(f"estimated total: ~{total / 60:,.1f} min on 2 CPU cores (rough: {SUSTAINED_FLOPS / 1e9:.0f} "
                     f"GFLOP/s sustained + {COMPILE_SECONDS:.0f} s compile per group)")
        spans = ", ".join(f"{w} workers ~{makespan(costs, w) / 60:,.1f} min" for w in (4, 16, 64) if w <= 4 * len(costs))
        lines.append(f"on N such workers (--executor ray, one task per group; the longest group bounds it): {spans}")
    return "\n".join(lines)
