"""What the synthetic experiments share: named model variants, cached corpora and docids, and
`train_and_evaluate`, which trains one sweep point for several seeds at once (vmap) and evaluates
each seed. Experiments compose these; no math lives here.
"""
from __future__ import annotations

import dataclasses
import time
from functools import lru_cache

import numpy as np

from sim.corpus import CorpusSpec, make_corpus
from sim.docids import make_docids
from sim.evaluate import evaluate_model
from sim.models import ModelConfig, count_params
from sim.train import TrainConfig, TrainData, model_at, train

__all__ = ["VARIANTS", "LABELS", "corpus_for", "docids_for", "require_known", "train_and_evaluate"]

# name -> (model kind, objective, sampler, logq)
VARIANTS = {
    "dr_local_uniform": ("dr", "local", "uniform", False),
    "dr_local_inbatch": ("dr", "local", "popularity", False),
    "dr_local_hard": ("dr", "local", "hard", False),
    "dr_local_mixed": ("dr", "local", "mixed", False),
    "dr_global": ("dr", "global", "uniform", False),
    "atomic_gr": ("atomic_gr", "global", "uniform", False),
    "seq_gr": ("seq_gr", "mle", "uniform", False),
}

LABELS = {
    "dr_local_uniform": "DR local (uniform)",
    "dr_local_inbatch": "DR local (in-batch)",
    "dr_local_hard": "DR local (hard)",
    "dr_local_mixed": "DR local (mixed)",
    "dr_global": "DR global",
    "atomic_gr": "GR atomic",
    "seq_gr": "GR sequential",
}


def require_known(cfg, field: str, known) -> None:
    """Raise a ValueError naming the entries of cfg.<field> that are not in `known` (an experiment
    Config's check of its model or sampler names)."""
    unknown = [v for v in getattr(cfg, field) if v not in known]
    if unknown:
        raise ValueError(f"Config.{field}: unknown {unknown}; known: {sorted(known)}")


@lru_cache(maxsize=4)
def corpus_for(spec: CorpusSpec):
    return make_corpus(spec)


@lru_cache(maxsize=8)
def docids_for(kind: str, spec: CorpusSpec, vocab: int, seed: int = 0):
    corpus = corpus_for(spec)
    return make_docids(kind, corpus.n_docs, vocab=vocab, features_NxF=corpus.doc_features_NxF, seed=seed)


def train_and_evaluate(spec: CorpusSpec, model_cfg: ModelConfig, train_cfg: TrainConfig, seeds, *,
                       docid_kind: str = "semantic", vocab: int = 10, k: int = 100, beam: int | None = None):
    """Train one point for all `seeds` under vmap; return one (metrics, extra) pair per seed."""
    corpus = corpus_for(spec)
    docids = docids_for(docid_kind, spec, vocab) if model_cfg.kind == "seq_gr" else None
    t0 = time.perf_counter()
    result = train(model_cfg, train_cfg, TrainData.from_corpus(corpus, docids), seeds)
    out = []
    for i, _ in enumerate(seeds):
        model = model_at(result, i)
        t1 = time.perf_counter()
        metrics = evaluate_model(model, corpus, docids=docids, k=k, beam=beam)
        extra = {
            "params": count_params(model),
            "final_loss": float(result.losses_SxT[i, -1]),
            "train_seconds": result.seconds / len(seeds),
            "eval_seconds": time.perf_counter() - t1,
            "compiles": result.compiles,
        }
        out.append((metrics, extra))
    return out, time.perf_counter() - t0


def spec_fields(spec: CorpusSpec, prefix: str = "corpus_") -> dict:
    """The corpus spec as flat record fields (n_docs keeps its contract name)."""
    d = dataclasses.asdict(spec)
    flat = {"n_docs": d.pop("n_docs")}
    flat.update({f"{prefix}{k}": v for k, v in d.items()})
    return flat
