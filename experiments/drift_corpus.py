"""With K fixed, DR trained with a sampled softmax degrades faster as N grows than the same DR trained with the full softmax, and than GR.

Optimization drift (docs/design.md, section 1): a sampled softmax with K negatives sees the
documents that decide the top-1 with probability about K k / N. Its population fixed point is log p*
(plain uniform sampling with accidental hits kept is Fisher-consistent), so what grows with N is an
optimisation-rate effect: at a fixed budget its fit to p* worsens as the corpus grows. The full
softmax (DR-global, AtomicGR) and SeqGR's exactly normalised factorisation do not sample at all.

Matched controls: each comparison changes one thing. DR with a document tower, global against
local (uniform, popularity with and without logQ, raw and denoised hard negatives); DR with a free
document table, global against local (the exact twin of AtomicGR, which is a free table with a bias
and a full softmax); AtomicGR and SeqGR against the local DRs. Every model at one N gets the same
steps, so the same training pairs per document (`pairs_per_doc` raises the steps with N).

Verdicts (experiments.stats): per seed (each seed its own corpus), the slope of the paired gap
against log10 N over every N, on KL and on Success@1 relative to the corpus's reference estimate
(sim.ceilings: what a linear decoder of the noisy query features reaches; an estimate with its Monte
Carlo standard error, not a ceiling); with a 95% interval over seeds.

Command:  grdr run drift_corpus --preset quick --out results
The quick preset's time and the numbers it printed last are in benchmarks/README.md; each run's own
are in its report.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np
import pandas as pd

from grdr.experiments.points import point, require_known, require_seeds, require_unswept
from grdr.experiments.variants import VARIANTS
from grdr.sim.corpus import CorpusSpec
from grdr.sim.docids import DocidSpec
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig

NAME = "drift_corpus"
AXES = ("n_docs",)
NEGLIGIBLE_SLOPE = 0.02  # per decade of N, on KL (nats) and on Success@1 / reference: smaller is no effect


@dataclasses.dataclass(frozen=True)
class Config:
    n_docs: tuple[int, ...] = (100, 300, 1_000, 3_000)
    """Corpus sizes N of the variants with a document tower (a log grid: verdicts read slopes in log10 N)."""
    table_n_docs: tuple[int, ...] = (100, 300, 1_000)
    """Corpus sizes N of the variants with a per-document table (AtomicGR, SeqGR, DR with a free table),
    which need pairs_per_doc x N training pairs to converge."""
    models: tuple[str, ...] = ("dr_global", "dr_local_uniform", "dr_table_global", "dr_table_local_uniform",
                               "atomic_gr")
    """Model variants (experiments.variants)."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds: initialisation, sampling and the corpus."""
    pairs_per_doc: float = 1_000.0
    """Training pairs per document of the variants with a per-document table, at the least (their steps
    grow with N; train.steps is the minimum, and every variant with a tower trains train.steps)."""
    corpus: CorpusSpec = CorpusSpec(latent_rank=8, beta=60.0, query_feature_noise=0.01, doc_feature_noise=0.01,
                                    n_train_queries=50_000, n_test_queries=500, train_top_k=64)
    """The synthetic corpus: latent rank, peakedness (beta), popularity, feature noise, query counts (sim.corpus.CorpusSpec)."""
    model: ModelConfig = ModelConfig(dim=16, hidden=32, depth=1)
    """The models' sizes: DR's D, towers' hidden width and depth, temperature (sim.models.ModelConfig)."""
    train: TrainConfig = TrainConfig(steps=2_000, batch_size=128, learning_rate=3e-3, schedule="cosine",
                                     num_negatives=16, heldout=1_000)
    """Training: steps, batch, learning rate and schedule, negatives K, held-out convergence check (sim.train.TrainConfig)."""
    docids: DocidSpec = DocidSpec()
    """SeqGR's docids: scheme, vocabulary per level, k-means dimensions (sim.docids.DocidSpec)."""
    sparse_tables: bool = False
    """Row-sparse (lazy Adam) updates for the free tables trained with a sampled softmax, whose step then
    costs the same at any N (sim.sparse_train); tables under a full softmax (AtomicGR, DR-global) stay dense."""
    table_queries_per_doc: float = 0.0
    """Training queries per document of the tables' corpora, at the least (0: corpus.n_train_queries at
    every N). A per-document table learns each row from the queries that reach its document, so at a fixed
    query count the tables starve as N grows and their KL rises for want of data, not for the objective;
    with q > 0 a table's corpus at N has max(corpus.n_train_queries, q N) training queries. The towers keep
    corpus.n_train_queries, and an N that both arms run must give both the same (checked): the references,
    the report's reference table and the figure read one corpus per N."""
    max_group_seeds: int = 0
    """Seeds trained together under one vmap, at most (0: every seed of a point at once). Smaller groups
    are more tasks for --executor ray, so that no single group bounds a sweep; records do not change."""

    def __post_init__(self):
        require_known(self, "models", VARIANTS)
        require_seeds(self)
        require_unswept(self.corpus, "corpus", {"n_docs": "--n-docs"})
        require_unswept(self.model, "model", {"kind": "--models", "doc_side": "--models"})
        require_unswept(self.train, "train", {"objective": "--models", "sampler": "--models", "logq": "--models"})
        for field in ("n_docs", "table_n_docs"):
            if min(getattr(self, field), default=2) < 2:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected corpus sizes >= 2")
        if self.model.dim < self.corpus.latent_rank:
            raise ValueError(f"Config.model.dim={self.model.dim} < corpus.latent_rank={self.corpus.latent_rank}: "
                             "capacity would confound drift")
        smallest = min(self.n_docs + self.table_n_docs, default=0)
        if not smallest:
            raise ValueError("Config.n_docs and Config.table_n_docs are both empty: no corpus size to run")
        if self.train.num_negatives >= smallest:
            raise ValueError(f"Config.train.num_negatives={self.train.num_negatives} must be below every N "
                             f"(smallest {smallest})")
        if not self.pairs_per_doc >= 0:
            raise ValueError(f"Config.pairs_per_doc={self.pairs_per_doc}: expected >= 0")
        if not self.table_queries_per_doc >= 0:
            raise ValueError(f"Config.table_queries_per_doc={self.table_queries_per_doc}: expected >= 0 (0: the "
                             "corpus's n_train_queries at every N)")
        arms = {VARIANTS[name].has_doc_table for name in self.models}
        split = [n for n in sorted(set(self.n_docs) & set(self.table_n_docs))
                 if table_queries(self, n) != self.corpus.n_train_queries]
        if arms == {True, False} and split:
            raise ValueError(f"Config.table_queries_per_doc={self.table_queries_per_doc}: at N = {split}, run by the "
                             f"towers and the tables alike, the tables' corpora would get "
                             f"{[table_queries(self, n) for n in split]} training queries and the towers' "
                             f"{self.corpus.n_train_queries:,}: two corpora at one N, which the references and the "
                             "report read as one; raise corpus.n_train_queries, or run that N in one arm only")
        if self.max_group_seeds < 0:
            raise ValueError(f"Config.max_group_seeds={self.max_group_seeds}: expected 0 (no cap) or a count >= 1")


