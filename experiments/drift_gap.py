"""drift_mechanism's readings of the gap KL(sampled) - KL(full) along the learning curves that the
records store: its model pairs (ARMS), the bands its claims are read against (stated before any
run), and the per-seed slopes, extrapolations and rate-law exponents. numpy and pandas only, so the
figure reads them without the training stack."""
from __future__ import annotations

import numpy as np
import pandas as pd

from grdr.experiments.verdict.seeds import first_below

__all__ = ["ARMS", "BANDS", "gap_curves", "kl_curves", "at_step", "first_reach", "extrapolated_gap", "dilations",
           "mechanism_effects"]

ARMS = (("dr_local_uniform", "dr_global", "DR tower"), ("dr_table_local_uniform", "dr_table_global", "DR free table"))
# The claims' bands, stated before any run (nats; per decade of N for the slope):
BANDS = {"band": 0.01,        # an extrapolated gap within +-band of 0 has vanished (consistency)
         "slope_band": 0.01,  # a slope of the gap within +-slope_band per decade of N is flat (budget collapse)
         # the rate law's matched level: L_N is the full softmax's KL after this fraction of the smallest N's
         # budget, and T(N) the steps the sampled model needs to fall to L_N. Revised after the quick records
         # showed the earlier reading (T* at which the gap closes to 0.01 nats) out of reach at every N; the
         # new reading was checked on six seeds outside the preset's (12-17) before it was adopted
         "match_fraction": 0.25,
         # the agreement with N / (K k) is testable only where every N's budget / t_ref is at least this many
         # times the predicted dilation: a design that cannot show the prediction cannot test it
         "design_room": 2.0,
         "alpha_band": 0.35}  # the rate law agrees when |alpha - the theory's alpha| <= alpha_band


def gap_curves(df: pd.DataFrame, local: str, ref: str) -> dict:
    """{(seed, n_docs): (steps, gap)}: KL(local) - KL(global) at the checkpoints both curves share."""
    out = {}
    loc = df[df["model"] == local].set_index(["seed", "n_docs"])
    glob = df[df["model"] == ref].set_index(["seed", "n_docs"])
    for key in sorted(set(loc.index) & set(glob.index)):
        a, b = loc.loc[key], glob.loc[key]
        steps_a, steps_b = np.asarray(a["curve_step"], float), np.asarray(b["curve_step"], float)
        common = np.intersect1d(steps_a, steps_b)
        common = common[common > 0]
        ka = np.asarray(a["curve_kl"], float)[np.searchsorted(steps_a, common)]
        kb = np.asarray(b["curve_kl"], float)[np.searchsorted(steps_b, common)]
        out[key] = (common, ka - kb)
    return out


def kl_curves(df: pd.DataFrame, model: str) -> dict:
    """{(seed, n_docs): (steps, kl)}: one model's learning curve, its checkpoints after step 0."""
    out = {}
    for key, r in df[df["model"] == model].set_index(["seed", "n_docs"]).iterrows():
        steps, kl = np.asarray(r["curve_step"], float), np.asarray(r["curve_kl"], float)
        out[key] = (steps[steps > 0], kl[steps > 0])
    return out


def dilations(df: pd.DataFrame, local: str, ref: str, t_ref: float) -> dict:
    """{(seed, n_docs): T / t_ref}: the steps T at which the sampled model's KL first falls to the level L
    that its full-softmax twin reaches at t_ref steps (both interpolated in log steps), over t_ref; NaN
    where the sampled model does not reach L within its budget (right-censored) or t_ref lies outside
    the reference's curve."""
    loc, glob = kl_curves(df, local), kl_curves(df, ref)
    out = {}
    for key in sorted(set(loc) & set(glob)):
        level = at_step(*glob[key], t_ref)
        out[key] = first_reach(*loc[key], level) / t_ref if np.isfinite(level) else float("nan")
    return out


