"""The time model of the dry run (`grdr run NAME --dry-run`, experiments.cost): what one group of points
costs in seconds, and the coefficients it was calibrated to.

Time (`group_seconds`) is a linear model of what a group of points does, with coefficients measured
on stored records (`calibrate`, run by `python -m grdr.benchmarks.estimator`; the values in `CALIBRATION`
and where they came from are in benchmarks/README.md, "Estimator"):
- per group whose shapes the process has not compiled yet (`program_key`: N to its bucket, the seeds
  vmapped together): compiling its programs with an empty cache;
- per training step: a latency, plus the step's floating-point work (forward and backward of the
  towers, the score matrix, the update of any per-document table: dense Adam over all N rows, or the
  B(K+1) rows of a row-sparse step) at a rate measured per kind of model;
- per seed: evaluating it (a fitted constant: metrics, learning curve) and its scoring passes over all
  N documents (the test queries, and every training query at each hard-negative pool refresh) at the
  exact top-k's measured rate (SCAN_FLOPS_CPU, SCAN_FLOPS_GPU);
- per corpus that the group is the first to build (corpora are cached within a process): generating
  it (the training queries' top documents over all N) and its references (sim.ceilings: test queries
  x documents x latent draws), and an experiment's own per-corpus measures (model_scale's KL floors)
  at a cost of its own;
On an accelerator the same work is extrapolated from the GPU rows of benchmarks/README.md (`GPU`):
a per-step latency, the step's FLOPs at the sustained rate measured there, the full softmax's score
passes and a dense table's Adam update at the bandwidth measured there, and the per-corpus and
evaluation work sped up by the measured ratio; it is an extrapolation, not a measurement.
"""
from __future__ import annotations

import dataclasses

from grdr.experiments.points import Point
from grdr.sim.samplers import get_sampler

__all__ = ["Shape", "Calibration", "CALIBRATION", "GPU", "KINDS", "CORPUS_CACHE", "step_flops", "eval_flops",
           "program_key", "features", "group_seconds", "calibrate", "real_train_seconds", "padding_pays",
           "DOCS_FLOOR", "shared_buckets", "docs_padding", "reference_padding"]

KINDS = ("dr_tower", "dr_table", "dr_table_sparse", "atomic_gr", "seq_gr")
"""Kinds of training step whose FLOP rates differ (a tower, a dense or row-sparse table, GR)."""
# Scoring passes over all N documents (evaluation, hard-negative pools) run at the rate of the exact top-k
# measured in benchmarks/README.md (item 3: N = 1e6, D = 128, M = 1,000 in 2.14 s on the CPU, N = 1e7 in
# 0.158 s on the H100), not at a fitted rate: the presets measured here are too small to show it.
SCAN_FLOPS_CPU = 120e9
SCAN_FLOPS_GPU = 16e12
# An experiment's own work per corpus, as a feature of the training model (none now: model_scale's KL floors
# and oracles, once a cost growing like sqrt(M x N), are estimated from their work by experiments.work).
PER_CORPUS_MEASURES = ()
REFERENCE_DRAWS = 512  # sim.ceilings.REFERENCE_SAMPLES: latent draws per test query of the references
CORPUS_CACHE = 32  # experiments.pipeline caches this many corpora per process
WEIGHT_POWER = 0.5  # weights 1 / sqrt(seconds): between equal relative errors (1) and equal seconds (0)


