"""A claim's finding and the family it is decided in: `Finding` (one claim, its verdict and what it
is read against), the slope finding that the drift-like claims share, Holm's adjustment over the
report's family, and the summary table built from the findings. An experiment module returns its
findings from `findings(df)`; the report writer collects them."""
from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pandas as pd

from grdr.experiments.variants import label
from grdr.experiments.verdict.significance import format_p, holm
from grdr.experiments.verdict.stats import Verdict, effect_verdict, not_testable
from grdr.experiments.verdict.seeds import slope_effects

__all__ = ["Finding", "slope_finding", "still_falling", "unconverged", "level_verdict", "finding_lines",
           "adjust_family", "family_note", "summary_table", "FLOOR_FRACTION", "KL_FLOOR_FRACTION"]

FLOOR_FRACTION = 0.1  # below this fraction of the ceiling a model has learned too little to compare
KL_FLOOR_FRACTION = 0.9  # above this fraction of a uniform model's KL, likewise


@dataclasses.dataclass(frozen=True)
class Finding:
    """One claim's verdict, with what it was measured against."""

    experiment: str
    claim: str
    verdict: Verdict
    effect: str = ""  # what the estimate measures (units)
    ceiling: str = ""  # the ceiling the levels are read against
    limits: str = ""  # what limits the comparison here


def _pivot(df: pd.DataFrame, model: str, metric: str, x: str) -> pd.DataFrame:
    return df[df["model"] == model].pivot_table(index="seed", columns=x, values=metric)


def _levels(df, model, metric, x):
    return df[df["model"] == model].groupby(x)[metric].mean()


def slope_finding(experiment: str, df: pd.DataFrame, local: str, ref: str, metric: str, title: str, *,
                  higher_is_better: bool, negligible: float, x: str = "n_docs", rate: bool = False) -> Finding:
    """Does `local` fall further behind `ref` on `metric` as log10(x) grows? (slope of the paired gap)

    rate=True makes it a claim about rates at matched budgets: the twins train the same budget at each
    x, and the claim is that the gap at that budget grows with x. Neither twin needs to have converged
    for such a claim (with a consistent objective the gap *is* a rate, and whether it closes with more
    steps is drift_mechanism's test); whether they had is reported beside it. Otherwise the reference
    must have converged, or the gap could be its own undertraining."""
    a, b = _pivot(df, local, metric, x), _pivot(df, ref, metric, x)
    gap = (b - a) if higher_is_better else (a - b)
    long = gap.stack().rename("gap").reset_index()
    what = "Success@1 / reference" if metric == "rel_success1" else "KL" if metric == "kl_true" else metric
    claim_text = f"{title}: gap on {what} grows with log N" + (" at matched budgets" if rate else "")
    effect = f"slope of the gap per decade of {x}"
    xs = sorted(set(a.columns) & set(b.columns))
    df = df[df[x].isin(xs)]
    lo_a, lo_b = _levels(df, local, metric, x), _levels(df, ref, metric, x)
    span = f"{min(lo_a.min(), lo_b.min()):.3f}-{max(lo_a.max(), lo_b.max()):.3f}"
    # the reference is an estimate (sim.ceilings): its largest Monte Carlo SE over the runs goes beside it
    estimate = {"rel_success1": "reference_success1", "kl_true": "reference_kl"}.get(metric, "")
    se_of = df[estimate + "_se"] if estimate + "_se" in df else pd.Series(dtype=float)
    se = f" (Monte Carlo SE <= {se_of.max():.1g})" if se_of.notna().any() else ""
    if metric == "rel_success1":
        ceiling = "reference Success@1 (estimate) " + _range(df, estimate, x) + se
        limits = f"models reach {span} of the reference"
    elif metric == "kl_true":
        ceiling = "reference KL (estimate) " + _range(df, estimate, x) + " nats" + se
        limits = f"KL {span} nats"
    else:
        ceiling = "none known (real data)"
        limits = f"{metric} {span}"
    # The sampled model is compared at the same budget: that it learns less per pair is the drift
    # itself (plain uniform sampling's population optimum is log p*), so its convergence is reported.
    still = still_falling(df, local, x)
    if still:
        limits += f"; the sampled model's KL still falls at {x} = {', '.join(f'{n:,}' for n in still)}"
    bad = still_falling(df, ref, x)
    if rate and bad:
        limits += f"; {label(ref)} still falls at {x} = {', '.join(f'{n:,}' for n in bad)} (a comparison of rates)"
    if bad and not rate:
        verdict = not_testable(f"{label(ref)} had not converged at {x} = {', '.join(f'{n:,}' for n in bad)}",
                               len(gap))
    elif not xs or len(xs) < 2:
        verdict = not_testable(f"one {x} only", len(gap))
    elif metric == "rel_success1" and min(lo_a.get(xs[0], np.nan), lo_b.get(xs[0], np.nan)) < FLOOR_FRACTION:
        verdict = not_testable(f"a model sits below {FLOOR_FRACTION:.0%} of the reference already at {x} = {xs[0]:,}",
                               len(gap))
    elif metric == "kl_true" and "kl_uniform" in df and max(lo_a.get(xs[0], 0), lo_b.get(xs[0], 0)) > \
            KL_FLOOR_FRACTION * df.loc[df[x] == xs[0], "kl_uniform"].mean():
        verdict = not_testable(f"a model is near a uniform guess already at {x} = {xs[0]:,}", len(gap))
    else:
        verdict = effect_verdict(slope_effects(long, x).to_numpy(), negligible)
    return Finding(experiment, claim_text, verdict, effect, ceiling, limits)


