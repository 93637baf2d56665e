"""Calibrated models of the work that the dry run (experiments.cost) does not see as training steps:
critical_n's searches, theory_curves' computations, real_scaling's collections (points that are
records, not trained synthetic models), and model_scale's per-corpus KL floors and GR oracles.

Each is a sum of coefficients (`WorkCalibration`, seconds per unit) times units of work read from the
sweep's points and its Config:
- critical_n: a search per seed, replayed with the searcher itself (experiments.limit_search) on the
  critical n the planner expects (Weller et al.'s cubic for DR, the search's own start for SeqGR and
  MaxSim), so the probes are those the search would make; per probe a constant (its compiling and
  bookkeeping) and min(max_steps, the mean steps a probe of its kind took) steps over its padded n
  (critical_n.config.pad_n), each a fixed cost per kind plus n(n-1)/2 queries x n documents x d
  multiply-adds (DR; MaxSim times m m'; SeqGR its decoder's node states and path sums);
- theory_curves: per record a constant, its family's own work (Monte Carlo samples x negatives or x
  the padded N, the fixed point's negative sets x N x K x L-BFGS iterations, SVDs of M x N) and a
  compile for each program shape (family and the sizes it is compiled at) the process has not seen;
  the coverage family's simulations and the closed forms are inside the constant;
- real_scaling: a trained point is experiments.cost's training model (its Shape and coefficients, on
  the collection's features and training pairs, scaled by a fitted factor) plus scoring its queries
  against its documents; BM25 indexes the documents and scores the queries;
- model_scale's measures, on the one record per corpus that carries them (model_scale.carrier): the
  rank-D KL floor (L-BFGS, restarts x the iteration cap iterations, each a fixed cost plus M x N and
  M x N x D terms) and, for a seed that has them, the oracles (per width a compile, and Adam steps x M x
  (trie nodes x H (4 H + V) + N)).
`calibrate_work` fits the coefficients (non-negative least squares) to measured records; benchmarks/estimator.py runs it and compares, and benchmarks/README.md
("Estimator") says on what and under which load the shipped values were measured.
"""
from __future__ import annotations

import dataclasses
import math

__all__ = ["WorkCalibration", "WORK_CALIBRATION", "RECORD_EXPERIMENTS", "MEASURE_EXPERIMENTS", "real_shape_fields",
           "record_features",
           "record_seconds", "critical_n_gpu_seconds", "probes", "probe_features", "measure_features", "point_measures", "calibrate_work"]

RECORD_EXPERIMENTS = ("critical_n", "theory_curves", "real_scaling")


@dataclasses.dataclass(frozen=True)
class WorkCalibration:
    """Seconds per unit of each work feature (names `experiment.what`), and where they came from;
    `steps` holds the typical steps measured where a run stops before its cap (the mean of a critical_n
    probe of each kind, the median of an oracle fit), taken as min(cap, that)."""

    coefficients: tuple[tuple[str, float], ...]
    steps: tuple[tuple[str, float], ...] = ()
    source: str = ""

    def __getitem__(self, name: str) -> float:
        return dict(self.coefficients).get(name, 0.0)

    def probe_steps(self, kind: str, max_steps: int) -> float:
        return float(min(max_steps, dict(self.steps).get(kind, max_steps)))


