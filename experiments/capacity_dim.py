"""DR is capped by its embedding dimension: below D = R (R+1 under popularity without a document bias) its error stays above the Eckart-Young floor of the true log-posterior, while SeqGR at the same width is not capped.

Low-rank capacity (docs/design.md, section 1): a D-dimensional bilinear scorer has rank <= D, and the
softmax ignores a per-query shift, so the least squared error of its log-probabilities against
A* = log p* (test queries x all N documents), up to per-row shifts, is the tail
sum_{i > D} sigma_i(A* P)^2 (`theory.eckart_young_floor`). The corpus has true rank R, plus one for
a Zipf popularity term that DR without a bias must spend a dimension on. DR is trained with the
global objective (full softmax) so that sampling drift is not the cause; with a free document table
and with a document tower. AtomicGR (H = D) is a bi-encoder with a bias, rank <= D+1; SeqGR at
H = D is bounded by the trie (`theory.trie_rank_bound`), not by H.

Measured beside KL and Success@1, per run (all divided by the number of test queries M):
`rowshift_sq_err` = min_c ||A* - log p_model - c 1^T||_F^2 / M = ||(A* - log p_model) P||_F^2 / M
(the best row-shifted fit, computed exactly since N is small); `ey_floor` = the floor at the
model's own rank bound (D, D+1 with a bias, H+1 for AtomicGR, the trie bound for SeqGR), which
`rowshift_sq_err` can never go below (a theorem: the smoke test checks it); `ey_floor_dim` = the
floor at rank D, drawn in the figure as the DR floor.

Command:  grdr run capacity_dim --preset quick --out results
The quick preset's time and the numbers it printed last are in benchmarks/README.md; each run's own
are in its report.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from grdr.experiments.points import point, require_known, require_seeds, require_unswept
from grdr.sim.corpus import CorpusSpec
from grdr.sim.docids import DocidSpec
from grdr.sim.logprobs import eckart_young_floors, model_log_probs, rowshift_sq_err, true_log_probs
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig
from grdr.sim.widths import padded_config
from grdr.theory import row_shifted_rank_bound
from grdr.theory.rank import dr_transition_dim

NAME = "capacity_dim"
AXES = ("dim", "corpus_latent_rank", "corpus_zipf")
MODELS = ("dr_table_global", "dr_global", "atomic_gr", "seq_gr")  # every one trained with a normalised objective
NEGLIGIBLE_KL = 0.05  # nats: a KL change smaller than this past D = R counts as flat


@dataclasses.dataclass(frozen=True)
class Config:
    latent_ranks: tuple[int, ...] = (8,)
    """True ranks R of the corpora swept."""
    zipfs: tuple[float, ...] = (0.0, 1.0)
    """Popularity exponents of the corpora swept."""
    dims: tuple[int, ...] = (2, 4, 8, 9, 12)
    """Embedding dimensions D of DR (and widths H = D of AtomicGR and SeqGR)."""
    models: tuple[str, ...] = MODELS
    """Model variants."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: initialisation, sampling and the corpus."""
    corpus: CorpusSpec = CorpusSpec(n_docs=300, n_train_queries=5_000, n_test_queries=150, beta=12.0)
    """The corpus (latent_rank and zipf are swept; n_docs at most 5,000: the M x N log-posterior is exact)."""
    model: ModelConfig = ModelConfig(hidden=64, depth=1)
    """DR's towers (hidden = tower width); AtomicGR and SeqGR take H = D."""
    train: TrainConfig = TrainConfig(steps=400, batch_size=128, learning_rate=1e-2)
    """Training: steps, batch, learning rate and schedule, negatives K, held-out convergence check (sim.train.TrainConfig)."""
    docids: DocidSpec = DocidSpec(vocab=8)
    """SeqGR's docids: scheme, vocabulary per level, k-means dimensions (sim.docids.DocidSpec)."""
    max_group_seeds: int = 0
    """Seeds trained together under one vmap, at most (0: every seed of a point at once). Smaller groups
    are more tasks for --executor ray, so that no single group bounds a sweep; records do not change."""

    def __post_init__(self):
        require_known(self, "models", MODELS)
        require_seeds(self)
        require_unswept(self.corpus, "corpus", {"latent_rank": "--latent-ranks", "zipf": "--zipfs"})
        require_unswept(self.model, "model", {"kind": "--models", "doc_side": "--models", "dim": "--dims"})
        require_unswept(self.train, "train", {"objective": "--models", "sampler": "--models", "logq": "--models"})
        if not 2 <= self.corpus.n_docs <= 5_000:
            raise ValueError(f"Config.corpus.n_docs={self.corpus.n_docs}: expected 2..5000 (the M x N log-posterior "
                             "is exact)")
        if not self.dims or min(self.dims) < 1:
            raise ValueError(f"Config.dims={self.dims}: expected dimensions >= 1")
        if not self.latent_ranks or min(self.latent_ranks) < 1:
            raise ValueError(f"Config.latent_ranks={self.latent_ranks}: expected ranks >= 1")
        if not self.zipfs or not all(z >= 0 for z in self.zipfs):
            raise ValueError(f"Config.zipfs={self.zipfs}: expected non-negative exponents")
        if self.max_group_seeds < 0:
            raise ValueError(f"Config.max_group_seeds={self.max_group_seeds}: expected 0 (no cap) or a count >= 1")


