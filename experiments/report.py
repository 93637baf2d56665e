"""The demo report: one summary table of every claim's verdict, then one section per experiment
with its prediction, figure, tables (beside the ceilings) and verdicts (experiments.stats).

An experiment module contributes `findings(df) -> [Finding]` (its claims and verdicts, which the
summary table collects) and `report(df) -> str` (its section). Records of one cell run under
different settings are never pooled: the report keeps each cell's most recent configuration and
says how many records it left out.

Verdicts are decided once for the whole report: every claim with a sign-test p (experiments.stats)
joins one family, Holm's correction adjusts its p values at 5% (`adjust_family`), and the summary
and every section print the adjusted verdicts. A module's report(df) on its own (`grdr run`) prints
its verdicts unadjusted, labelled so; write_report replaces them in its text.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.sweep import store
from experiments.sweep.runner import EXPERIMENTS, claim, load_experiment
from experiments.verdict.significance import format_p, holm
from experiments.verdict.agreement import Prediction
from experiments.verdict.stats import (Verdict, effect_verdict, not_testable, one_config_per_cell,
                               paired_verdict, seed_floor, seed_summary, slope_effects)
from experiments.variants import label

__all__ = ["Finding", "slope_finding", "finding_lines", "adjust_family", "family_note", "summary_table", "mean_table",
           "ceiling_table", "load_for_report", "write_report", "paired_verdict", "figure_caption", "summary_rows"]

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
                  higher_is_better: bool, negligible: float, x: str = "n_docs") -> Finding:
    """Does `local` fall further behind `ref` on `metric` as log10(x) grows? (slope of the paired gap)"""
    a, b = _pivot(df, local, metric, x), _pivot(df, ref, metric, x)
    gap = (b - a) if higher_is_better else (a - b)
    long = gap.stack().rename("gap").reset_index()
    what = "Success@1 / reference" if metric == "rel_success1" else "KL" if metric == "kl_true" else metric
    claim_text = f"{title}: gap on {what} grows with log N"
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
    # The reference (normalised objective) must have converged, or the gap could be its own
    # undertraining. The sampled model is compared at the same budget: that it learns less per pair
    # is the drift itself (plain uniform sampling's population optimum is log p*), so it is reported.
    still = still_falling(df, local, x)
    if still:
        limits += f"; the sampled model's loss still falls at {x} = {', '.join(f'{n:,}' for n in still)}"
    if bad := still_falling(df, ref, x):
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


def mean_table(df: pd.DataFrame, index: str, columns: str, value: str, fmt: str = "{:.3f}") -> str:
    """A markdown table of mean ± 95% half-width across seeds (no interval with one seed)."""
    s = seed_summary(df, [index, columns], value)
    cols = sorted(s[columns].unique())
    lines = [f"| {index} | " + " | ".join(f"{c:,}" if isinstance(c, (int, np.integer)) else str(c) for c in cols)
             + " |", "|---" * (len(cols) + 1) + "|"]
    for key, rows in s.groupby(index, sort=False):
        cells = []
        for c in cols:
            r = rows[rows[columns] == c]
            if r.empty or not np.isfinite(r["mean"].iloc[0]):
                cells.append("")
            else:
                m, h = r["mean"].iloc[0], r["ci"].iloc[0]
                cells.append(fmt.format(m) + ("" if np.isnan(h) else " ± " + fmt.format(h)))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


CEILINGS = (("label_accuracy",
             "label accuracy E max p* (Success@1 of p* if relevance were drawn from p*; argmax qrels: 1)"),
            ("eff_docs", "effective documents exp H(p*)"), ("top_gap", "top-1/top-2 log gap (nats)"),
            ("reference_success1", "reference Success@1 from the features (estimate)"),
            ("reference_success1_se", "  its Monte Carlo standard error"),
            ("reference_kl", "reference KL from the features (nats, estimate)"),
            ("reference_kl_se", "  its Monte Carlo standard error (nats)"))


def ceiling_table(df: pd.DataFrame, x: str = "n_docs") -> str:
    """The corpora's ceilings against x (one row per ceiling)."""
    present = [(c, name) for c, name in CEILINGS if c in df]
    if not present:
        return "(no ceilings recorded)"
    one = df.drop_duplicates(["seed", x])
    xs = sorted(one[x].unique())
    lines = ["| ceiling | " + " | ".join(f"{v:,}" for v in xs) + " |", "|---" * (len(xs) + 1) + "|"]
    for column, name in present:
        m = one.groupby(x)[column].mean()
        lines.append(f"| {name} | " + " | ".join(f"{m[v]:.3g}" for v in xs) + " |")
    return "\n".join(lines)