def still_falling(df: pd.DataFrame, model: str, x: str) -> list:
    """The x at which `model`'s learning curve had not flattened (sim.curves.converged_from_curve: over
    the last doubling of the steps its held-out KL still fell by more than 5% of its final value) in
    more than half of the seeds. Records without a curve count as converged."""
    if "converged" not in df:
        return []
    out = []
    for n, g in df[df["model"] == model].groupby(x):
        c = g["converged"].dropna()
        if len(c) and c.mean() < 0.5:
            out.append(n)
    return out


def _curve_length(curve) -> int:
    return len(curve) if isinstance(curve, (list, tuple, np.ndarray)) else 0


def unconverged(parts: dict[str, pd.DataFrame]) -> str:
    """Why a level claim comparing these records (one part per model or setting, named by its key) cannot
    be decided, or "" when every part had converged.

    A part had not converged when its learning curve had not flattened (sim.curves.converged_from_curve)
    in more than half of its seeds with a reading, as `still_falling` reads it. A record whose curve has
    too few checkpoints for the check (fewer than 3: `converged` is NaN) cannot show either, so it makes
    the claim untestable too. Records without a curve at all count as converged, as in `still_falling`."""
    short, falling = [], []
    for name, part in parts.items():
        if "converged" not in part or part.empty:
            continue
        c = part["converged"].astype(float)
        curves = part["curve_step"] if "curve_step" in part else pd.Series(np.nan, index=part.index)
        blind = c.isna() & curves.map(_curve_length).gt(0)
        if blind.any():
            points = sorted({_curve_length(x) for x in curves[blind]})
            short.append(f"{name} ({int(blind.sum())} of {len(part)} runs: "
                         f"{'/'.join(map(str, points))} checkpoint(s), the check needs 3)")
        read = c.dropna()
        if len(read) and read.mean() < 0.5:
            falling.append(f"{name} ({int((read == 0).sum())} of {len(read)} seeds still falling)")
    why = []
    if falling:
        why.append("had not converged: " + ", ".join(falling))
    if short:
        why.append("learning curve too short for the convergence check: " + ", ".join(short))
    return "; ".join(why)


