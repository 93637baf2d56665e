"""Figures that go into a paper unscaled: at most two columns (7 in) wide, no text below MIN_FONT points,
TrueType fonts in the PDF (not Type 3), no panel's labels over another panel, nothing cut off at the
edges, bands of two seeds that show the seeds rather than a t-interval across the whole axis, and a
legend that draws each line the way the panels do. On planted records, so that each figure is drawn
in a fraction of a second."""
from __future__ import annotations

import io
import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.text import Text

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


PLANTED = {"capacity_dim": _capacity_dim, "negatives": _negatives, "real_scaling": _real_scaling,
           "drift_corpus": _drift_corpus}


@pytest.fixture(params=sorted(PLANTED))
def figure(request):
    import importlib

    fig = importlib.import_module(f"grdr.figures.{request.param}").plot(PLANTED[request.param]())
    fig.canvas.draw()
    yield request.param, fig
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
    """similarity and model_scale draw their own layouts; the fonts and the PDF font type are shared."""
    import grdr.figures.common  # noqa: F401

    assert matplotlib.rcParams["pdf.fonttype"] == 42 and matplotlib.rcParams["ps.fonttype"] == 42
    assert matplotlib.rcParams["legend.fontsize"] >= MIN_FONT
