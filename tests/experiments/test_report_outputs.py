"""Paper-ready outputs: the summary of claims as summary.csv and a booktabs summary.tex beside
report.md, every figure as PDF beside its PNG, and figure titles that print values, not lists."""
import dataclasses
import math
import re
import types

import pandas as pd
import pytest

from experiments import real_scaling, report, store
from experiments.report import Finding
from experiments.runner import run_experiment
from experiments.stats import Verdict

FINDINGS = [
    Finding("fake_exp", "DR_local vs GR: gap on KL grows 50% & more (#1)", Verdict("held", 0.12, 0.05, 0.19, 5),
            effect="slope of the gap per decade of n_docs"),
    Finding("fake_exp", "gap on Success@1 of a_b", Verdict("inconclusive", -0.01, -0.2, 0.18, 3, mde=0.3,
                                                          seeds_needed=12)),
    Finding("fake_exp", "SeqGR at H = 2 below DR in KL", Verdict("not testable here", math.nan, math.nan, math.nan, 2,
                                                                  why="one N only")),
]


@pytest.fixture
def written(tmp_path, monkeypatch):
    """write_report over one planted experiment whose findings hold LaTeX's special characters."""
    store.write_record(tmp_path, "fake_exp", {"model": "m", "seed": 0}, {"x": 1.0}, 1.0)
    module = types.ModuleType("fake_exp", "A planted claim.")
    module.findings = lambda df: FINDINGS
    module.report = lambda df: "the section"
    monkeypatch.setattr(report, "EXPERIMENTS", ("fake_exp",))
    monkeypatch.setattr(report, "load_experiment", lambda name: module)
    report.write_report(tmp_path, preset="smoke")
    return tmp_path


def test_summary_csv_holds_each_claim_with_its_interval_as_numbers(written):
    rows = pd.read_csv(written / "summary.csv")
    assert list(rows["claim"]) == [f.claim for f in FINDINGS]
    assert list(rows["metric"]) == ["KL", "Success@1", "KL"]
    assert list(rows["verdict"]) == ["held", "inconclusive", "not testable here"]
    assert rows.loc[0, ["estimate", "low", "high", "seeds"]].tolist() == [0.12, 0.05, 0.19, 5]
    assert rows.loc[1, "seeds_needed"] == 12 and rows.loc[2, "why"] == "one N only"
    assert (written / "summary.md").is_file() and (written / "report.md").is_file()


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
    assert len(body) == 3
    for line in body:
        assert len(re.findall(r"(?<!\\)&", line)) == 4, line  # five cells: no & left unescaped in the text
        assert not re.search(r"(?<!\\)[_%#]", line), line
    assert r"$+0.120$ [$+0.050$, $+0.190$]" in tex


def test_latex_escape_covers_every_special_character():
    assert report.latex_escape(r"a_b 5% & #1 $x$ {y} ~ ^ \ <>") == (
        r"a\_b 5\% \& \#1 \$x\$ \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} \textless{}\textgreater{}")


def test_every_figure_is_written_as_pdf_beside_its_png(tmp_path):
    from figures import render_all

    cfg = dataclasses.replace(real_scaling.PRESETS["smoke"], models=(), collections=(), dims=(4,))
    run_experiment(real_scaling, cfg, tmp_path, progress=False)
    paths = render_all(tmp_path)
    assert [p.name for p in paths] == ["real_scaling.png"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert paths[0].with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_critical_n_title_prints_values_not_python_lists():
    from figures import critical_n

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
