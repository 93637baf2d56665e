"""With D fixed, a larger DR tower does not lower its error much, while GR's error keeps falling with parameters.

Model-size effect (docs/design.md, section 1): a DR scorer at embedding dimension D has rank <= D whatever
the width and depth of its towers, so its row-shifted error against the true log-posterior stays
above the Eckart-Young floor at rank D; AtomicGR with H = width has rank H+1 and SeqGR's hidden
state depends on the docid prefix, so both gain capacity with H. Towers of width H and depth 1-2
are swept; the x-axis is the parameter count; `theory.fit_power_law` fits
KL(params) = a params^-alpha + c per model, with profile-likelihood intervals. DR is trained with the global
objective, so that sampling drift is not the cause.

Command:  grdr run model_scale --preset quick --out results
The quick preset's time and the numbers it printed last are in benchmarks/README.md; each run's own
are in its report.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import pandas as pd

from grdr.experiments.points import point, require_known, require_seeds, require_unswept
from grdr.sim.corpus import CorpusSpec
from grdr.sim.docids import DocidSpec
from grdr.sim.logprobs import (eckart_young_floors, low_rank_kl, model_log_probs, rowshift_sq_err, seq_gr_oracle_kl,
                          true_log_probs)
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig
from grdr.sim.widths import padded_config

NAME = "model_scale"
AXES = ("hidden", "depth")
MODELS = ("dr_global", "atomic_gr", "seq_gr")


@dataclasses.dataclass(frozen=True)
class Config:
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    """Tower widths H swept (DR's towers; AtomicGR's and SeqGR's hidden width)."""
    depths: tuple[int, ...] = (1,)
    """Tower depths swept."""
    models: tuple[str, ...] = MODELS
    """Model variants (DR is trained with the full softmax, so drift is not the cause)."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds: initialisation, sampling and the corpus."""
    pairs_per_doc: float = 400.0
    """Training pairs per document of every model, at the least (AtomicGR and SeqGR have per-document
    parameters; train.steps is the minimum)."""
    corpus: CorpusSpec = CorpusSpec(n_docs=300, latent_rank=16, n_train_queries=20_000, n_test_queries=200,
                                    beta=30.0, query_feature_noise=0.01, doc_feature_noise=0.01)
    """The corpus (n_docs at most 5,000: the M x N log-posterior is exact)."""
    model: ModelConfig = ModelConfig(dim=4)
    """dim: DR's fixed embedding dimension D, below the corpus's latent rank R."""
    train: TrainConfig = TrainConfig(steps=1_000, batch_size=128, learning_rate=3e-3, schedule="cosine", heldout=500)
    """Training: steps, batch, learning rate and schedule, negatives K, held-out convergence check (sim.train.TrainConfig)."""
    docids: DocidSpec = DocidSpec()
    """SeqGR's docids: scheme, vocabulary per level, k-means dimensions (sim.docids.DocidSpec)."""
    oracle_widths: tuple[int, ...] = (2, 4, 8, 16)
    """Widths H of the GR oracle (free per-query states through SeqGR's trie decoder, fitted to the test
    queries' p*: sim.logprobs.seq_gr_oracle_kl), against DR's oracle (free rank-D factors). Empty: none."""
    oracle_seeds: int = 3
    """How many of the seeds (the first) get the oracles (each costs tens of seconds per width)."""
    floor_restarts: int = 4
    """Starts of the rank-D KL floor's L-BFGS (sim.logprobs.low_rank_kl)."""
    floor_max_iter: int = 20_000
    """Iteration cap of each start of the floor."""
    max_group_seeds: int = 0
    """Seeds trained together under one vmap, at most (0: every seed of a point at once). Smaller groups
    are more tasks for --executor ray, so that no single group bounds a sweep; records do not change."""

    def __post_init__(self):
        require_known(self, "models", MODELS)
        require_seeds(self)
        require_unswept(self.model, "model", {"kind": "--models", "doc_side": "--models", "hidden": "--widths",
                                              "depth": "--depths"})
        require_unswept(self.train, "train", {"objective": "--models", "sampler": "--models", "logq": "--models"})
        if not 2 <= self.corpus.n_docs <= 5_000:
            raise ValueError(f"Config.corpus.n_docs={self.corpus.n_docs}: expected 2..5000 (the M x N log-posterior "
                             "is exact)")
        if not self.pairs_per_doc >= 0:
            raise ValueError(f"Config.pairs_per_doc={self.pairs_per_doc}: expected >= 0")
        for field in ("widths", "depths"):
            if not getattr(self, field) or min(getattr(self, field)) < 1:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected sizes >= 1, at least one")
        if min(self.oracle_widths, default=1) < 1:
            raise ValueError(f"Config.oracle_widths={self.oracle_widths}: expected widths >= 1")
        if self.oracle_seeds < 0:
            raise ValueError(f"Config.oracle_seeds={self.oracle_seeds}: expected a count >= 0")
        if self.floor_restarts < 1:
            raise ValueError(f"Config.floor_restarts={self.floor_restarts}: expected at least 1 start")
        if self.floor_max_iter < 1_000:
            raise ValueError(f"Config.floor_max_iter={self.floor_max_iter}: expected at least 1,000 iterations")
        if self.model.dim >= self.corpus.latent_rank:
            raise ValueError(f"Config.model.dim={self.model.dim} >= corpus.latent_rank={self.corpus.latent_rank}: "
                             "DR would not be rank-capped")
        if self.max_group_seeds < 0:
            raise ValueError(f"Config.max_group_seeds={self.max_group_seeds}: expected 0 (no cap) or a count >= 1")


PRESETS = {
    "smoke": Config(widths=(4, 8, 16), seeds=(0, 1), pairs_per_doc=0.0, corpus=CorpusSpec(n_docs=64, latent_rank=4,
                    n_train_queries=300, n_test_queries=32), model=ModelConfig(dim=2),
                    train=TrainConfig(steps=20, steps_per_call=5, heldout=50),
                    docids=DocidSpec(vocab=4)),
    # quick: the oracles on all 12 seeds, which the sign test needs under Holm's correction (3 decide nothing)
    "quick": Config(seeds=tuple(range(12)), model=ModelConfig(dim=2), oracle_seeds=12,
                    corpus=dataclasses.replace(Config().corpus, beta=60.0)),
    # scale: SeqGR's decoder costs ~H^2 a step (over 0.3 s at H = 1,024 on 2 cores): GR's law in width is
    # AtomicGR's here; the oracles are left to quick and paper, the floor takes 2 starts
    "scale": Config(widths=(8, 16, 32, 64, 128, 256, 512, 1024), models=("dr_global", "atomic_gr"), seeds=(0, 1, 2),
                    model=ModelConfig(dim=2), corpus=dataclasses.replace(Config().corpus, beta=60.0), oracle_seeds=0,
                    floor_restarts=2),
    # paper: 400 pairs per document, past where AtomicGR's KL stopped improving at N = 3,000 (300; see
    # experiments.drift_corpus), one seed per task
    "paper": Config(widths=(8, 16, 32, 64, 128, 256, 512, 1024), depths=(1, 2), seeds=tuple(range(12)),
                    max_group_seeds=1,
                    corpus=CorpusSpec(n_docs=3_000, latent_rank=32, n_train_queries=50_000, n_test_queries=500,
                                      beta=30.0, query_feature_noise=0.01, doc_feature_noise=0.01),
                    model=ModelConfig(dim=8), train=TrainConfig(steps=8_000, schedule="cosine", heldout=2_000)),
}


def carrier(cfg: Config) -> tuple[int, int, str]:
    """The (width, depth, model) whose points carry their corpus's measures (the KL floor, and the oracles
    on the oracle seeds): one point per seed, so that each corpus's measures are computed once whatever
    the executor and however the seeds are grouped, by whichever task trains that point. The narrowest,
    shallowest first model: the cheapest training beside them."""
    return min(cfg.widths), min(cfg.depths), cfg.models[0]


def sweep(cfg: Config):
    """One point per (width, depth, model, seed); the record's `params` is the model's size. The points
    of `carrier(cfg)` measure their corpus (floor_restarts > 0, oracle_widths on the oracle seeds); the
    others record floor_restarts = floor_max_iter = 0 and no oracle widths (with_corpus_measures)."""
    oracle_seeds = set(cfg.seeds[:cfg.oracle_seeds])
    for width in cfg.widths:
        for depth in cfg.depths:
            for name in cfg.models:
                carries = (width, depth, name) == carrier(cfg)
                floor = (cfg.floor_restarts, cfg.floor_max_iter) if carries else (0, 0)
                for seed in cfg.seeds:
                    oracles = cfg.oracle_widths if carries and seed in oracle_seeds else ()
                    # the oracles run on some seeds only: a field of their records, not of the group, so that
                    # every seed of a width trains under one vmap (one program, not one per subset of seeds)
                    yield point(name, cfg, cfg.corpus.n_docs, seed, hidden=width, depth=depth,
                                pairs_per_doc=cfg.pairs_per_doc, extra=(
                                    ("width", width), ("floor_restarts", floor[0]), ("floor_max_iter", floor[1])),
                                seed_extra=(("oracle_widths", oracles),))


def padded_model(cfg: Config, points) -> ModelConfig:
    """The widths a group of points trains at (experiments.sweep.group): DR's and AtomicGR's towers padded
    to the sweep's shared width bucket (sim.widths: the padding exactly inert, the numbers those of the
    model's own width), so that their widths share compiled programs, where the padded steps cost less
    than a compile (experiments.calibration.padding_pays); otherwise, and for SeqGR, the model's own widths."""
    from grdr.experiments.calibration import padding_pays

    own = points[0].model_cfg
    wide = padded_config(own, widths=cfg.widths)
    return wide if padding_pays(points[0], wide, len(points)) else own


@lru_cache(maxsize=32)
def _floors(spec: CorpusSpec, dim: int, restarts: int, max_iter: int) -> dict:
    """The Eckart-Young floor per query (exact) and the least KL of free rank-D factors (optimised,
    with its restarts, the spread of its best two and how many starts met L-BFGS's tolerance)."""
    from grdr.experiments.pipeline import corpus_for

    target_MxN = true_log_probs(corpus_for(spec))
    kl = low_rank_kl(target_MxN, dim, restarts=restarts, max_iter=max_iter)
    return {"dr_floor": eckart_young_floors(target_MxN, (dim,))[dim] / target_MxN.shape[0], "dr_kl_floor": kl.kl,
            "dr_kl_floor_restarts": float(kl.restarts), "dr_kl_floor_spread": kl.spread,
            "dr_kl_floor_converged": float(kl.converged)}


@lru_cache(maxsize=32)
def _oracles(spec: CorpusSpec, docid_spec: DocidSpec, widths: tuple[int, ...]) -> dict:
    """GR's oracle at each width: the least KL that SeqGR with a free state per query reaches on the test
    queries (`gr_oracle_kl_w<H>`, with the steps it took and whether it converged)."""
    from grdr.experiments.pipeline import corpus_for, docids_for

    target_MxN, docids = true_log_probs(corpus_for(spec)), docids_for(docid_spec, spec)
    out = {}
    for w in widths:
        fit = seq_gr_oracle_kl(target_MxN, docids, w, seed=spec.seed % 2**31)
        out.update({f"gr_oracle_kl_w{w}": fit.kl, f"gr_oracle_converged_w{w}": float(fit.converged)})
    return out


def measure(model, corpus, docids, point) -> dict:
    x = dict(point.extra + point.seed_extra)
    metrics = {"rowshift_sq_err": rowshift_sq_err(true_log_probs(corpus), model_log_probs(model, corpus, docids))}
    if x["floor_restarts"]:  # the carrier of its corpus's measures (sweep)
        metrics.update(_floors(corpus.spec, point.model_cfg.dim, x["floor_restarts"], x["floor_max_iter"]))
    if x["oracle_widths"]:
        metrics.update(_oracles(corpus.spec, point.docids, tuple(x["oracle_widths"])))
    return metrics


FLOOR_METRICS = ("dr_floor", "dr_kl_floor", "dr_kl_floor_restarts", "dr_kl_floor_spread", "dr_kl_floor_converged")


def with_corpus_measures(df: pd.DataFrame) -> pd.DataFrame:
    """Every record with its corpus's measures (FLOOR_METRICS and the gr_oracle_* columns), which one
    record per corpus carries (`carrier`): each column's value from whichever record of the same corpus
    (seed and corpus settings) has it; NaN where none has. Idempotent."""
    cols = [c for c in df.columns if c in FLOOR_METRICS or c.startswith("gr_oracle_")]
    key = [c for c in df.columns if c in ("seed", "n_docs") or c.startswith("corpus_")]
    if not cols or "seed" not in key:
        return df
    per_corpus = df.groupby(key, dropna=False)[cols].transform("first")  # the first value that is not NaN
    return df.assign(**{c: per_corpus[c] for c in cols})


def fits(df: pd.DataFrame, value: str = "kl_true", bootstrap: int = 1000) -> pd.DataFrame:
    """One fitted law value = a params^-alpha + c per model (every seed a point), as a table."""
    from grdr.experiments.fits import COLUMNS, Fit, fit_rows

    return pd.DataFrame(fit_rows(Fit(NAME, "params", value), df, bootstrap), columns=COLUMNS)


def _slopes(df, model):
    """Per seed, the slope of KL against log10(width)."""
    from grdr.experiments.verdict.seeds import slope_effects

    d = df[df["model"] == model][["seed", "width", "kl_true"]].rename(columns={"kl_true": "gap"})
    return slope_effects(d, "width")


def findings(df) -> list:
    from grdr.experiments.verdict.findings import Finding
    from grdr.experiments.verdict.stats import Verdict, effect_verdict
    from grdr.experiments.variants import label

    df = with_corpus_measures(df)
    found = []
    if "dr_global" in set(df["model"]):
        dr = df[df["model"] == "dr_global"]
        ok = bool((dr["rowshift_sq_err"] >= dr["dr_floor"] * (1 - 1e-4)).all())
        found.append(Finding(NAME, "DR's row-shifted error stays above its rank-D Eckart-Young floor at every width",
                             Verdict("held" if ok else "did not hold", 0.0, float("nan"), float("nan"), len(dr)),
                             "runs below the floor", "the floor itself", "exact (no sampling)"))
    from grdr.experiments.verdict.findings import still_falling
    from grdr.experiments.verdict.stats import not_testable

    widest = df["width"].max()
    unconverged = {m: still_falling(df, m, "width") for m in set(df["model"])}

    overfit = {m: sorted(set(df.loc[(df["model"] == m) & (df.get("curve_rise", 0) > OVERFIT_NATS), "width"]))
               for m in set(df["model"])}

    def guarded(models, verdict):
        bad = [(m, w) for m in models for w in unconverged.get(m, [])]
        if bad:
            return not_testable("had not converged: " + ", ".join(f"{label(m)} at width {w}" for m, w in bad), verdict.n)
        rose = [(m, w) for m in models if m != "dr_global" for w in overfit.get(m, []) if w == widest]
        if rose:
            return not_testable("its held-out KL rose again by the end (too few training pairs): " +
                                ", ".join(f"{label(m)} at width {w}" for m, w in rose), verdict.n)
        return verdict

    top = df[df["width"] == widest].pivot_table(index="seed", columns="model", values="kl_true")
    floor = df[df["width"] == widest].groupby("seed")["dr_kl_floor"].mean()
    dim = int(df["dim"][df["kind"] == "dr"].iloc[0]) if (df["kind"] == "dr").any() else None
    for gr in [m for m in ("seq_gr", "atomic_gr") if m in set(df["model"])]:
        if "dr_global" in set(df["model"]):
            found.append(Finding(NAME, f"{label(gr)}'s KL falls faster with width than DR's at D = {dim}",
                                 guarded((gr, "dr_global"), effect_verdict(
                                     (_slopes(df, gr) - _slopes(df, "dr_global")).mul(-1).dropna())),
                                 "DR's slope minus GR's, per decade of width (nats)", "reference KL (estimate)",
                                 f"{df['width'].nunique()} widths"))
            found.append(Finding(NAME, f"{label(gr)} below DR in KL at width {widest}",
                                 guarded((gr, "dr_global"), effect_verdict((top["dr_global"] - top[gr]).dropna())),
                                 "KL difference (nats)",
                                 "reference KL (estimate)", "training budget"))
        spread = df["dr_kl_floor_spread"].max() if "dr_kl_floor_spread" in df else float("nan")
        found.append(Finding(NAME, f"{label(gr)} at width {widest} below the least KL of free rank-{dim} factors "
                             "(DR's rank-D KL floor)",
                             guarded((gr,), effect_verdict((floor - top[gr]).dropna())), "floor minus GR's KL (nats)",
                             f"least KL of free rank-{dim} factors (optimised; best two within {spread:.1g})",
                             "an optimised value: an upper estimate of the true floor"))
    oracle = oracle_table(df)
    if not oracle.empty:
        w_max = max(int(c.split("_w")[1]) for c in oracle.columns if c.startswith("gr_oracle_kl_w"))
        found.append(Finding(NAME, f"GR's capacity grows past the rank-{dim} limit with parameters: SeqGR's oracle "
                                   f"(free states through the trie) at width {w_max} below the least KL of free "
                                   f"rank-{dim} factors",
                             effect_verdict((oracle["dr_kl_floor"] - oracle[f"gr_oracle_kl_w{w_max}"]).dropna()),
                             "floor minus GR's oracle KL (nats)", "both oracles fitted to the test queries' p*",
                             "like with like: free per-query states for both"))
    return found


OVERFIT_NATS = 0.01  # a held-out KL that ends this far above its minimum has started to overfit


def oracle_table(df) -> pd.DataFrame:
    """Per seed with oracles: DR's rank-D KL floor and SeqGR's oracle KL at each oracle width."""
    cols = sorted((c for c in df.columns if c.startswith("gr_oracle_kl_w")), key=lambda c: int(c.split("_w")[1]))
    if not cols:
        return pd.DataFrame()
    part = with_corpus_measures(df).dropna(subset=cols).drop_duplicates("seed")
    return part.set_index("seed")[["dr_kl_floor", *cols]]


def crossing_widths(df) -> pd.DataFrame:
    """Per seed: the width at which SeqGR's oracle falls to DR's rank-D KL floor (oracle with oracle), and
    the width at which trained SeqGR's KL falls to trained DR's at the same width (trained with trained);
    interpolated in log width. Column `<name>_mark` says where the crossing is censored: "<=" (below from
    the first width run), ">" (above through the last), "" (crossed between two widths). NaN: the
    comparison was not run for that seed (the oracles run on the first `oracle_seeds` seeds only)."""
    from grdr.experiments.verdict.seeds import crossing

    rows = {}
    oracle = oracle_table(df)
    for seed, r in oracle.iterrows():
        widths = [int(c.split("_w")[1]) for c in oracle.columns if c.startswith("gr_oracle_kl_w")]
        value, mark = crossing(widths, [r[f"gr_oracle_kl_w{w}"] for w in widths], r["dr_kl_floor"])
        rows.setdefault(seed, {}).update(oracle=value, oracle_mark=mark)
    if {"seq_gr", "dr_global"} <= set(df["model"]):
        kl = df.pivot_table(index=["seed", "width"], columns="model", values="kl_true")
        for seed, g in kl.groupby(level="seed"):
            g = g.droplevel("seed").sort_index()
            value, mark = crossing(g.index.to_numpy(float), (g["seq_gr"] - g["dr_global"]).to_numpy(), 0.0)
            rows.setdefault(seed, {}).update(trained=value, trained_mark=mark)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("seed").sort_index()


def _floor_note(df) -> str:
    """How the KL floor was reached: starts, agreement of the best two, starts that met the tolerance."""
    if "dr_kl_floor_restarts" not in df:
        return "(one optimisation run)"
    one = df.drop_duplicates("seed")
    return (f"(float64 L-BFGS from the SVD start and {int(one['dr_kl_floor_restarts'].max())} starts in all; best two "
            f"within {one['dr_kl_floor_spread'].max():.2g} nats; {int(one['dr_kl_floor_converged'].sum())} of "
            f"{int(one['dr_kl_floor_restarts'].sum())} starts met the tolerance, the rest stopped at the iteration cap)")


def report(df) -> str:
    """Report section: KL per size, the floors, the fitted laws, and verdicts."""
    from grdr.experiments.verdict.findings import finding_lines
    from grdr.experiments.verdict.seeds import crossing_summary
    from grdr.experiments.verdict.tables import ceiling_table, mean_table
    from grdr.experiments.variants import label

    df = with_corpus_measures(df).assign(label=[f"{label(m)}, depth {d}" for m, d in zip(df["model"], df["depth"])])
    dim = int(df.loc[df["kind"] == "dr", "dim"].iloc[0]) if (df["kind"] == "dr").any() else None
    table = fits(df)
    lines = [
        f"Prediction: at fixed D = {dim}, DR's KL to the truth cannot fall below its rank-D floor however wide its",
        "towers grow, while AtomicGR (H = width) and SeqGR (H = width) keep improving with parameters.",
        "",
        "References of the corpus (N fixed; estimates with their Monte Carlo standard errors):", "", ceiling_table(df), "",
        "KL(p* || model) in nats by tower width (mean ± 95% interval over seeds):",
        "",
        mean_table(df, "label", "width", "kl_true"),
        "",
        f"DR's KL floor at rank {dim}: the least KL that free rank-{dim} factors reach on each corpus's test queries "
        f"{_floor_note(df)}: {df['dr_kl_floor'].mean():.4f} nats (mean over seeds). Its true minimum bounds every "
        f"rank-{dim} bilinear scorer's KL there (free per-query factors need not generalise); the number is an "
        "optimised value, so an upper estimate of that minimum.",
        "",
        "Fitted laws KL = a · params^-alpha + c (95% intervals; every seed is a point; a parameter on its bound",
        "means the law is not resolved and is not drawn):",
        "",
        "| model | alpha | c | R² | on a bound | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        if pd.isna(getattr(r, "alpha", np.nan)):
            lines.append(f"| {label(r.model)} | | | | | {r.message} |")
            continue
        lines.append(f"| {label(r.model)} | {r.alpha:.2f} [{r.alpha_low:.2f}, {r.alpha_high:.2f}] | "
                     f"{r.c:.3f} [{r.c_low:.3f}, {r.c_high:.3f}] | {r.r2:.2f} | {r.at_bound or 'no'} | {r.message} |")
    oracle = oracle_table(df)
    if not oracle.empty:
        lines += ["", f"Oracle with oracle: SeqGR with a free state per query (its whole decoder fitted to the test "
                  f"queries' p* through the trie, Adam until it stalls) against free rank-{dim} factors (DR's floor), "
                  "per seed, KL in nats:", "", _markdown(oracle.reset_index())]
    cross = crossing_widths(df)
    if not cross.empty:
        lines += ["", "Crossing widths per seed (interpolated in log width): oracle, where SeqGR's oracle falls to DR's "
                  "floor; trained, where trained SeqGR's KL falls to trained DR's at the same width. A mark says "
                  "where a crossing is censored: \"<=\" below from the first width run, \">\" above through the last; "
                  "empty: not run for that seed.", "",
                  _markdown(cross.reset_index().fillna({c: "" for c in cross.columns if c.endswith("_mark")}))]
        for col in [c for c in cross.columns if not c.endswith("_mark")]:
            lines.append(f"- {col}: {crossing_summary(cross[col], cross[f'{col}_mark'])}")
    lines += ["", "Verdicts (paired by seed; each seed its own corpus):", ""] + finding_lines(findings(df))
    return "\n".join(lines)


def _markdown(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rows = ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |"
            for r in table.itertuples(index=False)]
    return "\n".join([head, "|---" * len(table.columns) + "|", *rows])
