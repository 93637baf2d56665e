"""real_scaling's trained points: a variant on one corpus of a collection, with the ModelConfig,
TrainConfig and DocidSpec it trains under (the Config's sections, with what the sweep sets per point),
and the flat record config it is stored under.

The record keeps the fields real_scaling records have always had (so their run_ids stay), and adds
what a point sets beyond them only where it does: a scorer other than the dot product (the scorer's
`record_fields`), a pool sampler's settings (the sampler's `record_fields`), and any other setting of
the model's or the training's section that differs from its default (`temperature`, `schedule`,
`weight_decay`, ...), so that two settings are never one run_id.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from grdr.experiments.points import SCHEMA
from grdr.experiments.variants import Variant, variant
from grdr.sim.docids import DocidSpec
from grdr.sim.models import ModelConfig
from grdr.sim.samplers import get_sampler
from grdr.sim.scorers import make_scorer
from grdr.sim.train import TrainConfig

__all__ = ["RealPoint", "real_point"]

# Settings that no record field stands for, because they change no number (progress bars, curve
# checkpoints, steps fused per compiled call) or a field of its own already does (the variant's, the
# scorer's and the sampler's, the pool's size capped at N)
_MODEL_ELSEWHERE = {"kind", "dim", "hidden", "depth", "doc_side", "scorer"}
_TRAIN_ELSEWHERE = {"objective", "sampler", "logq", "num_negatives", "steps", "batch_size", "learning_rate",
                    "hard_pool", "hard_refresh", "denoise_mass", "progress", "curve_points", "steps_per_call"}
_DR_ONLY = {"temperature", "doc_bias"}
_SEQ_GR_ONLY = {"decoder_depth"}


def _changed(section, skip) -> dict[str, Any]:
    """The fields of a section (not in `skip`, nor another scorer's section) set away from their defaults."""
    default = type(section)()
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
            if f.name not in skip and not dataclasses.is_dataclass(getattr(section, f.name))
            and getattr(section, f.name) != getattr(default, f.name)}


@dataclasses.dataclass(frozen=True)
class RealPoint:
    """One trained model of real_scaling. `data` is what the record says about the collection and its
    training pairs (config._collection_fields); `docids.seed` is the corpus seed (the k-means of
    semantic docids and of their features run under it)."""

    model: str
    data: tuple[tuple[str, Any], ...]
    model_cfg: ModelConfig
    train: TrainConfig
    docids: DocidSpec
    docid_dims: int
    index_pairs: bool
    sweep: str
    n_docs: int
    k: int
    seed: int

    @property
    def variant(self) -> Variant:
        return variant(self.model)

    def record(self) -> dict[str, Any]:
        """The flat config stored in the record (and hashed into its run_id)."""
        v, m, t, d = self.variant, self.model_cfg, self.train, self.docids
        model = {"schema": SCHEMA, "model": v.name, "kind": v.kind, "objective": v.objective, "sampler": v.sampler,
                 "logq": v.logq, "dim": m.dim if v.kind == "dr" else m.hidden, "hidden": m.hidden, "depth": m.depth,
                 "doc_side": v.doc_side, "num_negatives": t.num_negatives if t.objective == "local" else 0,
                 "steps": t.steps, "batch_size": t.batch_size, "learning_rate": t.learning_rate,
                 "index_pairs": self.index_pairs, "docids": d.scheme if v.kind == "seq_gr" else "atomic",
                 "docid_vocab": d.vocab, "docid_dims": self.docid_dims}
        if v.kind == "dr" and m.scorer != "dot":
            model.update(make_scorer(m).record_fields())
        if t.objective == "local":
            model.update(get_sampler(t.sampler).record_fields(t))
        skip = _MODEL_ELSEWHERE | (set() if v.kind == "dr" else _DR_ONLY) | (set() if v.kind == "seq_gr" else _SEQ_GR_ONLY)
        model.update(_changed(m, skip))
        model.update(_changed(t, _TRAIN_ELSEWHERE))
        return {**dict(self.data), **model, "sweep": self.sweep, "n_docs": self.n_docs, "k": self.k, "seed": self.seed}

    def group_key(self) -> RealPoint:
        """What the points trained together under one vmap share: everything but the seed."""
        return dataclasses.replace(self, seed=0)


def real_point(cfg, name: str, data: dict, sweep: str, n_docs: int, width: int | None, seed: int) -> RealPoint:
    """The point of variant `name` on the corpus of N = n_docs documents of a collection (`data`, its
    record fields), from the Config's sections: the variant sets the model kind, DR's document side, the
    objective, the proposal and logQ; on a D / H sweep `width` is DR's D or GR's H; the hard-negative
    pool holds at most N documents."""
    v = variant(name)
    sizes = {} if width is None else ({"dim": width} if v.kind == "dr" else {"hidden": width})
    model_cfg = dataclasses.replace(cfg.model, kind=v.kind, doc_side=v.doc_side if v.kind == "dr" else "tower",
                                    **sizes)
    train = dataclasses.replace(cfg.train, objective=v.objective, sampler=v.sampler, logq=v.logq,
                                hard_pool=min(cfg.train.hard_pool, n_docs))
    docids = dataclasses.replace(cfg.docids, seed=data["corpus_seed"])
    return RealPoint(name, tuple(data.items()), model_cfg, train, docids, cfg.docid_dims, cfg.index_pairs, sweep,
                     int(n_docs), cfg.k, int(seed))
