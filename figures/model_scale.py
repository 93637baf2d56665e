"""Figure of model_scale: KL to the truth against tower width beside the least KL that free rank-D
factors reached (an optimised value) and the reference estimate from the features, with each model's
fitted power law where it is resolved; and the row-shifted squared error beside DR's Eckart-Young
floor at rank D (exact, a bound)."""
from __future__ import annotations

import numpy as np

from grdr.experiments.fits import Fit, fit_rows
from grdr.experiments.variants import VARIANTS
from grdr.figures.common import PAGE_WIDTH, color, label, line_with_band, outside_legend, panels

EXPERIMENT = "model_scale"


def plot(df):
    from grdr.experiments.model_scale import with_corpus_measures

    df = with_corpus_measures(df)  # the floors: one record per corpus holds them
    fig, axes = panels(1, 2, width=PAGE_WIDTH, row_height=2.4, extra=1.4)
    axes = axes[0]
    models = [m for m in VARIANTS if m in set(df["model"])]
    fits = {r["model"]: r for r in fit_rows(Fit(EXPERIMENT, "params", "kl_true"), df, bootstrap=200)}
    for model in models:
        for ax, value in zip(axes, ("kl_true", "rowshift_sq_err")):
            line_with_band(ax, df, "width", value, model)
        fit = fits.get(model, {})
        if np.isfinite(fit.get("alpha", np.nan)) and not fit.get("at_bound"):
            sub = df[df["model"] == model].groupby("width")["params"].mean().sort_index()
            grid_W = np.geomspace(sub.index.min(), sub.index.max(), 50)
            params_G = np.exp(np.interp(np.log(grid_W), np.log(sub.index.to_numpy(float)), np.log(sub.to_numpy())))
            axes[0].plot(grid_W, fit["a"] * params_G ** -fit["alpha"] + fit["c"], "--", color=color(model),
                         label=f"{label(model)} fit: alpha {fit['alpha']:.2g}, c {fit['c']:.2g} "
                               f"[{fit['c_low']:.2g}, {fit['c_high']:.2g}]")
    dim = ", ".join(f"{d:g}" for d in sorted(set(df.loc[df["kind"] == "dr", "dim"])))
    for ax, column, text in ((axes[0], "dr_kl_floor", f"least KL of free rank-{dim} factors (optimised, best of "
                                                      "restarts)"),
                             (axes[0], "reference_kl", "reference KL from the features (estimate)"),
                             (axes[1], "dr_floor", f"Eckart-Young floor of DR at rank D = {dim} (exact)")):
        if column in df:
            ax.axhline(df[column].mean(), color="k", ls="--" if column != "reference_kl" else ":", label=text)
    axes[1].set_yscale("log")  # squared errors span decades; the floor is positive since D < R
    for ax, text, title in zip(axes, ("KL(p* || model)  [nats]", "min over row shifts of\n||log p* - log p||² per query"),
                               ("(a) KL to the truth", "(b) row-shifted squared error")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tower width H\n(DR: towers at fixed D; GR: hidden width)")
        ax.set_ylabel(text)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    outside_legend(fig, axes, ncol=2)
    fig.suptitle(f"Model size: DR at fixed D = {dim} against AtomicGR and SeqGR with H = width\n(mean over seeds; "
                 "bands: 95% interval, or the seeds' range below 3 seeds;\ndashed: a fitted law, drawn only when no "
                 "parameter sits on its bound)")
    return fig
