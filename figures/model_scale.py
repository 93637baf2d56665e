"""Figure of model_scale: KL to the truth and the row-shifted squared error against parameter
count, with each model's fitted power law and a pointwise bootstrap band around it."""
from __future__ import annotations

import numpy as np

from experiments.model_scale import MODELS, fits
from figures.common import LABELS, plt, seed_summary
from theory import fit_power_law

EXPERIMENT = "model_scale"

_COLORS = {"dr_global": "tab:blue", "atomic_gr": "tab:green", "seq_gr": "tab:red"}


def fit_band(x_n, y_n, grid_G, replicates: int = 40, seed: int = 0):
    """Pointwise 95% band of the fitted curve, by refitting on points resampled with replacement."""
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(replicates):
        i = rng.integers(0, len(x_n), len(x_n))
        if len(np.unique(x_n[i])) < 3:
            continue
        f = fit_power_law(x_n[i], y_n[i], bootstrap=0)
        curves.append(f.a * grid_G ** -f.alpha + f.c)
    if not curves:
        return None, None
    return np.percentile(np.stack(curves), [2.5, 97.5], axis=0)


def plot(df):
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    table = fits(df, bootstrap=200).set_index("model")
    models = [m for m in MODELS if m in set(df["model"])]
    for model in models:
        sub = df[df["model"] == model]
        color = _COLORS[model]
        for ax, value in zip(axes, ("kl_true", "rowshift_sq_err")):
            s = seed_summary(sub, ["params"], value).sort_values("params")
            ax.errorbar(s["params"], s["mean"], yerr=s["ci"].fillna(0), fmt="o", color=color, capsize=3,
                        label=LABELS[model])
        fit = table.loc[model] if model in table.index else None
        if fit is not None and not np.isnan(fit.get("alpha", np.nan)):
            x_n, y_n = sub["params"].to_numpy(float), sub["kl_true"].to_numpy(float)
            grid_G = np.geomspace(x_n.min(), x_n.max(), 100)
            low, high = fit_band(x_n, y_n, grid_G)
            axes[0].plot(grid_G, fit["a"] * grid_G ** -fit["alpha"] + fit["c"], color=color, ls="--",
                         label=f"fit: alpha = {fit['alpha']:.2g} [{fit['alpha_low']:.2g}, {fit['alpha_high']:.2g}], "
                               f"c = {fit['c']:.2f} [{fit['c_low']:.2g}, {fit['c_high']:.2g}]")
            if low is not None:
                axes[0].fill_between(grid_G, low, high, color=color, alpha=0.15)
    if "dr_floor" in df:
        floor = df.loc[df["model"] == "dr_global", "dr_floor"]
        if len(floor):
            axes[1].axhline(floor.mean(), color="k", ls="--", label="Eckart-Young floor of DR at rank D (theory)")
    dims = ", ".join(str(d) for d in sorted(set(df.loc[df["kind"] == "dr", "dim"])))
    axes[1].set_yscale("log")  # squared errors span decades; the floor is positive since D < R
    for ax, label in zip(axes, ("KL(p* || model)  [nats]", "min over row shifts of ||log p* - log p||²  per query")):
        ax.set_xscale("log")
        ax.set_xlabel("parameters (count, log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"Model size: DR at fixed D = {dims} vs AtomicGR and SeqGR with H = tower width\n"
                 "(mean and 95% interval over seeds; dashed: fitted power law, band: 95% bootstrap)", fontsize=11)
    return fig
