"""Free embeddings of dimension d solve all k = 2 top-2 queries only up to a critical n(d) that grows like a cubic in d; SeqGR at hidden width d goes further.

MaxSim (`dr_maxsim`) moves n(d) at equal d per vector but not past DR at matched parameters (numbers below).

The free-embedding protocol of Weller et al. 2025 (docs/design.md, section 1, "The combinatorial limit"),
with the settings of their published script (google-deepmind/limit, `free_embedding_experiment.py`)
as defaults, every one a Config field stored in each probe record: every pair of n documents is a
query; free query and document vectors are optimised directly with full-batch, full-softmax
InfoNCE (temperature 0.1, Adam lr 0.01, unit norm after every step) for up to 100,000 steps, early
stopped when the loss has not fallen 1e-5 below its best for 1,000 steps; n is solved when top-2
accuracy (argsort, ties to the lower index) reaches 1, read every 50 steps and on the final tables.
One run per n (seed 42, their initial draws); more seeds are restarts (n is solved
when any solves it). The strict criterion (margin > 0) is stored beside LIMIT's and can drive the
search instead (`success`). Their search: from n0, gallop by +1, +2, +4, ... while solved (or
-1, -2, -4, ... while failed), binary search between the last solved and the first failed n, then
a sweep of n* - 4 ... n* + 5 around the result n*; critical n is n*, and the sweep's outcome and
every non-monotone outcome (a solved n above a failed one) are stored beside it. SeqGR runs the
same search with its free query vector as the hidden state (width d) and a random V-ary docid tree,
trained by maximum likelihood. MaxSim (`dr_maxsim`; sim.free_embedding, kind "maxsim") runs it too:
each query has `vectors` = m free unit vectors of dimension d and each document `doc_vectors` = m',
scored by sum_i max_j <q_i, d_j> / temperature, with DR's loss, optimiser, budget, criterion and
padding; its score matrix is not a rank-(d + 1) form, so the sign-rank bound need not bind it. It is
read two ways: at equal d per vector (m d parameters per query and m' d per document, against DR's
d and d) and at matched parameters (DR at m d, for m = m'); every record carries vectors,
doc_vectors, params_per_query and params_per_doc. The sign-rank bounds of the all-pairs qrel matrix
(theory.sign_rank_bounds) are stored with every probe, and n(d) is fitted by a cubic
(numpy.polyfit, degree 3, least squares on the measured critical n of each d). DR's galloping
starts below Weller et al.'s published cubic (n0 = start_fraction x cubic(d)), SeqGR's at
gr_start_per_dim x d, MaxSim's at maxsim_start_per_dim x d (each with its own n_max); for a
monotone outcome the result does not depend on n0, only the number of probes does (near n*,
outcomes need not be monotone: the boundary is chaotic in the seed).

Records: the sweep has one point per search (model, d; for MaxSim also m, m'), whose record
(`record = "critical"`) holds critical_n (censored when n_max itself was solved), the largest
solved n, the non-monotone count, the probes and the steps they used; while it runs, the search
writes one record per (model, d, n, seed) probe (`record = "probe"`: top-2 accuracy, both success
criteria, margin, steps and why training stopped, loss, bounds and the whole budget), so an
interrupted search resumes at its first unstored probe and the figure can show the whole search.
Probes are padded to buckets of n (`bucket`, also MaxSim's; `gr_bucket`) so that one compiled
program serves several n (results equal the unpadded ones up to float rounding).

Command:  grdr run critical_n --preset quick --out results
Quick preset on 2 cores: 120 s wall (191 s CPU) for 8 searches (6 DR dimensions, 2 SeqGR widths,
75 probes, 1 seed), 2026-12-02, alone (other users' jobs on the machine, load 2.6-4).
Headline (quick, last run): DR's critical n = 3, 4, 9, 29, 50, 81 at d = 2, 3, 4, 8, 12, 16;
Weller et al.'s cubic gives 26.9, 51.7, 82.4 at d = 8, 12, 16 (+7.7%, -3.3%, -1.7%). At d = 8, 29
is not seed 42's luck: 8 of 9 seeds solve 29, 1 of 9 solves 30, none 31; nor float32 against the
TF32 matmuls that LIMIT's runs on NVIDIA GPUs used by default (`--matmul tf32` emulates them: 9, 30,
51, 81 at d = 4, 8, 12, 16). The cubic is a fit over d up to 45, loose at small d: it gives 6.7 at
d = 4, where both arithmetics solve 9 and LIMIT's script's own example starts its search at 11. At d = 16 the sweep
found 81 solved although 79 and 80 failed (non-monotone). SeqGR: 5 and 11 at widths 2 and 3
against DR's 3 and 4 (inconclusive at 2 widths).

MaxSim (m = m' = 2 at d = 2, 3, 4) is in the quick preset, with DR at d = 6 for the matched
comparison at d = 3. That quick preset (7 DR dimensions, 2 SeqGR widths, 3 MaxSim dimensions)
took 100 s (105 s wall) with an empty compilation cache on the quiet machine, 2026-12-02, against
91 s before. Measured there: MaxSim n(d) = 5, 12, 21 at d = 2, 3, 4, against DR's 3, 4, 9 at the
same d (+2, +8, +12: "exceeds" inconclusive over 3 dimensions at one seed, +7.3 [-5.2, +19.8]: the
difference grows with d, so the pairs are not exchangeable samples) and DR's 9, 19, 29 at
d = 4, 6, 8, matched parameters (-4, -7, -8: "exceeds" did not hold, -6.3 [-11.5, -1.2]). One
dimension more changes the matched reading: MaxSim at d = 6 (`--maxsim-dims 2 3 4 6`, 241 s for that
search alone) solves 51 against DR's 50 at d = 12, and over d = 2, 3, 4, 6 the matched verdict is
inconclusive (-4.5 [-10.9, +1.9]); the same-d difference grows to +32. So MaxSim moves n(d) well
above DR's at the same d, and at matched parameters it is below DR at d <= 4 and level at d = 6.
m = m' = 4 (`--vectors 4 --doc-vectors 4`, with other jobs on the machine): 9 at d = 2 (17 s) and
28 at d = 3 (264 s; 32 solved although 29, 30 and 31 failed); at d = 4 the binary search ended at
n* = 69 (47, 63, 67, 69 solved; 70, 71, 79 failed) after 1,486 s of 12 probes (79 alone took 605 s:
its scores are m m' = 16 times DR's at the same d and n), and the sweep around it was stopped
unfinished (its probes are stored, its critical record is not). At matched parameters that is again
below DR: 9, 28, 69 against DR's 29, 50, 81 at d = 8, 12, 16.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Literal

import numpy as np

from experiments.limit_search import (MAXSIM, critical_from, cubic_fit, next_n, non_monotone, series_label,
                                      series_of, weller_cubic)
from experiments.points import RecordPoint, require_known, require_seeds
from sim.free_embedding import MATMULS, STOP_REASONS, FreeEmbeddingConfig, all_pairs, train_free_embedding

NAME = "critical_n"
AXES = ("record", "dim", "n_docs")
_KIND = {"dr_global": "dr", "seq_gr": "seq_gr", MAXSIM: "maxsim"}
_SUCCESS = ("topk", "margin")

@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (2, 3, 4, 6, 8, 12, 16)  # DR's d
    gr_dims: tuple[int, ...] = (2, 4, 8)  # SeqGR's hidden width (its search is costlier)
    maxsim_dims: tuple[int, ...] = (2, 3, 4)  # MaxSim's d per vector
    models: tuple[str, ...] = ("dr_global", "seq_gr")  # which searches run: DR (free embeddings), SeqGR, dr_maxsim
    seeds: tuple[int, ...] = (42,)  # LIMIT's single run; more seeds are restarts (solved when any solves)
    temperature: float = 0.1  # DR's InfoNCE temperature (LIMIT's 0.1)
    learning_rate: float = 0.01  # Adam's learning rate (LIMIT's 0.01)
    max_steps: int = 100_000  # LIMIT's num_iterations
    patience: int = 1_000  # LIMIT's early_stopping_patience (steps)
    min_delta: float = 1e-5  # LIMIT's early_stopping_min_delta (loss)
    eval_every: int = 50  # LIMIT's log_interval: steps between reads of top-2 accuracy
    success: str = "topk"  # what solves a probe: "topk" (LIMIT's argsort top-2) or "margin" (strict margin > 0)
    sweep_below: int = 4  # the final sweep probes n* - sweep_below ... n* + sweep_above (LIMIT: 4 and 5)
    sweep_above: int = 5  # see sweep_below
    n_max: int = 256  # the search stops (censored) when n_max itself is solved
    gr_n_max: int = 64  # SeqGR's n_max
    maxsim_n_max: int = 128  # MaxSim's n_max
    start_fraction: float = 0.9  # DR's galloping starts at n0 = max(3, round(start_fraction * weller_cubic(d)))
    gr_start_per_dim: float = 3.0  # SeqGR's at n0 = max(3, round(gr_start_per_dim * d)) (no published law)
    maxsim_start_per_dim: float = 4.0  # MaxSim's at n0 = max(3, round(maxsim_start_per_dim * d)) (no published law)
    vectors: int = 2  # MaxSim: m, free vectors per query
    doc_vectors: int = 2  # MaxSim: m', free vectors per document
    bucket: int = 8  # DR probes pad n up to a multiple of bucket: one compiled program per bucket (1: no padding)
    gr_bucket: int = 16  # SeqGR's (its steps cost little at these n; its compilations cost more)
    docid_vocab: int = 4  # SeqGR: children per node of its random docid tree
    decoder_depth: int = 1  # SeqGR: residual MLP blocks of its decoder
    matmul: Literal["float32", "tf32"] = "float32"  # DR's score matmuls: "float32", or "tf32" as LIMIT's runs on NVIDIA GPUs computed them

    def __post_init__(self):
        require_known(self, "models", _KIND)
        if self.matmul not in MATMULS:
            raise ValueError(f"Config.matmul={self.matmul!r}: expected one of {MATMULS}")
        require_seeds(self)
        if self.success not in _SUCCESS:
            raise ValueError(f"Config.success={self.success!r}: expected one of {_SUCCESS}")
        for field in ("dims", "gr_dims", "maxsim_dims"):
            if any(d < 1 for d in getattr(self, field)):
                raise ValueError(f"Config.{field}={getattr(self, field)}: every d must be >= 1")
        for field in ("n_max", "gr_n_max", "maxsim_n_max"):
            if getattr(self, field) < 3:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected >= 3")
        for field in ("max_steps", "patience", "eval_every", "bucket", "gr_bucket"):
            if getattr(self, field) < 1:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected >= 1")
        for field in ("sweep_below", "sweep_above"):
            if getattr(self, field) < 0:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected >= 0")
        for field in ("vectors", "doc_vectors"):
            if getattr(self, field) < 1:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected at least 1")
        for field in ("start_fraction", "gr_start_per_dim", "maxsim_start_per_dim", "temperature", "learning_rate"):
            if not math.isfinite(getattr(self, field)) or getattr(self, field) <= 0:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected a finite number > 0")
        if not self.min_delta >= 0:
            raise ValueError(f"Config.min_delta={self.min_delta}: expected >= 0")
        if self.docid_vocab < 2:
            raise ValueError(f"Config.docid_vocab={self.docid_vocab}: expected at least 2")
        if self.decoder_depth < 0:
            raise ValueError(f"Config.decoder_depth={self.decoder_depth}: expected >= 0")


PRESETS = {
    "smoke": Config(dims=(1, 2), gr_dims=(2,), maxsim_dims=(2,), models=("dr_global", "seq_gr", MAXSIM),
                    max_steps=2_000, patience=200, n_max=4, gr_n_max=4, maxsim_n_max=4, decoder_depth=0),
    "quick": Config(dims=(2, 3, 4, 6, 8, 12, 16), gr_dims=(2, 3), models=("dr_global", "seq_gr", MAXSIM)),
    "paper": Config(dims=tuple(range(2, 33)), gr_dims=(2, 4, 8, 12, 16, 24, 32), maxsim_dims=(2, 3, 4, 6, 8),
                    models=("dr_global", "seq_gr", MAXSIM), n_max=1_024, gr_n_max=512, maxsim_n_max=256),
}


def start_n(cfg: Config, model: str, d: int) -> int:
    """Where galloping starts: near Weller et al.'s cubic for DR, at a multiple of d for SeqGR and MaxSim."""
    if _KIND[model] == "dr":
        return max(3, round(cfg.start_fraction * float(weller_cubic(d))))
    per_dim = cfg.maxsim_start_per_dim if _KIND[model] == "maxsim" else cfg.gr_start_per_dim
    return max(3, round(per_dim * d))


