"""`grdr run NAME --dry-run`: a sweep's points and an estimate of what they cost, in time and memory.

Time: each group's seconds under the calibrated time model of experiments.calibration (`group_seconds`:
compiling, steps, evaluation and new corpora, on this CPU or extrapolated to one GPU), summed over the
sweep as one process runs it, corpora and compiled programs reused (`sweep_seconds`), each group at the
shape it trains at (`trained_shape`: padded to a larger N's or width's programs where its experiment shares them).
On Ray workers (`--executor ray`, one task per group, each task building its own corpora) the
sweep's wall time is the makespan of its tasks (`makespan`); a Config's `max_group_seeds` splits
groups so that no single one bounds it. Every figure is a plan, not a promise: the benchmark says
how close it came on the presets it was measured on.

The memory estimate (`group_bytes`) counts the arrays a group certainly holds at once: each seed's
corpus (latents, features, popularity, the queries, and the chunked copy of the latents that the
exact posterior streams over), the per-document tables with their gradients and Adam moments, the
document embeddings and the score blocks. It is a floor, not a peak: XLA's buffers come on top.
`grdr run` refuses a sweep whose largest group needs more than the memory available
(`available_bytes`), before anything is allocated.
"""
from __future__ import annotations

from collections import OrderedDict

from grdr.experiments.calibration import (CALIBRATION, CORPUS_CACHE, GPU, Calibration, Shape, eval_flops,
                                          group_seconds, program_key, real_train_seconds, step_flops)
from grdr.experiments.points import Point

__all__ = ["describe", "group_flops", "group_bytes", "largest_group", "available_bytes", "makespan", "gib",
           "sweep_seconds", "trained_shape"]


def trained_shape(name: str, cfg, points) -> Shape:
    """The shape a group of trained points runs at, as experiments.sweep.group runs it: its own, or, in an
    experiment that shares compiled programs across its sweep, its documents padded to a larger N's bucket
    (the module's `padded_docs`) and its widths to the sweep's shared width (`padded_model`). Groups that
    share a padded shape share one program key, and the padded work is what their steps cost."""
    from grdr.experiments import catalog

    shape = Shape.of_point(points[0])
    if cfg is None:
        return shape
    module = catalog.load(name)
    docs, model = getattr(module, "padded_docs", None), getattr(module, "padded_model", None)
    wide = model(cfg, points) if model is not None else None
    return shape.padded(docs(cfg, points) if docs is not None else None, wide and wide.dim, wide and wide.hidden)


def group_flops(point: Point, n_seeds: int) -> float:
    """Floating-point operations to train and evaluate a group of `n_seeds` points like `point`."""
    s = Shape.of_point(point)
    return n_seeds * (s.steps * step_flops(s) + eval_flops(s))



def _new_corpora(points, seen: OrderedDict | None) -> int:
    """Corpora of `points` not built before (`seen`: an LRU of the process's corpus cache; None: a
    fresh process, every corpus new)."""
    specs = [pt.corpus_spec() for pt in points]
    if seen is None:
        return len(set(specs))
    new = 0
    for spec in specs:
        if spec in seen:
            seen.move_to_end(spec)
            continue
        new += 1
        seen[spec] = True
        if len(seen) > CORPUS_CACHE:
            seen.popitem(last=False)
    return new


