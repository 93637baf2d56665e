"""Similarity design: a rank-r bilinear scorer is capped by its Eckart-Young floor at min(r, D), multi-vector MaxSim DR is not capped by D, and GR is compared with both at matched parameters.

Low-rank capacity (docs/design.md, section 1) with DR's similarity as the knob (`sim.scorers`): on a
corpus of known true rank R, at a fixed tower dimension D < R, every DR is trained with the global
objective (full softmax), so sampling drift is not the cause.
(a) The rank-r bilinear scorer s = f(q)^T U V^T g(d): its log-probabilities have rank
    min(r, D) + 1 (`theory.bilinear_rank_bound`), so its row-shifted error cannot go below the
    Eckart-Young floor at min(r, D) (`theory.bilinear_eckart_young_floor`), which is positive for
    every r < R; r beyond D buys nothing. The dot product and the full D x D bilinear form are r = D.
(b) Multi-vector late interaction (MaxSim, m = m' vectors of dimension D): not a bilinear form, so
    its rank is not capped by D; does its KL (the loss it is trained on) fall below the least KL that
    free rank-D factors reach on the same test queries (`sim.logprobs.low_rank_kl`), which no rank-D
    bilinear scorer can beat? (Its squared error is not compared with the Eckart-Young floor: a
    KL-trained model's squared error is dominated by documents the KL ignores, and the KL-optimal
    rank-D factors themselves sit far above that floor.)
(c) AtomicGR and SeqGR with their width chosen so that their parameter count matches the
    single-vector DR's (the multi-vector DR's count is reported beside): is GR's advantage over
    single-vector DR that of multi-vector-like scoring (Wu et al. 2024)?

Measured per run beside KL and Success@1 (divided by the test queries M): `rowshift_sq_err`, the
best row-shifted squared error of log p_model against log p*; `ey_floor`, the floor at the model's
rank bound (NaN for MaxSim: no bound); `ey_floor_dim`, the floor at rank D; `kl_floor_dim`, the
least KL of free rank-D factors (an optimised value: float64 L-BFGS, best of `kl_floor_dim_restarts`
starts, the best two within `kl_floor_dim_spread`; an upper estimate of the true minimum);
`logp_rank`, the numerical rank of the model's row-centred log-probabilities; `scorer_params`, the
scorer's own parameters (W, U and V; the records' `params` is the whole model).

Command:  grdr run similarity --preset quick --out results
The quick preset's time and the numbers it printed last are in benchmarks/README.md; each run's own
are in its report.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from grdr.experiments.points import point, require_known, require_seeds, require_unswept
from grdr.experiments.variants import with_design
from grdr.sim.corpus import CorpusSpec
from grdr.sim.docids import DocidSpec
from grdr.sim.logprobs import eckart_young_floors, low_rank_kl, model_log_probs, rowshift_sq_err, true_log_probs
from grdr.sim.models import ModelConfig, scorer_fields
from grdr.sim.train import TrainConfig

NAME = "similarity"
AXES = ("scorer", "scorer_rank", "vectors")
MODELS = ("dr_global", "atomic_gr", "seq_gr")
LOGP_RTOL = 1e-5  # relative singular-value threshold of `logp_rank` (float32-trained scores)


@dataclasses.dataclass(frozen=True)
class Config:
    ranks: tuple[int, ...] = (1, 2, 4, 8)
    """r of the rank-r bilinear scorer (r > D shows that r beyond D buys nothing)."""
    vectors: tuple[int, ...] = (2, 4, 8)
    """m = m' of multi-vector (MaxSim) DR; m = 1 is the dot product."""
    full_bilinear: bool = True
    """Also train the full D x D bilinear scorer (and the cosine scorer)."""
    gr: tuple[str, ...] = ("atomic_gr", "seq_gr")
    """GR variants trained at the single-vector DR's parameter count."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: initialisation, sampling and the corpus."""
    corpus: CorpusSpec = CorpusSpec(n_docs=300, latent_rank=8, n_train_queries=5_000, n_test_queries=150, beta=12.0)
    """The corpus (n_docs at most 5,000: the M x N log-posterior is exact)."""
    model: ModelConfig = ModelConfig(dim=4, hidden=64, depth=1)
    """dim: DR's fixed D (below the corpus's R); hidden: DR's tower width."""
    train: TrainConfig = TrainConfig(steps=400, batch_size=128, learning_rate=1e-2)
    """Training: steps, batch, learning rate (sim.train.TrainConfig); every model the same."""
    docids: DocidSpec = DocidSpec(vocab=8)
    """SeqGR's docids (sim.docids.DocidSpec)."""

    def __post_init__(self):
        require_known(self, "gr", ("atomic_gr", "seq_gr"), allow_empty=True)
        require_seeds(self)
        # the scorers' own sections (lowrank, maxsim) are refused by ModelConfig while scorer is the dot product
        require_unswept(self.model, "model", {"kind": "the sweep", "doc_side": "the sweep",
                                              "scorer": "the sweep (--ranks, --vectors, --full-bilinear)"})
        require_unswept(self.train, "train", {"objective": "the sweep", "sampler": "the sweep", "logq": "the sweep"})
        if not 2 <= self.corpus.n_docs <= 5_000:
            raise ValueError(f"Config.corpus.n_docs={self.corpus.n_docs}: expected 2..5000 (the M x N log-posterior "
                             "is exact)")
        for field in ("ranks", "vectors"):
            if min(getattr(self, field), default=1) < 1:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected values >= 1")
        if self.model.dim >= self.corpus.latent_rank:
            raise ValueError(f"Config.model.dim={self.model.dim} >= corpus.latent_rank={self.corpus.latent_rank}: "
                             "the rank-D floor would be zero, and nothing to escape")


