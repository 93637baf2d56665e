"""Figure of negatives: KL to the truth with the population fixed point's floor, Success@1 and the
normalizer deficit (Monte Carlo against its closed form) against N, one row per corpus popularity."""
from __future__ import annotations

import zlib

import matplotlib.lines as mlines

from grdr.figures.common import PAGE_WIDTH, panels, plt, seed_band

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
    s, low, high = seed_band(part, "n_docs", value)
    color = _color(sampler)
    linestyle, marker, _ = STYLE[bool(logq)]
    ax.plot(s["n_docs"], s["mean"], color=color, marker=marker, linestyle=linestyle, **style)
    ax.fill_between(s["n_docs"], low, high, color=color, alpha=0.15, linewidth=0)


CAPTION = ("Each row is one corpus popularity (Zipf exponent). Left: KL(p* || model) in nats (log scale), with "
           "each sampler's population fixed point drawn thin: the floor no amount of training removes; middle: "
           "Success@1; right: the normalizer deficit E log Z_S - log Z in nats (symlog scale), thick by Monte Carlo and "
           "thin in closed form (the delta method). Colour is the proposal the K negatives are drawn from; dashed lines "
           "with squares are plain sampled softmax, solid lines with circles the logQ-corrected loss. Lines are means "
           "over seeds (each seed its own corpus); bands are 95% t-intervals, or the seeds' range where a point has "
           "fewer than 3 seeds.")
STYLE = {False: ("--", "s", "plain (dashed, squares)"), True: ("-", "o", "logQ-corrected (solid, circles)")}


def plot(df):
    zipfs = sorted(df["corpus_zipf"].unique())
    fig, axes = panels(len(zipfs), 3, width=PAGE_WIDTH, row_height=1.8, extra=0.6)
    samplers = _samplers(df)
    for row, zipf in zip(axes, zipfs):
        part = df[df["corpus_zipf"] == zipf]
        for sampler in samplers:
            for logq in (False, True):
                _line(row[0], part, "kl_true", sampler, logq)
                # The floor: the fixed point of the same sampler, drawn thin beside the trained model.
                _line(row[0], part, "fixed_point_kl", sampler, logq, linewidth=0.6, alpha=0.7, markersize=2)
                _line(row[1], part, "Success@1", sampler, logq)
                _line(row[2], part, "deficit_mc", sampler, logq)
                _line(row[2], part, "deficit_approx", sampler, logq, linewidth=0.6, alpha=0.7, markersize=2)
        labels = [("KL(p* || model) [nats]", "log"), ("Success@1", "linear"), ("E log Z_S - log Z [nats]", "symlog")]
        for ax, (ylabel, yscale) in zip(row, labels):
            ax.set_xscale("log")
            # symlog: the closed form of the corrected deficit breaks by tens of nats (heavy 1/Q weights).
            ax.set_yscale(yscale, **({"linthresh": 1.0} if yscale == "symlog" else {}))
            ax.set_xlabel("corpus size N (documents)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"zipf = {zipf:g}" + {0: ", thin: fixed point", 2: ", thin: closed form"}.get(
                list(row).index(ax), ""))
            ax.grid(alpha=0.3, which="both")
    handles = [mlines.Line2D([], [], color=_color(s), linewidth=3, label=f"proposal: {s.replace('_', ' ')}")
               for s in samplers]
    handles += [mlines.Line2D([], [], color="k", linestyle=ls, marker=mk, label=text)
                for ls, mk, text in STYLE.values()]
    # a long handle with a marker at each end, so that the dashes of "plain" show between them
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False,
               handlelength=4.0, numpoints=2)
    K = ", ".join(str(int(k)) for k in sorted(df["num_negatives"].unique()))
    fig.suptitle(f"Negative samplers with and without logQ, K = {K} (mean over seeds)")
    return fig
