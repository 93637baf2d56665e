"""Figures that go into a paper unscaled: at most two columns (7 in) wide, no text below MIN_FONT points,
TrueType fonts in the PDF (not Type 3), no panel's labels over another panel, nothing cut off at the
edges, bands of two seeds that show the seeds rather than a t-interval across the whole axis, and a
legend that draws each line the way the panels do. On planted records, so that each figure is drawn
in a fraction of a second."""
from __future__ import annotations

import importlib
import io
import itertools
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.text import Text

from grdr.experiments.registry import FIGURES
from grdr.figures.common import MIN_FONT, PAGE_WIDTH, line_with_band, plt

SEEDS = (0, 1)  # two seeds, as quick's real_scaling has


def _capacity_dim():
    rows = []
    for rank, zipf, model, dim, seed in itertools.product((8,), (0.0, 1.0), ("dr_global", "dr_table_global",
                                                                              "atomic_gr", "seq_gr"), (2, 4, 8, 12), SEEDS):
        kl = 1.0 / dim + 0.05 * seed
        rows.append(dict(corpus_latent_rank=rank, corpus_zipf=zipf, model=model, dim=dim, seed=seed,
                         kind="dr" if model.startswith("dr") else model, doc_bias=False, kl_true=kl,
                         **{"Success@1": 1 - kl}, rowshift_sq_err=100 * kl, ey_floor_dim=50.0 / dim))
    return pd.DataFrame(rows)


def _negatives():
    rows = []
    for zipf, sampler, logq, n, seed in itertools.product((0.0, 1.1), ("uniform", "popularity"), (False, True),
                                                          (100, 300, 1000), SEEDS):
        rows.append(dict(corpus_zipf=zipf, sampler=sampler, logq=logq, n_docs=n, seed=seed, num_negatives=16,
                         model=f"dr_local_{sampler}" + ("_logq" if logq else ""), kl_true=0.1 + 0.01 * seed + 0.1 * logq,
                         fixed_point_kl=1e-3, **{"Success@1": 0.5 + 0.05 * seed}, deficit_mc=-np.log(n / 16),
                         deficit_approx=-np.log(n / 16) + 0.1))
    return pd.DataFrame(rows)


def _real_scaling():
    rows = []
    data = dict(collection="msmarco", format="msmarco", features="hash", train_on="train", path="/d/msmarco")
    for model, n, seed in itertools.product(("dr_global", "seq_gr"), (100, 200, 285), SEEDS):
        v = 0.3 + 0.1 * seed - n / 2000
        rows.append(dict(data, sweep="size", model=model, kind="dr" if model == "dr_global" else "seq_gr", n_docs=n,
                         seed=seed, dim=32, **{"Success@1": v, "RR@10": v, "nDCG@10": v, "R@2": v}))
    for n in (100, 200, 285):
        rows.append(dict(data, sweep="baseline", model="bm25", kind="bm25", n_docs=n, seed=0, dim=np.nan,
                         **{"Success@1": 0.7, "RR@10": 0.8, "nDCG@10": 0.8, "R@2": 0.6}))
    rows.append(dict(data, sweep="baseline", model="run:splade", kind="run", n_docs=285, seed=0, dim=np.nan,
                     **{"Success@1": 0.75, "RR@10": 0.8, "nDCG@10": 0.85, "R@2": 0.7}))
    limit = dict(collection="limit-small", format="beir", features="hash", train_on="test", path="/d/limit-small")
    for model, d, seed in itertools.product(("dr_global", "atomic_gr"), (4, 16, 64), SEEDS):
        v = min(1.0, 0.2 + d / 80 + 0.3 * seed)
        rows.append(dict(limit, sweep="dim", model=model, kind="dr" if model == "dr_global" else "atomic_gr",
                         n_docs=46, seed=seed, dim=d, **{"Success@1": v, "RR@10": v, "nDCG@10": v, "R@2": v}))
    rows.append(dict(limit, sweep="baseline", model="bm25", kind="bm25", n_docs=46, seed=0, dim=np.nan,
                     **{"Success@1": 0.99, "RR@10": 0.99, "nDCG@10": 0.99, "R@2": 0.99}))
    return pd.DataFrame(rows)


def _drift_corpus():
    rows = []
    for model, n, seed in itertools.product(("dr_global", "dr_local_uniform", "atomic_gr"), (100, 300, 1000), SEEDS):
        kl = 0.05 * np.log10(n) * (2 if model == "dr_local_uniform" else 1) + 0.01 * seed
        rows.append(dict(model=model, n_docs=n, seed=seed, kl_true=kl, **{"Success@1": 0.9 - kl},
                         num_negatives=16 if model == "dr_local_uniform" else 0, feasible_kl=0.002,
                         feasible_success1=0.95, bayes_success1=0.97,
                         fixed_point_kl=1e-3 if model == "dr_local_uniform" else np.nan))
    return pd.DataFrame(rows)


