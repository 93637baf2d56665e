"""The drift is an optimisation-rate effect: with the steps scaled by N / (K k) the sampled softmax's gap to the full softmax stops growing with N, at fixed N the gap shrinks as steps grow, and the steps it needs to match the full softmax grow as N / (K k).

Why (docs/design.md, section 1): with accidental hits kept, plain uniform sampling is Fisher-consistent
(its population fixed point is log p*), so nothing in the objective drifts with N. What grows with N is
the rate: K uniform negatives hold one of the k confusers that decide the top-1 with probability about
K k / N, so the gradient on them fades like K / N. Three tests, on a DR tower and on a DR free table,
each sampled (uniform, K negatives) against its full-softmax twin on iso-difficulty corpora (beta
solved per N so that exp H(p*) is fixed, `CorpusSpec.target_eff_docs`, so that corpus size is not
confounded with difficulty):

- consistency (at the largest N): the gap KL(local) - KL(global) at equal steps shrinks as the steps
  grow (per seed, its least-squares slope against log10 steps over the second half of the budget is
  below 0), and its extrapolation to unlimited steps, a in gap(t) = a + b t^-1/2 fitted over that half,
  lies within +-`band` nats of 0;
- budget collapse: read at t_N = c N / (K k_N) steps (k_N: the corpus's measured confusers, the fewest
  documents holding half of p*'s mass off the argmax, averaged over `theory_queries` test queries;
  c anchors t_N at half the budget of the smallest N), the gap's slope against log10 N lies within
  +-`slope_band` per decade, where at a fixed budget (the smallest N's) it is positive (the drift);
- rate law: T(N), the steps the sampled model needs to reach the KL L_N that its full-softmax twin
  reaches at t_ref steps (t_ref = `match_fraction` of the smallest N's budget, the same for every N;
  both curves interpolated in log steps), grows like N^alpha: T / t_ref is the time dilation that
  the coverage K k / N predicts as N / (K k). Per seed alpha is the slope of log T on log N, against
  the theory's 1 - d log k / d log N from the same corpora; the claim is |alpha - theory| <=
  `alpha_band`. A seed whose sampled model does not reach L_N within the budget at some N gives a
  bound, not a value, and is left out (the verdict says how many). The agreement is testable only
  where every N's budget / t_ref is at least `design_room` times N / (K k) (a design that cannot show
  the prediction cannot test it); the claim that the dilation grows with N (alpha > 0) is decided on
  every seed, a censored one with its lower bound. The report adds the dilation at other levels
  (fractions 1/8 and 1/2), which shows how it depends on the level matched.

Every number is read off the learning curves (sim.curves: KL of held-out test queries at log-spaced
checkpoints) of runs under the `rsqrt` schedule, whose state at t steps is that of a run stopped at t
(the schedule does not depend on the total), so one run per model and N is a whole budget sweep; the
local and global twins share their checkpoints. Budgets grow with N (`pairs_per_doc`).

Command:  grdr run drift_mechanism --preset quick --out results
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import pandas as pd

from grdr.experiments.drift_gap import ARMS, BANDS, dilations, gap_curves, mechanism_effects
from grdr.experiments.points import point, require_known, require_seeds, require_unswept
from grdr.experiments.predictions import truth_predictions
from grdr.experiments.variants import VARIANTS
from grdr.sim.corpus import CorpusSpec
from grdr.sim.docids import DocidSpec
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig

NAME = "drift_mechanism"
AXES = ("n_docs",)
@dataclasses.dataclass(frozen=True)
class Config:
    n_docs: tuple[int, ...] = (100, 300, 1_000)
    """Corpus sizes N (a log grid: the laws read slopes in log10 N)."""
    models: tuple[str, ...] = ("dr_global", "dr_local_uniform", "dr_table_global", "dr_table_local_uniform")
    """Model variants: each sampled model beside its full-softmax twin."""
    seeds: tuple[int, ...] = tuple(range(12))
    """Seeds: initialisation, sampling and the corpus (12: the sign test decides nothing below 11 under
    Holm's correction over the report's claims)."""
    pairs_per_doc: float = 800.0
    """Training pairs per document: the budget grows with N (train.steps is the minimum)."""
    theory_queries: int = 100
    """Test queries whose p* gives each corpus's confusers k (and the theory's other quantities)."""
    corpus: CorpusSpec = CorpusSpec(latent_rank=8, beta=60.0, target_eff_docs=4.0, query_feature_noise=0.01,
                                    doc_feature_noise=0.01, n_train_queries=50_000, n_test_queries=500)
    """Iso-difficulty corpora: beta is solved per N for target_eff_docs (sim.corpus.CorpusSpec)."""
    model: ModelConfig = ModelConfig(dim=16, hidden=32, depth=1)
    """The models' sizes: D >= R, so that capacity is not the limit."""
    train: TrainConfig = TrainConfig(steps=1_000, batch_size=128, learning_rate=3e-3, schedule="rsqrt",
                                     decay_steps=500, num_negatives=16, curve_points=16)
    """Training: the rsqrt schedule (its learning curve is a budget sweep), 16 checkpoints, K negatives."""
    docids: DocidSpec = DocidSpec()
    """Unused (no SeqGR here); kept so the command line is the same as drift_corpus's."""
    max_group_seeds: int = 0
    """Seeds trained together under one vmap, at most (0: every seed of a point at once). Smaller groups
    are more tasks for --executor ray, so that no single group bounds a sweep; records do not change."""

    def __post_init__(self):
        require_known(self, "models", VARIANTS)
        require_seeds(self)
        require_unswept(self.corpus, "corpus", {"n_docs": "--n-docs"})
        require_unswept(self.model, "model", {"kind": "--models", "doc_side": "--models"})
        require_unswept(self.train, "train", {"objective": "--models", "sampler": "--models", "logq": "--models"})
        if len(self.n_docs) < 2 or min(self.n_docs) <= self.train.num_negatives:
            raise ValueError(f"Config.n_docs={self.n_docs}: expected at least 2 sizes, each above "
                             f"train.num_negatives={self.train.num_negatives}")
        if self.train.schedule == "cosine":
            raise ValueError("Config.train.schedule='cosine': its state at t steps depends on the total, so a "
                             "learning curve is not a budget sweep; use rsqrt or constant")
        if self.train.curve_points < 8:
            raise ValueError(f"Config.train.curve_points={self.train.curve_points}: expected at least 8")
        if not self.pairs_per_doc > 0:
            raise ValueError(f"Config.pairs_per_doc={self.pairs_per_doc}: expected > 0")
        if not 1 <= self.theory_queries <= self.corpus.n_test_queries:
            raise ValueError(f"Config.theory_queries={self.theory_queries}: expected in [1, corpus.n_test_queries]")
        if self.max_group_seeds < 0:
            raise ValueError(f"Config.max_group_seeds={self.max_group_seeds}: expected 0 (no cap) or a count >= 1")


