"""Figure of drift_mechanism: the sampled-minus-full KL gap against training steps, one line per corpus size
N (median over seeds, interquartile band), with the collapsed budget t_N = c N / (K k) marked on each; one
panel per arm (DR tower, DR free table). Reads stored records only."""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from grdr.experiments.drift_gap import ARMS, BANDS, gap_curves
from grdr.figures.common import plt

EXPERIMENT = "drift_mechanism"


def plot(df):
    arms = [a for a in ARMS if {a[0], a[1]} <= set(df["model"])]
    fig, axes = plt.subplots(1, max(len(arms), 1), figsize=(7.0, 3.0), constrained_layout=True, squeeze=False)
    sizes = sorted(set(df["n_docs"]))
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(sizes)))
    for ax, (local, ref, title) in zip(axes[0], arms):
        curves = gap_curves(df, local, ref)
        for n, c in zip(sizes, colors):
            per_seed = [curves[key] for key in curves if key[1] == n]
            if not per_seed:
                continue
            steps = per_seed[0][0]
            gaps = np.stack([g for s, g in per_seed if len(s) == len(steps) and np.allclose(s, steps)])
            ax.plot(steps, np.median(gaps, axis=0), color=c, label=f"N = {n:,}")
            ax.fill_between(steps, *np.percentile(gaps, [25, 75], axis=0), color=c, alpha=0.2, lw=0)
        ax.axhspan(-BANDS["band"], BANDS["band"], color="grey", alpha=0.15, lw=0)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training steps")
        ax.set_ylabel("KL(sampled) - KL(full)  [nats]", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("The drift as a rate: the gap at equal steps closes with training (grey: the +-band of 0)",
                 fontsize=9)
    return fig