PRESETS = {
    "smoke": Config(ranks=(1, 2), vectors=(2,), full_bilinear=False, seeds=(0, 1),
                    corpus=CorpusSpec(n_docs=48, latent_rank=4, n_train_queries=300, n_test_queries=24),
                    # 4 calls of 5 steps: a learning curve of 5 checkpoints, enough for the convergence check
                    model=ModelConfig(dim=2, hidden=8, depth=1), train=TrainConfig(steps=20, steps_per_call=5,
                                                                                   learning_rate=1e-2),
                    docids=DocidSpec(vocab=4)),
    # m = 8 is left out: 30 s a run at 400 steps (the global loss scores 128 x 300 x 64 vector pairs).
    # 1,600 steps with early stopping on 500 held-out queries: at 400 steps single-vector DR was still falling;
    # by 3,200 every model overfits (MaxSim m = 4's KL 0.22 -> 0.37 from 800 steps), so each is read at its least
    # held-out NLL
    "quick": Config(vectors=(2, 4), seeds=tuple(range(12)),
                    train=TrainConfig(steps=1_600, batch_size=128, learning_rate=1e-2, heldout=500, early_stop=True)),
    "paper": Config(ranks=(1, 2, 4, 8, 16), vectors=(2, 4, 8, 16), seeds=tuple(range(10)),
                    corpus=CorpusSpec(n_docs=2_000, latent_rank=16, n_train_queries=50_000, n_test_queries=500),
                    model=ModelConfig(dim=8, hidden=128, depth=2), train=TrainConfig(steps=3_000, learning_rate=1e-2)),
}


def _dr(cfg, seed, **scorer):
    return point("dr_global", cfg, cfg.corpus.n_docs, seed, **scorer)


@lru_cache(maxsize=16)
def _params_of(cfg: Config, name: str, hidden: int) -> int:
    """Parameter count of variant `name` (DR: single-vector dot product) at tower width `hidden`,
    from shapes only (nnx.eval_shape; seed 0's corpus and docids)."""
    from flax import nnx

    from grdr.experiments.pipeline import corpus_for, docids_for
    from grdr.sim.models import count_params, make_model

    pt = point(name, cfg, cfg.corpus.n_docs, 0, **({"hidden": hidden} if name != "dr_global" else {}))
    spec = pt.corpus_spec()
    corpus = corpus_for(spec)
    docids = docids_for(pt.docids, spec) if name == "seq_gr" else None
    return count_params(nnx.eval_shape(lambda: make_model(pt.model_cfg, n_docs=corpus.n_docs,
                                                          feature_dim=corpus.doc_features_NxF.shape[1],
                                                          docids=docids)))


