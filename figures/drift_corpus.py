"""Figure of drift_corpus against corpus size N: KL to the truth beside the reference estimate from the
features and each local objective's population fixed point; Success@1 beside the reference estimate;
and the paired KL gap of every sampled-softmax DR to its full-softmax twin, whose slope the verdict
reads. The label accuracy E max p* is not drawn: against argmax qrels p* scores 1."""
from __future__ import annotations

import numpy as np

from grdr.experiments.variants import VARIANTS, global_twin
from grdr.figures.common import PAGE_WIDTH, color, label, line_with_band, outside_legend, panels, seed_summary

EXPERIMENT = "drift_corpus"
CAPTION = ("Against corpus size N with K negatives fixed. Left: KL(p* || model) in nats (log scale), with each "
           "sampled objective's population fixed point dotted in its colour (theory: where that objective's population "
           "loss is minimised; with the standard logQ correction it is p* itself) and the reference KL from the noisy "
           "features dashed black (a Monte Carlo estimate, not a bound); middle: Success@1 against the argmax of p*, "
           "with the reference Success@1 from the features (dashed, an estimate); right: each sampled-softmax DR's "
           "paired KL gap to its full-softmax twin, the quantity whose slope in log10 N the verdict reads. Lines are "
           "means over seeds (each seed its own corpus); bands are 95% t-intervals, or the seeds' range where a point "
           "has fewer than 3 seeds.")


def _reference(ax, df, column, text, style):
    if column in df:
        c = df.groupby("n_docs")[column].mean().sort_index()
        ax.plot(c.index, c.to_numpy(), style, label=text, linewidth=1.2)


def plot(df):
    fig, axes = panels(1, 3, width=PAGE_WIDTH, row_height=2.0, extra=1.0)
    axes = axes[0]
    models = [m for m in VARIANTS if m in set(df["model"])] + sorted(set(df["model"]) - set(VARIANTS))
    for model in models:
        line_with_band(axes[0], df, "n_docs", "kl_true", model)
        line_with_band(axes[1], df, "n_docs", "Success@1", model)
        part = df[df["model"] == model]
        if "fixed_point_kl" in part and part["fixed_point_kl"].notna().any():
            s = seed_summary(part, ["n_docs"], "fixed_point_kl").sort_values("n_docs")
            axes[0].plot(s["n_docs"], s["mean"], ":", color=color(model), linewidth=1.0)
        twin = global_twin(model) if model in VARIANTS else None
        if twin in set(df["model"]):
            a = part.pivot_table(index="seed", columns="n_docs", values="kl_true")
            b = df[df["model"] == twin].pivot_table(index="seed", columns="n_docs", values="kl_true")
            gap = (a - b).stack().rename("gap").reset_index().assign(model=model)
            line_with_band(axes[2], gap, "n_docs", "gap", model, label=f"{label(model)} minus {label(twin)}")
    _reference(axes[0], df, "reference_kl", "reference KL from the features (estimate)", "k--")
    _reference(axes[1], df, "reference_success1", "reference Success@1 from the features (estimate)", "k--")
    axes[2].axhline(0.0, color="grey", linewidth=0.8)
    axes[0].plot([], [], ":", color="grey", label="dotted: population fixed point (theory)")
    if "reference_kl" in df:  # a fixed point near 0 would stretch the log axis past what is measured
        axes[0].set_ylim(bottom=0.5 * df["reference_kl"].min())
    titles = [("KL(p* || model) [nats]", "log"), ("Success@1", "linear"),
              ("KL gap to the full-softmax twin [nats]", "linear")]
    for ax, (title, yscale) in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_yscale(yscale)
        ax.set_xlabel("corpus size N (documents)")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3, which="both")
    axes[1].set_ylim(0, 1.02)
    outside_legend(fig, axes, ncol=3)
    K = ", ".join(str(int(k)) for k in sorted(set(df.loc[df["num_negatives"] > 0, "num_negatives"]))) or "-"
    seeds = int(np.nanmax(df.groupby(["model", "n_docs"])["seed"].nunique())) if len(df) else 0
    fig.suptitle(f"Optimization drift: K = {K} negatives fixed, N growing (mean over {seeds} seeds, each its own "
                 "corpus)")
    return fig