@dataclasses.dataclass(frozen=True)
class Shape:
    """What the time model reads from a point (or from a stored record's flat config)."""

    kind: str              # one of KINDS
    n_docs: int
    steps: int
    batch_size: int
    num_negatives: int     # 0 under a normalised objective
    global_objective: bool
    feature_dim: int
    width: int             # DR's D, GR's H
    hidden: int
    depth: int
    decoder_depth: int
    vocab: int
    latent_rank: int
    n_train_queries: int
    n_test_queries: int
    pool_refreshes: int = 0  # hard negatives: how often the pool (each training query's top documents) is rebuilt
    corpus_docs: int = 0     # the corpus's own N where n_docs is a larger N's padding (`padded`; 0: n_docs)

    @classmethod
    def of_point(cls, point: Point) -> Shape:
        m, t, c, v = point.model_cfg, point.train, point.corpus, point.variant
        return cls(kind=_kind(v.kind, v.doc_side if v.kind == "dr" else "tower", t.sparse_table), n_docs=c.n_docs,
                   steps=t.steps, batch_size=t.batch_size, num_negatives=t.num_negatives,
                   global_objective=t.objective != "local", feature_dim=c.feature_dim,
                   width=m.dim if v.kind == "dr" else m.hidden, hidden=m.hidden, depth=m.depth,
                   decoder_depth=m.decoder_depth, vocab=point.docids.vocab, latent_rank=c.latent_rank,
                   n_train_queries=c.n_train_queries, n_test_queries=c.n_test_queries,
                   pool_refreshes=_refreshes(t.objective == "local" and get_sampler(t.sampler).needs_pool,
                                             t.steps, t.hard_refresh))

    def padded(self, n_docs: int | None = None, dim: int | None = None, hidden: int | None = None) -> Shape:
        """This shape trained with its documents padded to a larger N's `n_docs` (where its bucket is larger than
        this N's own) and its widths inside a padded model's (sim.widths: DR's D, GR's H as `width`), as a group
        that shares a larger shape's programs runs. Its corpora keep their own size (`corpus_docs`)."""
        from grdr.sim.buckets import bucket

        wide = dim if self.kind.startswith("dr") else hidden
        docs = n_docs if n_docs and bucket(n_docs) > bucket(self.n_docs) else self.n_docs
        own = self.corpus_docs or (self.n_docs if docs != self.n_docs else 0)
        return dataclasses.replace(self, n_docs=docs, corpus_docs=own,
                                   width=wide or self.width, hidden=hidden or self.hidden)

    @classmethod
    def of_record(cls, config: dict) -> Shape:
        kind = config["kind"]
        return cls(kind=_kind(kind, config.get("doc_side", "tower"), bool(config.get("sparse_table"))),
                   n_docs=int(config["n_docs"]), steps=int(config["steps"]), batch_size=int(config["batch_size"]),
                   num_negatives=int(config.get("num_negatives") or 0),
                   global_objective=config.get("objective") != "local",
                   feature_dim=int(config["corpus_feature_dim"]), width=int(config["dim"]),
                   hidden=int(config["hidden"]), depth=int(config["depth"]),
                   decoder_depth=int(config.get("decoder_depth") or 1), vocab=int(config.get("docid_vocab") or 2),
                   latent_rank=int(config["corpus_latent_rank"]), n_train_queries=int(config["corpus_n_train_queries"]),
                   n_test_queries=int(config["corpus_n_test_queries"]),
                   pool_refreshes=_refreshes("hard_refresh" in config, int(config["steps"]),
                                             int(config.get("hard_refresh") or 1)))


