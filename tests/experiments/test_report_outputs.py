"""Paper-ready outputs: the summary of claims as summary.csv and a booktabs summary.tex beside
report.md, every figure as PDF beside its PNG, and figure titles that print values, not lists."""
import dataclasses
import math
import re
import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from grdr.experiments import real_scaling, report
from grdr.experiments.sweep import store
from grdr.experiments.verdict.findings import Finding
from grdr.experiments.sweep.runner import run_experiment
from grdr.experiments.verdict.significance import holm
from grdr.experiments.verdict.stats import Verdict, effect_verdict, not_testable, paired_verdict

ALL_UP_12 = np.linspace(0.1, 0.2, 12)  # every seed positive: p = 2 / 2^12, decided under Holm
ALL_UP_8 = np.linspace(0.1, 0.2, 8)  # p = 2 / 2^8 = 0.0078: decided alone, not among 8 claims
COIN = np.array([0.1, -0.1, 0.2, -0.2])  # p = 1
FINDINGS = [
    Finding("fake_exp", "DR_local vs GR: gap on KL grows 50% & more (#1)", effect_verdict(ALL_UP_12),
            effect="slope of the gap per decade of n_docs"),
    Finding("fake_exp", "gap on Success@1 of a_b", effect_verdict([-0.01, -0.2, 0.18])),
    Finding("fake_exp", "SeqGR at H = 2 below DR in KL", not_testable("one N only", 2)),
    Finding("fake_exp", "No run fits KL below the floor (a theorem)",
            Verdict("held", 0.0, math.nan, math.nan, 40, why="0 of 40 runs below"), "runs below the floor"),
    Finding("fake_exp", "GR below DR in KL at width 64", effect_verdict(ALL_UP_8)),
] + [Finding("fake_exp", f"filler {i}: KL", effect_verdict(COIN)) for i in range(5)]


def fake_report(df) -> str:
    """A module's section as experiments write it: finding_lines, and a verdict printed directly
    (critical_n prints paired_verdict beside its table)."""
    return "\n".join(["the section", *report.finding_lines(FINDINGS),
                      f"- printed directly: {paired_verdict(ALL_UP_8)} (note)"])


@pytest.fixture
def written(tmp_path, monkeypatch):
    """write_report over one planted experiment whose findings hold LaTeX's special characters."""
    store.write_record(tmp_path, "fake_exp", {"model": "m", "seed": 0}, {"x": 1.0}, 1.0)
    module = types.ModuleType("fake_exp", "A planted claim.")
    module.findings = lambda df: FINDINGS
    module.report = fake_report
    monkeypatch.setattr(report, "EXPERIMENTS", ("fake_exp",))
    monkeypatch.setattr(report, "load_experiment", lambda name: module)
    report.write_report(tmp_path, preset="smoke")
    return tmp_path


def sign_test_p(d) -> float:
    """Reference: twice the smaller one-sided exact binomial p of the non-zero effects (scipy)."""
    d = np.asarray(d)
    k, n = int((d > 0).sum()), int((d != 0).sum())
    return min(1.0, 2 * min(scipy_stats.binomtest(k, n, alternative="greater").pvalue,
                            scipy_stats.binomtest(k, n, alternative="less").pvalue))


def test_holm_over_the_family_undecides_a_claim_that_its_own_p_decides(written):
    rows = pd.read_csv(written / "summary.csv").set_index("claim")
    family = [0, 1, 4, 5, 6, 7, 8, 9]  # every finding with a sign-test p: not the check, not the untestable
    p_F = np.array([sign_test_p(e) for e in (ALL_UP_12, [-0.01, -0.2, 0.18], ALL_UP_8, *[COIN] * 5)])
    p_holm_F = holm(p_F)
    assert list(rows["family"]) == [i in family for i in range(len(FINDINGS))]
    np.testing.assert_allclose(rows["p"].iloc[family], p_F, rtol=1e-12)
    np.testing.assert_allclose(rows["p_holm"].iloc[family], p_holm_F, rtol=1e-12)
    assert rows["p"].iloc[[2, 3]].isna().all() and rows["p_holm"].iloc[[2, 3]].isna().all()
    one = rows.loc["GR below DR in KL at width 64"]
    assert one["p"] <= 0.05 < one["p_holm"] and FINDINGS[4].verdict.word == "held" and one["verdict"] == "inconclusive"
    assert rows.loc[FINDINGS[0].claim, "verdict"] == "held" and rows.loc[FINDINGS[3].claim, "verdict"] == "held"
    assert (rows["family_size"].iloc[family] == 8).all()
    text = (written / "report.md").read_text()
    assert "Holm's correction over the 8 claims with a p" in text and "sign test" in text
    assert "no claim is decided below 9 seeds" in text  # 2^(1 - 9) <= 0.05 / 8 < 2^(1 - 8)


def test_the_sections_print_the_summarys_adjusted_verdicts(written):
    rows = pd.read_csv(written / "summary.csv").set_index("claim")
    text = (written / "report.md").read_text()
    section = text[text.index("## fake_exp"):]
    assert "(unadjusted)" not in section
    for f in FINDINGS:
        line = next(x for x in section.splitlines() if x.startswith(f"- {f.claim}: "))
        assert f"**{rows.loc[f.claim, 'verdict']}**" in line, line
    direct = next(x for x in section.splitlines() if x.startswith("- printed directly: "))
    p_holm = holm([sign_test_p(e) for e in (ALL_UP_12, [-0.01, -0.2, 0.18], ALL_UP_8, *[COIN] * 5)])[2]
    assert "**inconclusive**" in direct and f"Holm p = {p_holm:.4f} over 8 claims" in direct
    # on its own (grdr run) a module's section is unadjusted, and says so
    alone = fake_report(None)
    assert "**held** (median +0.150" in alone and "(unadjusted)" in alone