PRESETS = {
    "smoke": Config(latent_ranks=(3,), zipfs=(0.0,), dims=(2, 4), seeds=(0, 1),
                    corpus=CorpusSpec(n_docs=64, n_train_queries=300, n_test_queries=32, beta=12.0),
                    # 4 calls of 5 steps: a learning curve of 5 checkpoints, enough for the convergence check
                    model=ModelConfig(hidden=8, depth=1), train=TrainConfig(steps=20, steps_per_call=5,
                                                                            learning_rate=1e-2),
                    docids=DocidSpec(vocab=4)),
    # 1,600 steps with early stopping on 500 held-out queries: at 400 steps most models were still falling
    # (AtomicGR 20-34% over the last doubling); by 3,200 the DR models overfit (the free table's KL at D = 12
    # 0.51 -> 0.89 from 800 to 3,200 steps), so each is read at its least held-out NLL
    "quick": Config(dims=(2, 4, 8, 12), seeds=tuple(range(12)),
                    train=TrainConfig(steps=1_600, batch_size=128, learning_rate=1e-2, heldout=500, early_stop=True)),
    "scale": Config(dims=(2, 3, 4, 6, 8, 12, 16), seeds=(0, 1, 2)),
    "paper": Config(latent_ranks=(8, 16, 32), dims=(2, 4, 6, 8, 9, 12, 16, 17, 24, 32, 33, 48, 64),
                    seeds=tuple(range(12)), corpus=CorpusSpec(n_docs=2_000, n_train_queries=50_000, n_test_queries=500),
                    # 5,000 steps: 320 pairs per document, past where the tables' KL stopped improving
                    # at N = 3,000 (experiments.drift_corpus)
                    model=ModelConfig(hidden=128, depth=2), train=TrainConfig(steps=5_000, learning_rate=1e-2)),
}


def sweep(cfg: Config):
    """One point per (corpus R and zipf, D, model, seed)."""
    for rank in cfg.latent_ranks:
        for zipf in cfg.zipfs:
            for dim in cfg.dims:
                for name in cfg.models:
                    gr = name in ("atomic_gr", "seq_gr")
                    for seed in cfg.seeds:
                        yield point(name, cfg, cfg.corpus.n_docs, seed, dim=dim,
                                    corpus_overrides={"latent_rank": rank, "zipf": zipf},
                                    **({"hidden": dim} if gr else {}), doc_bias=name == "atomic_gr" or
                                    (cfg.model.doc_bias and not gr))


def padded_model(cfg: Config, points) -> ModelConfig:
    """The widths a group of points trains at (experiments.sweep.group): DR's D and AtomicGR's H = D padded
    to the sweep's shared bucket of `dims` (sim.widths: the padding exactly inert, the numbers those of
    the model's own D), so that every D shares compiled programs, where the padded steps cost less than
    a compile (experiments.calibration.padding_pays); otherwise, and for SeqGR, the model's own widths."""
    from grdr.experiments.calibration import padding_pays

    own = points[0].model_cfg
    if own.kind == "dr":
        wide = padded_config(own, dims=cfg.dims)
    else:  # AtomicGR's D (the sweep sets it) is unread: unified too
        wide = padded_config(own, widths=cfg.dims, dims=cfg.dims)
    return wide if padding_pays(points[0], wide, len(points)) else own


def rank_bound(point, docids) -> int:
    """The rank of the model's log-probabilities up to row shifts (where its floor is taken)."""
    kind = point.variant.kind
    if kind == "seq_gr":
        leaves_P = np.where(docids.depth_P == docids.length - 1, docids.children_per_node(), 0)
        return row_shifted_rank_bound(kind, point.model_cfg.hidden, bias=True,
                                      children_per_node=docids.children_per_node(), leaf_children_per_node=leaves_P)
    width = point.model_cfg.dim if kind == "dr" else point.model_cfg.hidden
    return row_shifted_rank_bound(kind, width, bias=kind == "atomic_gr" or point.model_cfg.doc_bias)


def measure(model, corpus, docids, point) -> dict:
    """The row-shifted squared error and the Eckart-Young floors at the model's rank and at D."""
    target_MxN = true_log_probs(corpus)
    rank = rank_bound(point, docids)
    dim = point.model_cfg.dim if point.variant.kind == "dr" else point.model_cfg.hidden
    floors = eckart_young_floors(target_MxN, (rank, dim))
    M = target_MxN.shape[0]
    return {"rowshift_sq_err": rowshift_sq_err(target_MxN, model_log_probs(model, corpus, docids)),
            "ey_floor": floors[rank] / M, "ey_floor_dim": floors[dim] / M, "rank_bound": float(rank)}


