"""Figure of real_scaling: Success@1, RR@10 and nDCG@10 against corpus size N on each real
collection (BM25 dashed), and R@2 against D (DR) and H (GR) on LIMIT-small. Outside runs
(`grdr real --baseline-run NAME=FILE`, records "run:NAME") are dotted horizontal reference lines:
each is one ranking of the collection's queries, scored at the full corpus.

LIMIT-small: Weller, Boratko, Naim, Lee (2025), "On the Theoretical Limitations of
Embedding-Based Retrieval", CC-BY 4.0.
"""
from __future__ import annotations

from matplotlib.ticker import NullFormatter

from grdr.experiments.variants import VARIANTS
from grdr.figures.common import PAGE_WIDTH, PAPER_RC, label, line_with_band, outside_legend, plt, seed_summary

EXPERIMENT = "real_scaling"
LIMIT_CREDIT = "LIMIT-small: Weller, Boratko, Naim, Lee (2025), CC-BY 4.0"
CAPTION = ("Each row is one collection. Rows against corpus size N: Success@1, RR@10 and nDCG@10 of each model "
           "on nested corpora that all hold the judged documents (only the distractors grow); rows against width: "
           "R@2 and nDCG@10 at the full corpus against D (DR) and H (GR), with the mean R@2 per width as a table. "
           "Coloured lines are models (mean over training seeds; bands are 95% t-intervals, or the seeds' range where "
           "a point has fewer than 3 seeds, as with the 2 seeds of quick); BM25 is dashed black; outside runs "
           "(--baseline-run) are dotted horizontal lines at the value they score on the full corpus.")
_SIZE_PANELS = ("Success@1", "RR@10", "nDCG@10")
_DIM_PANELS = ("R@2", "nDCG@10")


def _title(d) -> str:
    return f"{d['collection'].iloc[0]} ({d['format'].iloc[0]}, {d['features'].iloc[0]}, train on {d['train_on'].iloc[0]})"


def _bm25(ax, base, x, value):
    """BM25 as a dashed line: against N, or flat across the widths at one N."""
    if base.empty:
        return
    s = base.sort_values("n_docs")
    if x == "n_docs":
        ax.plot(s["n_docs"], s[value], ls="--", color="black", marker="x", label="BM25")
    else:
        ax.axhline(s[value].iloc[-1], ls="--", color="black", label="BM25")


_RUN_COLORS = ("darkred", "navy", "darkgreen", "darkmagenta", "saddlebrown")  # none of the models' tab10


def _outside(ax, runs, value):
    """Each outside run as a dotted horizontal line (one ranking, at the full corpus)."""
    for i, (_, r) in enumerate(runs.sort_values("model").iterrows()):
        ax.axhline(r[value], ls=":", lw=1.5, color=_RUN_COLORS[i % len(_RUN_COLORS)], label=r["model"])


def plot(df):
    """One row per collection swept over N, one row per collection swept over D / H."""
    dim_rows = sorted(df.loc[df["sweep"] == "dim", "path"].unique())
    # a collection run with BM25 alone still gets its row against N
    size_rows = sorted(set(df.loc[df["sweep"] == "size", "path"])
                       | set(df.loc[df["sweep"] == "baseline", "path"]).difference(dim_rows))
    rows = [("size", p) for p in size_rows] + [("dim", p) for p in dim_rows]
    if not rows:
        raise ValueError("real_scaling records hold no size or dim sweep")
    # one subfigure per collection, its title centred over its three panels
    fig = plt.figure(figsize=(PAGE_WIDTH, 1.95 * len(rows) + 0.8), layout="constrained")
    subfigures = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    axes = [sub.subplots(1, 3) for sub in subfigures]
    credit = False
    for sub, ax_row, (kind, path) in zip(subfigures, axes, rows):
        d = df[df["path"] == path]
        base = d[d["model"] == "bm25"]
        outside = d[d["kind"] == "run"] if "kind" in d else d.iloc[:0]
        runs = d[d["sweep"] == kind]
        models = [m for m in VARIANTS if m in set(runs["model"])]
        credit |= "limit" in path.lower()
        if kind == "size":
            if not runs.empty:
                base = base[base["n_docs"].isin(set(runs["n_docs"]))]
            for ax, value in zip(ax_row, _SIZE_PANELS):
                for model in models:
                    line_with_band(ax, runs, "n_docs", value, model)
                _bm25(ax, base, "n_docs", value)
                _outside(ax, outside, value)
                _log_ticks(ax, sorted(set(d.loc[d["sweep"] != "dim", "n_docs"])), base=10)
                ax.set_xlabel("corpus size N (documents)")
                ax.set_ylabel(value)
            sub.suptitle(_title(d), fontsize=PAPER_RC["axes.titlesize"])
        else:
            base = base[base["n_docs"] == runs["n_docs"].max()]
            for ax, value in zip(ax_row, _DIM_PANELS):
                for model in models:
                    line_with_band(ax, runs, "dim", value, model)
                _bm25(ax, base, "dim", value)
                _outside(ax, outside, value)
                _log_ticks(ax, sorted(set(runs["dim"].astype(int))), base=2)
                ax.set_xlabel("width: D for DR, H for GR")
                ax.set_ylabel(value)
            sub.suptitle(f"{_title(runs)}, N = {int(runs['n_docs'].max())}", fontsize=PAPER_RC["axes.titlesize"])
            _dim_table(ax_row[2], runs)
        for ax in ax_row:
            ax.grid(alpha=0.3)
            ax.set_ylim(-0.02, 1.02)  # every metric here lies in [0, 1]; two-seed intervals do not
    outside_legend(fig, [ax for row in axes for ax in row], ncol=4)
    title = "Real collections: DR and GR against corpus size N and width (mean over seeds)"
    fig.suptitle(title + (f"\n{LIMIT_CREDIT}" if credit else ""))
    return fig


def _log_ticks(ax, values, base):
    """A log axis labelled at the swept values only (a narrow range gets no clutter of minor labels)."""
    ax.set_xscale("log", base=base)
    ax.set_xticks(values, [str(int(v)) for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _dim_table(ax, runs):
    """The R@2 means as a small table: the numbers the note reports."""
    s = seed_summary(runs, ["model", "dim"], "R@2")
    widths = sorted(s["dim"].unique())
    models = [m for m in VARIANTS if m in set(s["model"])]
    cells = [[f"{s[(s['model'] == m) & (s['dim'] == w)]['mean'].iloc[0]:.3f}"
              if ((s["model"] == m) & (s["dim"] == w)).any() else "" for w in widths] for m in models]
    ax.axis("off")
    ax.grid(False)
    table = ax.table(cellText=cells, rowLabels=[label(m) for m in models],
                     colLabels=[f"{int(w)}" for w in widths], bbox=[0.3, 0.0, 0.7, 1.0])
    table.auto_set_font_size(False)
    table.set_fontsize(6)
    ax.set_title("mean R@2 by width")
