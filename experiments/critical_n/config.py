"""critical_n's configuration and sweep: the protocol's settings (every one stored in each probe
record), the presets, where each search starts and how far its probes are padded, and one point per
search (model, d, seed)."""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Literal

import numpy as np

from grdr.experiments.limit_search import MAXSIM, weller_cubic
from grdr.experiments.points import RecordPoint, require_known, require_seeds
from grdr.sim.free_embedding import MATMULS, all_pairs

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
    seeds: tuple[int, ...] = (42, 0, 1)  # each seed runs its own search (42: LIMIT's draws); n(d) is their median
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
    bucket: int = 1  # DR and MaxSim probes pad n to their search's reach, then up to a multiple of bucket
    gr_bucket: int = 16  # SeqGR's (its steps cost little at these n; its compilations cost more)
    docid_vocab: int = 4  # SeqGR: children per node of its random docid tree
    decoder_depth: int = 1  # SeqGR: residual MLP blocks of its decoder
    matmul: Literal["float32", "tf32"] = "float32"  # DR's score matmuls: "float32", or "tf32" as LIMIT's runs on NVIDIA GPUs computed them
    max_group_seeds: int = 0  # searches of one (model, d) per group, at most (0: all its seeds); 1 makes each seed's search its own task for --executor ray

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
        if self.max_group_seeds < 0:
            raise ValueError(f"Config.max_group_seeds={self.max_group_seeds}: expected 0 (no cap) or a count >= 1")
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
    # Table 6's d up to 16 and the DR partners of the comparisons (2, 3: same width / d; 4, 6, 8: MaxSim's
    # matched parameters); no final sweep (it never changes n*, and cost about a third of the probes);
    # 12 seeds: the comparisons' sign tests decide nothing below about 12 under Holm's correction
    "quick": Config(dims=(2, 3, 4, 6, 8, 12, 16), gr_dims=(2, 3), models=("dr_global", "seq_gr", MAXSIM),
                    seeds=(42,) + tuple(range(11)), sweep_below=0, sweep_above=0),
    # paper: each seed's search its own task (--executor ray), so that SeqGR at width 32 (~6 h a search on a
    # CPU worker, by the dry run) does not run its three seeds in one task
    "paper": Config(dims=tuple(range(2, 33)), gr_dims=(2, 4, 8, 12, 16, 24, 32), maxsim_dims=(2, 3, 4, 6, 8),
                    models=("dr_global", "seq_gr", MAXSIM), n_max=1_024, gr_n_max=512, maxsim_n_max=256,
                    max_group_seeds=1),
}


def start_n(cfg: Config, model: str, d: int) -> int:
    """Where galloping starts: near Weller et al.'s cubic for DR, at a multiple of d for SeqGR and MaxSim."""
    if _KIND[model] == "dr":
        return max(3, round(cfg.start_fraction * float(weller_cubic(d))))
    per_dim = cfg.maxsim_start_per_dim if _KIND[model] == "maxsim" else cfg.gr_start_per_dim
    return max(3, round(per_dim * d))


def pad_n(cfg: Config, kind: str, n: int, reach: int | None = None) -> int:
    """Document slots of a probe's compiled program: n, or its search's reach (gallop_reach) when
    larger, rounded up to the bucket, and for SeqGR no further than the V-ary tree of n's docid
    length (the decoder's shapes depend on the length)."""
    bucket = cfg.gr_bucket if kind == "seq_gr" else cfg.bucket  # MaxSim pads as DR does
    padded = -(-max(n, reach or n) // bucket) * bucket
    if kind == "seq_gr":
        V, L = cfg.docid_vocab, 1
        while V**L < n:
            L += 1
        padded = min(padded, V**L)
    return padded


@lru_cache(maxsize=256)
def _bounds(n: int) -> dict:
    from grdr.theory import sign_rank_bounds

    qrels_MxN = np.zeros((n * (n - 1) // 2, n), np.int8)
    pairs = all_pairs(n)
    qrels_MxN[np.arange(len(pairs))[:, None], pairs] = 1
    b = sign_rank_bounds(qrels_MxN)
    return {"forster": b.forster, "dim_lower": b.dim_lower, "dim_upper": b.dim_upper}


# ---------------------------------------------------------------------------------------------
# Sweep, searches (one per seed) and training of one probe.


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
    if kind == "seq_gr":  # a replicate redraws SeqGR's random docid tree too
        point["docid_seed"] = seed
    if kind == "maxsim":  # only here, so that DR's records keep their run_ids
        point.update(scorer="maxsim", vectors=cfg.vectors, doc_vectors=cfg.doc_vectors)
    return point


def _side_params(p: dict) -> dict:
    """Free parameters of one query and of one document: d for DR, m d and m' d for MaxSim (equal to
    DR's at m d when m = m': the matched-parameter comparison); SeqGR's documents share a decoder."""
    if p["kind"] == "seq_gr":
        return {"params_per_query": p["dim"]}
    return {"params_per_query": p.get("vectors", 1) * p["dim"], "params_per_doc": p.get("doc_vectors", 1) * p["dim"]}


def _search_point(cfg: Config, model: str, d: int, n_max: int, seed: int) -> dict:
    # without docid_seed (its probes carry it), so that the runner groups the seeds of one (model, d)
    drop = ("n_docs", "n_queries", "docid_seed")
    point = {k: v for k, v in _probe_point(cfg, model, d, 0, seed).items() if k not in drop}
    return {**point, "record": "critical", "n_max": n_max, "n0": start_n(cfg, model, d),
            "search": "limit", "sweep_below": cfg.sweep_below, "sweep_above": cfg.sweep_above}


def sweep(cfg: Config):
    """One point per search (model, d, seed): each seed runs its own search, one stored record per probe."""
    for model, d, n_max in _searches(cfg):
        for seed in cfg.seeds:
            yield RecordPoint.of(**_search_point(cfg, model, d, n_max, seed))