def matched_width(cfg: Config, name: str) -> int:
    """GR's width H whose parameter count is closest to the single-vector DR's.

    A model's count is a quadratic in its width (every layer is linear in it, a hidden-to-hidden
    one quadratic), so three counts fix it exactly; the chosen width's count is checked."""
    target = _params_of(cfg, "dr_global", cfg.model.hidden)
    a, b, c = np.polyfit([1, 2, 3], [_params_of(cfg, name, h) for h in (1, 2, 3)], 2)
    widths = np.arange(1, 4097)
    best = int(widths[np.argmin(np.abs(np.round(a * widths**2 + b * widths + c) - target))])
    counted = _params_of(cfg, name, best)
    if abs(counted - (a * best**2 + b * best + c)) > 0.5:
        raise AssertionError(f"{name}: parameter count at H = {best} is {counted}, not quadratic in H")
    return best


def sweep(cfg: Config):
    """Per seed: the dot product; cosine and the full bilinear form; the rank-r bilinear scorer at
    every r; MaxSim at every m; GR at the single-vector DR's parameter count."""
    widths = {name: matched_width(cfg, name) for name in cfg.gr}
    for seed in cfg.seeds:
        yield _dr(cfg, seed)
        if cfg.full_bilinear:
            yield _dr(cfg, seed, scorer="cosine")
            yield _dr(cfg, seed, scorer="bilinear")
        for r in cfg.ranks:
            yield _dr(cfg, seed, **scorer_fields("lowrank", rank=r))
        for m in cfg.vectors:
            yield _dr(cfg, seed, **scorer_fields("maxsim", vectors=m, doc_vectors=m))
        for name in cfg.gr:
            yield point(name, cfg, cfg.corpus.n_docs, seed, hidden=widths[name])


def padded_model(cfg: Config, points) -> ModelConfig:
    """The model a group trains at (experiments.sweep.group): the rank-r bilinear scorer inside the sweep's
    shared bucket of ranks (sim.widths: U's and V's padded columns are exactly inert, the numbers those of
    its own r), so that every r shares compiled programs, where the padded steps cost less than a compile
    (experiments.calibration.padding_pays); every other model at its own widths. The measures read the
    point's own r (rank_bound, scorer_params)."""
    from grdr.experiments.calibration import padding_pays
    from grdr.sim.widths import padded_config

    own = points[0].model_cfg
    wide = padded_config(own, ranks=cfg.ranks)
    return wide if wide != own and padding_pays(points[0], wide, len(points)) else own


def rank_bound(pt, docids) -> float:
    """Rank of the model's log-probabilities up to row shifts (where its floor is taken); NaN for MaxSim."""
    from grdr.experiments.capacity_dim import rank_bound as capacity_rank_bound

    m = pt.model_cfg
    if pt.variant.kind == "dr" and m.scorer == "maxsim":
        return float("nan")
    if pt.variant.kind == "dr" and m.scorer == "lowrank":
        from grdr.theory import bilinear_rank_bound

        return float(bilinear_rank_bound(m.dim, m.lowrank.rank, m.doc_bias) - 1)
    return float(capacity_rank_bound(pt, docids))


@lru_cache(maxsize=32)
def _kl_floor(spec: CorpusSpec, dim: int) -> dict:
    """The least KL of free rank-D factors on the corpus's test queries, with how it was reached."""
    from grdr.experiments.pipeline import corpus_for

    kl = low_rank_kl(true_log_probs(corpus_for(spec)), dim)
    return {"kl_floor_dim": kl.kl, "kl_floor_dim_restarts": float(kl.restarts), "kl_floor_dim_spread": kl.spread,
            "kl_floor_dim_converged": float(kl.converged)}


def measure(model, corpus, docids, pt) -> dict:
    from grdr.sim.scorers import make_scorer
    from grdr.theory import numerical_rank

    target_MxN = true_log_probs(corpus)
    logp_MxN = model_log_probs(model, corpus, docids)
    rank = rank_bound(pt, docids)
    dim = pt.model_cfg.dim
    floors = eckart_young_floors(target_MxN, [dim] + ([int(rank)] if np.isfinite(rank) else []))
    M = target_MxN.shape[0]
    centred = logp_MxN - logp_MxN.mean(axis=1, keepdims=True)
    return {"rowshift_sq_err": rowshift_sq_err(target_MxN, logp_MxN),
            "ey_floor": floors[int(rank)] / M if np.isfinite(rank) else float("nan"),
            "ey_floor_dim": floors[dim] / M, "rank_bound": rank,
            "logp_rank": float(numerical_rank(centred, LOGP_RTOL)),
            "scorer_params": float(make_scorer(pt.model_cfg).num_params() if pt.variant.kind == "dr" else 0),
            **_kl_floor(corpus.spec, dim)}