def table_queries(cfg: Config, n_docs: int) -> int:
    """Training queries of a per-document table's corpus at N = n_docs (Config.table_queries_per_doc)."""
    return max(cfg.corpus.n_train_queries, math.ceil(cfg.table_queries_per_doc * n_docs))

# Budgets of the per-document tables, from where their KL stops improving as the pairs per document grow
# (benchmarks/README.md, "Pairs per document": at N = 3,000 AtomicGR's KL is 0.52, 0.42, 0.49 nats at 100,
# 300, 1,000 pairs and the sampled table's 1.12, 0.72, 0.63; at N <= 1,000 both still fall past 1,000,
# where train.steps, the minimum, gives them more pairs). AtomicGR's full softmax touches every row at
# every step, so its cost grows like N^2 x pairs: the scale preset runs the tables to N = 4,000 only.
SCALE_PAIRS_PER_DOC = 300.0
PAPER_PAIRS_PER_DOC = 1_000.0
SCALE_TABLE_QUERIES_PER_DOC = 20.0  # the scale corpus's 20,000 training queries starved the tables past N = 1,000
PAPER_GROUP_SEEDS = 1  # one seed per task: at N = 1e5-1e6 a group of 12 seeds would bound the sweep
_SMOKE_CORPUS = CorpusSpec(n_train_queries=1_000, n_test_queries=50, latent_rank=4, beta=30.0, train_top_k=16)
PRESETS = {
    "smoke": Config(n_docs=(100, 200), table_n_docs=(100, 200), seeds=(0, 1), pairs_per_doc=0.0, corpus=_SMOKE_CORPUS,
                    model=ModelConfig(dim=8, hidden=16, depth=1), train=TrainConfig(steps=40, batch_size=32,
                    num_negatives=8, hard_pool=8, heldout=100, steps_per_call=10), docids=DocidSpec(vocab=6)),
    "quick": Config(seeds=tuple(range(12)), table_n_docs=(80, 200, 500, 1_000)),  # 12 seeds: decidable under Holm
    "scale": Config(n_docs=(100, 300, 1_000, 3_000, 10_000, 30_000, 100_000),
                    table_n_docs=(100, 200, 500, 1_000, 2_000, 4_000),
                    models=("dr_global", "dr_local_uniform", "dr_table_global", "dr_table_local_uniform", "atomic_gr"),
                    seeds=(0, 1, 2), pairs_per_doc=SCALE_PAIRS_PER_DOC, sparse_tables=True,
                    table_queries_per_doc=SCALE_TABLE_QUERIES_PER_DOC,
                    corpus=dataclasses.replace(Config().corpus, n_train_queries=20_000, n_test_queries=100)),
    # paper: towers to N = 1e6, tables to 3e4 (AtomicGR at 1e5 and 1,000 pairs per document is ~28 h per
    # seed on a CPU worker); 200 test queries, since the references cost test queries x N x 512 draws
    "paper": Config(n_docs=(100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000),
                    table_n_docs=(100, 300, 1_000, 3_000, 10_000, 30_000), seeds=tuple(range(12)),
                    models=("dr_global", "dr_local_uniform", "dr_local_popularity", "dr_local_popularity_logq",
                            "dr_local_hard", "dr_local_hard_denoised", "dr_table_global", "dr_table_local_uniform",
                            "atomic_gr", "seq_gr"), pairs_per_doc=PAPER_PAIRS_PER_DOC, sparse_tables=True,
                    max_group_seeds=PAPER_GROUP_SEEDS,
                    corpus=dataclasses.replace(Config().corpus, n_train_queries=30_000, n_test_queries=200)),
}