def sweep_seconds(name: str, found, cal: Calibration = CALIBRATION, cfg=None) -> dict:
    """Per group of `found` (runner.groups) that is estimated (`groups`): estimated seconds one after
    another in one process (`local`), as separate tasks each building its corpora (`task`), and one
    after another on one GPU (`gpu`). Groups of record points (critical_n, theory_curves, real_scaling)
    are estimated with their Config `cfg` by experiments.work (critical_n's probes extrapolated to the GPU
    as the trained groups' steps are; theory_curves' and real_scaling's on the GPU as on this CPU: not
    measured there); model_scale's KL floors and oracles likewise, per record that carries them."""
    from grdr.experiments import work

    seen: OrderedDict = OrderedDict()
    programs: set = set()
    gpu_programs: set = set()
    local, task, gpu, estimated = [], [], [], []
    for g in found:
        if not isinstance(g[0], Point):
            if cfg is None or name not in work.RECORD_EXPERIMENTS:
                continue
            estimated.append(g)
            local.append(work.record_seconds(name, cfg, g, programs, train_seconds=real_train_seconds))
            task.append(work.record_seconds(name, cfg, g, set(), train_seconds=real_train_seconds))
            gpu.append(work.critical_n_gpu_seconds(cfg, g, gpu_programs, GPU()) if name == "critical_n" else local[-1])
            continue
        s, new = trained_shape(name, cfg, g), _new_corpora(g, seen)
        key = program_key(s, len(g))
        fresh, _ = key not in programs, programs.add(key)
        extra = work.point_measures(name, g)
        estimated.append(g)
        local.append(group_seconds(s, len(g), new, name, cal, new_program=fresh) + extra)
        task.append(group_seconds(s, len(g), _new_corpora(g, None), name, cal) + extra)
        gpu.append(group_seconds(s, len(g), new, name, cal, GPU(), new_program=fresh) + extra / GPU().overhead_speedup)
    return {"local": local, "task": task, "gpu": gpu, "groups": estimated}


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


def _span(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 5400 else f"{seconds / 60:,.1f} min"


def describe(module, cfg, found=None, cal: Calibration = CALIBRATION) -> str:
    """The points of module.sweep(cfg) (or `found`, already grouped), grouped as the runner trains them,
    with a cost estimate in time (on this CPU, one GPU, and Ray workers) and memory."""
    from grdr.experiments.sweep.grouping import groups

    found = groups(module, cfg) if found is None else found
    lines = [f"{module.NAME}: {sum(len(g) for g in found)} runs in {len(found)} groups (seeds trained together)"]
    est = sweep_seconds(module.NAME, found, cal, cfg)
    trained = est["groups"]
    seconds_of = {id(g): (s, gpu) for g, s, gpu in zip(trained, est["local"], est["gpu"])}
    for g in found:
        if not isinstance(g[0], Point):
            cost = f"  ~{seconds_of[id(g)][0]:,.1f} s" if id(g) in seconds_of else ""
            lines.append(f"  {len(g)} x {g[0].record()}{cost}")
    for g, seconds, gpu in zip(trained, est["local"], est["gpu"]):
        if not isinstance(g[0], Point):
            continue
        first = g[0]
        lines.append(f"  {first.model:28s} N={first.corpus.n_docs:<9,} steps={first.train.steps:<7} "
                     f"B={first.train.batch_size:<4} pairs/doc={first.pairs_per_doc:<8.1f} "
                     f"seeds={[pt.seed for pt in g]}  ~{seconds:,.0f} s (GPU ~{gpu:,.0f} s), "
                     f">= {gib(group_bytes(first, len(g)))}")
    if trained:
        total, tasks = sum(est["local"]), est["task"]
        longest = max(range(len(tasks)), key=tasks.__getitem__)
        head = trained[longest][0]
        where = (f"{head.model}, N = {head.corpus.n_docs:,}" if isinstance(head, Point)
                 else ", ".join(f"{k} {head.record().get(k)}" for k in ("model", "family", "dim", "n_docs")
                                if head.record().get(k) is not None))
        lines.append(f"estimated total: ~{_span(total)} on 2 CPU cores (the development machine; {cal.source})")
        lines.append(f"on one H100 GPU: ~{_span(sum(est['gpu']))} (an extrapolation from the GPU rows of "
                     "benchmarks/README.md, not a measurement)")
        spans = ", ".join(f"{w} workers ~{_span(makespan(tasks, w))}" for w in (4, 16, 64) if w <= 4 * len(tasks))
        lines.append(f"on N Ray workers of this CPU's speed (--executor ray, one task per group, each building its "
                     f"corpora): {spans}; the longest task ~{_span(tasks[longest])} ({where}, "
                     f"{len(trained[longest])} seed(s))")
        need, point, seeds = largest_group(found)
        if point is not None:
            lines.append(f"memory: at least {gib(need)} for the largest group ({point.model}, N = "
                         f"{point.corpus.n_docs:,}, {seeds} seed(s) at once; arrays only, XLA's buffers come on top); "
                         f"{gib(available_bytes())} available here")
    return "\n".join(lines)
