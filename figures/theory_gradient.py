"""Figure of theory_curves' confuser coverage and gradient bias against N at fixed K: the chance that K
uniform negatives hold one of k confusers (exact, the closed form K k / N and a simulation), and
|E_S grad l_L - grad l_G| on the peaked profile (exact and Monte Carlo), uncorrected and with logQ.
Reads stored records only."""
from __future__ import annotations

from matplotlib.lines import Line2D

from grdr.figures.common import plt

EXPERIMENT = "theory_curves"


def plot(df):
    cov = df[df["family"] == "coverage"].sort_values("n_docs")
    grad = df[df["family"] == "gradient"].sort_values("n_docs")
    fig, (ax_cov, ax_grad) = plt.subplots(1, 2, figsize=(7.0, 3.2), constrained_layout=True)
    cmap = plt.get_cmap("plasma")
    ks = sorted(int(k) for k in set(cov["confusers"]))
    for i, k in enumerate(ks):
        color = cmap(0.8 * i / max(len(ks) - 1, 1))
        g = cov[cov["confusers"] == k]
        ax_cov.plot(g["n_docs"], g["exact"], "-", color=color, lw=1.5)
        ax_cov.plot(g["n_docs"], g["closed_form"], "--", color=color, lw=1.2)
        hit = g[g["mc"] > 0]
        ax_cov.errorbar(hit["n_docs"], hit["mc"], yerr=1.96 * hit["mc_se"], fmt="o", mfc="none", color=color, ms=5,
                        capsize=2)
    ax_cov.axhline(1.0, color="grey", lw=0.8)
    K = int(cov["num_negatives"].iloc[0]) if len(cov) else 0
    ax_cov.legend(handles=[Line2D([], [], color=cmap(0.8 * i / max(len(ks) - 1, 1)), lw=2, label=f"k = {k}")
                           for i, k in enumerate(ks)] + [
        Line2D([], [], color="grey", ls="-", label="exact 1 - (1 - k/(N-1))^K"),
        Line2D([], [], color="grey", ls="--", label="closed form K k / N"),
        Line2D([], [], color="grey", marker="o", mfc="none", ls="", label="simulation (95%)")])
    ax_cov.set_title(f"P(K = {K} uniform negatives\nhold one of k confusers)")
    ax_cov.set_ylabel("coverage")
    for corrected, color, name in ((False, "tab:blue", "uncorrected"), (True, "tab:red", "logQ")):
        g = grad[grad["corrected"] == corrected]
        if g.empty:
            continue
        ax_grad.plot(g["n_docs"], g["exact_norm"], "-", color=color, lw=1.5, label=f"{name}: exact")
        mc = g[g["mc_samples"] > 0]
        ax_grad.errorbar(mc["n_docs"], mc["mc_norm"], yerr=1.96 * mc["mc_norm_se"], fmt="s", mfc="none", color=color,
                         ms=5, capsize=2, label=f"{name}: Monte Carlo (95%)")
    if len(grad):
        g = grad[grad["corrected"] == grad["corrected"].iloc[0]]
        if "global_confuser_grad" in g:
            ax_grad.plot(g["n_docs"], g["global_confuser_grad"], ":", color="black", lw=1,
                         label="confusers' global gradient k c / Z")
        share, Kg = float(grad["share"].iloc[0]), int(grad["num_negatives"].iloc[0])
        ax_grad.set_title(f"|E_S grad l_L - grad l_G|, K = {Kg}\npeaked profile (one confuser, m = {share:g})")
    ax_grad.set_ylabel("norm of the bias (score space)")
    ax_grad.set_ylim(bottom=0)
    ax_grad.legend(loc="lower right")
    for ax in (ax_cov, ax_grad):
        ax.set_xscale("log")
        ax.set_xlabel("corpus size N (documents)")
        ax.grid(alpha=0.3, which="both")
    ax_cov.set_yscale("log")
    fig.suptitle("Confuser coverage and gradient bias of sampled softmax\ndocs/design.md, section 1, "
                 "\"Optimization drift\"")
    return fig
