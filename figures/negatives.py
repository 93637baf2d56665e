"""Figure of negatives: KL to the truth with the population fixed point's floor, Success@1 and the
normalizer deficit (Monte Carlo against its closed form) against N, one row per corpus popularity."""
from __future__ import annotations

import zlib

import matplotlib.lines as mlines

from figures.common import plt, seed_summary

EXPERIMENT = "negatives"

_ORDER = ("uniform", "popularity", "hard", "hard_denoised", "mixed")  # known samplers first, any other after


def _samplers(df) -> list[str]:
    present = set(df["sampler"])
    return [s for s in _ORDER if s in present] + sorted(present - set(_ORDER))


def _color(sampler: str):
    index = _ORDER.index(sampler) if sampler in _ORDER else zlib.crc32(sampler.encode())  # stable across runs
    return plt.get_cmap("tab10").colors[index % 10]


def _line(ax, df, value, sampler, logq, **style):
    part = df[(df["sampler"] == sampler) & (df["logq"] == logq)]
    if part[value].notna().sum() == 0:
        return
    s = seed_summary(part, ["n_docs"], value).sort_values("n_docs")
    color = _color(sampler)
    ax.plot(s["n_docs"], s["mean"], color=color, marker="o" if logq else "s", linestyle="-" if logq else "--",
            **style)
    ax.fill_between(s["n_docs"], s["low"].fillna(s["mean"]), s["high"].fillna(s["mean"]), color=color,
                    alpha=0.15)


def plot(df):
    zipfs = sorted(df["corpus_zipf"].unique())
    fig, axes = plt.subplots(len(zipfs), 3, figsize=(16, 4.4 * len(zipfs)), constrained_layout=True, squeeze=False)
    samplers = _samplers(df)
    for row, zipf in zip(axes, zipfs):
        part = df[df["corpus_zipf"] == zipf]
        for sampler in samplers:
            for logq in (False, True):
                _line(row[0], part, "kl_true", sampler, logq)
                # The floor: the fixed point of the same sampler, drawn thin beside the trained model.
                _line(row[0], part, "fixed_point_kl", sampler, logq, linewidth=0.8, alpha=0.7, markersize=3)
                _line(row[1], part, "Success@1", sampler, logq)
                _line(row[2], part, "deficit_mc", sampler, logq)
                _line(row[2], part, "deficit_approx", sampler, logq, linewidth=0.8, alpha=0.7, markersize=3)
        labels = [(f"KL(p* || model)  [nats], zipf = {zipf:g}\n(thin: population fixed point, the floor)", "log"),
                  (f"Success@1, zipf = {zipf:g}", "linear"),
                  (f"E log Z_S - log Z  [nats], zipf = {zipf:g}\n(thick: Monte Carlo; thin: closed form)", "symlog")]
        for ax, (label, yscale) in zip(row, labels):
            ax.set_xscale("log")
            # symlog: the closed form of the corrected deficit breaks by tens of nats (heavy 1/Q weights).
            ax.set_yscale(yscale, **({"linthresh": 1.0} if yscale == "symlog" else {}))
            ax.set_xlabel("corpus size N (documents)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which="both")
    handles = [mlines.Line2D([], [], color=_color(s), label=s.replace("_", " ")) for s in samplers]
    handles += [mlines.Line2D([], [], color="k", linestyle="--", marker="s", label="plain"),
                mlines.Line2D([], [], color="k", linestyle="-", marker="o", label="logQ-corrected")]
    axes[0][1].legend(handles=handles, fontsize=8)
    K = ", ".join(str(int(k)) for k in sorted(df["num_negatives"].unique()))
    fig.suptitle(f"Negative samplers with and without logQ, K = {K} (mean and 95% interval over seeds)")
    return fig