def findings(df) -> list:
    from grdr.experiments.verdict.findings import Finding, level_verdict
    from grdr.experiments.verdict.stats import Verdict, effect_verdict, equivalence_verdict

    df = with_design(df)
    found = []
    bounded = df[np.isfinite(df["ey_floor"])]
    below = int((bounded["rowshift_sq_err"] < bounded["ey_floor"] * (1 - 1e-6) - 1e-6).sum())
    found.append(Finding(NAME, "No run with a rank bound fits log p* below the Eckart-Young floor at its rank "
                         "(min(r, D) for rank-r bilinear; a theorem)",
                         Verdict("held" if below == 0 else "did not hold", float(below), float("nan"), float("nan"),
                                 len(bounded), why=f"{below} of {len(bounded)} runs below"),
                         "runs below the floor", "the floor itself", "exact (no sampling)"))
    D = int(df.loc[df["kind"] == "dr", "dim"].iloc[0])
    R = int(df["corpus_latent_rank"].iloc[0])

    def by_seed(mask, value="kl_true"):
        return df[mask].set_index("seed")[value]

    def checked(verdict, *masks):  # a level claim: decided only where the runs it compares had converged
        return level_verdict(verdict, {" / ".join(sorted(set(df.loc[m, "design"]))): df[m] for m in masks})

    ranks = sorted(df["r"].dropna().unique())
    if len(ranks) >= 2:
        lo_r = ranks[0]
        hi_r = max([r for r in ranks if r <= D], default=ranks[-1])
        if hi_r > lo_r:
            found.append(Finding(NAME, f"The floor binds below R = {R}: rank-{int(lo_r)} bilinear above rank-{int(hi_r)} "
                                 "in KL", checked(effect_verdict(
                                     (by_seed(df["r"] == lo_r) - by_seed(df["r"] == hi_r)).dropna()),
                                     df["r"] == lo_r, df["r"] == hi_r),
                                 "KL difference (nats)", "reference KL (estimate)", "optimisation at small r"))
        past = [r for r in ranks if r > D]
        if past and hi_r == D:
            diff = by_seed(df["r"] == D) - by_seed(df["r"] == past[-1])
            from grdr.experiments.capacity_dim import NEGLIGIBLE_KL

            found.append(Finding(NAME, f"r beyond D buys nothing: rank-{D} and rank-{int(past[-1])} bilinear within "
                                 f"{NEGLIGIBLE_KL} nats in KL",
                                 checked(equivalence_verdict(diff.dropna(), NEGLIGIBLE_KL), df["r"] == D,
                                         df["r"] == past[-1]),
                                 f"KL change (nats; held when its median lies within +-{NEGLIGIBLE_KL})",
                                 "reference KL (estimate)", "optimisation"))
    ms = sorted(df.loc[df["scorer"] == "maxsim", "m"].dropna().unique())
    if ms:
        top = df["m"] == ms[-1]
        spread = df["kl_floor_dim_spread"].max() if "kl_floor_dim_spread" in df else float("nan")
        found.append(Finding(NAME, f"MaxSim m={int(ms[-1])} escapes rank D: its KL below the least KL of free "
                             f"rank-{D} factors (DR's rank-D KL floor)",
                             checked(effect_verdict((by_seed(top, "kl_floor_dim") - by_seed(top)).dropna()), top),
                             "floor minus MaxSim's KL (nats)",
                             f"least KL of free rank-{D} factors (optimised; best two within {spread:.1g})",
                             "the floor is an upper estimate of the true minimum; MaxSim's training budget"))
        found.append(Finding(NAME, f"MaxSim m={int(ms[-1])} below the single-vector dot product in KL",
                             checked(effect_verdict((by_seed(df["m"] == 1) - by_seed(top)).dropna()),
                                     df["m"] == 1, top),
                             "KL difference (nats)", "reference KL (estimate)", "training budget"))
    for gr in [g for g in ("atomic_gr", "seq_gr") if g in set(df["model"])]:
        g = df["model"] == gr
        lab = df.loc[g, "design"].iloc[0]
        if (df["m"] == 1).any():
            found.append(Finding(NAME, f"{lab} below single-vector DR in KL at matched parameters",
                                 checked(effect_verdict((by_seed(df["m"] == 1) - by_seed(g)).dropna()),
                                         df["m"] == 1, g),
                                 "KL difference (nats)", "reference KL (estimate)", "parameter matching is approximate"))
        if ms:
            found.append(Finding(NAME, f"{lab} below MaxSim DR m={int(ms[-1])} in KL (is GR's advantage multi-vector-like?)",
                                 checked(effect_verdict((by_seed(df["m"] == ms[-1]) - by_seed(g)).dropna()),
                                         df["m"] == ms[-1], g),
                                 "KL difference (nats)", "reference KL (estimate)", "training budget"))
    return found


