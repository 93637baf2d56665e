"""Figure of theory_curves' population fixed points: KL(p* || softmax s*) of each sampled-softmax
variant's fixed point against N, with the PMI target's KL beside every uncorrected non-uniform
proposal. Reads stored records only."""
from __future__ import annotations

from matplotlib.lines import Line2D

from experiments.variants import label
from figures.common import plt

EXPERIMENT = "theory_curves"

_STYLE = {"uniform": ("tab:blue", "o"), "popularity": ("tab:orange", "s"), "mixed": ("tab:green", "^")}


def plot(df):
    fp = df[df["family"] == "fixed_point"].sort_values("n_docs")
    fig, ax = plt.subplots(figsize=(11, 5.6), constrained_layout=True)
    order = {m: (next((i for i, s in enumerate(_STYLE) if f"_{s}" in m), 9), m.endswith("_logq"))
             for m in set(fp["model"])}
    for model in sorted(order, key=order.get):
        g = fp[fp["model"] == model]
        g = g.groupby("n_docs", as_index=False)[["kl", "pmi_kl"]].mean()
        sampler = next((s for s in _STYLE if f"_{s}" in model), "uniform")
        color, marker = _STYLE[sampler]
        logq = model.endswith("_logq")
        ax.plot(g["n_docs"], g["kl"], ("-" if logq else "--"), marker=marker, mfc="white" if logq else color,
                color=color, label=label(model))
        if not logq and sampler != "uniform":
            ax.plot(g["n_docs"], g["pmi_kl"], ":", color=color, lw=2, label=f"PMI target log p* - log q ({sampler})")
    K = int(fp["num_negatives"].iloc[0]) if len(fp) else 0
    lo, hi = (int(fp["samples"].min()), int(fp["samples"].max())) if len(fp) else (0, 0)
    sets = f"{lo}" if lo == hi else f"{lo}-{hi}"
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size N (documents)")
    ax.set_ylabel("KL(p* || softmax s*)  [nats]")
    ax.grid(alpha=0.3, which="both")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="grey", ls="", label=f"K = {K}; {sets} negative sets per positive"))
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Population fixed point of sampled softmax for one query (Zipf p*): the drift no training "
                 "removes\ndocs/design.md, section 1, \"Optimization drift\"", fontsize=10)
    return fig