def findings(df) -> list:
    from grdr.experiments.verdict.findings import Finding, level_verdict
    from grdr.experiments.verdict.stats import Verdict, effect_verdict, equivalence_verdict
    from grdr.experiments.variants import label

    found = []
    below_floor = int((df["rowshift_sq_err"] < df["ey_floor"] * (1 - 1e-6) - 1e-6).sum())
    found.append(Finding(NAME, "No run fits log p* below the Eckart-Young floor at its rank (a theorem)",
                         Verdict("held" if below_floor == 0 else "did not hold", float(below_floor), float("nan"),
                                 float("nan"), len(df), why=f"{below_floor} of {len(df)} runs below"),
                         "runs below the floor", "the floor itself", "exact (no sampling)"))
    for (rank, zipf), sub in df.groupby(["corpus_latent_rank", "corpus_zipf"]):
        bias = bool(sub.loc[sub["kind"] == "dr", "doc_bias"].any()) if "doc_bias" in sub else False
        d_star = dr_transition_dim(int(rank), float(zipf) > 0, bias)
        dims = sorted(sub["dim"].unique())
        below, above = [d for d in dims if d < d_star], [d for d in dims if d >= d_star]
        where = f"R = {rank}, zipf = {zipf:g}"

        def runs(model, dim):
            return sub[(sub["model"] == model) & (sub["dim"] == dim)]

        def kl(model, dim):
            return runs(model, dim).set_index("seed")["kl_true"]

        def at(*cells):  # the runs a level claim compares, for its convergence check
            return {f"{label(m)} at {'H' if m in ('atomic_gr', 'seq_gr') else 'D'} = {d}": runs(m, d)
                    for m, d in cells}

        for model in [m for m in ("dr_table_global", "dr_global") if m in set(sub["model"])]:
            if below and above:
                found.append(Finding(NAME, f"{label(model)}: KL at D = {below[-1]} above KL at D = {above[-1]} ({where})",
                                     level_verdict(
                                         effect_verdict((kl(model, below[-1]) - kl(model, above[-1])).dropna()),
                                         at((model, below[-1]), (model, above[-1])),
                                         lower=f"{label(model)} at D = {above[-1]}"),
                                     "KL difference (nats)", "reference KL (estimate)", "rank below D = R"))
            if len(above) >= 2:
                found.append(Finding(NAME, f"{label(model)}: KL flat past D = R, from D = {above[0]} to {above[-1]} "
                                     f"({where})",
                                     level_verdict(equivalence_verdict(
                                         (kl(model, above[0]) - kl(model, above[-1])).dropna(), NEGLIGIBLE_KL),
                                         at((model, above[0]), (model, above[-1]))),
                                     f"KL change (nats; held when its median lies within +-{NEGLIGIBLE_KL})",
                                     "reference KL (estimate)", "optimisation"))
        if {"seq_gr", "dr_table_global"} <= set(sub["model"]):
            found.append(Finding(NAME, f"SeqGR at H = {dims[0]} below DR (free table) at D = {dims[0]} in KL ({where})",
                                 level_verdict(effect_verdict((kl("dr_table_global", dims[0]) -
                                                               kl("seq_gr", dims[0])).dropna()),
                                               at(("seq_gr", dims[0]), ("dr_table_global", dims[0])),
                                               lower=f"{label('seq_gr')} at H = {dims[0]}"),
                                 "KL difference (nats)", "reference KL (estimate)", "SeqGR's optimisation at small H"))
    return found


def report(df) -> str:
    """Report section: KL per D for each corpus, the floors, and verdicts with intervals."""
    from grdr.experiments.verdict.findings import finding_lines
    from grdr.experiments.verdict.tables import ceiling_table, mean_table
    from grdr.experiments.variants import label

    df = df.assign(label=df["model"].map(label))
    lines = [
        "Prediction: DR's error falls with D only up to D = R (R+1 under popularity without a document bias),",
        "and never goes below the Eckart-Young floor of the row-centred true log-posterior; AtomicGR (H = D)",
        "shares DR's cap; SeqGR at the same H is bounded by its trie, not by H, so it beats DR at small D.",
        "",
    ]
    for (rank, zipf), sub in df.groupby(["corpus_latent_rank", "corpus_zipf"]):
        bias = bool(sub.loc[sub["kind"] == "dr", "doc_bias"].any()) if "doc_bias" in sub else False
        lines += [f"### R = {rank}, zipf = {zipf} (DR transition at D = {dr_transition_dim(int(rank), float(zipf) > 0, bias)})",
                  "", "References of the corpus (N fixed; estimates with their Monte Carlo standard errors):", "", ceiling_table(sub, "n_docs"), "",
                  "KL(p* || model) in nats (mean ± 95% interval over seeds):", "",
                  mean_table(sub, "label", "dim", "kl_true"), "",
                  "Row-shifted squared error per query, and the floor at rank D (`ey_floor_dim`):", "",
                  mean_table(sub, "label", "dim", "rowshift_sq_err"), "",
                  mean_table(sub[sub["model"] == sub["model"].iloc[0]].assign(label="floor at rank D"), "label", "dim",
                             "ey_floor_dim"), ""]
    lines += ["Verdicts (paired by seed; each seed its own corpus):", ""] + finding_lines(findings(df))
    return "\n".join(lines)
