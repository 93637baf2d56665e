"""With K fixed, DR trained with local normalization degrades faster as N grows than the same DR trained with global normalization, and than GR.

Optimization drift (DESIGN.md section 1): a sampled softmax with K negatives sees the documents
that decide the top-1 with probability about K k / N, and its normalizer is biased by about
log((N-1)/K), so its fixed point drifts from p* as the corpus grows; the full softmax (DR-global,
AtomicGR) and SeqGR's exactly normalised factorisation do not sample at all.

Grid: N x model (DR-local with uniform, in-batch and hard negatives; DR-global; AtomicGR; SeqGR
with semantic docids) x seed, with D >= R so that capacity is not the limit.

Command:  grdr run drift_corpus --preset quick --out results
Quick preset on 2 cores: 232 s for 54 runs (N = 1e3, 1e4, 1e5 x 6 models x 3 seeds), 2026-11-27,
within `grdr demo --jobs 1`.
Last headline (quick): Success@1 at N = 1e3 -> 1e5: DR-global 0.198 -> 0.037, DR-local uniform
0.190 -> 0.026, in-batch 0.176 -> 0.024, hard 0.006 -> 0.000, AtomicGR 0.038 -> 0.000, SeqGR
0.024 -> 0.001; KL(p*||model) DR-global 0.158 -> 0.170, DR-local uniform 0.190 -> 0.206 nats. The
local-versus-global difference in degradation was inconclusive at this budget (3 seeds); GR is
undertrained at quick (300 steps of 64 pairs) and sits near the floor.
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from experiments.common import VARIANTS, require_known, spec_fields, train_and_evaluate
from sim.corpus import CorpusSpec
from sim.models import ModelConfig
from sim.train import TrainConfig

NAME = "drift_corpus"


@dataclasses.dataclass(frozen=True)
class Config:
    n_docs: tuple[int, ...] = (1_000, 10_000, 100_000)
    models: tuple[str, ...] = ("dr_local_uniform", "dr_local_inbatch", "dr_local_hard", "dr_global", "atomic_gr", "seq_gr")
    seeds: tuple[int, ...] = (0, 1, 2)
    latent_rank: int = 8
    dim: int = 16
    hidden: int = 32
    depth: int = 1
    num_negatives: int = 16
    steps: int = 500
    batch_size: int = 128
    learning_rate: float = 3e-3
    n_train_queries: int = 20_000
    n_test_queries: int = 500
    beta: float = 12.0
    zipf: float = 0.0
    docid_vocab: int = 10
    corpus_seed: int = 0

    def __post_init__(self):
        require_known(self, "models", VARIANTS)
        if self.dim < self.latent_rank:
            raise ValueError(f"Config.dim={self.dim} < latent_rank={self.latent_rank}: capacity would confound drift")


PRESETS = {
    "smoke": Config(n_docs=(200, 800), seeds=(0, 1), steps=60, n_train_queries=1_000, n_test_queries=50, hidden=16,
                    latent_rank=4, dim=8, docid_vocab=6),
    "quick": Config(n_train_queries=10_000, n_test_queries=300, steps=300, batch_size=64),
    "paper": Config(n_docs=(1_000, 10_000, 100_000, 1_000_000), seeds=(0, 1, 2, 3, 4), latent_rank=16, dim=32, hidden=64,
                    depth=2, steps=4_000, n_train_queries=100_000, n_test_queries=2_000),
}


def corpus_spec(cfg: Config, n_docs: int) -> CorpusSpec:
    return CorpusSpec(n_docs=n_docs, n_train_queries=cfg.n_train_queries, n_test_queries=cfg.n_test_queries,
                      latent_rank=cfg.latent_rank, beta=cfg.beta, zipf=cfg.zipf, seed=cfg.corpus_seed)


def sweep(cfg: Config):
    """One flat record config per (N, model, seed)."""
    for n in cfg.n_docs:
        for name in cfg.models:
            kind, objective, sampler, logq = VARIANTS[name]
            for seed in cfg.seeds:
                yield {
                    "model": name, "kind": kind, "objective": objective, "sampler": sampler, "logq": logq,
                    "dim": cfg.dim if kind == "dr" else cfg.hidden, "hidden": cfg.hidden, "depth": cfg.depth,
                    "num_negatives": cfg.num_negatives if objective == "local" else 0,
                    "steps": cfg.steps, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
                    "docids": "semantic" if kind == "seq_gr" else "atomic", "docid_vocab": cfg.docid_vocab,
                    **spec_fields(corpus_spec(cfg, n)), "seed": seed,
                }


def run_point(cfg: Config, points):
    p = points[0]
    spec = corpus_spec(cfg, p["n_docs"])
    model_cfg = ModelConfig(kind=p["kind"], dim=p["dim"], hidden=p["hidden"], depth=p["depth"])
    train_cfg = TrainConfig(objective=p["objective"], sampler=p["sampler"], logq=p["logq"],
                            num_negatives=max(p["num_negatives"], 1), steps=p["steps"], batch_size=p["batch_size"],
                            learning_rate=p["learning_rate"])
    return train_and_evaluate(spec, model_cfg, train_cfg, [q["seed"] for q in points],
                              docid_kind=p["docids"], vocab=p["docid_vocab"])


def report(df) -> str:
    """Report section: Success@1 and KL tables, and a verdict per comparison at the largest N."""
    from experiments.common import LABELS
    from experiments.report import mean_table, paired_verdict

    df = df.assign(label=df["model"].map(LABELS))
    n_lo, n_hi = df["n_docs"].min(), df["n_docs"].max()

    def drop(model, value="Success@1"):
        d = df[df["model"] == model].pivot_table(index="seed", columns="n_docs", values=value)
        return (d[n_lo] - d[n_hi]) if {n_lo, n_hi} <= set(d.columns) else pd.Series(dtype=float)

    lines = [
        "Prediction: with K fixed, the Success@1 of DR trained with a sampled softmax falls more from the",
        f"smallest to the largest N (here {n_lo:,} to {n_hi:,}) than that of DR-global, AtomicGR and SeqGR.",
        "",
        "Success@1 (mean ± 95% interval over seeds):",
        "",
        mean_table(df, "label", "n_docs", "Success@1"),
        "",
        "KL(p* || model) in nats:",
        "",
        mean_table(df, "label", "n_docs", "kl_true"),
        "",
        "Verdicts (difference of the Success@1 drop, paired by seed; > 0 means the local model degrades more):",
        "",
    ]
    locals_ = [m for m in ("dr_local_uniform", "dr_local_inbatch", "dr_local_hard") if m in set(df["model"])]
    refs = [m for m in ("dr_global", "atomic_gr", "seq_gr") if m in set(df["model"])]
    for local in locals_:
        for ref in refs:
            v = paired_verdict((drop(local) - drop(ref)).to_numpy())
            lines.append(f"- {LABELS[local]} vs {LABELS[ref]}: {v}")
    lines += ["", "The same comparison on KL to the truth (growth of KL from the smallest to the largest N,",
              "paired by seed; > 0 means the local model's KL grows more):", ""]
    for local in locals_:
        for ref in refs:
            v = paired_verdict((drop(ref, "kl_true") - drop(local, "kl_true")).to_numpy())
            lines.append(f"- {LABELS[local]} vs {LABELS[ref]}: {v}")
    return "\n".join(lines)