def random_maxsim_ranks(dim: int, vectors=(1, 2, 4, 8), n_docs=(8, 16, 32, 64, 128), n_queries: int = 256) -> str:
    """Markdown table: numerical rank of random MaxSim log-probabilities (row-centred) against N, per m."""
    from grdr.sim.scorers import maxsim_log_prob_rank

    lines = ["| m = m' | " + " | ".join(f"N = {n}" for n in n_docs) + " |", "|---" * (len(n_docs) + 1) + "|"]
    for m in vectors:
        ranks = [maxsim_log_prob_rank(m, m, dim, n_queries, n, seed=0) for n in n_docs]
        lines.append(f"| {m} | " + " | ".join(str(r) for r in ranks) + " |")
    return "\n".join(lines)


def report(df) -> str:
    """Report section: KL, Success@1 and error against floors per scorer design, ranks, params, verdicts."""
    from grdr.experiments.verdict.findings import finding_lines
    from grdr.experiments.verdict.tables import ceiling_table, mean_table

    df = with_design(df)
    D = int(df.loc[df["kind"] == "dr", "dim"].iloc[0])
    R = int(df["corpus_latent_rank"].iloc[0])
    order = list(dict.fromkeys(df.sort_values(["kind", "scorer", "r", "m"], na_position="first")["design"]))
    df = df.assign(design=df["design"].astype("category").cat.set_categories(order))
    one = df.assign(what="value")
    lines = [
        f"Prediction (R = {R}, D = {D}): a rank-r bilinear scorer's squared error stays above the Eckart-Young floor",
        "at min(r, D), which is positive for r < R, and r > D buys nothing; MaxSim with m vectors is not a",
        f"bilinear form and its KL can fall below the least KL of free rank-{D} factors; GR at matched parameters",
        "is compared with both.",
        "",
        "References of the corpus (N fixed; estimates with their Monte Carlo standard errors):", "", ceiling_table(df, "n_docs"), "",
        "Per design (mean ± 95% interval over seeds): KL(p* || model) in nats; Success@1; row-shifted squared",
        "error per query; the floor at the model's rank bound; numerical rank of the row-centred log p",
        f"(rtol {LOGP_RTOL:g}); parameters (model, and the scorer's own):", "",
    ]
    for value in ("kl_true", "Success@1", "rowshift_sq_err", "ey_floor", "logp_rank", "params", "scorer_params"):
        if value in df:
            lines += [f"`{value}`:", "", mean_table(one, "design", "what", value), ""]
    per_seed = df.drop_duplicates("seed")
    lines += [f"The rank-{D} Eckart-Young floor of the squared error (exact, a bound for every rank-{D} model's "
              f"`rowshift_sq_err`): {df['ey_floor_dim'].mean():.3f} per query (mean over seeds).", ""]
    if "kl_floor_dim" in df:
        lines += [f"DR's rank-{D} KL floor, the least KL that free rank-{D} factors reach on the test queries (float64 "
                  f"L-BFGS, {int(per_seed['kl_floor_dim_restarts'].max())} starts, best two within "
                  f"{per_seed['kl_floor_dim_spread'].max():.2g} nats, {int(per_seed['kl_floor_dim_converged'].sum())} "
                  f"of {int(per_seed['kl_floor_dim_restarts'].sum())} starts met the tolerance): "
                  f"{per_seed['kl_floor_dim'].mean():.4f} nats (mean over seeds). An optimised value, so an upper "
                  f"estimate of the true minimum, which bounds every rank-{D} bilinear scorer's KL there; MaxSim is "
                  "read against it in KL, the loss it is trained on.", ""]
    lines += [f"Random MaxSim scorers (D = {D}, Gaussian vectors, 256 queries): numerical rank of the row-centred "
              "log-probabilities against N (m = 1 is the dot product, rank D):", "",
              random_maxsim_ranks(D), "",
              "Verdicts (paired by seed; each seed its own corpus):", ""]
    lines += finding_lines(findings(df))
    return "\n".join(lines)