PRESETS = {
    "smoke": Config(n_docs=(60, 120), seeds=(0, 1), pairs_per_doc=20.0, theory_queries=10,
                    corpus=CorpusSpec(latent_rank=4, target_eff_docs=3.0, n_train_queries=1_000, n_test_queries=50),
                    model=ModelConfig(dim=8, hidden=16, depth=1),
                    train=TrainConfig(steps=40, batch_size=32, num_negatives=8, schedule="rsqrt", decay_steps=20,
                                      steps_per_call=5, curve_points=8)),
    # quick: N from 50 and 2,400 pairs per document, so that every N's budget can show twice the dilation N / (K k)
    # predicted (BANDS["design_room"]). N = 50's budget is the 1,000-step minimum, which keeps t_ref at 250 steps
    # (with N = 100 smallest its 1,875 steps set t_ref at 469 and room stays near 1.2). At (100, 300, 1,000) and 800
    # the budgets showed 0.76 of it at N = 300 and 1,000, and the rate law's agreement was untestable by design; a
    # pilot on seeds 12-14 at 2,100 gave room 1.9, the preset's 12 seeds 2.06-2.40. N = 50 trains 2,560 pairs per
    # document (the minimum steps), 7% above the others' matched 2,400
    "quick": Config(n_docs=(50, 100, 300, 1_000), pairs_per_doc=2_400.0),
    "paper": Config(n_docs=(100, 300, 1_000, 3_000, 10_000, 30_000), seeds=tuple(range(12)), pairs_per_doc=2_000.0,
                    theory_queries=200, corpus=dataclasses.replace(Config().corpus, n_train_queries=200_000),
                    max_group_seeds=1),  # one seed per task: 12 seeds at N = 3e4 were ~20 h in one task
}


