"""Typed sweep points and the one place where a point becomes a record's flat config.

An experiment's Config has nested sections (`corpus: CorpusSpec`, `model: ModelConfig`,
`train: TrainConfig`, `docids: DocidSpec`) that the command line overrides as `--corpus.beta`,
`--train.steps` and so on, plus the axes it sweeps (`--n-docs`, `--models`, `--seeds`, ...). Its
`sweep(cfg)` yields `Point`s: each is one trained model, fully resolved. A point's `seed` seeds the
initialisation and the sampling and also varies the corpus (the corpus of a point is
`corpus.seed` and `seed` hashed together), so intervals across seeds include variation across
corpora. `Point.record()` flattens a point into the record's `config` (the names of docs/design.md,
section 3); its run_id hashes that flat config, which starts with the record schema version.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from grdr.experiments.variants import Variant, variant
from grdr.sim.corpus import CorpusSpec
from grdr.sim.docids import DocidSpec
from grdr.sim.models import ModelConfig
from grdr.sim.samplers import get_sampler
from grdr.sim.scorers import make_scorer
from grdr.sim.train import TrainConfig

__all__ = ["SCHEMA", "Point", "RecordPoint", "corpus_seed", "corpus_spec_of", "require_known", "require_unswept", "require_seeds", "point"]

SCHEMA = 3  # 2: nested configs, per-seed corpora, separate query/document feature noise, ceilings;
# 3: the standard logQ rule (every candidate corrected), accidental hits kept, hard and mixed proposals as
# i.i.d. mixtures with a uniform component; references renamed (label_accuracy, reference_* with Monte Carlo
# SEs), KL floors to convergence, learning curves: old records rerun

_TRAIN_RECORDED = ("steps", "batch_size", "learning_rate", "schedule", "final_lr_fraction", "weight_decay", "optimizer",
                   "heldout")
_CORPUS_SKIPPED = ("n_docs", "seed", "chunk_size")  # n_docs keeps its contract name; chunk_size changes no number


def corpus_seed(base: int, seed: int) -> int:
    """The corpus seed of run `seed` on a corpus configured with seed `base` (distinct pairs give
    distinct corpora with overwhelming probability)."""
    return int(np.random.SeedSequence([int(base), int(seed)]).generate_state(1)[0])


@dataclasses.dataclass(frozen=True)
class Point:
    """One trained model of a sweep: a variant on a corpus, with its model and training configs.

    `extra` holds experiment-specific record fields (name, value) that are part of the point's
    identity (for example model_scale's tower width).
    """

    model: str
    corpus: CorpusSpec
    model_cfg: ModelConfig
    train: TrainConfig
    docids: DocidSpec
    seed: int
    extra: tuple[tuple[str, Any], ...] = ()
    seed_extra: tuple[tuple[str, Any], ...] = ()
    """Record fields that differ between the seeds of one group (model_scale's oracles, which run on
    the first seeds only): part of the record and its run_id, not of the group key, so those seeds
    still train with the others under one vmap (one compiled program, not one per subset of seeds)."""

    @property
    def variant(self) -> Variant:
        return variant(self.model)

    def corpus_spec(self) -> CorpusSpec:
        """The corpus this point trains and evaluates on (its own for every seed)."""
        return dataclasses.replace(self.corpus, seed=corpus_seed(self.corpus.seed, self.seed))

    def record(self) -> dict[str, Any]:
        """The flat config stored in the record (and hashed into its run_id)."""
        v, m, t = self.variant, self.model_cfg, self.train
        flat: dict[str, Any] = {"schema": SCHEMA, "model": v.name, "kind": v.kind, "objective": t.objective,
                                "sampler": t.sampler if t.objective == "local" else "none",
                                "logq": t.logq and t.objective == "local",
                                "num_negatives": t.num_negatives if t.objective == "local" else 0}
        flat.update(dim=m.dim if v.kind == "dr" else m.hidden, hidden=m.hidden, depth=m.depth)
        if v.kind == "dr":
            flat.update(doc_side=m.doc_side, doc_bias=m.doc_bias, temperature=m.temperature)
            if m.scorer != "dot":  # absent at the default, so dot-product records keep their run_ids
                flat.update(make_scorer(m).record_fields())
        if v.kind == "seq_gr":
            flat.update(decoder_depth=m.decoder_depth, docids=self.docids.scheme, docid_vocab=self.docids.vocab,
                        docid_seed=self.docids.seed)
        else:
            flat["docids"] = "atomic"
        if t.objective == "local":
            flat["accidental_hits"] = t.accidental_hits
        if t.objective == "local":  # the proposal's own settings (a pool's size): absent where it reads none
            flat.update(get_sampler(t.sampler).record_fields(t))
        flat.update({k: getattr(t, k) for k in _TRAIN_RECORDED})
        if t.schedule == "rsqrt":
            flat["decay_steps"] = t.decay_steps
        if t.early_stop:  # only where set: records trained without it keep their run_ids
            flat["early_stop"] = True
        flat["sparse_table"] = t.sparse_table
        flat["n_docs"] = self.corpus.n_docs
        flat.update({f"corpus_{f.name}": getattr(self.corpus, f.name) for f in dataclasses.fields(CorpusSpec)
                     if f.name not in _CORPUS_SKIPPED})
        flat["corpus_seed"] = self.corpus.seed
        flat.update(dict(self.extra))
        flat.update(dict(self.seed_extra))
        flat["seed"] = self.seed
        return flat

    def group_key(self) -> Point:
        """What the points trained together under one vmap share: everything but the seed (and the
        fields that differ by seed, `seed_extra`)."""
        return dataclasses.replace(self, seed=0, seed_extra=())

    @property
    def pairs_per_doc(self) -> float:
        return self.train.steps * self.train.batch_size / self.corpus.n_docs


def corpus_spec_of(record) -> CorpusSpec:
    """The corpus a stored record trained and evaluated on (the inverse of Point.record for the corpus)."""
    fields = {f.name for f in dataclasses.fields(CorpusSpec)} - set(_CORPUS_SKIPPED)
    return CorpusSpec(n_docs=int(record["n_docs"]), seed=int(record["corpus_seed_used"]),
                      **{f: record[f"corpus_{f}"] for f in fields})


def point(name: str, cfg, n_docs: int, seed: int, *, pairs_per_doc: float = 0.0, extra=(), seed_extra=(),
          corpus_overrides=None, sparse_table: bool = False, **model_overrides) -> Point:
    """The point of variant `name` on N = n_docs documents, from an experiment Config's sections.

    The variant sets the model kind, DR's document side, the objective, the proposal and logQ;
    `model_overrides` replace ModelConfig fields (a swept dimension or width) and `corpus_overrides`
    CorpusSpec fields (a swept rank or popularity); with
    pairs_per_doc > 0 the steps grow to give every document at least that many training pairs
    (train.steps stays the minimum), for every variant alike, so comparisons at one N are matched.
    sparse_table asks for row-sparse table updates (sim.sparse_train) where they apply, a free table under
    the local objective; the other variants train dense (a full softmax touches every row).
    """
    v = variant(name)
    corpus = dataclasses.replace(cfg.corpus, n_docs=n_docs, **(corpus_overrides or {}))
    if corpus.latent_rank > corpus.feature_dim:  # the models read features: an F-dim map of the R-dim latents
        raise ValueError(f"CorpusSpec.latent_rank={corpus.latent_rank}: expected at most the feature dimension "
                         f"F = {corpus.feature_dim} (--corpus.feature-dim): the models see the latents only through "
                         f"an F-dimensional map of them, which cannot carry R > F dimensions")
    model_cfg = dataclasses.replace(cfg.model, kind=v.kind, doc_side=v.doc_side if v.kind == "dr" else "tower",
                                    **model_overrides)
    steps = cfg.train.steps
    if pairs_per_doc > 0:
        steps = max(steps, math.ceil(pairs_per_doc * n_docs / cfg.train.batch_size))
    train = dataclasses.replace(cfg.train, objective=v.objective, sampler=v.sampler, logq=v.logq, steps=steps)
    if train.heldout >= corpus.n_train_queries:  # held out of the training queries: some must stay to train on
        raise ValueError(f"TrainConfig.heldout={train.heldout}: needs --corpus.n-train-queries above it (got "
                         f"{corpus.n_train_queries:,}): the held-out queries are taken from the training queries")
    if sparse_table and v.kind == "dr" and v.doc_side == "table" and v.objective == "local":
        train = dataclasses.replace(train, sparse_table=True)
    return Point(name, corpus, model_cfg, train, cfg.docids, int(seed), tuple(extra), tuple(seed_extra))


def require_known(cfg, field: str, known: Iterable[str], allow_empty: bool = False) -> None:
    """Raise a ValueError naming the entries of cfg.<field> that are not in `known` (or none at all)."""
    known = list(known)
    unknown = [v for v in getattr(cfg, field) if v not in known]
    if unknown:
        raise ValueError(f"Config.{field}: unknown {unknown}; known: {sorted(known)}")
    if not getattr(cfg, field) and not allow_empty:
        raise ValueError(f"Config.{field}: empty; choose at least one of {sorted(known)}")


def require_seeds(cfg) -> None:
    seeds = list(cfg.seeds)
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"Config.seeds={tuple(seeds)}: expected distinct non-negative integers, at least one")


def require_unswept(section, name: str, fields: dict[str, str]) -> None:
    """Raise if a section field that the sweep sets was changed: fields maps it to what sets it."""
    default = type(section)()
    for field, by in fields.items():
        if getattr(section, field) != getattr(default, field):
            raise ValueError(f"Config.{name}.{field}={getattr(section, field)!r} is set by {by} for every point; "
                             f"set that instead")


@dataclasses.dataclass(frozen=True)
class RecordPoint:
    """A sweep point that is its flat record config (experiments that do not train on a synthetic
    corpus: critical_n's searches, real_scaling's collections)."""

    items: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, **fields) -> RecordPoint:
        return cls(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in fields.items()))

    def record(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.items}

    def __getitem__(self, key: str):
        return self.record()[key]

    @property
    def seed(self):
        return self.record().get("seed")

    def group_key(self) -> tuple:
        return tuple((k, v) for k, v in self.items if k != "seed")