def level_verdict(verdict: Verdict, parts: dict[str, pd.DataFrame], lower: str | None = None) -> Verdict:
    """`verdict` on a level claim (a KL or Success@1 comparison, a flat claim, a claim against a floor)
    when every part it compares had converged (`unconverged`); "not testable here", with the reason,
    otherwise: an undertrained model's level says how far it got, not where it goes.

    `lower`: for a claim that one part's KL lies below the others', that part's name. Where it is the only
    part still falling and the claim held, the verdict stands: its KL at convergence is at most the KL
    measured if it keeps falling, so the gap can only widen (the why says so). A claim that did not hold,
    or was undecided, with that part still falling stays untestable: more steps could change it."""
    why = unconverged(parts)
    others = {k: v for k, v in parts.items() if k != lower}
    only_lower_falling = lower is not None and not unconverged(others) and "too short" not in why
    if why and only_lower_falling and verdict.word == "held":
        note = f"{lower} was still falling: more steps can only widen the gap if it keeps falling ({why})"
        return dataclasses.replace(verdict, why="; ".join(filter(None, [verdict.why, note])))
    return not_testable(why, verdict.n) if why else verdict


def _range(df, column, x) -> str:
    if column not in df:
        return "(not recorded)"
    m = df.groupby(x)[column].mean()
    return f"{m.iloc[0]:.3g}" if len(m) == 1 or np.isclose(m.min(), m.max(), rtol=0.005) else \
        f"{m.iloc[0]:.3g} -> {m.iloc[-1]:.3g}"


def finding_lines(findings: list[Finding]) -> list[str]:
    return [f"- {f.claim}: {f.verdict}" for f in findings]


def adjust_family(findings: list[Finding]) -> list[Finding]:
    """The findings with every claim of the family (a sign test with a p) decided among all of them:
    Holm-adjusted p, the word read off it at 5%, planning at 5% / family size. Checks and claims
    without a p come back unchanged."""
    p_F = np.array([f.verdict.p if f.verdict.family else np.nan for f in findings], np.float64)
    p_holm_F, size = holm(p_F), int(np.isfinite(p_F).sum())
    return [dataclasses.replace(f, verdict=f.verdict.in_family(p_holm, size)) if f.verdict.family else f
            for f, p_holm in zip(findings, p_holm_F)]


def _adjust_text(text: str, raw: list[Finding], adjusted: list[Finding]) -> str:
    """`text` with each unadjusted verdict printed in it replaced by its family's verdict, so that a
    section a module wrote on its own agrees with the summary. Equal raw p values get equal Holm p
    values, so a raw verdict's text names one adjusted text; one that would name two stays as it is
    (it says "unadjusted")."""
    targets = defaultdict(set)
    for r, a in zip(raw, adjusted):
        if r.verdict.family:
            targets[str(r.verdict)].add(str(a.verdict))
    for old in sorted(targets, key=len, reverse=True):  # a longer text first, should one hold another
        if len(targets[old]) == 1:
            text = text.replace(old, targets[old].pop())
    return text


def family_note(v: Verdict) -> str:
    """Whether a verdict is in the Holm family, and if not, why."""
    if v.family:
        return "yes"
    if v.word == "not testable here":
        return "no (not testable here)"
    if v.kind == "check":
        return "no (an exact or tolerance check)"
    return f"no ({v.why or 'no p'})"


def _p_cell(v: Verdict) -> str:
    if not v.family:
        return family_note(v)
    return f"{format_p(v.p)} / {format_p(v.p_holm)}" if v.adjusted else f"{format_p(v.p)} (unadjusted)"


def summary_table(findings: list[Finding]) -> str:
    lines = ["| experiment | claim | verdict | median effect [95% interval] | sign test p / Holm p | ceiling | seeds "
             "| what limits it |",
             "|---|---|---|---|---|---|---|---|"]
    for f in findings:
        v = f.verdict
        limit = v.why if v.word == "not testable here" else f.limits
        if v.resolution():
            limit = "; ".join(filter(None, (v.resolution(), f.limits)))
        effect = "" if v.word == "not testable here" else v.interval() + (f" ({f.effect})" if f.effect else "")
        lines.append(f"| {f.experiment} | {f.claim} | **{v.word}** | {effect} | {_p_cell(v)} | {f.ceiling} | {v.n} "
                     f"| {limit} |")
    return "\n".join(lines)