def sweep(cfg: Config):
    for n in cfg.n_docs:
        for name in cfg.models:
            for seed in cfg.seeds:
                yield point(name, cfg, n, seed, pairs_per_doc=cfg.pairs_per_doc,
                            extra=(("theory_queries", cfg.theory_queries),))


def measure(model, corpus, docids, point) -> dict:
    """Each corpus's confusers k (and the theory's other quantities) from the truth of its test queries."""
    return _truth(point.corpus_spec(), point.train.num_negatives, dict(point.extra)["theory_queries"])


@lru_cache(maxsize=64)
def _truth(spec: CorpusSpec, K: int, n_queries: int) -> dict:
    from grdr.experiments.pipeline import corpus_for

    return truth_predictions(corpus_for(spec), "uniform", False, K, n_queries)


# ---------------------------------------------------------------------------------------------
# Reading the curves


def findings(df: pd.DataFrame) -> list:
    from grdr.experiments.verdict.findings import Finding
    from grdr.experiments.verdict.stats import effect_verdict, equivalence_verdict

    found = []
    bands = BANDS
    for local, ref, title in ARMS:
        if not {local, ref} <= set(df["model"]):
            continue
        e = mechanism_effects(df, local, ref, bands)
        if e.empty:
            continue
        n_max = int(df["n_docs"].max())
        found += [
            Finding(NAME, f"{title}: at a fixed budget the sampled-minus-full gap grows with log N (the drift)",
                    effect_verdict(e["slope_fixed"]), "slope of the gap per decade of N at the smallest N's budget",
                    "none (a slope)", "iso-difficulty corpora"),
            Finding(NAME, f"{title}: at matched pairs per document (each N's own budget) the gap grows with log N "
                          "(drift_corpus's claim on iso-difficulty corpora)",
                    effect_verdict(e["slope_matched"]), "slope of the final gap per decade of N",
                    "none (a slope)", "iso-difficulty corpora, budgets growing with N"),
            Finding(NAME, f"{title}: at fixed N = {n_max:,} the gap shrinks as the steps grow",
                    effect_verdict(-e["gap_slope_in_steps"]), "minus the gap's slope per decade of steps (nats)",
                    "none (a slope)", "the last doubling of the budget"),
            Finding(NAME, f"{title}: at N = {n_max:,} the gap extrapolated to unlimited steps is within "
                          f"+-{bands['band']:g} nats of 0",
                    equivalence_verdict(e["gap_extrapolated"], bands["band"]),
                    f"a in gap = a + b t^-1/2 (nats; held when its median lies within +-{bands['band']:g})",
                    "0 (a consistent objective)",
                    "the extrapolation's form"),
            Finding(NAME, f"{title}: with steps scaled by N / (K k) the gap no longer grows with log N "
                          f"(slope within +-{bands['slope_band']:g} per decade)",
                    equivalence_verdict(e["slope_collapsed"], bands["slope_band"]),
                    f"slope of the gap per decade of N at t = c N / (K k) (held when its median lies within "
                    f"+-{bands['slope_band']:g})", "0 (no drift left)",
                    "k measured on the truth's confusers"),
            Finding(NAME, f"{title}: the steps the sampled model needs to reach its full-softmax twin's KL at "
                          f"{bands['match_fraction']:g} of the smallest N's budget grow faster than that twin's "
                          "(the dilation grows with N)",
                    _dilation_verdict(e), "alpha in T / t_ref ~ N^alpha (a lower bound where censored)",
                    "none (an exponent)", "the level matched (the dilation table)"),
        ]
    return found