def at_step(steps, values, t: float) -> float:
    """The curve at t steps, interpolated in log steps (NaN outside the checkpoints)."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if not steps.size or t < steps[0] or t > steps[-1]:
        return float("nan")
    return float(np.interp(np.log(t), np.log(steps), values))


def first_reach(steps, gap, level: float) -> float:
    """The first step at which the gap falls to `level`, interpolated in log steps (NaN if never)."""
    return first_below(steps, gap, level)


def extrapolated_gap(steps, gap) -> tuple[float, float]:
    """(a, slope): gap(t) = a + b t^-1/2 fitted over the second half of the budget (t >= T/2), and the
    least-squares slope of the gap on log10 t there."""
    steps, gap = np.asarray(steps, float), np.asarray(gap, float)
    keep = steps >= steps[-1] / 2   # the last doubling of the steps, at least 3 points
    if keep.sum() < 3:
        keep = np.arange(steps.size) >= steps.size - 3
    t, g = steps[keep], gap[keep]
    a, _ = np.linalg.lstsq(np.stack([np.ones_like(t), t ** -0.5], axis=1), g, rcond=None)[0]
    return float(a), float(np.polyfit(np.log10(t), g, 1)[0])


def _slope(x, y) -> float:
    x, y = np.log10(np.asarray(x, float)), np.asarray(y, float)
    ok = np.isfinite(y)
    return float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else float("nan")


def mechanism_effects(df: pd.DataFrame, local: str, ref: str, bands: dict = BANDS) -> pd.DataFrame:
    """Per seed: the slope and extrapolated gap at the largest N, the gap's N-slope at a fixed budget, at each
    N's own budget (matched pairs per document, drift_corpus's reading) and at the collapsed budget
    t_N = c N / (K k_N), and the rate law: the dilation T(N) / t_ref (the steps the
    sampled model needs to reach its full-softmax twin's KL at t_ref = `match_fraction` of the smallest N's
    budget), its exponent alpha in N (`reached`: the sizes at which the level was reached; `alpha_low`: alpha, or
    its lower bound where the level was not reached at the largest sizes only), the theory's alpha = 1 - d log k
    / d log N, and `room`: the least over N of the largest dilation the budget can show (budget / t_ref) over
    the theory's N / (K k)."""
    curves = gap_curves(df, local, ref)
    k = df[df["model"] == local].groupby(["seed", "n_docs"])["truth_confusers"].mean()
    K = float(df.loc[df["model"] == local, "num_negatives"].iloc[0])
    rows = []
    for seed in sorted({s for s, _ in curves}):
        ns = sorted(n for s, n in curves if s == seed)
        if len(ns) < 2:
            continue
        steps_small, _ = curves[(seed, ns[0])]
        t_fixed = float(steps_small[-1])
        unit = 0.5 * t_fixed * K * float(k.get((seed, ns[0]), np.nan)) / ns[0]   # c: t = c N / (K k)
        t_ref = bands["match_fraction"] * t_fixed
        dilation = dilations(df[df["seed"] == seed], local, ref, t_ref)
        fixed, collapsed, reach = [], [], []
        for n in ns:
            steps, gap = curves[(seed, n)]
            fixed.append(at_step(steps, gap, t_fixed))
            collapsed.append(at_step(steps, gap, unit * n / (K * float(k.get((seed, n), np.nan)))))
            reach.append(dilation.get((seed, n), float("nan")))
        a, slope_t = extrapolated_gap(*curves[(seed, ns[-1])])
        kk = np.array([float(k.get((seed, n), np.nan)) for n in ns])
        reach, log_n = np.asarray(reach), np.log(np.asarray(ns, float))
        ok = np.isfinite(reach)
        budgets = np.array([curves[(seed, n)][0][-1] for n in ns]) / t_ref   # the largest dilation each N can show
        # a size where the level was not reached within the budget makes the exponent a bound, not a value;
        # with T = the budget there it is a lower bound when every such size lies above the mean log N (the
        # least-squares slope rises with the points right of the mean)
        alpha = float(np.polyfit(log_n, np.log(reach), 1)[0]) if ok.all() else float("nan")
        alpha_low = alpha
        if not ok.all() and ok.any() and (log_n[~ok] > log_n.mean()).all():
            alpha_low = float(np.polyfit(log_n, np.log(np.where(ok, reach, budgets)), 1)[0])
        room = float(np.min(budgets / (np.asarray(ns, float) / (K * kk))))   # budget / t_ref over N / (K k)
        alpha_theory = 1.0 - float(np.polyfit(np.log(np.asarray(ns, float)), np.log(kk), 1)[0])
        final = [float(curves[(seed, n)][1][-1]) for n in ns]   # each N at its own budget: matched pairs per document
        rows.append({"seed": seed, "slope_fixed": _slope(ns, fixed), "slope_matched": _slope(ns, final),
                     "slope_collapsed": _slope(ns, collapsed),
                     "gap_slope_in_steps": slope_t, "gap_extrapolated": a, "alpha": alpha, "alpha_low": alpha_low,
                     "alpha_theory": alpha_theory, "reached": int(ok.sum()), "sizes": len(ns), "room": room,
                     "dilation_at_largest_n": float(reach[-1])})
    return pd.DataFrame(rows)