def _model_scale():
    rows = []
    for model, width, seed in itertools.product(("dr_global", "atomic_gr", "seq_gr"), (8, 16, 32, 64), SEEDS):
        params = 100.0 * width ** 2
        kl = 3.0 * (params / 1e4) ** -(0.3 if model == "dr_global" else 0.6) + 0.1 + 0.02 * seed
        rows.append(dict(model=model, kind="dr" if model == "dr_global" else model, width=width, seed=seed, depth=1,
                         dim=4 if model == "dr_global" else np.nan, params=params, kl_true=kl, rowshift_sq_err=10 * kl,
                         **{"Success@1": 1 - kl / 4}, dr_kl_floor=0.08, reference_kl=0.05, dr_floor=0.5))
    return pd.DataFrame(rows)


def _similarity():
    rows, base = [], dict(corpus_latent_rank=8, dim=4, kl_floor_dim=0.2)
    for seed in SEEDS:
        def add(model, kind, kl, params, **extra):
            rows.append(dict(base, model=model, kind=kind, seed=seed, kl_true=kl + 0.1 * seed, params=params,
                             rowshift_sq_err=10 * (kl + 0.1 * seed), ey_floor=np.nan, **extra))
        add("dr_global", "dr", 0.5, 800)
        for r in (1, 2, 4, 8):
            add("dr_global", "dr", 1.0 / r + 0.3, 400 * r, scorer="lowrank", scorer_rank=r)
            rows[-1]["ey_floor"] = 5.0 / min(r, 4)
        for m in (2, 4):
            add("dr_global", "dr", 0.4 / m + 0.25, 800 * m, scorer="maxsim", vectors=m)
        add("atomic_gr", "atomic_gr", 0.3, 820)
        add("seq_gr", "seq_gr", 0.35, 790)
    return pd.DataFrame(rows)


def _drift_mechanism():
    rows = []
    for model, n, seed in itertools.product(("dr_local_uniform", "dr_global", "dr_table_local_uniform",
                                             "dr_table_global"), (100, 300, 1000), SEEDS):
        steps = np.geomspace(10, 100 * n, 12)
        gap = 0.0 if model.endswith("global") else 0.01 * (steps / (50.0 * n / 100)) ** -0.5 + 0.001 * seed
        rows.append({"model": model, "seed": seed, "n_docs": n, "num_negatives": 16, "truth_confusers": 2.0,
                     "curve_step": [0.0, *steps], "curve_kl": [5.0, *(1.0 + gap + 0 * steps)]})
    return pd.DataFrame(rows)