def _dilation_verdict(e: pd.DataFrame):
    """'alpha > 0' on each seed's exponent, or its lower bound where the sampled model did not reach the level at
    the largest sizes (conservative for 'held'); a 'did not hold' read off bounds is not one (inconclusive)."""
    from grdr.experiments.verdict.stats import effect_verdict

    verdict = effect_verdict(e["alpha_low"])
    bounded = int((e["alpha"].isna() & e["alpha_low"].notna()).sum())
    dropped = int(e["alpha_low"].isna().sum())
    notes = ([f"{bounded} seed(s) enter with a lower bound"] if bounded else []) + (
        [f"{dropped} seed(s) left out (the level not reached at a size below the mean log N)"] if dropped else [])
    if bounded and verdict.word == "did not hold":
        verdict = dataclasses.replace(verdict, word="inconclusive")
        notes.append("a 'did not hold' on lower bounds is not one")
    if notes:
        verdict = dataclasses.replace(verdict, why="; ".join(notes + ([verdict.why] if verdict.why else [])))
    return verdict


def predictions(df: pd.DataFrame) -> list:
    """The rate law: per seed, the exponent alpha of T(N) ~ N^alpha, T(N) the steps the sampled model needs to
    reach the KL its full-softmax twin reaches at t_ref (BANDS["match_fraction"] of the smallest N's budget),
    against the theory's 1 - d log k / d log N from the same corpora, within +-BANDS["alpha_band"]."""
    from grdr.experiments.verdict.agreement import agreement
    from grdr.experiments.verdict.stats import not_testable

    rows = []
    for local, ref, title in ARMS:
        if {local, ref} <= set(df["model"]):
            e = mechanism_effects(df, local, ref)
            if e.empty:
                continue
            full = e[e["reached"] == e["sizes"]]
            row = agreement(NAME, f"{title}: exponent of the steps the sampled model needs to reach its full-softmax "
                                  f"twin's KL at {BANDS['match_fraction']:g} of the smallest N's budget, T ~ N^alpha",
                            full["alpha_theory"], full["alpha"], abs_tol=BANDS["alpha_band"],
                            source="coverage K k / N: T ~ N / (K k), alpha = 1 - d log k / d log N")
            room = float(e["room"].median())
            if room < BANDS["design_room"]:  # the budgets cannot show the predicted dilation: nothing to test
                theory = _theory_dilation(df, local)
                why = (f"the budgets can show a dilation of at most {room:.2g} times the theory's N / (K k) at some N "
                       f"(predicted " + ", ".join(f"{v:.1f} at N = {n:,}" for n, v in theory.items())
                       + f"); testing it needs budget / t_ref >= {BANDS['design_room']:g} N / (K k) at every N")
                rows.append(dataclasses.replace(row, verdict=not_testable(why, len(full))))
                continue
            if len(full) < len(e):  # a seed censored at some N gives a bound on alpha, not a value
                why = (f"the sampled model reached the level at every N in {len(full)} of {len(e)} seeds (the "
                       "others' budgets ended first: their exponent is a bound, left out)")
                if row.verdict.why:
                    why += "; " + row.verdict.why
                row = dataclasses.replace(row, verdict=dataclasses.replace(row.verdict, why=why))
            rows.append(row)
    return rows