def sweep(cfg: Config):
    for n in sorted(set(cfg.n_docs) | set(cfg.table_n_docs)):
        for name in cfg.models:
            table = VARIANTS[name].has_doc_table
            if n not in (cfg.table_n_docs if table else cfg.n_docs):
                continue
            queries = table_queries(cfg, n) if table else cfg.corpus.n_train_queries
            for seed in cfg.seeds:
                yield point(name, cfg, n, seed, pairs_per_doc=cfg.pairs_per_doc if table else 0.0,
                            sparse_table=cfg.sparse_tables,
                            corpus_overrides={"n_train_queries": queries} if queries != cfg.corpus.n_train_queries
                            else None)



def padded_docs(cfg: Config, points) -> int:
    """The corpus size whose bucket a group's documents train and are evaluated at (sim.train.train's
    pad_docs): a larger N's of the same model where the padded work costs less than compiling programs of
    its own (experiments.calibration.docs_padding); the records do not change beyond float rounding."""
    return _docs_partition(cfg, points[0].model, len(points))[points[0].corpus.n_docs]


@lru_cache(maxsize=64)
def _docs_partition(cfg: Config, model: str, n_seeds: int) -> dict[int, int]:
    """padded_docs' partition of one model's N (computed once per sweep: the dry run of a preset asks it for
    every group). A seed changes no Shape, so the first seed's points stand for every seed's."""
    from grdr.experiments.calibration import docs_padding

    same = {pt.corpus.n_docs: pt for pt in sweep(cfg) if pt.model == model and pt.seed == cfg.seeds[0]}
    return docs_padding(same, n_seeds)


def reference_docs(cfg: Config, points) -> int:
    """The corpus size whose bucket a group's corpora's references are computed at (sim.ceilings), from one
    partition of the sweep's N (experiments.calibration.reference_padding): every model at one N reads the
    same, so a corpus's references are computed once."""
    return _reference_partition(cfg)[points[0].corpus.n_docs]


@lru_cache(maxsize=16)
def _reference_partition(cfg: Config) -> dict[int, int]:
    from grdr.experiments.calibration import reference_padding

    specs = {pt.corpus.n_docs: pt.corpus for pt in sweep(cfg)}
    return reference_padding(specs.values(), len(cfg.seeds))