def _refreshes(pool: bool, steps: int, every: int) -> int:
    return -(-steps // every) if pool else 0


def _kind(kind: str, doc_side: str, sparse: bool) -> str:
    if kind == "dr":
        return ("dr_table_sparse" if sparse else "dr_table") if doc_side == "table" else "dr_tower"
    return kind


def _tower(f_in: int, hidden: int, out: int, depth: int) -> float:
    sizes = [f_in] + [hidden] * depth + [out]
    return 2.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def step_flops(s: Shape) -> float:
    """Floating-point operations of one training step of one seed (forward, backward, update)."""
    N, B, K, F, w = s.n_docs, s.batch_size, s.num_negatives, s.feature_dim, s.width
    query = B * _tower(F, s.hidden, w, s.depth)
    docs = N if s.global_objective else B * (K + 1)
    if s.kind == "seq_gr":
        step = query + B * 10 * (2 * s.hidden * 2 * s.hidden * 2 * s.decoder_depth + 2 * s.hidden * s.vocab)
    else:
        doc_side = docs * _tower(F, s.hidden, w, s.depth) if s.kind == "dr_tower" else 0.0
        step = query + doc_side + 2.0 * B * docs * w
    step *= 3.0  # forward and backward
    if s.kind in ("dr_table", "atomic_gr", "seq_gr"):
        step += 10.0 * N * w  # a dense Adam update of the table
    elif s.kind == "dr_table_sparse":
        step += 10.0 * B * (K + 1) * w  # the touched rows only
    return step


def eval_flops(s: Shape) -> float:
    """Floating-point operations of evaluating one seed, every test query against all N documents, and
    of rebuilding a hard-negative pool (every training query against all N documents) as often as it is."""
    return (s.n_test_queries + s.pool_refreshes * s.n_train_queries) * s.n_docs * (2.0 * s.width + 20.0)



def program_key(s: Shape, n_seeds: int) -> tuple:
    """What a group's compiled programs depend on: its shapes, N padded to its bucket (sim.buckets), the
    seeds vmapped together; not the step count (traced). A group whose key a process has seen compiles
    (almost) nothing."""
    from grdr.sim.buckets import bucket

    return dataclasses.replace(s, n_docs=bucket(s.n_docs), steps=0, pool_refreshes=0, corpus_docs=0), n_seeds


def features(s: Shape, n_seeds: int, new_corpora: int, experiment: str, new_program: bool = True) -> dict[str, float]:
    """The time model's inputs for one group (every coefficient of Calibration multiplies one)."""
    corpus = (s.corpus_docs or s.n_docs) * (s.n_train_queries * s.latent_rank + s.n_test_queries * REFERENCE_DRAWS)
    out = {"group": float(new_program), "step": float(s.steps), f"flop_{s.kind}": s.steps * n_seeds * step_flops(s) / 1e9,
           "eval": float(n_seeds), "corpus": new_corpora * corpus / 1e9}
    if experiment in PER_CORPUS_MEASURES:
        out[f"measure_{experiment}"] = new_corpora * (s.n_test_queries * s.n_docs) ** 0.5 / 1e3
    return out


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Seconds per unit of each feature (`features`): per group, per step, per GFLOP of each kind's
    steps, per seed evaluated, per new corpus per G(documents x (training queries x rank + test
    queries x reference draws)) (`corpus`: generating it and its references), and per new corpus per
    1e3 sqrt(test queries x documents) of an experiment's own per-corpus measures (`measure`, per
    experiment of PER_CORPUS_MEASURES)."""

    group: float
    step: float
    flop: tuple[tuple[str, float], ...]
    eval: float
    corpus: float
    measure: tuple[tuple[str, float], ...] = ()
    source: str = ""

    def coefficient(self, name: str) -> float:
        if name.startswith("flop_"):  # a kind not measured: the slowest rate measured
            rates = dict(self.flop)
            return rates.get(name[5:], max(rates.values()))
        if name.startswith("measure_"):
            return dict(self.measure).get(name[8:], 0.0)
        return getattr(self, name)


# Measured (benchmarks/README.md, "Estimator"): `python -m grdr.benchmarks.estimator` fitted to 126 groups: the
# smoke presets of drift_corpus, model_scale and capacity_dim and the quick presets of drift_corpus and
# capacity_dim, each run with an empty compilation cache; the pairs-per-document study; probes of 300
# steps at N = 1e4 and 1e5 and of model_scale at widths 256 and 1,024. All on the 2-core development
# machine on 2026-12-07 while other jobs held its load at 5-10: on a quiet machine expect less. The
# per-group cost is the mean compiling of the first group of each shape in a process (7.0 s).
CALIBRATION = Calibration(group=6.99, step=3.81e-4,
                          flop=(("dr_tower", 0.0163), ("dr_table", 0.00761), ("dr_table_sparse", 0.0468),
                                ("atomic_gr", 0.0490), ("seq_gr", 0.0233)),
                          eval=0.455, corpus=10.6, measure=(("model_scale", 378.0),),
                          source="calibrated on measured runs, under load")


@dataclasses.dataclass(frozen=True)
class GPU:
    """One NVIDIA H100, from the GPU rows of benchmarks/README.md: per-step latency (the small-shape steps
    ran at 15,000-21,000 steps/s), sustained matmul rate (AtomicGR's step at N = 1e6, H = 1,024: 44.7
    TFLOP/s), seconds per score of a full-softmax pass beyond its matmul (AtomicGR at N = 1e6, B = 512,
    H = 128: 16.2 ms a step, less its FLOPs at that rate), seconds per parameter of a dense Adam update
    (DR's 1e6 x 128 table: 1.6 ms a step), and the speed-up of the per-corpus and per-seed work over
    this CPU (building the corpus: 21.3 s at N = 1e7 on the GPU host against 17.8 s at N = 1e6 on the
    CPU, about 8x per document). Compiling is taken as 10 s per group (not measured there)."""

    latency: float = 67e-6
    flops: float = 44.7e12
    per_score: float = 1.45e-11
    per_table_param: float = 1.25e-11
    overhead_speedup: float = 8.0
    compile_seconds: float = 10.0


def _gpu_step(s: Shape, n_seeds: int, gpu: GPU) -> float:
    scores = s.batch_size * (s.n_docs if s.global_objective and s.kind != "seq_gr" else s.num_negatives + 1)
    table = s.n_docs * s.width if s.kind in ("dr_table", "atomic_gr", "seq_gr") else 0.0
    return gpu.latency + n_seeds * (step_flops(s) / gpu.flops + scores * gpu.per_score + table * gpu.per_table_param)


def group_seconds(shape: Shape, n_seeds: int, new_corpora: int, experiment: str,
                  cal: Calibration = CALIBRATION, gpu: GPU | None = None, new_program: bool = True) -> float:
    """Estimated seconds of one group: on the calibrated CPU, or extrapolated to `gpu`."""
    f = features(shape, n_seeds, new_corpora, experiment, new_program)
    scans = n_seeds * eval_flops(shape)
    if gpu is None:
        return sum(v * cal.coefficient(k) for k, v in f.items()) + scans / SCAN_FLOPS_CPU
    overhead = sum(v * cal.coefficient(k) for k, v in f.items() if k in ("eval", "corpus") or k.startswith("measure_"))
    return (gpu.compile_seconds * new_program + shape.steps * _gpu_step(shape, n_seeds, gpu)
            + overhead / gpu.overhead_speedup + scans / SCAN_FLOPS_GPU)





def real_train_seconds(fields: dict, n_seeds: int, compiled: set) -> float:
    """Seconds of training a group of real_scaling points (experiments.work.real_shape_fields) by this
    model, compiling where `compiled` (updated) has not seen its programs; no corpus to build."""
    shape = Shape(**fields)
    key = ("real_scaling", program_key(shape, n_seeds))
    fresh, _ = key not in compiled, compiled.add(key)
    return group_seconds(shape, n_seeds, 0, "real_scaling", new_program=fresh)


def padding_pays(point: Point, pad_to, n_seeds: int, cal: Calibration = CALIBRATION) -> bool:
    """Whether training `point`'s model inside the wider `pad_to` (sim.widths) costs less extra time than
    compiling programs of its own: the padded steps' extra FLOPs at the calibrated rate of its kind, over
    its steps and `n_seeds` seeds, against the calibrated cost of a group's first compile (`cal.group`)."""
    own = Shape.of_point(point)
    wide = dataclasses.replace(own, width=pad_to.dim if own.kind.startswith("dr") else pad_to.hidden,
                               hidden=pad_to.hidden)
    extra = point.train.steps * n_seeds * (step_flops(wide) - step_flops(own)) / 1e9
    return extra * cal.coefficient(f"flop_{own.kind}") <= cal.group

def calibrate(rows, source: str = "", compile_seconds=None, group_seconds: float | None = None) -> Calibration:
    """Coefficients fitted to measured groups: `rows` of (features dict, measured seconds). Non-negative
    least squares, each row weighted by measured seconds ** -WEIGHT_POWER (between equal relative and
    equal absolute errors). With `compile_seconds` (each group's measured compiling, from its records),
    the per-group cost is `group_seconds` (default: their median) and the other coefficients are fitted
    to what remains."""
    import numpy as np
    from scipy.optimize import nnls

    y = np.array([sec for _, sec in rows], float)
    fixed = None
    if compile_seconds is not None:
        fixed = float(np.median(compile_seconds) if group_seconds is None else group_seconds)
        y = np.maximum(y - np.asarray(compile_seconds, float), 1e-3)
    names = sorted({k for f, _ in rows for k in f} - ({"group"} if fixed is not None else set()))
    A = np.array([[f.get(k, 0.0) for k in names] for f, _ in rows], float)
    scale = np.maximum(A.max(axis=0), 1e-30)  # columns of comparable size for the solver
    w = y ** -WEIGHT_POWER
    coef, _ = nnls((A / scale) * w[:, None], y * w)
    coef = dict(zip(names, coef / scale))
    if fixed is not None:
        coef["group"] = fixed
    flop = tuple((k, coef.get(f"flop_{k}", 0.0)) for k in KINDS if f"flop_{k}" in coef)
    measure = tuple((k[8:], v) for k, v in coef.items() if k.startswith("measure_"))
    return Calibration(group=coef.get("group", 0.0), step=coef.get("step", 0.0),
                       flop=flop or (("dr_tower", 1 / 8.0),), eval=coef.get("eval", 0.0),
                       corpus=coef.get("corpus", 0.0), measure=measure, source=source)


DOCS_FLOOR = 4096
"""Document counts padded to a larger N's bucket (`docs_padding`, `reference_padding`) only up to this: past
it a bucket is its own (a larger corpus's padding costs more, and its groups are few and long)."""


def shared_buckets(extra_seconds, sizes, budget: float, floor: int = DOCS_FLOOR) -> dict[int, int]:
    """{N: the bucket its work is padded to} for the corpus sizes `sizes`: from the largest bucket down, each
    bucket (up to `floor`) joins the largest bucket already kept for which `extra_seconds(n, target)`,
    summed over its sizes n, is at most `budget` (the cost of compiling the programs it would share), and
    is kept otherwise. Deterministic in the sizes, so every group of a sweep reads the same partition."""
    from grdr.sim.buckets import bucket

    by_bucket: dict[int, list[int]] = {}
    for n in sorted(set(sizes)):
        by_bucket.setdefault(bucket(n), []).append(n)
    kept: list[int] = []
    target: dict[int, int] = {}
    for b in sorted(by_bucket, reverse=True):
        paying = [t for t in kept if t <= floor and b <= floor
                  and sum(extra_seconds(n, t) for n in by_bucket[b]) <= budget]
        target[b] = max(paying) if paying else b
        if not paying:
            kept.append(b)
    return {n: target[bucket(n)] for n in sizes}


def docs_padding(points_by_n: dict, n_seeds: int, cal: Calibration = CALIBRATION) -> dict[int, int]:
    """{N: the bucket a group of `n_seeds` seeds trains and is evaluated at} for one model's points over a
    sweep's N (one point per N): padding a group to a larger N's bucket (sim.train.train's pad_docs) costs
    its training steps' extra FLOPs at the calibrated rate of its kind, and its evaluations' (test queries,
    the held-out pairs after every compiled call, the learning curve's checkpoints) at the exact scan's
    rate; it is taken where that is less than a compile (`cal.group`: the training, held-out, curve and
    evaluation programs it shares). Row-sparse tables keep their own buckets."""
    from grdr.sim.buckets import bucket
    from grdr.sim.curves import CHECKPOINTS

    def extra(n, target):
        pt = points_by_n[n]
        if pt.train.sparse_table:
            return float("inf")
        own = dataclasses.replace(Shape.of_point(pt), n_docs=bucket(n))  # what it trains at unshared
        wide = dataclasses.replace(own, n_docs=target)
        t = pt.train
        train = t.steps * n_seeds * (step_flops(wide) - step_flops(own)) / 1e9 * cal.coefficient(f"flop_{own.kind}")
        passes = -(-t.steps // t.steps_per_call) * t.heldout + CHECKPOINTS * own.n_test_queries
        scans = n_seeds * (eval_flops(wide) - eval_flops(own) + passes * (target - own.n_docs) * (2.0 * own.width + 20.0))
        return train + scans / SCAN_FLOPS_CPU

    return shared_buckets(extra, points_by_n, cal.group)


def reference_padding(specs, n_corpora: int, cal: Calibration = CALIBRATION) -> dict[int, int]:
    """{N: the bucket of documents its corpora's references (sim.ceilings) are computed at} for corpora of
    the specs' sizes, `n_corpora` of each: the extra documents' test queries x reference draws at the
    calibrated per-corpus rate, against a compile (`cal.group`: the reference's two programs)."""
    from grdr.sim.buckets import bucket

    specs = {s.n_docs: s for s in specs}

    def extra(n, target):
        return n_corpora * (target - bucket(n)) * specs[n].n_test_queries * REFERENCE_DRAWS / 1e9 * cal.corpus

    return shared_buckets(extra, specs, cal.group)