def test_summary_csv_holds_each_claim_with_its_interval_as_numbers(written):
    rows = pd.read_csv(written / "summary.csv")
    assert list(rows["claim"]) == [f.claim for f in FINDINGS]
    assert list(rows["metric"]) == ["KL", "Success@1", "KL", "KL", "KL"] + ["KL"] * 5
    assert list(rows["verdict"][:5]) == ["held", "inconclusive", "not testable here", "held", "inconclusive"]
    d = np.sort(ALL_UP_12)
    # n = 12: [x_(3), x_(10)] covers the median with 1 - 2 P(Binomial(12, 1/2) <= 2) = 1 - 2 * 79 / 4096
    assert rows.loc[0, ["median", "low", "high", "seeds"]].tolist() == pytest.approx([np.median(d), d[2], d[9], 12])
    assert rows.loc[0, "coverage"] == pytest.approx(1 - 2 * 79 / 4096)
    # n = 3: no 95% interval exists; [min, max] covers the median with 1 - 2 / 2^3
    assert rows.loc[1, ["low", "high", "coverage"]].tolist() == pytest.approx([-0.2, 0.18, 0.75])
    # 2 of 3 negative: the share's 95% interval reaches 0.99 above and falls below 1/2; at its top the
    # floor of a family of 8 (2^(1 - 9) <= 0.05 / 8) already has power 0.99^9 > 0.8; at its bottom, maybe never
    top = scipy_stats.binomtest(2, 3).proportion_ci(0.95, method="exact").high
    assert top ** 9 >= 0.8 and rows.loc[1, "seeds_fewest"] == 9 and np.isnan(rows.loc[1, "seeds_most"])
    assert rows.loc[2, "why"] == "one N only" and rows.loc[3, "kind"] == "check" and np.isnan(rows.loc[3, "median"])
    assert (written / "summary.md").is_file() and (written / "report.md").is_file()
    summary = (written / "summary.md").read_text()
    assert "| 0.0078 / 0.0547 |" in summary and "no (an exact or tolerance check)" in summary


def test_summary_tex_is_one_booktabs_table_per_metric_escaped_for_latex(written):
    tex = (written / "summary.tex").read_text()
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 2
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 2
    assert all(tex.count(rule) == 2 for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert r"\label{tab:summary-kl}" in tex and r"\label{tab:summary-success-1}" in tex
    assert r"\caption{Claims measured on KL" in tex and r"\caption{Claims measured on Success@1" in tex
    assert r"DR\_local vs GR: gap on KL grows 50\% \& more (\#1)" in tex and r"of a\_b" in tex
    assert r"fake\_exp" in tex
    body = [line for line in tex.splitlines() if line.endswith(r"\\") and "Experiment &" not in line]
    assert len(body) == len(FINDINGS)
    for line in body:
        assert len(re.findall(r"(?<!\\)&", line)) == 7, line  # eight cells: no & left unescaped in the text
        assert not re.search(r"(?<!\\)[_%#]", line), line
    assert r"$-0.010$ [$-0.200$, $+0.180$] (75.0\%)" in tex  # [min, max] with its coverage
    assert r"& 0.0078 & 0.0547 & yes & 8 \\" in tex and r"& -- & -- & no & 40 \\" in tex


def test_latex_escape_covers_every_special_character():
    assert report.latex_escape(r"a_b 5% & #1 $x$ {y} ~ ^ \ <>") == (
        r"a\_b 5\% \& \#1 \$x\$ \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} \textless{}\textgreater{}")


def test_every_figure_is_written_as_pdf_beside_its_png(tmp_path):
    from grdr.figures import render_all

    cfg = dataclasses.replace(real_scaling.PRESETS["smoke"], models=(), collections=(), dims=(4,))
    run_experiment(real_scaling, cfg, tmp_path, progress=False)
    paths = render_all(tmp_path)
    assert [p.name for p in paths] == ["real_scaling.png"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert paths[0].with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_critical_n_title_prints_values_not_python_lists():
    from grdr.figures import critical_n

    probes = pd.DataFrame({"record": "probe", "model": "dr_global", "dim": [4, 4], "n_docs": [10, 20],
                           "solved": [1.0, 0.0], "dim_upper": [3.0, 5.0], "dim_lower": [2.0, 3.0], "seed": [0, 1],
                           "max_steps": 1000, "patience": 50, "min_delta": 1e-4, "learning_rate": 0.01,
                           "temperature": 1.0})
    crit = pd.DataFrame({"record": ["critical"], "model": ["dr_global"], "dim": [4], "critical_n": [10.0],
                         "censored": [0], "learning_rate": [0.01], "temperature": [1.0], "seed": [0]})
    fig = critical_n.plot(pd.concat([probes, crit], ignore_index=True))
    title = fig.get_suptitle()
    assert "Adam lr 0.01," in title and "temperature 1," in title and "seeds 0, 1" in title
    assert "[" not in title and "]" not in title