def dilation_table(df: pd.DataFrame, local: str, ref: str, fractions=(0.125, 0.25, 0.5)) -> pd.DataFrame:
    """The dilation T / t_ref per N (median over seeds, a seed whose sampled model had not reached the level
    within its budget counted above every other, and how many those are) at t_ref = each fraction of the smallest N's budget: how it depends on the
    level matched, beside the rate law's single pre-stated level."""
    gaps = gap_curves(df, local, ref)
    if not gaps:
        return pd.DataFrame()
    n_min = min(n for _, n in gaps)
    budget = float(np.median([gaps[k][0][-1] for k in gaps if k[1] == n_min]))
    rows = []
    for f in fractions:
        d = dilations(df, local, ref, f * budget)
        row = {"t_ref": f"{f:g} x {budget:,.0f}"}
        for n in sorted({n for _, n in d}):
            v = np.array([x for (_, m), x in d.items() if m == n])
            censored = int(np.isnan(v).sum())
            median = float(np.median(np.where(np.isnan(v), np.inf, v)))  # a censored seed lies above every other
            row[f"N = {n:,}"] = (f"{median:.2f}" if np.isfinite(median) else "beyond the budget") + (
                f" ({censored} of {v.size} censored)" if censored else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _theory_dilation(df: pd.DataFrame, local: str) -> dict[int, float]:
    """Per N, the theory's dilation N / (K k) with k the corpora's measured confusers (median over seeds)."""
    d = df[df["model"] == local]
    k = d.groupby("n_docs")["truth_confusers"].median()
    K = float(d["num_negatives"].iloc[0])
    return {int(n): n / (K * float(kn)) for n, kn in k.items()}


def _markdown(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rows = ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |"
            for r in table.itertuples(index=False)]
    return "\n".join([head, "|---" * len(table.columns) + "|", *rows])


def report(df: pd.DataFrame) -> str:
    from grdr.experiments.verdict.findings import finding_lines
    from grdr.experiments.verdict.tables import mean_table
    from grdr.experiments.variants import label

    df = df.assign(label=df["model"].map(label))
    lines = [
        "Prediction: plain uniform sampling with accidental hits kept is Fisher-consistent, so the drift is a rate: "
        "K negatives see one of the k confusers with probability K k / N. With the steps scaled by N / (K k) the "
        "gap stops growing with N; at fixed N it shrinks with the steps towards 0; the steps needed to close it grow "
        "like N / (K k). Iso-difficulty corpora (exp H(p*) fixed), rsqrt schedule (each learning curve a budget sweep).",
        "",
        "Corpora: solved beta and the truth's confusers k per N (mean over seeds):", "",
        mean_table(df[df["objective"] == "local"], "label", "n_docs", "beta_used"), "",
        mean_table(df[df["objective"] == "local"], "label", "n_docs", "truth_confusers"), "",
        "Final KL(p* || model) in nats (mean ± 95% interval over seeds):", "",
        mean_table(df, "label", "n_docs", "kl_true"), "",
    ]
    for local, ref, title in ARMS:
        if {local, ref} <= set(df["model"]):
            e = mechanism_effects(df, local, ref)
            if not e.empty:
                lines += [f"{title}, per seed (slopes in nats per decade; alpha against the theory's):", "",
                          _markdown(e), "",
                          f"{title}, the dilation T / t_ref: the steps the sampled model needs to reach the KL its "
                          "full-softmax twin reaches at t_ref, over t_ref (median over seeds; the theory's N / (K k) "
                          "beside it: " + ", ".join(f"{v:.1f} at N = {n:,}" for n, v in _theory_dilation(df, local)
                                                   .items()) + "); the rate law reads the row at "
                          f"{BANDS['match_fraction']:g}:", "", _markdown(dilation_table(df, local, ref)), ""]
    lines += ["How to read the dilation: the theory's N / (K k) is the ratio of the rates at which the two objectives "
              "push down the k confusers that decide the top-1; a level that both reach while they still learn what the "
              "positives alone teach (the same for both) dilates less. A dilation that grows down the table (with the "
              "level matched) and stays below N / (K k) is what a budget that ends before the confusers limit the "
              "sampled model looks like; one flat in N at every level is not explained by the coverage K k / N.", "",
              "Verdicts:", ""] + finding_lines(findings(df))
    return "\n".join(lines)
