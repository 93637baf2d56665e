"""Figure of drift_corpus: Success@1, RR@10 and KL to the truth against corpus size N."""
from __future__ import annotations

from figures.common import LABELS, line_with_band, plt

EXPERIMENT = "drift_corpus"


def plot(df):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    panels = [("Success@1", "Success@1 (top-1 = argmax of p*)"), ("RR@10", "RR@10"), ("kl_true", "KL(p* || model)  [nats]")]
    models = [m for m in LABELS if m in set(df["model"])]
    for ax, (value, label) in zip(axes, panels):
        for model in models:
            line_with_band(ax, df, "n_docs", value, model)
        ax.set_xscale("log")
        if value == "kl_true":  # hard negatives sit orders of magnitude above the rest
            ax.set_yscale("log")
        ax.set_xlabel("corpus size N (documents)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    K = sorted(set(df.loc[df["num_negatives"] > 0, "num_negatives"]))
    fig.suptitle(f"Optimization drift: fixed K = {K} negatives, growing N (mean and 95% interval over seeds)")
    axes[0].legend(fontsize=8)
    return fig
