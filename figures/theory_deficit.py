"""Figure of theory_curves' normalizer deficit: E log Z_S - log Z against N for each K, exact, Monte Carlo
(95% intervals) and theory's closed forms, uncorrected and with logQ; the delta method's relative error
against N/K with the region past the threshold shaded; and its boundary in (N/K, peakedness). Reads
stored records only."""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from grdr.figures.common import plt

EXPERIMENT = "theory_curves"


def k_colors(Ks) -> dict:
    cmap = plt.get_cmap("viridis")
    Ks = sorted(int(k) for k in Ks)
    return {k: cmap(0.85 * i / max(len(Ks) - 1, 1)) for i, k in enumerate(Ks)}


def _errorbars(ax, g, mean, se, color, marker, sign=1.0, positive_only=False):
    g = g[g["mc_samples"] > 0]
    if g.empty:
        return
    y, half = sign * g[mean].to_numpy(), 1.96 * g[se].to_numpy()
    keep = y > 0 if positive_only else np.ones(len(y), bool)
    ax.errorbar(g["n_docs"].to_numpy()[keep], y[keep], yerr=half[keep], fmt=marker, color=color, ms=5, mfc="none",
                capsize=2, lw=1)


def plot(df):
    d = df[df["family"] == "deficit"].sort_values("n_docs")
    b = df[df["family"] == "deficit_boundary"]
    fig, axes = plt.subplots(2, 2, figsize=(7.0, 5.6), constrained_layout=True)
    (ax_plain, ax_logq), (ax_err, ax_bound) = axes
    colors = k_colors(set(d["num_negatives"]) | set(b["num_negatives"]))
    peaked = d[d["profile"] == "peaked"]
    share = float(peaked["share"].iloc[0]) if len(peaked) else float("nan")
    threshold = float(b["threshold"].iloc[0]) if len(b) else 0.1
    for K, color in colors.items():
        for profile, style, marker in (("flat", "-", "o"), ("peaked", "--", "s")):
            g = d[(d["profile"] == profile) & (d["num_negatives"] == K)]
            if g.empty:
                continue
            ax_plain.plot(g["n_docs"], g["exact_plain"], style, color=color, lw=1.5)
            _errorbars(ax_plain, g, "mc_plain", "mc_plain_se", color, marker)
            if profile == "flat":
                ax_plain.plot(g["n_docs"], g["closed_plain"], ":", color="black", lw=1)
            if profile == "peaked":
                ax_logq.plot(g["n_docs"], -g["exact_logq"], "-", color=color, lw=1.5)
                ax_logq.plot(g["n_docs"], -g["delta_logq"], "--", color=color, lw=1.2)
                _errorbars(ax_logq, g, "mc_logq", "mc_logq_se", color, marker, sign=-1.0, positive_only=True)
                # shade the gap between the delta method and the exact value where it exceeds the threshold
                over = (g["rel_error_logq"] > threshold).to_numpy()
                ax_logq.fill_between(g["n_docs"], -g["exact_logq"], -g["delta_logq"], where=over, color=color,
                                     alpha=0.1, lw=0)
                ax_err.plot(g["n_docs"] / K, g["rel_error_logq"], "-", color=color, lw=1.5, marker=".")
                r = b[(b["num_negatives"] == K) & np.isclose(b["share"], share)]
                if len(r) and np.isfinite(r["boundary_n"].iloc[0]):
                    ax_logq.axvline(r["boundary_n"].iloc[0], color=color, ls=":", lw=1)
                    ax_err.plot([r["boundary_n"].iloc[0] / K], [threshold], "v", color=color, ms=8)
        g = b[b["num_negatives"] == K].sort_values("share")
        if not g.empty:
            x = (g["boundary_n"] / K).to_numpy()
            ax_bound.plot(x, g["share"], "o-", color=color, label=f"K = {K}")
            low = g["censored_low"].to_numpy() > 0
            if low.any():
                ax_bound.plot(x[low], g["share"].to_numpy()[low], "<", color=color, ms=9)
            finite = np.isfinite(x)
            ax_bound.fill_betweenx(g["share"].to_numpy()[finite], x[finite], 1e7, color=color, alpha=0.06, lw=0)
    ax_err.axhspan(threshold, 1e9, color="red", alpha=0.08, lw=0)
    ax_err.axhline(threshold, color="red", lw=1)
    ax_err.text(0.03, 0.96, f"relative error > {threshold:.0%}: delta method broken", transform=ax_err.transAxes,
                va="top", color="darkred")
    k_handles = [Line2D([], [], color=c, lw=2, label=f"K = {k}") for k, c in colors.items()]
    ax_plain.legend(handles=k_handles + [
        Line2D([], [], color="grey", ls="-", label="exact, flat profile"),
        Line2D([], [], color="grey", ls="--", label=f"exact, peaked (m = {share:g})"),
        Line2D([], [], color="grey", marker="o", mfc="none", ls="", label="Monte Carlo, flat (95%)"),
        Line2D([], [], color="grey", marker="s", mfc="none", ls="", label="Monte Carlo, peaked (95%)"),
        Line2D([], [], color="black", ls=":", label="closed form -log((N-1)/K)")], loc="lower left")
    ax_logq.legend(handles=k_handles + [
        Line2D([], [], color="grey", ls="-", label="exact"),
        Line2D([], [], color="grey", ls="--", label="delta method -[(N-1)Σp_j² - (1-p+)²]/(2K)"),
        Line2D([], [], color="grey", marker="s", mfc="none", ls="", label="Monte Carlo (95%)"),
        Line2D([], [], color="grey", ls=":", label=f"boundary: relative error {threshold:.0%}"),
        plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.3, label=f"gap where relative error > {threshold:.0%}")], loc="upper left")
    ax_plain.set_title("Uncorrected: E log Z_S - log Z")
    ax_logq.set_title(f"With logQ, peaked (m = {share:g}): -(E log Z_S - log Z)\n"
                      "(flat profile: Z_S = Z exactly, deficit 0)")
    ax_err.set_title(f"Delta method's relative error, peaked (m = {share:g})")
    ax_bound.set_title(f"Boundary in (N/K, m): off by > {threshold:.0%}\nright of each curve (shaded)")
    for ax in (ax_plain, ax_logq):
        ax.set_xscale("log")
        ax.set_xlabel("corpus size N (documents)")
        ax.grid(alpha=0.3, which="both")
    ax_plain.set_ylabel("E log Z_S - log Z  [nats]")
    ax_logq.set_yscale("log")
    ax_logq.set_ylabel("log Z - E log Z_S  [nats, log scale]")
    ax_err.set_xscale("log")
    ax_err.set_yscale("log")
    ax_err.set_xlabel("N / K")
    ax_err.set_ylabel("|delta - exact| / |exact|")
    ax_err.grid(alpha=0.3, which="both")
    finite = d["rel_error_logq"][np.isfinite(d["rel_error_logq"]) & (d["rel_error_logq"] > 0)]
    if len(finite):
        ax_err.set_ylim(max(finite.min() / 2, 1e-6), finite.max() * 2)
    ax_err.legend(handles=k_handles + [Line2D([], [], color="grey", marker="v", ls="", label="boundary")],
                  loc="lower right")
    ax_bound.set_xscale("log")
    ax_bound.set_yscale("log")
    ax_bound.set_xlabel("N / K at the boundary")
    ax_bound.set_ylabel("peakedness m (confuser's share)")
    ax_bound.grid(alpha=0.3, which="both")
    if len(b):
        xs = (b["boundary_n"] / b["num_negatives"]).replace([np.inf, -np.inf], np.nan).dropna()
        if len(xs):
            ax_bound.set_xlim(xs.min() / 2, xs.max() * 3)
    ax_bound.legend(loc="upper right")
    fig.suptitle("Normalizer deficit of sampled softmax (uniform negatives, with replacement)\ndocs/design.md, "
                 "section 1, \"Optimization drift\"")
    return fig
