"""Figure of theory_curves' population fixed points: KL(p* || softmax s*) of each sampled-softmax
variant's fixed point against N, under its correction rule, with accidental hits kept (filled) and
masked (hollow). Reads stored records only."""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from grdr.experiments.variants import variant
from grdr.figures.common import plt

EXPERIMENT = "theory_curves"

_COLORS = {"uniform": "tab:blue", "popularity": "tab:orange", "mixed": "tab:green"}
_RULE_STYLE = {"none": ("--", "s"), "logq": ("-", "o"), "logq_negatives": ("-.", "^")}
_RULE_WORDS = {"none": "plain", "logq": "standard logQ", "logq_negatives": "negatives-only logQ"}
_FLOOR = 1e-6   # a KL of exactly 0 (a consistent rule's closed form) is drawn here


def plot(df):
    fp = df[df["family"] == "fixed_point"].sort_values("n_docs")
    fig, ax = plt.subplots(figsize=(7.0, 3.0), constrained_layout=True)
    if "correction" not in fp:
        return fig
    for (model, correction, sampling), g in fp.groupby(["model", "correction", "sampling"]):
        g = g.groupby("n_docs", as_index=False)["kl"].mean()
        sampler = variant(model).sampler
        ls, marker = _RULE_STYLE[correction]
        color = _COLORS.get(sampler, "grey")
        ax.plot(g["n_docs"], np.maximum(g["kl"], _FLOOR), ls=ls, marker=marker, color=color,
                mfc=color if sampling == "keep" else "white", ms=5, lw=1.2)
    ax.axhline(_FLOOR, color="grey", lw=0.6)
    ax.text(fp["n_docs"].min(), _FLOOR * 1.4, "KL = 0 (consistent: closed form)", color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size N (documents)")
    ax.set_ylabel("KL(p* || softmax s*)  [nats]")
    ax.grid(alpha=0.3, which="both")
    K = int(fp["num_negatives"].iloc[0]) if len(fp) else 0
    handles = [Line2D([], [], color=c, lw=2, label=f"proposal: {s}") for s, c in _COLORS.items()
               if s in {variant(m).sampler for m in fp["model"]}]
    handles += [Line2D([], [], color="k", ls=ls, marker=mk, label=_RULE_WORDS[r])
                for r, (ls, mk) in _RULE_STYLE.items() if r in set(fp["correction"])]
    handles += [Line2D([], [], color="k", ls="", marker="o", label="hits kept"),
                Line2D([], [], color="k", ls="", marker="o", mfc="white", label="hits masked")]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5),
              title=f"K = {K}")
    ax.set_title("Population fixed point of sampled softmax, one query (Zipf p*)")
    return fig