def pad_n(cfg: Config, kind: str, n: int) -> int:
    """Document slots of a probe's compiled program: n rounded up to the bucket, and for SeqGR no
    further than the V-ary tree of n's docid length (the decoder's shapes depend on the length)."""
    bucket = cfg.gr_bucket if kind == "seq_gr" else cfg.bucket  # MaxSim pads as DR does
    padded = -(-n // bucket) * bucket
    if kind == "seq_gr":
        V, L = cfg.docid_vocab, 1
        while V**L < n:
            L += 1
        padded = min(padded, V**L)
    return padded


@lru_cache(maxsize=256)
def _bounds(n: int) -> dict:
    from theory import sign_rank_bounds

    qrels_MxN = np.zeros((n * (n - 1) // 2, n), np.int8)
    pairs = all_pairs(n)
    qrels_MxN[np.arange(len(pairs))[:, None], pairs] = 1
    b = sign_rank_bounds(qrels_MxN)
    return {"forster": b.forster, "dim_lower": b.dim_lower, "dim_upper": b.dim_upper}


# ---------------------------------------------------------------------------------------------
# Sweep, adaptive extension and training of one probe.


def _searches(cfg: Config):
    for model in cfg.models:
        dims, n_max = {"dr_global": (cfg.dims, cfg.n_max), "seq_gr": (cfg.gr_dims, cfg.gr_n_max),
                       MAXSIM: (cfg.maxsim_dims, cfg.maxsim_n_max)}[model]
        for d in dims:
            yield model, d, n_max


def _probe_point(cfg: Config, model: str, d: int, n: int, seed: int) -> dict:
    kind = _KIND[model]
    softmax = kind != "seq_gr"  # DR and MaxSim: full-softmax InfoNCE at cfg.temperature
    point = {
        "record": "probe", "model": model, "kind": kind, "protocol": "limit_free_embedding", "dim": d, "hidden": d,
        "n_docs": n, "k": 2, "n_queries": n * (n - 1) // 2,
        "objective": "global" if softmax else "mle", "optimizer": "adam",
        "temperature": cfg.temperature if softmax else None, "learning_rate": cfg.learning_rate,
        "max_steps": cfg.max_steps, "patience": cfg.patience, "min_delta": cfg.min_delta,
        "eval_every": cfg.eval_every, "success": cfg.success, "normalize": "unit",
        "matmul": cfg.matmul if softmax else "float32",
        "docid_vocab": cfg.docid_vocab if kind == "seq_gr" else None,
        "decoder_depth": cfg.decoder_depth if kind == "seq_gr" else None, "seed": seed,
    }
    if kind == "maxsim":  # only here, so that DR's and SeqGR's records keep their run_ids
        point.update(scorer="maxsim", vectors=cfg.vectors, doc_vectors=cfg.doc_vectors)
    return point


def _side_params(p: dict) -> dict:
    """Free parameters of one query and of one document: d for DR, m d and m' d for MaxSim (equal to
    DR's at m d when m = m': the matched-parameter comparison); SeqGR's documents share a decoder."""
    if p["kind"] == "seq_gr":
        return {"params_per_query": p["dim"]}
    return {"params_per_query": p.get("vectors", 1) * p["dim"], "params_per_doc": p.get("doc_vectors", 1) * p["dim"]}


def _search_point(cfg: Config, model: str, d: int, n_max: int) -> dict:
    point = {k: v for k, v in _probe_point(cfg, model, d, 0, None).items() if k not in ("n_docs", "n_queries")}
    return {**point, "record": "critical", "seeds": list(cfg.seeds), "n_max": n_max, "n0": start_n(cfg, model, d),
            "search": "limit", "sweep_below": cfg.sweep_below, "sweep_above": cfg.sweep_above}


def sweep(cfg: Config):
    """One point per search (model, d); `run_group` runs the search, one stored record per probe."""
    for model, d, n_max in _searches(cfg):
        yield RecordPoint.of(**_search_point(cfg, model, d, n_max))


def _train_probe(cfg: Config, points):
    """Train one probe (same model, d and n) for all its seeds; one (metrics, derived) pair per seed."""
    p = points[0]
    fe_cfg = FreeEmbeddingConfig(dim=p["dim"], kind=p["kind"], temperature=cfg.temperature,
                                 learning_rate=p["learning_rate"], max_steps=p["max_steps"], patience=p["patience"],
                                 min_delta=p["min_delta"], eval_every=p["eval_every"], success=p["success"],
                                 docid_vocab=cfg.docid_vocab, decoder_depth=cfg.decoder_depth, matmul=p["matmul"],
                                 vectors=p.get("vectors", 1), doc_vectors=p.get("doc_vectors", 1))
    n = p["n_docs"]
    result = train_free_embedding(fe_cfg, n, [q["seed"] for q in points], pad_to=pad_n(cfg, p["kind"], n))
    bounds = _bounds(n)
    out = []
    for i in range(len(points)):
        stop = STOP_REASONS[int(result.stop_S[i])]
        metrics = {"top2_accuracy": result.accuracy_S[i], "margin": result.margin_S[i],
                   "solved": float(result.solved_S[i]), "solved_topk": float(result.solved_topk_S[i]),
                   "solved_margin": float(result.solved_margin_S[i]), "steps": result.steps_S[i],
                   "stopped_by_patience": float(stop == "patience"), "stopped_by_max_steps": float(stop == "max_steps"),
                   "final_loss": result.loss_S[i], **bounds}
        out.append((metrics, {"params": result.params, "n_padded": result.n_padded, **_side_params(p)}))
    return out, result.seconds


def _search(cfg: Config, point: dict, out) -> tuple[dict[int, bool], dict[int, int], float]:
    """Run one search to its end. With `out`, every probe's records are read from / written to the
    store, so an interrupted search resumes at its first unstored probe. Returns the outcome and the
    steps (summed over seeds) of every probed n."""
    from experiments import store

    outcomes: dict[int, bool] = {}
    steps: dict[int, int] = {}
    seconds = 0.0
    args = (point["n0"], point["n_max"], 2, point["sweep_below"], point["sweep_above"])
    while (n := next_n(outcomes, *args)) is not None:
        probes = [_probe_point(cfg, point["model"], point["dim"], n, s) for s in point["seeds"]]
        todo = [q for q in probes if out is None or not store.exists(out, NAME, q)]
        metrics_by_seed = {}
        if todo:
            results, secs = _train_probe(cfg, todo)
            seconds += secs
            for q, (metrics, derived) in zip(todo, results):
                metrics_by_seed[q["seed"]] = metrics
                if out is not None:
                    store.write_record(out, NAME, q, metrics, secs / len(todo), derived)
        for q in probes:
            if q not in todo:
                rec = store.read_record(store.record_path(out, NAME, store.run_id(NAME, q)))
                metrics_by_seed[q["seed"]] = rec["metrics"]
        outcomes[n] = any(m["solved"] > 0 for m in metrics_by_seed.values())  # any restart
        steps[n] = int(sum(m["steps"] for m in metrics_by_seed.values()))
    return outcomes, steps, seconds


def run_group(cfg: Config, points, out=None):
    """Run the search of each point (one per (model, d)) and return its critical-n record's metrics."""
    results, seconds = [], 0.0
    for point in (p.record() for p in points):
        outcomes, steps, secs = _search(cfg, point, out)
        seconds += secs
        args = (point["n0"], point["n_max"], 2, point["sweep_below"], point["sweep_above"])
        crit = critical_from(outcomes, *args)
        b = _bounds(max(crit, 3))
        solved_n = sorted(n for n, ok in outcomes.items() if ok)
        bumps = non_monotone(outcomes)
        metrics = {"critical_n": crit, "censored": float(crit >= point["n_max"]), "probes": len(outcomes),
                   "max_solved_n": max(solved_n, default=2), "non_monotone": len(bumps),
                   "steps_total": sum(steps.values()), "steps_max": max(steps.values(), default=0),
                   "weller_cubic": float(weller_cubic(point["dim"])), **_side_params(point),
                   **{f"{k}_at_critical": v for k, v in b.items()}}
        results.append((metrics, {"probed_n": sorted(outcomes), "solved_n": solved_n, "non_monotone_n": bumps,
                                  "steps_by_n": {str(n): s for n, s in sorted(steps.items())}}))
    return results, seconds


# ---------------------------------------------------------------------------------------------
# Fit and report.


def _stopped_by(r) -> str:
    if r["solved"] > 0:
        return "solved"
    return "max_steps" if r.get("stopped_by_max_steps", 0) > 0 else "patience"


def _outcome_row(g) -> str:
    """'n' for solved, '~~n~~' for failed, in order of n (any restart solves)."""
    solved = g.groupby("n_docs")["solved"].max()
    return " ".join(f"{int(n)}" if ok > 0 else f"~~{int(n)}~~" for n, ok in solved.items())


def maxsim_comparison(crit) -> dict[str, "pd.DataFrame"]:
    """Per MaxSim curve (m, m'): one row per searched d with MaxSim's critical n, DR's at the same d
    (m x DR's parameters per query, m' x per document), and DR's at m d, the matched-parameter
    comparison (defined when m = m'; NaN where DR did not search m d). Several DR searches at one d
    (other matmuls, say) are averaged, as in the SeqGR comparison."""
    import pandas as pd

    crit = crit.assign(series=series_of(crit))
    dr = crit[crit["model"] == "dr_global"].groupby("dim")["critical_n"].mean()
    out = {}
    for series, g in crit[crit["model"] == MAXSIM].groupby("series"):
        g = g.sort_values("dim")
        m, dm = int(g["vectors"].iloc[0]), int(g["doc_vectors"].iloc[0])
        rows = pd.DataFrame({"dim": g["dim"].astype(int).to_numpy(), "maxsim": g["critical_n"].to_numpy(float),
                             "censored": g["censored"].to_numpy(float), "vectors": m, "doc_vectors": dm})
        rows["dr_same"] = rows["dim"].map(dr).astype(float)
        rows["dr_matched"] = rows["dim"].map(lambda d: dr.get(m * d, np.nan) if m == dm else np.nan).astype(float)
        out[series] = rows
    return out


def run_seconds(df) -> float:
    """Seconds of run time in df: a search's record already sums the seconds of its probes."""
    searches = df[df["record"] == "critical"]
    return float(searches["seconds"].sum() if not searches.empty else df["seconds"].sum())


def findings(df) -> list:
    """DR's n(d) against the published cubic (within 5%), SeqGR's n against DR's at the same width, and
    MaxSim's against DR's at the same d and at matched parameters (DR at m d)."""
    from experiments.report import Finding
    from experiments.stats import Verdict, effect_verdict

    crit = df[df["record"] == "critical"]
    found = []
    for _, r in crit[(crit["model"] == "dr_global") & (crit["dim"] >= 8)].sort_values("dim").iterrows():
        rel = r["critical_n"] / r["weller_cubic"] - 1
        found.append(Finding(NAME, f"DR's critical n at d = {int(r['dim'])} within 5% of Weller et al.'s cubic",
                             Verdict("held" if abs(rel) <= 0.05 else "did not hold", float(rel), float("nan"),
                                     float("nan"), 1, why=f"n = {int(r['critical_n'])} against {r['weller_cubic']:.1f}"),
                             "relative difference", f"cubic {r['weller_cubic']:.1f}",
                             f"one seed, LIMIT's budget ({int(r['probes'])} probes)"))
    both = crit.pivot_table(index="dim", columns="model", values="critical_n")
    if {"dr_global", "seq_gr"} <= set(both.columns):
        diff = (both["seq_gr"] - both["dr_global"]).dropna()
        found.append(Finding(NAME, "SeqGR's critical n exceeds DR's at the same width",
                             effect_verdict(diff.to_numpy()), "SeqGR minus DR, one pair per width",
                             "sign-rank bounds (uninformative)", f"{len(diff)} widths (each width one pair)"))
    for series, rows in maxsim_comparison(crit).items():
        name = series_label(series)
        m, dm = int(rows["vectors"].iloc[0]), int(rows["doc_vectors"].iloc[0])
        same = rows.dropna(subset=["dr_same"])
        if not same.empty:
            found.append(Finding(NAME, f"{name}: critical n exceeds DR's at the same d",
                                 effect_verdict((same["maxsim"] - same["dr_same"]).to_numpy()),
                                 "MaxSim minus DR, one pair per d", "DR at the same d",
                                 f"{len(same)} dimensions (each one pair, one seed); MaxSim has {m} x DR's "
                                 f"parameters per query, {dm} x per document"))
        matched = rows.dropna(subset=["dr_matched"])
        if not matched.empty:
            found.append(Finding(NAME, f"{name}: critical n exceeds DR's at matched parameters (DR at {m} d)",
                                 effect_verdict((matched["maxsim"] - matched["dr_matched"]).to_numpy()),
                                 f"MaxSim at d minus DR at {m} d, one pair per d", f"DR at {m} d",
                                 f"{len(matched)} dimensions (each one pair, one seed)"))
    return found


def report(df) -> str:
    """Report section: critical n per d for each model against the published cubic, every probe with
    the budget it used, the cubic fit, the bounds, non-monotone outcomes and verdicts."""
    from experiments.report import paired_verdict

    df = df.assign(series=series_of(df))  # MaxSim: one curve per (m, m')
    LABELS = {s: series_label(s) for s in set(df["series"])}

    crit = df[df["record"] == "critical"].sort_values(["series", "dim"])
    probes = df[df["record"] == "probe"].sort_values(["series", "dim", "n_docs", "seed"])
    lines = [
        "Prediction: with free embeddings (no encoder), DR of dimension d solves all k = 2 top-2 queries on",
        "n documents only up to a critical n(d), growing roughly like a cubic in d (Weller et al. 2025 fit",
        "n(d) = -10.53 + 4.03 d + 0.052 d^2 + 0.0037 d^3); SeqGR at hidden width d is not bound by d alone",
        "(its trie gives each prefix node its own log-normalizer), so its critical n should be larger.",
        "MaxSim (m free vectors per query, m' per document, each of dimension d; s = sum_i max_j <q_i, d_j>)",
        "has a score matrix not bounded by rank d + 1: does it move n(d)? Compared at equal d per vector",
        "(m x DR's parameters per query) and at matched parameters (DR at m d, for m = m').",
        "Protocol: LIMIT's search (gallop +1, +2, +4, ..., binary search, sweep n*-4 ... n*+5); critical n = n*.",
        "",
        "| model | d | critical n | Weller et al. cubic | largest solved n | non-monotone | probes "
        "| steps (total, max) | censored (n_max solved) | Forster bound at n | d lower bound at n |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in crit.iterrows():
        lines.append(f"| {LABELS[r['series']]} | {int(r['dim'])} | {int(r['critical_n'])} | "
                     f"{float(weller_cubic(r['dim'])):.1f} | {int(r['max_solved_n'])} | {int(r['non_monotone'])} | "
                     f"{int(r['probes'])} | {int(r['steps_total']):,}, {int(r['steps_max']):,} | "
                     f"{'yes' if r['censored'] else 'no'} | {r['forster_at_critical']:.2f} | "
                     f"{int(r['dim_lower_at_critical'])} |")
    fits = cubic_fit(crit, by="series")
    lines.append("")
    for model, c in fits.items():
        lines.append(f"- Cubic fit (numpy.polyfit, degree 3) for {LABELS[model]}: "
                     f"n(d) = {c[3]:+.2f} {c[2]:+.3f} d {c[1]:+.4f} d^2 {c[0]:+.5f} d^3")
    if not probes.empty:
        for (model, d), g in probes.groupby(["series", "dim"]):
            outcomes = g.groupby("n_docs")["solved"].max().gt(0).to_dict()
            bumps = non_monotone({int(k): v for k, v in outcomes.items()})
            note = f"; NON-MONOTONE: solved above a failure at n = {bumps}" if bumps else ""
            lines.append(f"- {LABELS[model]}, d = {int(d)}: probed n (struck out = failed): "
                         f"{_outcome_row(g)}{note}")
        solved = probes[probes["solved"] > 0]
        lines.append(f"- Margin reached by solved probes: median {solved['margin'].median():.4f} (scores at "
                     "temperature 0.1 for DR and MaxSim, log-probabilities for SeqGR); Adam, unit norm after each "
                     "step.")
        differ = probes[probes["solved_topk"] != probes["solved_margin"]]
        lines.append(f"- Probes where LIMIT's top-2 (argsort) and the strict margin > 0 disagree: {len(differ)} "
                     f"of {len(probes)} (the search used `{probes['success'].iloc[0]}`).")
        budget = probes.drop_duplicates(["max_steps", "patience", "min_delta", "eval_every"])
        for _, b in budget.iterrows():
            lines.append(f"- Budget: up to {int(b['max_steps']):,} steps, early stop after {int(b['patience']):,} "
                         f"steps without the loss falling {b['min_delta']:g} below its best, top-2 read every "
                         f"{int(b['eval_every'])} steps; Adam lr {b['learning_rate']:g}; "
                         f"seeds {sorted(set(int(s) for s in probes['seed']))}.")
        lines += ["", "Every probe and the budget it used:", "",
                  "| model | d | n | seed | solved (top-2 / margin) | top-2 accuracy | margin | steps used "
                  "| stopped by |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for _, r in probes.iterrows():
            lines.append(f"| {LABELS[r['series']]} | {int(r['dim'])} | {int(r['n_docs'])} | "
                         f"{int(r['seed'])} | {'yes' if r['solved_topk'] else 'no'} / "
                         f"{'yes' if r['solved_margin'] else 'no'} | {r['top2_accuracy']:.4f} | {r['margin']:+.3f} | "
                         f"{int(r['steps']):,} of {int(r['max_steps']):,} | {_stopped_by(r)} |")
        lines.append("")
    # Theorem-level check: d below the sign-rank lower bound cannot solve; probes must agree.
    bad = probes[(probes["solved"] > 0) & (probes["dim"] < probes["dim_lower"]) & (probes["kind"] == "dr")]
    lines.append(f"- DR probes solved below the sign-rank lower bound on d: {len(bad)} (a theorem says 0).")
    multi = probes[(probes["solved"] > 0) & (probes["dim"] < probes["dim_lower"]) & (probes["kind"] == "maxsim")]
    if (probes["kind"] == "maxsim").any():
        lines.append(f"- MaxSim probes solved below DR's sign-rank lower bound on d: {len(multi)} (allowed: its "
                     "score matrix is not a rank-d bilinear form).")
    both = crit.pivot_table(index="dim", columns="model", values="critical_n") if not crit.empty else crit
    if {"dr_global", "seq_gr"} <= set(both.columns):
        pairs = both[["seq_gr", "dr_global"]].dropna()
        diff = (pairs["seq_gr"] - pairs["dr_global"]).to_numpy()
        lines.append(f"- SeqGR's critical n minus DR's at the same d (d = {list(pairs.index)}): "
                     f"{paired_verdict(diff)} (a censored SeqGR search counts at its n_max, which understates it).")
    lines += _maxsim_lines(crit, paired_verdict)
    return "\n".join(lines)


def _maxsim_lines(crit, paired_verdict) -> list[str]:
    """The MaxSim rows of the report: its critical n beside DR's at the same d and at m d, with the
    parameters per query and per document of each, and the paired verdicts over d."""
    lines = []
    for series, rows in maxsim_comparison(crit).items():
        m, dm = int(rows["vectors"].iloc[0]), int(rows["doc_vectors"].iloc[0])
        lines += ["", f"{series_label(series)} against DR (one seed; parameters per query / per document):", "",
                  "| d | MaxSim critical n | params | DR at d | params | MaxSim - DR | DR at m d (matched) | params "
                  "| MaxSim - DR at m d |", "|---|---|---|---|---|---|---|---|---|"]
        for _, r in rows.iterrows():
            d = int(r["dim"])
            cens = " (n_max solved)" if r["censored"] else ""

            def n(x):
                return "not searched" if x != x else f"{x:g}"

            def gap(x):
                return "" if x != x else f"{r['maxsim'] - x:+g}"

            matched = f"{n(r['dr_matched'])} | {m * d} / {m * d}" if m == dm else "undefined (m != m') | "
            lines.append(f"| {d} | {r['maxsim']:g}{cens} | {m * d} / {dm * d} | {n(r['dr_same'])} | {d} / {d} | "
                         f"{gap(r['dr_same'])} | {matched} | {gap(r['dr_matched'])} |")
        lines.append("")
        for col, what in (("dr_same", "at the same d"), ("dr_matched", f"at matched parameters (DR at {m} d)")):
            pairs = rows.dropna(subset=[col])
            if not pairs.empty:
                lines.append(f"- {series_label(series)}: critical n minus DR's {what} (d = {list(pairs['dim'])}): "
                             f"{paired_verdict((pairs['maxsim'] - pairs[col]).to_numpy())} (a censored MaxSim "
                             "search counts at its n_max, which understates it).")
    return lines
