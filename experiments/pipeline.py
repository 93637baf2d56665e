"""The one train-and-evaluate path of the synthetic experiments.

`train_and_evaluate(points, measure)` trains a group of points that differ only in seed (each seed
on its own corpus, all under one vmap), with its learning curve (KL and Success@1 of held-out test
queries at log-spaced checkpoints, sim.curves, which also decides `converged`), evaluates every model
on its corpus (ir_measures metrics and KL to p*), adds the corpus's references (sim.ceilings) and
whatever the experiment's `measure` computes, and returns one (metrics, extra) pair per point. Corpora, docids and references are cached,
since several variants share them. Experiments compose this; no math lives here.

`train_group(points, data)` is its training step alone, for experiments that bring their own data
(real_scaling's collections): a group's points carry their ModelConfig and TrainConfig (`model_cfg`,
`train`) and their seeds, and train as they say.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache

from grdr.experiments.points import Point
from grdr.sim.ceilings import references
from grdr.sim.corpus import Corpus, CorpusSpec, make_corpus
from grdr.sim.curves import converged_from_curve, curve_data, curve_evaluator
from grdr.sim.docids import DocidSpec, Docids, make_docids
from grdr.sim.evaluate import evaluate_model
from grdr.sim.models import ModelConfig, count_params
from grdr.sim.train import TrainData, TrainResult, model_at, train
from grdr.sim.widths import param_count

__all__ = ["corpus_for", "docids_for", "references_for", "train_group", "trained_fields", "train_and_evaluate"]

Measure = Callable[[object, Corpus, Docids | None, Point], dict]


@lru_cache(maxsize=32)
def corpus_for(spec: CorpusSpec) -> Corpus:
    return make_corpus(spec)


@lru_cache(maxsize=32)
def docids_for(spec: DocidSpec, corpus_spec: CorpusSpec) -> Docids:
    corpus = corpus_for(corpus_spec)
    return make_docids(spec.scheme, corpus.n_docs, vocab=spec.vocab, features_NxF=corpus.doc_features_NxF,
                       seed=spec.seed)


@lru_cache(maxsize=64)
def references_for(spec: CorpusSpec, pad_docs: int | None = None) -> dict[str, float]:
    return references(corpus_for(spec), pad_docs=pad_docs)


def train_group(points, data, *, curve=None, pad_to: ModelConfig | None = None,
                pad_docs: int | None = None) -> TrainResult:
    """Train `points` (one group: the same model_cfg and train, their own seeds) together under vmap on
    `data` (one TrainData shared, or one per point), inside the wider `pad_to` where given (sim.widths),
    with the documents padded to the bucket of `pad_docs` where given (sim.train.train)."""
    first = points[0]
    return train(first.model_cfg, first.train, data, [pt.seed for pt in points], curve=curve, pad_to=pad_to,
                 pad_docs=pad_docs)


def trained_fields(result: TrainResult, i: int, model, n_points: int) -> dict:
    """What a record says about the training of the i-th model of a group: its parameters, final loss and
    share of the group's training time."""
    return {"params": count_params(model), "final_loss": float(result.losses_SxT[i, -1]),
            "train_seconds": result.seconds / n_points}


def _converged(result, i: int, steps, kl_C) -> float:
    """The run had converged: its learning curve flattened (sim.curves.converged_from_curve) or, under early
    stopping, its held-out NLL was least after some training but before the last quarter of the steps (more
    steps did not help). A run whose held-out NLL never fell below its value at initialisation (best step 0,
    or NaN) is evaluated untrained and has not converged."""
    if result.best_step_S is not None:
        best = result.best_step_S[i]
        if best <= 0:
            return 0.0
        if best <= 0.75 * steps[-1]:
            return 1.0
    return converged_from_curve(steps, kl_C)


def train_and_evaluate(points: list[Point], measure: Measure | None = None, *, k: int = 100,
                       pad_to: ModelConfig | None = None, pad_docs: int | None = None,
                       reference_docs: int | None = None):
    """Train `points` (one group: same everything but seed) under vmap and evaluate each.

    pad_to: a wider ModelConfig the model trains and is evaluated inside (sim.widths: exactly inert
    padding, so every width of a bucket shares the compiled programs; the same numbers; `params` is
    still the model's own count).
    pad_docs: a corpus size past N whose bucket the documents are padded to in training and evaluation
    (masked as any bucket's padding is, sim.buckets), so that a smaller N shares a larger N's programs.
    reference_docs: likewise for the corpus's references (sim.ceilings), one size for a whole sweep.

    Returns ([(metrics, extra) per point], seconds).
    """
    t0 = time.perf_counter()
    first = points[0]
    specs = [pt.corpus_spec() for pt in points]
    corpora = [corpus_for(s) for s in specs]
    seq = first.variant.kind == "seq_gr"
    docids = [docids_for(first.docids, s) if seq else None for s in specs]
    data = [TrainData.from_corpus(c, d) for c, d in zip(corpora, docids)]
    curve = curve_evaluator(first.variant.kind, curve_data(corpora), docids)
    result = train_group(points, data, curve=curve, pad_to=pad_to, pad_docs=pad_docs)
    counts = {}  # the model's own parameters (not a padded model's); SeqGR's depend on its docids' length

    def n_params(i):
        key = None if docids[i] is None else docids[i].length
        if key not in counts:
            counts[key] = param_count(first.model_cfg, n_docs=corpora[i].n_docs,
                                      feature_dim=corpora[i].doc_features_NxF.shape[1], docids=docids[i])
        return counts[key]
    last_fall_S, total_fall_S = result.heldout_falls_S()
    out = []
    for i, (pt, corpus) in enumerate(zip(points, corpora)):
        model = model_at(result, i)
        t1 = time.perf_counter()
        metrics = evaluate_model(model, corpus, docids=docids[i], k=min(k, corpus.n_docs), pad_docs=pad_docs)
        metrics.update(references_for(specs[i], reference_docs), beta_used=corpus.spec.beta)   # solved under target_eff_docs
        if measure is not None:
            metrics.update(measure(model, corpus, docids[i], pt))
        steps, kl_C = result.curve["step"], result.curve["kl"][i]
        metrics.update(pairs_per_doc=pt.pairs_per_doc, heldout_last_fall=float(last_fall_S[i]),
                       heldout_total_fall=float(total_fall_S[i]), converged=_converged(result, i, steps, kl_C),
                       curve_rise=float(kl_C[-1] - kl_C.min()))   # > 0: the held-out KL rose again (overfitting)
        if result.best_step_S is not None:
            metrics["best_step"] = float(result.best_step_S[i])
        if result.pool_false_negatives_S is not None:
            metrics["pool_false_negatives"] = float(result.pool_false_negatives_S[i])
        trained = trained_fields(result, i, model, len(points))
        extra = {
            "params": n_params(i),
            "final_loss": trained["final_loss"],
            "corpus_seed_used": specs[i].seed,
            "train_seconds": trained["train_seconds"],
            "eval_seconds": time.perf_counter() - t1,
            "compiles": result.compiles,
            # the shape it trained at, where it shared a larger one's programs (benchmarks/estimator.py reads it)
            **({"pad_docs": int(pad_docs)} if pad_docs else {}),
            **({"pad_dim": pad_to.dim, "pad_hidden": pad_to.hidden} if pad_to is not None else {}),
            "curve": {"step": steps.tolist(), "kl": kl_C.tolist(), "success1": result.curve["success1"][i].tolist()},
        }
        out.append((metrics, extra))
    return out, time.perf_counter() - t0