def load_for_report(out, name: str, module) -> tuple[pd.DataFrame, int]:
    """The records of one experiment, one configuration per cell (see the module docstring)."""
    df = store.load(out, name, missing_ok=True)
    cell = ["model", *getattr(module, "AXES", ())]
    return one_config_per_cell(df, cell)


def figure_caption(out, name: str, preset: str | None = None) -> str:
    """The caption under an experiment's figure: what is drawn and what each line means (the figure
    module's CAPTION), and the commands that made it: the one that wrote its records (their field
    `command`; for older records, `grdr run NAME` at `preset` where known) and `grdr figures`."""
    from figures import caption_of

    made = store.commands(out, name)
    if made:
        ranked = sorted(made.items(), key=lambda kv: -kv[1])
        records = "; ".join(f"`{cmd}`" + (f" ({n} records)" if len(ranked) > 1 else "") for cmd, n in ranked[:3])
        if len(ranked) > 3:
            records += f"; and {len(ranked) - 3} other commands"
    elif preset:
        records = f"`grdr run {name} --preset {preset} --out {out}`"
    else:
        records = f"`grdr run {name} --out {out}` (the records do not say which preset)"
    return (f"*Figure ({name}).* {caption_of(name)} Records written by {records}; drawn by "
            f"`grdr figures --out {out}`.")


def write_report(out, preset: str | None = "quick", seconds: float | None = None) -> Path:
    """report.md (summary of every claim, then one section per experiment) and the summary as
    summary.md, summary.csv and summary.tex; verdicts decided over the family of all claims."""
    out = Path(out)
    sections, findings, predictions, n_failed = [], [], [], 0
    for name in EXPERIMENTS:
        module = load_experiment(name)
        df, dropped = load_for_report(out, name, module)
        failed = store.failures(out, name)
        if df.empty and not failed:
            continue
        body = [f"## {name}", "", f"Claim: {claim(module)}", ""]
        if failed:
            errors = sorted({f.get("error", "?") for f in failed})
            body += [f"**{len(failed)} point(s) failed** and are not in the tables below "
                     f"(`grdr run {name} --retry-failed` runs them again): {'; '.join(errors[:3])}"
                     f"{' ...' if len(errors) > 3 else ''}", ""]
            n_failed += len(failed)
        if df.empty:
            sections += body
            continue
        if hasattr(module, "findings"):
            findings += module.findings(df)
        if hasattr(module, "predictions"):
            predictions += module.predictions(df)
        if dropped:
            body += [f"({dropped} older records of the same cells under other settings are left out; "
                     "seeds are pooled only within one configuration.)", ""]
        if (out / "figures" / f"{name}.png").exists():
            body += [f"![{name}](figures/{name}.png)", "", figure_caption(out, name, preset), ""]
        if "compile_count" in df and df["compile_count"].notna().any():
            share = 1.0 / df["compile_group_size"]
            n_compiled, secs = (df["compile_count"] * share).sum(), (df["compile_seconds"] * share).sum()
            hits = (df["compile_cache_hits"] * share).sum()
            # a module whose records nest (critical_n: a search's record sums its probes') says which to add
            run_s = module.run_seconds(df) if hasattr(module, "run_seconds") else df["seconds"].sum()
            body += [f"Compiling: {n_compiled:.0f} XLA programs in {secs:.0f} s, {hits:.0f} loaded from the "
                     f"persistent cache instead ({run_s:.0f} s of run time in all).", ""]
        takes_out = "out" in inspect.signature(module.report).parameters  # real_scaling reads per-query files
        sections += body + [module.report(df, out=out) if takes_out else module.report(df), ""]
    n_claims = len(findings)
    raw = findings + [prediction_finding(p) for p in predictions]   # agreements join the one family
    adjusted = adjust_family(raw)
    findings, predictions = adjusted[:n_claims], [dataclasses.replace(p, verdict=f.verdict) for p, f in
                                                  zip(predictions, adjusted[n_claims:])]
    head = ["# grdr report", ""]
    if seconds is not None:
        head += [f"Preset `{preset}`; {seconds:.0f} s of wall time for this demo run.", ""]
    elif preset is None:
        head += [f"From the records stored under `{out}` (`grdr report --out {out}`); each figure's caption names "
                 "the command that wrote its records.", ""]
    if n_failed:
        head += [f"**{n_failed} point(s) failed**; their experiments' sections say which.", ""]
    if findings:
        head += ["## Summary", "", _summary_sentence(adjusted), "", summary_table(findings), ""]
    if predictions:
        head += ["## Predicted versus measured", "", PREDICTIONS_NOTE, "", predictions_table(predictions), ""]
    path = out / "report.md"
    path.write_text("\n".join(head) + "\n" + _adjust_text("\n".join(sections), raw, adjusted))
    if findings:  # the summary alone, as the README's results table is copied from it; for papers, CSV and LaTeX
        (out / "summary.md").write_text(summary_table(findings) + "\n")
        rows = summary_rows(adjusted)
        rows.to_csv(out / "summary.csv", index=False)
        (out / "summary.tex").write_text(summary_latex(rows))
    return path


