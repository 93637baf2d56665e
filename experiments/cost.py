"""`grdr run NAME --dry-run`: a sweep's points and a rough estimate of what they cost, in time and memory.

The time estimate counts the floating-point work of each group of points (forward and backward of the
towers, the score matrix, a dense Adam update of any per-document table, the evaluation's M x N
pass) and converts it at an assumed sustained rate, plus a fixed compile cost per group. The rate
is what small shapes sustain on the 2-core development machine, far below its matmul peak; on an
accelerator divide by its speed-up. It is an order of magnitude to plan a sweep, not a benchmark.

The memory estimate (`group_bytes`) counts the arrays a group certainly holds at once: each seed's
corpus (latents, features, popularity, the queries, and the chunked copy of the latents that the
exact posterior streams over), the per-document tables with their gradients and Adam moments, the
document embeddings and the score blocks. It is a floor, not a peak: XLA's buffers come on top.
`grdr run` refuses a sweep whose largest group needs more than the memory available
(`available_bytes`), before anything is allocated.
"""
from __future__ import annotations

from experiments.points import Point

__all__ = ["describe", "group_flops", "group_bytes", "largest_group", "available_bytes", "makespan"]

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


def group_bytes(point: Point, n_seeds: int) -> float:
    """Bytes that a group of `n_seeds` points like `point` holds at once, at the least (see the module
    docstring): what is certainly allocated, so that a refusal based on it is never wrong."""
    m, t, c = point.model_cfg, point.train, point.corpus
    v = point.variant
    N, R, F = c.n_docs, c.latent_rank, c.feature_dim
    width = m.dim if v.kind == "dr" else m.hidden
    # latents float32 (+ their float64 draw and the chunked copies the posterior pass streams over),
    # features float32, hierarchy path int32, popularity float32/int64/float64 x 2
    corpus = N * (4.0 * R + 8.0 * R + 8.0 * R + 4.0 * F + 4.0 * c.depth + 28.0)
    queries = (c.n_train_queries * (4.0 * R + 4.0 * F + 16.0 + 12.0 * c.train_top_k)
               + c.n_test_queries * (4.0 * R + 4.0 * F + 8.0 + 12.0 * c.qrels_k))
    model = 16.0 * N * width if v.has_doc_table else 0.0  # table, its gradient and Adam's two moments
    embeddings = 4.0 * N * width  # the documents' embeddings for the global objective and retrieval
    scores = 2.0 * 4.0 * min(float(t.batch_size) * N, 2.0 ** 21) if t.objective == "global" else 0.0
    return n_seeds * (corpus + queries + model + embeddings + scores)


def largest_group(found) -> tuple[float, Point | None, int]:
    """(bytes, first point, seeds) of the group of `found` (runner.groups) that needs the most memory."""
    best = (0.0, None, 0)
    for g in found:
        if isinstance(g[0], Point):
            need = group_bytes(g[0], len(g))
            if need > best[0]:
                best = (need, g[0], len(g))
    return best


def available_bytes() -> float:
    """Memory this process may still allocate: MemAvailable of /proc/meminfo on Linux (with a cgroup's
    limit where lower), else the machine's physical memory."""
    import os

    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(float(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit) as f:
                text = f.read().strip()
            if text.isdigit() and float(text) < 2 ** 60:
                found.append(float(text))
        except OSError:
            pass
    if not found:
        try:
            found.append(float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")))
        except (ValueError, OSError, AttributeError):
            return float("inf")
    return min(found)


def gib(n: float) -> str:
    return f"{n / 2 ** 30:,.1f} GiB" if n >= 2 ** 28 else f"{n / 2 ** 20:,.0f} MiB"


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of groups of the given costs on `workers` equal workers, each group one task, the
    longest first to the least loaded worker (the LPT rule: within 4/3 of the optimum)."""
    if workers < 1:
        raise ValueError(f"workers={workers}: expected at least 1")
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads)


def describe(module, cfg, found=None) -> str:
    """The points of module.sweep(cfg) (or `found`, already grouped), grouped as the runner trains them,
    with a cost estimate in time and memory."""
    from experiments.sweep.runner import groups

    found = groups(module, cfg) if found is None else found
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
                     f"seeds={[pt.seed for pt in g]}  ~{seconds:,.0f} s, >= {gib(group_bytes(first, len(g)))}")
    if total:
        lines.append(f"estimated total: ~{total / 60:,.1f} min on 2 CPU cores (rough: {SUSTAINED_FLOPS / 1e9:.0f} "
                     f"GFLOP/s sustained + {COMPILE_SECONDS:.0f} s compile per group)")
        spans = ", ".join(f"{w} workers ~{makespan(costs, w) / 60:,.1f} min" for w in (4, 16, 64) if w <= 4 * len(costs))
        lines.append(f"on N such workers (--executor ray, one task per group; the longest group bounds it): {spans}")
        need, point, seeds = largest_group(found)
        lines.append(f"memory: at least {gib(need)} for the largest group ({point.model}, N = {point.corpus.n_docs:,}, "
                     f"{seeds} seed(s) at once; arrays only, XLA's buffers come on top); "
                     f"{gib(available_bytes())} available here")
    return "\n".join(lines)
