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
from pathlib import Path

import numpy as np
import pandas as pd

from grdr.experiments.sweep import claims, store
from grdr.experiments.registry import EXPERIMENTS, claim
from grdr.experiments.catalog import load as load_experiment
from grdr.experiments.verdict.agreement import Prediction
from grdr.experiments.verdict.findings import (Finding, _adjust_text, _p_cell, adjust_family, family_note, finding_lines,
                                          slope_finding, summary_table)
from grdr.experiments.verdict.significance import format_p
from grdr.experiments.verdict.stats import paired_verdict, seed_floor
from grdr.experiments.verdict.seeds import one_config_per_cell
from grdr.experiments.verdict.tables import ceiling_table, mean_table

__all__ = ["Finding", "slope_finding", "finding_lines", "adjust_family", "family_note", "summary_table", "mean_table",
           "ceiling_table", "load_for_report", "write_report", "paired_verdict", "figure_caption", "summary_rows",
           "experiment_claims", "prediction_finding"]


def load_for_report(out, name: str, module) -> tuple[pd.DataFrame, int]:
    """The records of one experiment, one configuration per cell (see the module docstring)."""
    df = store.load(out, name, missing_ok=True)
    cell = ["model", *getattr(module, "AXES", ())]
    return one_config_per_cell(df, cell)


def figure_caption(out, name: str, preset: str | None = None) -> str:
    """The caption under an experiment's figure: what is drawn and what each line means (the figure
    module's CAPTION), and the commands that made it: the one that wrote its records (their field
    `command`; for older records, `grdr run NAME` at `preset` where known) and `grdr figures`."""
    from grdr.figures import caption_of

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
        failed = claims.failures(out, name)
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
    "agree within a tolerance stated in the experiment's module before any run (an equivalence claim on the median "
    "per-seed deviation: two one-sided sign tests, in the same Holm family as the summary's claims; a row against a "
    "published table is a tolerance check on the median, outside the family).")


def prediction_finding(p: Prediction) -> Finding:
    """A prediction's agreement as a claim of the family."""
    return Finding(p.experiment, p.claim, p.verdict, "median deviation (measured / predicted - 1, or measured - "
                   "predicted; agrees when within the tolerance)", "the prediction", p.source)


def experiment_claims(module, df: pd.DataFrame) -> list[Finding]:
    """One experiment's claims as the report counts them, unadjusted: its findings, then each of its
    predictions' agreements (`prediction_finding`), so that `grdr run NAME` decides the same family
    within the experiment as the report's summary and predicted-versus-measured tables hold."""
    found = list(module.findings(df)) if hasattr(module, "findings") else []
    if hasattr(module, "predictions"):
        found += [prediction_finding(p) for p in module.predictions(df)]
    return found


def predictions_table(predictions: list[Prediction]) -> str:
    def cell(t):
        med, lo, hi = t
        if not np.isfinite(med):
            return ""
        return f"{med:.4g}" if not np.isfinite(lo) or lo == hi == med else f"{med:.4g} [{lo:.4g}, {hi:.4g}]"

    lines = ["| experiment | prediction | predicted | measured | ratio measured / predicted | tolerance | verdict | "
             "sign test p / Holm p | seeds | what limits it |", "|---" * 10 + "|"]
    for p in predictions:
        limits = p.verdict.resolution() or (p.verdict.why if p.word == "inconclusive" else "")
        lines.append(f"| {p.experiment} | {p.quantity} | {cell(p.predicted)} | {cell(p.measured)} | {cell(p.ratio)} | "
                     f"{p.tolerance} | **{p.word}** | {_p_cell(p.verdict)} | {p.verdict.n} | {limits} |")
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