PREDICTIONS_NOTE = (
    "Each theory prediction that a section prints, beside what was measured on the same corpora: medians over "
    "seeds with their distribution-free 95% intervals, the per-seed ratio measured / predicted, and whether they "
    "agree within a tolerance stated in the experiment's module before any run (an equivalence claim on the per-seed "
    "deviations, decided by the sign test in the same Holm family as the summary's claims; a row against a "
    "published table is a tolerance check on the median, outside the family).")


def prediction_finding(p: Prediction) -> Finding:
    """A prediction's agreement as a claim of the family."""
    return Finding(p.experiment, p.claim, p.verdict, "tolerance minus |deviation|", "the prediction", p.source)


def predictions_table(predictions: list[Prediction]) -> str:
    def cell(t):
        med, lo, hi = t
        if not np.isfinite(med):
            return ""
        return f"{med:.4g}" if not np.isfinite(lo) or lo == hi == med else f"{med:.4g} [{lo:.4g}, {hi:.4g}]"

    lines = ["| experiment | prediction | predicted | measured | ratio measured / predicted | tolerance | verdict | "
             "sign test p / Holm p | seeds |", "|---" * 9 + "|"]
    for p in predictions:
        lines.append(f"| {p.experiment} | {p.quantity} | {cell(p.predicted)} | {cell(p.measured)} | {cell(p.ratio)} | "
                     f"{p.tolerance} | **{p.word}** | {_p_cell(p.verdict)} | {p.verdict.n} |")
    return "\n".join(lines)


def _summary_sentence(findings: list[Finding]) -> str:
    """The rule in two sentences, with the counts of this report."""
    size = sum(f.verdict.family for f in findings)
    checks = sum(f.verdict.kind == "check" for f in findings)
    decided = sum(f.verdict.decisive for f in findings)
    return (f"{decided} of {len(findings)} claims decided (held or did not hold). Each statistical claim is "
            "about the median per-seed effect (each seed its own corpus), tested with the exact sign test; "
            f"Holm's correction over the {size} claims with a p (the family) decides them at 5% family-wise, "
            f"so no claim is decided below {seed_floor(max(size, 1))} seeds. {checks} exact or tolerance "
            "checks (no sign test) stand outside the family. Each interval is a distribution-free 95% "
            "interval for the median, not widened for the family. See the sections below for the tables.")