# Fitted by `python -m grdr.benchmarks.estimator --records smoke=... quick=... --timings ... --results ...` to
# the smoke and quick presets of critical_n (16 searches), theory_curves (364 records) and real_scaling (43
# groups), and to model_scale's floors and oracles (two runs' first groups, and each timed alone at the smoke
# and quick sizes), all cold, on the 2-core development machine on 2026-12-07 under a load of 6-9 from other
# jobs (benchmarks/README.md, "Estimator"). Compiling is inside the per-probe, per-record and per-width terms.
# model_scale's floor per L-BFGS iteration (floor_iter + floor_cells M N + floor_work M N D) was refitted on
# 2026-12-07 (benchmarks/floor_iteration.py; benchmarks/README.md, "KL floor per iteration") to one start
# timed at four sizes, compile warmed, 3,000 iterations each, under a load of 7-9.4: 0.37 ms (smoke, 32 x 64, D = 2), 2.74 ms (quick,
# 200 x 300, D = 2; model 1.76), 30.9 ms (paper, 500 x 3,000, D = 2; model 35.7) and 47.7 ms (paper, D = 8).
# On a quiet machine the paper size at D = 8 took 13 ms (13.4 s per 1,000 iterations, 26.0 s per 2,000):
# the CPU figure errs long under less load. The earlier single coefficient (31.7 s per 1e9 M N D, fitted at
# the quick size, where the fixed cost dominates) put 380 ms on a paper iteration. The oracle's step was
# refitted the same day to two timings at the paper size (500 x 3,000, 500 steps, compile taken as
# oracle_program's 12.1 s): H = 2 in 264 s (load 8.5) and H = 16 in 919 s (load 9), against 27.6 s and 424 s
# from oracle_program and oracle_work (4.12 s per 1e9, fitted at the quick size) alone: oracle_cells (M x N
# x levels, new) 75.4 s per 1e9 and oracle_work 6.85 s per 1e9, solved from the two.
# critical_n's were refitted on 2026-12-07 (later) with a fixed cost per step beside the multiply-adds, to the
# same smoke and quick records (each search's stored probes at the steps they took) and nine probes timed one
# by one, compile included, at quick's shapes and the paper preset's larger d (`--time-probes`; load 1-2):
# without it the multiply-adds' coefficients carried the per-step overhead of quick's small probes (SeqGR at
# width <= 3: 72.8 s per 1e9), and a SeqGR probe at width 32 over 128 documents, 101 steps in 32.5 s, was
# estimated at 4,000 s a hundred steps. A probe's steps are now the mean of quick's probes per kind (a
# search's time is linear in them; SeqGR's median was 5,759, its mean 10,964). Against the measured seconds
# (benchmarks/README.md, "Estimator"): smoke 1.26, quick 0.69 (the replayed search, as the dry run sees it),
# the timed probes 1.59 (DR at d = 32 over 300 documents 3.5x long: the quick records, under load 6-9, set
# the multiply-adds' cost).
WORK_CALIBRATION = WorkCalibration(
    coefficients=(("critical_n.probe", 1.05), ("critical_n.step_dr", 0.159), ("critical_n.step_maxsim", 0.176),
                  ("critical_n.step_seq_gr", 0.426), ("critical_n.work_dr", 0.404), ("critical_n.work_maxsim", 7.47),
                  ("critical_n.work_seq_gr", 0.589),
                  ("theory_curves.record", 0.136), ("theory_curves.program", 4.24), ("theory_curves.mc", 0.0225),
                  ("theory_curves.fixed_point", 3.12), ("theory_curves.svd", 17.2), ("theory_curves.corpus", 4.51),
                  ("real_scaling.train", 1.73), ("real_scaling.rank", 0.0171), ("real_scaling.bm25", 0.519),
                  ("model_scale.floor_iter", 0.341), ("model_scale.floor_cells", 20.9),
                  ("model_scale.floor_work", 1.34), ("model_scale.oracle_program", 12.1),
                  ("model_scale.oracle_work", 6.85), ("model_scale.oracle_cells", 75.4)),
    steps=(("dr", 2_849.5), ("maxsim", 2_785.7), ("oracle", 5_500.0), ("seq_gr", 10_964.0)),
    source="calibrated on measured runs, under load 6-9")


# --------------------------------------------------------------------------------------------------
# critical_n


def probes(n0: int, n_max: int, critical: float, below: int, above: int) -> list[int]:
    """The n a LIMIT search from n0 probes, in order, when every n up to `critical` is solved and none
    above (experiments.limit_search's own search, replayed)."""
    from grdr.experiments.limit_search import _limit_search

    seen: list[int] = []

    def solved(n):
        if n not in seen:
            seen.append(n)
        return n <= critical

    _limit_search(solved, n0, n_max, 2, below, above)
    return seen


def _expected_critical(record: dict) -> float:
    """The critical n a search's planner expects: Weller et al.'s cubic for DR, the start for the others."""
    from grdr.experiments.limit_search import weller_cubic

    if record["kind"] == "dr":
        return max(3.0, float(weller_cubic(record["dim"])))
    return float(record["n0"])