def _critical_n():
    rows = []
    budget = dict(learning_rate=0.01, temperature=0.1, max_steps=5000, patience=500, min_delta=1e-4)
    for model, dim, seed in itertools.product(("dr_global", "seq_gr"), (2, 3, 4, 5), SEEDS):
        crit = 2 * dim + seed + (2 if model == "seq_gr" else 0)
        rows.append(dict(budget, record="critical", model=model, dim=dim, seed=seed, critical_n=float(crit),
                         censored=0.0, vectors=np.nan, doc_vectors=np.nan))
        for n in (crit - 1, crit, crit + 1, crit + 3):
            rows.append(dict(budget, record="probe", model=model, dim=dim, seed=seed, n_docs=n,
                             solved=float(n <= crit or n == crit + 3), dim_upper=n - 1, dim_lower=max(1, n // 4),
                             vectors=np.nan, doc_vectors=np.nan))
    return pd.DataFrame(rows)


def _theory_curves():
    rows = []
    for K, n, profile in itertools.product((8, 32), (100, 1000, 10000), ("flat", "peaked")):
        plain = -np.log((n - 1) / K)
        rows.append(dict(family="deficit", n_docs=n, num_negatives=K, profile=profile, share=0.3, mc_samples=100,
                         exact_plain=plain, closed_plain=plain, mc_plain=plain, mc_plain_se=0.01,
                         exact_logq=-0.1 * n / K / 100, delta_logq=-0.12 * n / K / 100, mc_logq=-0.1 * n / K / 100,
                         mc_logq_se=0.001, rel_error_logq=0.002 * n / K))
    for K, share in itertools.product((8, 32), (0.1, 0.3, 0.6)):
        rows.append(dict(family="deficit_boundary", num_negatives=K, share=share, threshold=0.1,
                         boundary_n=400.0 * K / share, censored_low=0.0))
    for k, n in itertools.product((1, 4), (100, 1000, 10000)):
        exact = 1 - (1 - k / (n - 1)) ** 16
        rows.append(dict(family="coverage", n_docs=n, confusers=k, num_negatives=16, exact=exact,
                         closed_form=16 * k / n, mc=exact, mc_se=0.01))
    for corrected, n in itertools.product((False, True), (100, 1000, 10000)):
        rows.append(dict(family="gradient", n_docs=n, corrected=corrected, num_negatives=16, share=0.3,
                         exact_norm=1.0 / np.sqrt(n) / (2 if corrected else 1), mc_samples=100,
                         mc_norm=1.0 / np.sqrt(n), mc_norm_se=0.001, global_confuser_grad=2.0 / n))
    for model, correction, sampling, n in itertools.product(("dr_local_uniform", "dr_local_popularity"),
                                                            ("none", "logq"), ("keep", "mask"), (100, 1000)):
        rows.append(dict(family="fixed_point", model=model, correction=correction, sampling=sampling, n_docs=n,
                         num_negatives=16, kl=0.0 if correction == "logq" else 0.01 * np.log(n)))
    for rank, dim in itertools.product((4, 8), range(1, 11)):
        rows.append(dict(family="rank_floor", latent_rank=rank, dim=dim, floor_rel=max(1e-12, 0.5 ** dim) if dim < rank
                         else 1e-12))
    for tree, hidden in itertools.product(("atomic", "4-ary", "16-ary"), (4, 16, 64)):
        rows.append(dict(family="rank_trie", tree=tree, hidden=hidden, n_docs=256, bound_sharp=min(256, 4 * hidden),
                         bound_nodes=min(256, 8 * hidden), measured_rank=hidden + 1.0 if tree == "4-ary" else np.nan))
    return pd.DataFrame(rows)


PLANTED = {"capacity_dim": _capacity_dim, "negatives": _negatives, "real_scaling": _real_scaling,
           "drift_corpus": _drift_corpus, "model_scale": _model_scale, "similarity": _similarity}
# records for every figure of the registry: the checks that every figure must pass run on each
EVERY = {**PLANTED, "model_scale": _model_scale, "similarity": _similarity, "drift_mechanism": _drift_mechanism,
         "critical_n": _critical_n, **dict.fromkeys(("theory_deficit", "theory_gradient", "theory_fixed_point",
                                                     "theory_rank"), _theory_curves)}


@pytest.fixture(params=sorted(PLANTED))
def figure(request):
    fig = importlib.import_module(f"grdr.figures.{request.param}").plot(PLANTED[request.param]())
    fig.canvas.draw()
    yield request.param, fig
    plt.close(fig)


@pytest.fixture(params=FIGURES)
def any_figure(request):
    fig = importlib.import_module(f"grdr.figures.{request.param}").plot(EVERY[request.param]())
    fig.canvas.draw()
    yield request.param, fig
    plt.close(fig)


_PANEL = re.compile(r"^\s*\(([a-z])\)")


def panel_letters(fig) -> list[str]:
    """The letters of the panel labels "(a) ...": each panel's titles (left, centre, right) and its texts."""
    texts = [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center", "right")]
    texts += [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]
    return [m.group(1) for m in map(_PANEL.match, texts) if m]


def test_every_figure_of_the_registry_has_planted_records():
    assert set(EVERY) == set(FIGURES), "plant records for a new figure in EVERY, so that the checks reach it"


def test_every_figure_fits_two_columns_embeds_truetype_and_letters_each_panel_once(any_figure):
    name, fig = any_figure
    assert fig.get_size_inches()[0] <= PAGE_WIDTH + 1e-9, (name, fig.get_size_inches())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf")
    assert b"/FontFile2" in buffer.getvalue() and b"/Type3" not in buffer.getvalue(), name
    letters = panel_letters(fig)
    assert len(letters) == len(set(letters)), (name, letters)


def test_panel_letters_are_read_from_titles_and_texts():
    fig, axes = plt.subplots(1, 3)
    axes[0].set_title("(a) first")
    axes[1].set_title("(a) again", loc="left")
    axes[2].text(0, 0, "(c) in the panel")
    axes[2].set_title("no letter (d)")
    assert sorted(panel_letters(fig)) == ["a", "a", "c"]
    plt.close(fig)


def test_similarity_draws_two_seeds_as_their_range_not_a_t_interval_to_zero():
    from grdr.figures import similarity

    df = _similarity()
    fig = similarity.plot(df)
    ax_kl = fig.axes[0]
    (band,) = [c for c in ax_kl.collections if isinstance(c, PolyCollection)]
    y = band.get_paths()[0].vertices[:, 1]
    low = df[df["scorer"] == "lowrank"]["kl_true"]
    assert y.min() == pytest.approx(low.min()) and y.max() == pytest.approx(low.max())
    bars = [seg for c in fig.axes[3].collections if not isinstance(c, PolyCollection) for seg in c.get_segments()]
    assert bars and all(df["kl_true"].min() - 1e-9 <= seg[:, 1].min() for seg in bars)
    assert all(seg[:, 1].max() <= df["kl_true"].max() + 1e-9 for seg in bars)
    plt.close(fig)


def test_the_figure_fits_two_columns_and_no_text_is_below_the_minimum(figure):
    name, fig = figure
    assert fig.get_size_inches()[0] <= PAGE_WIDTH + 1e-9, name
    small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT]
    assert not small, (name, small)


def test_the_pdf_embeds_truetype_fonts_not_type3(figure):
    name, fig = figure
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf")
    pdf = buffer.getvalue()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf, name


def test_no_panel_with_its_labels_overlaps_another_and_nothing_is_cut_off(figure):
    name, fig = figure
    renderer = fig.canvas.get_renderer()
    boxes = [(ax, ax.get_tightbbox(renderer)) for ax in fig.axes if ax.get_visible()]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert width <= 1.0 or height <= 1.0, (name, a.get_ylabel(), b.get_ylabel())
    edge = fig.bbox
    drawn = [(ax.get_ylabel() or ax.get_title(), box) for ax, box in boxes]
    drawn += [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts if t.get_text().strip()]
    drawn += [("legend", legend.get_window_extent(renderer)) for legend in fig.legends]
    for what, box in drawn:
        assert box.x0 >= edge.x0 - 1 and box.x1 <= edge.x1 + 1 and box.y0 >= edge.y0 - 1 \
            and box.y1 <= edge.y1 + 1, (name, what)


def test_every_panel_label_is_short_enough_for_its_panel(figure):
    """capacity_dim's right y-label ran into the middle panel: a y-label is no longer than its panel is tall."""
    name, fig = figure
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        label = ax.yaxis.label
        if ax.get_visible() and label.get_text():
            assert label.get_window_extent(renderer).height <= ax.get_window_extent(renderer).height + 1, (
                name, label.get_text())


def test_two_seeds_get_their_range_as_the_band_not_a_t_interval_over_the_whole_axis():
    df = pd.DataFrame({"model": "dr_global", "n_docs": [100, 100, 300, 300], "seed": [0, 1, 0, 1],
                       "Success@1": [0.40, 0.60, 0.30, 0.50]})
    fig, ax = plt.subplots()
    line_with_band(ax, df, "n_docs", "Success@1", "dr_global")
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    y = band.get_paths()[0].vertices[:, 1]
    assert y.min() == pytest.approx(0.30) and y.max() == pytest.approx(0.60)  # not [0, 1]
    plt.close(fig)
    three = pd.concat([df, df.assign(seed=2, **{"Success@1": [0.5, 0.5, 0.4, 0.4]})])
    fig, ax = plt.subplots()
    line_with_band(ax, three, "n_docs", "Success@1", "dr_global")
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    y = band.get_paths()[0].vertices[:, 1]
    assert y.min() < 0.30 and y.max() > 0.60  # three seeds: the 95% t-interval, wider than their range
    plt.close(fig)


def test_the_negatives_legend_draws_plain_dashed_as_its_lines_are():
    from grdr.figures import negatives

    fig = negatives.plot(_negatives())
    fig.canvas.draw()
    (legend,) = fig.legends
    handles = dict(zip([t.get_text() for t in legend.get_texts()], legend.legend_handles))
    plain = handles["plain (dashed, squares)"]
    assert plain.get_linestyle() == "--" and plain.get_marker() == "s"
    assert handles["logQ-corrected (solid, circles)"].get_linestyle() == "-"
    drawn = {(line.get_linestyle(), line.get_marker()) for ax in fig.axes for line in ax.get_lines()
             if len(line.get_xdata())}
    assert drawn == {("--", "s"), ("-", "o")}
    # the handle is long enough to show at least three dashes beside its markers
    dash_period = sum(plain.get_dashes()[1] or (3.7, 1.6)) if hasattr(plain, "get_dashes") else 5.3
    assert legend.handlelength * legend._fontsize >= 3 * dash_period * plain.get_linewidth()
    plt.close(fig)


def test_the_paper_settings_reach_every_figure_module():
    """The fonts and the PDF font type are set once, in figures.common, which every figure module imports."""
    import grdr.figures.common  # noqa: F401

    assert matplotlib.rcParams["pdf.fonttype"] == 42 and matplotlib.rcParams["ps.fonttype"] == 42
    assert matplotlib.rcParams["legend.fontsize"] >= MIN_FONT