_METRICS = re.compile(r"\b(Success@\d+ / ceiling|(?:Success|nDCG|RR|R|P)@\d+|KL|critical n|row-shifted error|"
                      r"Eckart-Young floor)")


def _metric_of(f: Finding) -> str:
    """The metric a claim is measured on, as its text names it ("KL", "Success@1", "critical n"), or "other"."""
    for text in (f.claim, f.effect, f.ceiling):
        if m := _METRICS.search(text):
            return m.group(1)
    return "other"


def summary_rows(findings: list[Finding]) -> pd.DataFrame:
    """The summary table as data (summary.csv): one row per claim, the interval as numbers.

    estimate is a test's median (median, too) or a check's value; coverage is the interval's exact
    coverage of the median; p the sign test's, p_holm Holm's over the family (family_size claims);
    seeds_fewest / seeds_most the range of seeds that would resolve an inconclusive claim (empty:
    possibly no number).
    """
    rows = []
    for f in findings:
        v = f.verdict
        fewest, most = v.seeds_needed if v.seeds_needed and v.word == "inconclusive" else (None, None)
        rows.append({"experiment": f.experiment, "metric": _metric_of(f), "claim": f.claim, "verdict": v.word,
                     "kind": v.kind, "family": v.family, "estimate": v.estimate,
                     "median": v.estimate if v.kind == "test" else np.nan, "low": v.low, "high": v.high,
                     "coverage": v.coverage, "p": v.p, "p_holm": v.p_holm,
                     "family_size": v.family_size if v.adjusted else np.nan, "seeds": v.n, "effect": f.effect,
                     "ceiling": f.ceiling, "limits": f.limits, "mde": v.mde, "seeds_fewest": fewest,
                     "seeds_most": most, "why": v.why})
    return pd.DataFrame(rows)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(text) -> str:
    """Text safe in a LaTeX table cell: & % $ # _ { } ~ ^ < > | and backslash escaped."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def summary_latex(rows: pd.DataFrame) -> str:
    """summary.tex: one booktabs tabular per metric (captioned and labelled with it), written by hand:
    pandas' to_latex needs jinja2, which grdr does not install."""
    out = ["% grdr summary of claims; needs \\usepackage{booktabs}", ""]
    for metric, t in rows.groupby("metric", sort=False):
        key = re.sub(r"[^a-z0-9]+", "-", metric.lower()).strip("-")
        out += [r"\begin{table}[ht]", r"\centering", r"\small",
                rf"\caption{{Claims measured on {latex_escape(metric)}: verdict, median per-seed effect with its "
                r"distribution-free 95\% interval (its coverage where below 95\%), the sign test's p and Holm's "
                r"over the family of claims; exact and tolerance checks are not in the family.}",
                rf"\label{{tab:summary-{key}}}",
                r"\begin{tabular}{lp{0.3\linewidth}lllllr}", r"\toprule",
                r"Experiment & Claim & Verdict & Median [95\% interval] & $p$ & Holm $p$ & Family & Seeds \\",
                r"\midrule"]
        for r in t.itertuples():
            if r.verdict == "not testable here":
                effect = "--"
            elif np.isfinite(r.low):
                effect = f"${r.estimate:+.3f}$ [${r.low:+.3f}$, ${r.high:+.3f}$]"
                if np.isfinite(r.coverage) and r.coverage < 0.95:
                    effect += f" ({latex_escape(f'{r.coverage:.1%}')})"
            else:
                effect = f"${r.estimate:+.3f}$"
            p, p_holm = (latex_escape(format_p(x)) or "--" for x in (r.p, r.p_holm))
            out.append(f"{latex_escape(r.experiment)} & {latex_escape(r.claim)} & {latex_escape(r.verdict)} & "
                       f"{effect} & {p} & {p_holm} & {'yes' if r.family else 'no'} & {int(r.seeds)} \\\\")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)