def _docid_tree(n_pad: int, record: dict) -> tuple[int, int]:
    """(V, prefix nodes) of SeqGR's V-ary docid tree over n_pad leaves."""
    V = record.get("docid_vocab") or 4
    L = max(1, math.ceil(math.log(max(n_pad, 2), V)))
    return V, sum(-(-n_pad // V ** (L - t)) for t in range(L))


def _probe_work(kind: str, n_pad: int, record: dict) -> float:
    """Multiply-adds of one step of a probe over n_pad document slots (all pairs as queries), in 1e9."""
    d = record["dim"]
    queries = n_pad * (n_pad - 1) / 2
    if kind == "seq_gr":
        V, nodes = _docid_tree(n_pad, record)
        return queries * (nodes * d * d + nodes * V * n_pad) / 1e9
    per_pair = d * (record.get("vectors") or 1) * (record.get("doc_vectors") or 1)
    return queries * n_pad * per_pair / 1e9


def probe_features(kind: str, n_pad: int, record: dict, steps: float) -> dict[str, float]:
    """Units of work of one probe of `steps` steps over n_pad document slots: the probe itself (compiling
    and bookkeeping), its steps (`step_<kind>`, in 1e3: a step's fixed cost, which is all of it at small n)
    and their multiply-adds (`work_<kind>`, in 1e9: what grows with n and d)."""
    return {"critical_n.probe": 1.0, f"critical_n.step_{kind}": steps / 1e3,
            f"critical_n.work_{kind}": steps * _probe_work(kind, n_pad, record)}


def _replayed_probes(cfg, group, cal: WorkCalibration):
    """(record, kind, steps, padded n) of every probe the group's searches make when replayed (`probes`),
    each at the typical steps of its kind."""
    from grdr.experiments.critical_n.config import pad_n
    from grdr.experiments.limit_search import gallop_reach

    for point in group:
        r = point.record()
        kind = r["kind"]
        steps = cal.probe_steps(kind, r["max_steps"])
        for n in probes(r["n0"], r["n_max"], _expected_critical(r), r["sweep_below"], r["sweep_above"]):
            yield r, kind, steps, pad_n(cfg, kind, n, gallop_reach(r["n0"], n, r["n_max"]))


def _critical_n(cfg, group, compiled: set, cal: WorkCalibration) -> dict[str, float]:
    out: dict[str, float] = {}
    for r, kind, steps, n_pad in _replayed_probes(cfg, group, cal):
        for name, units in probe_features(kind, n_pad, r, steps).items():
            out[name] = out.get(name, 0.0) + units
    return out


def _probe_scores(kind: str, n_pad: int, record: dict) -> float:
    """Scores one step of a probe computes and normalises: every query against every document slot (MaxSim
    m m' vector pairs each), or SeqGR's logits at its decoder's nodes and every document's path sum."""
    queries = n_pad * (n_pad - 1) / 2
    if kind == "seq_gr":
        V, nodes = _docid_tree(n_pad, record)
        return queries * (nodes * V + n_pad)
    return queries * n_pad * (record.get("vectors") or 1) * (record.get("doc_vectors") or 1)


def critical_n_gpu_seconds(cfg, group, compiled: set, gpu, cal: WorkCalibration = WORK_CALIBRATION) -> float:
    """Seconds of one group of critical_n searches on one GPU (`gpu`: experiments.calibration.GPU), an
    extrapolation from the GPU rows of benchmarks/README.md, not a measurement: the probes the replayed
    search makes (as `_critical_n`), each the mean steps of its kind, a step costing the GPU's per-step
    latency, 6 FLOPs per multiply-add of `_probe_work` (forward and backward) at its sustained rate, and
    `_probe_scores` at its cost per score; a compile per program (kind, d, padded n) not in `compiled`."""
    seconds = 0.0
    for r, kind, steps, n_pad in _replayed_probes(cfg, group, cal):
        key = (kind, r["dim"], r.get("vectors"), r.get("doc_vectors"), n_pad)
        if key not in compiled:
            compiled.add(key)
            seconds += gpu.compile_seconds
        step = (gpu.latency + 6e9 * _probe_work(kind, n_pad, r) / gpu.flops
                + _probe_scores(kind, n_pad, r) * gpu.per_score)
        seconds += steps * step
    return seconds


# --------------------------------------------------------------------------------------------------
# theory_curves


def _theory_record(r: dict) -> tuple[tuple | None, dict[str, float]]:
    """(the program shape a record compiles at, None where it compiles nothing of its own, and its units
    of work) by family (theory_curves.measure)."""
    family = r["family"]
    work = {"theory_curves.record": 1.0}
    key = None
    if family == "deficit":
        if r["mc_samples"]:
            work["theory_curves.mc"] = (r["mc_samples"] * r["num_negatives"] + r["mc_padded_to"]) / 1e6
            key = (family, r["num_negatives"], r["mc_padded_to"])
    elif family == "gradient":
        if r["mc_samples"]:
            work["theory_curves.mc"] = r["mc_samples"] * r["mc_padded_to"] / 1e6
            key = (family, r["num_negatives"], r["mc_padded_to"], r["corrected"])
    elif family == "fixed_point":
        if not (r["sampling"] == "keep" and r["correction"] != "logq_negatives"):  # no closed form: L-BFGS on
            # two sample averages, S and 4 S negative sets per positive (S at least min_samples)
            work["theory_curves.fixed_point"] = (5 * r["min_samples"] * r["n_docs"] * r["num_negatives"]
                                                 * r["max_iter"] / 1e9)
            key = (family, r["n_docs"], r["num_negatives"], r["correction"], r["sampling"])
    elif family == "rank_floor":  # the floor's rank is traced: one program per corpus shape
        M, N = r["n_test_queries"], r["n_docs"]
        work["theory_curves.svd"] = M * N * min(M, N) / 1e9
        key = (family, r["latent_rank"], N, M, r["corpus_seed"])
    elif family == "rank_trie" and r["n_queries"]:
        M, N = r["n_queries"], r["n_docs"]
        work["theory_curves.svd"] = M * N * min(M, N) / 1e9
        key = (family, r["tree_vocab"], r["hidden"])
    return key, work  # deficit_boundary, coverage, closed forms: numpy only


def _theory_curves(cfg, group, compiled: set, cal: WorkCalibration) -> dict[str, float]:
    out: dict[str, float] = {}
    for point in group:
        key, work = _theory_record(point.record())
        if key is not None and key not in compiled:
            compiled.add(key)
            work["theory_curves.program"] = 1.0
            if key[0] == "rank_floor":
                work["theory_curves.corpus"] = key[2] * key[3] * key[1] / 1e6  # the corpus's true log-posterior
        for k, v in work.items():
            out[k] = out.get(k, 0.0) + v
    return out


# --------------------------------------------------------------------------------------------------
# real_scaling


def real_shape_fields(r: dict) -> dict:
    """The fields of experiments.cost's Shape for a trained real_scaling point (its features and training
    pairs, the collection's documents indexed too where index_pairs is set)."""
    kind = r["kind"]
    if kind == "dr":
        kind = "dr_table" if r.get("doc_side") == "table" else "dr_tower"
    pairs = r["n_train_pairs"] + (r["n_docs"] if r.get("index_pairs") else 0)
    return dict(kind=kind, n_docs=r["n_docs"], steps=r["steps"], batch_size=r["batch_size"],
                num_negatives=r["num_negatives"], global_objective=r["objective"] != "local",
                feature_dim=r["feature_dim"], width=r["dim"], hidden=r["hidden"], depth=r["depth"], decoder_depth=1,
                vocab=r.get("docid_vocab") or 2, latent_rank=1, n_train_queries=pairs, n_test_queries=r["n_queries"])


def _real_scaling(cfg, group, compiled: set, cal: WorkCalibration, train_seconds) -> dict[str, float]:
    r = group[0].record()
    out: dict[str, float] = {}
    if r["kind"] == "bm25":
        out["real_scaling.bm25"] = (r["n_docs"] + r["n_queries"]) / 1e3
    elif r["kind"] != "run":
        if train_seconds is None:
            raise ValueError("real_scaling's trained points need train_seconds (experiments.calibration.real_train_seconds)")
        out["real_scaling.train"] = train_seconds(real_shape_fields(r), len(group), compiled)
        out["real_scaling.rank"] = len(group) * r["n_queries"] * r["n_docs"] / 1e3
    return out


_FEATURES = {"critical_n": _critical_n, "theory_curves": _theory_curves}


def record_features(experiment: str, cfg, group, compiled: set, cal: WorkCalibration = WORK_CALIBRATION,
                    train_seconds=None) -> dict[str, float]:
    """Units of work of one group of record points (the seeds of one search or computation), each
    named for its coefficient; `compiled` (the program shapes this process has seen) is updated.
    real_scaling's trained points need `train_seconds(shape_fields, n_seeds, compiled)`: the training
    model's seconds (experiments.calibration.real_train_seconds; this module does not import the cost model,
    which imports it)."""
    if experiment == "real_scaling":
        return _real_scaling(cfg, group, compiled, cal, train_seconds)
    return _FEATURES[experiment](cfg, group, compiled, cal)


def record_seconds(experiment: str, cfg, group, compiled: set, cal: WorkCalibration = WORK_CALIBRATION,
                   train_seconds=None) -> float:
    """Estimated seconds of one group of record points (record_features times the coefficients)."""
    features = record_features(experiment, cfg, group, compiled, cal, train_seconds)
    return sum(v * cal[k] for k, v in features.items())


# --------------------------------------------------------------------------------------------------
# model_scale's per-corpus measures


MEASURE_EXPERIMENTS = ("model_scale",)


def measure_features(records: list[dict], dim: int, cal: WorkCalibration = WORK_CALIBRATION) -> dict[str, float]:
    """Units of work of model_scale's measures in one group (`records`: its points' flat record configs),
    D = `dim` (DR's, whatever model the group trains: a GR record's `dim` is its H). The measures run
    on the records that carry them (model_scale.carrier: one per corpus), each its own: per record with
    floor_restarts > 0, the rank-D KL floor's L-BFGS, restarts x the iteration cap iterations (every
    start ran to it at the quick size), each a fixed cost (`floor_iter`, per 1e3 iterations: scipy's
    bookkeeping and the call into JAX), the M x N softmax (`floor_cells`, in 1e9) and the M x N x D
    products of the factors (`floor_work`, in 1e9); per
    record with oracle widths, a compile per width (`oracle_program`) and each width's Adam steps (the
    median measured, at most the cap) x M x (trie nodes x H (4 H + V) + N) (`oracle_work`, in 1e9) and
    x M x N x the trie's levels (`oracle_cells`, in 1e9: gathering and summing every document's path
    log-probabilities, forward and back, most of a step at the paper size and H = 2)."""
    out: dict[str, float] = {}
    for r in records:
        M, N = r["corpus_n_test_queries"], r["n_docs"]
        iters = r.get("floor_restarts", 0) * r.get("floor_max_iter", 0)
        if iters:
            for name, units in (("floor_iter", iters / 1e3), ("floor_cells", iters * M * N / 1e9),
                                ("floor_work", iters * M * N * dim / 1e9)):
                out[f"model_scale.{name}"] = out.get(f"model_scale.{name}", 0.0) + units
        widths = r.get("oracle_widths") or ()
        if widths:  # per step: every node's state through the decoder block (4 H^2) and its V logits, per query
            V = r.get("docid_vocab") or 10
            nodes = N / max(V - 1, 1) + 1
            steps = cal.probe_steps("oracle", ORACLE_MAX_STEPS)
            out["model_scale.oracle_program"] = out.get("model_scale.oracle_program", 0.0) + len(set(widths))
            out["model_scale.oracle_work"] = out.get("model_scale.oracle_work", 0.0) + sum(
                steps * M * (nodes * h * (4 * h + V) + N) for h in widths) / 1e9
            levels = max(1, math.ceil(math.log(max(N, 2), V)))  # every document's path through the trie
            out["model_scale.oracle_cells"] = (out.get("model_scale.oracle_cells", 0.0)
                                               + len(widths) * steps * M * N * levels / 1e9)
    return out


ORACLE_MAX_STEPS = 20_000  # sim.logprobs.seq_gr_oracle_kl's cap


def point_measures(experiment: str, group, cal: WorkCalibration = WORK_CALIBRATION) -> float:
    """Seconds of an experiment's own measures in one group of trained points (the same in one process
    and as a task of its own: each carrier record measures its own corpus)."""
    if experiment not in MEASURE_EXPERIMENTS:
        return 0.0
    records, dim = [pt.record() for pt in group], group[0].model_cfg.dim
    return sum(v * cal[k] for k, v in measure_features(records, dim, cal).items())


WORK_WEIGHT_POWER = 0.25
"""Rows weigh max(seconds, 1) ** -WORK_WEIGHT_POWER: nearer equal seconds than experiments.cost's 0.5, since
most records take milliseconds (theory_curves' quick preset: 334 records, most under 0.05 s), and at 0.5
their relative errors pulled the fitted totals 12-27% under the measured ones (0.83-1.09 at 0.25)."""


def calibrate_work(rows, source: str = "", steps=()) -> WorkCalibration:
    """Coefficients fitted to measured groups: `rows` of (record_features dict, measured seconds), by
    non-negative least squares weighted by max(seconds, 1) ** -WORK_WEIGHT_POWER."""
    import numpy as np
    from scipy.optimize import nnls

    y = np.array([s for _, s in rows], float)
    names = sorted({k for f, _ in rows for k in f})
    A = np.array([[f.get(k, 0.0) for k in names] for f, _ in rows], float)
    scale = np.maximum(A.max(axis=0), 1e-30)
    w = np.maximum(y, 1.0) ** -WORK_WEIGHT_POWER
    coef, _ = nnls((A / scale) * w[:, None], y * w)
    return WorkCalibration(tuple(zip(names, (coef / scale).tolist())), tuple(steps), source)
