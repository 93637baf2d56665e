"""Every named model variant, with its label and colour: one definition per name.

A variant fixes what a sweep point trains (model kind, objective, proposal, logQ, DR's document
side); the experiments sweep over variant names, the records store the name, and figures and the
report read labels and colours from here. A sampled-softmax DR variant exists for every sampler of
sim.samplers.SAMPLERS, labelled by the sampler itself. This module reads the samplers (JAX) but not
the models or the trainers (flax, optax), so figures use it without loading the training stack.
Adding a variant is one entry in `_build`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from grdr.sim.samplers import SAMPLERS

__all__ = ["Variant", "VARIANTS", "variant", "label", "color", "dr_local", "global_twin", "with_design"]


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    label: str
    kind: str  # "dr" | "atomic_gr" | "seq_gr"
    objective: str  # "global" | "local" | "mle"
    sampler: str = "uniform"
    logq: bool = False
    doc_side: str = "tower"  # DR: MLP tower over document features, or a free "table"

    @property
    def has_doc_table(self) -> bool:
        """A free per-document table (AtomicGR, SeqGR's leaves, DR with doc_side 'table'): its
        training budget is counted in pairs per document."""
        return self.kind != "dr" or self.doc_side == "table"


_SAMPLER_LABELS = {name: sampler.label for name, sampler in SAMPLERS.items()}  # each sampler names itself


def dr_local(sampler: str, logq: bool = False, doc_side: str = "tower") -> str:
    """The name of DR trained with a sampled softmax under `sampler` (and logQ)."""
    return f"dr_{'table_' if doc_side == 'table' else ''}local_{sampler}" + ("_logq" if logq else "")


def _build() -> dict[str, Variant]:
    out = {}
    for side, side_label in (("tower", "DR"), ("table", "DR table")):
        name = "dr_global" if side == "tower" else "dr_table_global"
        out[name] = Variant(name, f"{side_label}, global", "dr", "global", doc_side=side)
        for sampler, words in _SAMPLER_LABELS.items():
            for logq in (False, True):
                name = dr_local(sampler, logq, side)
                out[name] = Variant(name, f"{side_label}, local ({words}{' + logQ' if logq else ''})", "dr", "local",
                                    sampler, logq, side)
    out["atomic_gr"] = Variant("atomic_gr", "GR atomic", "atomic_gr", "global", doc_side="table")
    out["seq_gr"] = Variant("seq_gr", "GR sequential", "seq_gr", "mle", doc_side="table")
    return out


VARIANTS: dict[str, Variant] = _build()

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf")
_MAIN = ("dr_global", "dr_local_uniform", "dr_local_popularity", "dr_local_hard", "dr_local_hard_denoised",
         "dr_table_global", "dr_table_local_uniform", "atomic_gr", "seq_gr", "dr_local_popularity_logq")
_COLORS = dict(zip(_MAIN, _PALETTE))

# Names that some experiment's records carry but that no sweep here trains as a variant (so that,
# say, real_scaling refuses them): a label and a colour only. critical_n's free multi-vector DR
# scored by MaxSim (sim.free_embedding, kind "maxsim").
_LABEL_ONLY = {"dr_maxsim": "DR MaxSim, global"}
_COLORS["dr_maxsim"] = "#006d2c"


def variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown model variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def label(name: str) -> str:
    """The display label of a variant or of a label-only name (the name itself for anything else, e.g. 'bm25')."""
    return VARIANTS[name].label if name in VARIANTS else _LABEL_ONLY.get(name, name)


def color(name: str) -> str | None:
    """A fixed colour for the main variants (None: let matplotlib choose)."""
    return _COLORS.get(name)


def global_twin(name: str) -> str | None:
    """The variant that differs from `name` only in training with the full softmax (DR-local only)."""
    v = variant(name)
    if v.kind != "dr" or v.objective != "local":
        return None
    return "dr_table_global" if v.doc_side == "table" else "dr_global"


# The similarity designs of DR (sim.scorers) as figures and tables name them, from a record's fields.
def _design(df):
    """One display name per scorer design: 'dot', 'cosine', 'bilinear', 'rank-r', 'MaxSim m', or the GR label."""
    scorer = df["scorer"] if "scorer" in df else None
    out = []
    for i, row in enumerate(df.itertuples()):
        if row.kind != "dr":
            out.append(label(row.model))
            continue
        s = "dot" if scorer is None or not isinstance(scorer.iloc[i], str) else scorer.iloc[i]
        if s == "lowrank":
            out.append(f"rank-{int(row.scorer_rank)} bilinear")
        elif s == "maxsim":
            out.append(f"MaxSim m={int(row.vectors)}")
        else:
            out.append({"dot": "dot product", "cosine": "cosine", "bilinear": "full bilinear"}[s])
    return out


def with_design(df):
    """df with `design` (display name), `r` (min(r, D) axis for the bilinear family) and `m` (vectors) columns."""
    df = df.assign(design=_design(df))
    scorer = df["scorer"].fillna("dot") if "scorer" in df else "dot"
    df = df.assign(scorer=scorer)
    dr = df["kind"] == "dr"
    df["m"] = np.where(dr & (df["scorer"] == "maxsim"), df.get("vectors", 1), np.where(dr & (df["scorer"] == "dot"), 1,
                                                                                          np.nan))
    df["r"] = np.where(dr & (df["scorer"] == "lowrank"), df.get("scorer_rank", np.nan), np.nan)
    return df