# ---------------------------------------------------------------------------------------------
# Verdicts and report

# (local model, reference): the reference trains the same architecture with a normalised objective,
# or is GR; > 0 means the local model falls further behind as N grows.
COMPARISONS = (
    ("dr_local_uniform", "dr_global", "DR tower: sampled (uniform) vs full softmax"),
    ("dr_table_local_uniform", "dr_table_global", "DR free table: sampled (uniform) vs full softmax"),
    ("dr_table_local_uniform", "atomic_gr", "DR free table, sampled vs AtomicGR (matched pairs per document)"),
    ("dr_local_popularity", "dr_global", "DR tower: sampled (popularity) vs full softmax"),
    ("dr_local_popularity_logq", "dr_global", "DR tower: sampled (popularity + logQ) vs full softmax"),
    ("dr_local_hard", "dr_global", "DR tower: sampled (raw hard) vs full softmax"),
    ("dr_local_hard_denoised", "dr_global", "DR tower: sampled (denoised hard) vs full softmax"),
    ("dr_table_local_uniform", "seq_gr", "DR free table, sampled vs SeqGR (matched pairs per document)"),
)


def add_relative(df: pd.DataFrame) -> pd.DataFrame:
    """Success@1 relative to the reference estimate (`rel_success1`, "Success@1 / reference": not a
    fraction of a ceiling, and it may exceed 1), and the KL of a uniform model."""
    return df.assign(rel_success1=df["Success@1"] / df["reference_success1"],
                     kl_uniform=np.log(df["n_docs"]) - np.log(df["eff_docs"]))


def findings(df: pd.DataFrame) -> list:
    from grdr.experiments.verdict.findings import slope_finding

    df = add_relative(df)
    found = []
    present = set(df["model"])
    for local, ref, title in COMPARISONS:
        if {local, ref} <= present:
            for metric, higher in (("kl_true", False), ("rel_success1", True)):
                found.append(slope_finding(NAME, df, local, ref, metric, title, higher_is_better=higher,
                                           negligible=NEGLIGIBLE_SLOPE, rate=True))
    return found


def report(df: pd.DataFrame) -> str:
    from grdr.experiments.verdict.findings import finding_lines
    from grdr.experiments.verdict.tables import ceiling_table, mean_table
    from grdr.experiments.variants import label

    df = add_relative(df).assign(label=df["model"].map(label))
    K = sorted(set(df.loc[df["num_negatives"] > 0, "num_negatives"]))
    lines = [
        f"Prediction: with K = {', '.join(map(str, K)) or '-'} negatives fixed, DR trained with a sampled softmax "
        "falls further behind the same DR trained with the full softmax (and behind GR) as N grows: the paired "
        "gap grows with log N.",
        "",
        "References of the corpora (mean over seeds; each seed is its own corpus; estimates with their Monte Carlo "
        "standard errors):",
        "",
        ceiling_table(df),
        "",
        "KL(p* || model) in nats (mean ± 95% interval over seeds):",
        "",
        mean_table(df, "label", "n_docs", "kl_true"),
        "",
        "Success@1 / reference (Success@1 relative to the reference estimate from the features):",
        "",
        mean_table(df, "label", "n_docs", "rel_success1"),
        "",
        "Success@1:",
        "",
        mean_table(df, "label", "n_docs", "Success@1"),
        "",
    ]
    lines += ["What the theory says and where it is tested: with accidental hits kept, plain uniform sampling is "
              "Fisher-consistent (its population fixed point is log p*), so the gap is a rate (K negatives see one of "
              "the k confusers with probability K k / N): drift_mechanism tests that, on iso-difficulty corpora. "
              "These corpora hold beta fixed, so the task gets harder as N grows; drift_mechanism's corpora hold "
              "exp H(p*) fixed instead, and its claim 'at matched pairs per document the gap grows with log N' is this "
              "experiment's claim on them (the iso-difficulty arm).", ""]
    if "pool_false_negatives" in df and df["pool_false_negatives"].notna().any():
        lines += ["Share of the hard-negative pool inside the query's top p* mass (false negatives):", "",
                  mean_table(df[df["pool_false_negatives"].notna()], "label", "n_docs", "pool_false_negatives"), ""]
    lines += ["Verdicts: slope of the paired gap per decade of N (> 0: the sampled model falls further behind):",
              ""]
    lines += finding_lines(findings(df))
    return "\n".join(lines)
