"""Figure of critical_n: each seed's critical n(d) and their median for each model, with its cubic fit
(MaxSim's beside DR's, one curve per number of vectors m, m', its median drawn again at x = m d, where
DR has its parameters), Weller et al.'s measured Table 6 (the reference, its own marker), their cubic
fit and the sign-rank bounds (left), and every probe of every seed's search, solved or not, with the
non-monotone ones ringed (right); the title gives the budget the probes ran under. Reads stored
records only."""
from __future__ import annotations

import numpy as np

from grdr.experiments.limit_search import (MAXSIM, WELLER_TABLE6, cubic_fit, non_monotone, series_label, series_of,
                                      weller_cubic)
from grdr.figures.common import PAGE_WIDTH, color, outside_legend, panels

EXPERIMENT = "critical_n"
CAPTION = ("Left: the critical n(d), the largest number of documents n for which free d-dimensional embeddings "
           "reach 100% top-2 accuracy on all pairs as queries, against d. Small markers are each seed's own "
           "search, lines the median over seeds per model (DR blue, SeqGR red, MaxSim with m query and m' document "
           "vectors in its colour, also drawn at x = m d where DR has its parameters), dashed lines cubic fits; "
           "black stars are Weller et al.'s measured Table 6 (the reference), dash-dotted grey their cubic fit, "
           "grey the sign-rank bounds. Right: every probe of every seed's search, filled where solved, ringed where "
           "solved above a failed n (non-monotone).")

_COLORS = {"dr_global": "tab:blue", "seq_gr": "tab:red", MAXSIM: color(MAXSIM)}
_SHIFT = {"dr_global": -0.2, "seq_gr": 0.2}  # probes side by side at one d (MaxSim in the middle)
_MARKERS = ("o", "s", "D", "v")  # MaxSim's curves, one per (m, m')
TABLE6_LABEL = "Weller et al. Table 6 (measured; the reference)"
CUBIC_LABEL = "Weller et al. cubic (their fit)"


def _style(series: str, maxsim_series: list[str]) -> tuple[str | None, str]:
    """A curve's colour (its model's) and marker (MaxSim's differ by m, m')."""
    model = MAXSIM if series in maxsim_series else series
    marker = _MARKERS[maxsim_series.index(series) % len(_MARKERS)] if series in maxsim_series else "o"
    return _COLORS.get(model), marker


def _seed_offsets(seeds) -> dict:
    """A small horizontal offset per seed, so that equal values of several seeds stay visible: 0.06 apart,
    closer where many seeds would otherwise spread past +-0.15 and reach a neighbouring d."""
    seeds = sorted(seeds)
    step = min(0.06, 0.3 / max(len(seeds) - 1, 1))
    return {s: step * (i - (len(seeds) - 1) / 2) for i, s in enumerate(seeds)}


def plot(df):
    fig, axes = panels(1, 2, width=PAGE_WIDTH, row_height=2.4, extra=2.0)
    ax, ax_probe = axes[0]
    df = df.assign(series=series_of(df))
    crit = df[df["record"] == "critical"].sort_values("dim")
    probes = df[df["record"] == "probe"]
    maxsim_series = sorted(set(df.loc[df["model"] == MAXSIM, "series"]))
    fits = cubic_fit(crit, by="series")
    offsets = _seed_offsets(set(df["seed"].dropna().astype(int))) if "seed" in df else {}
    x_hi = max(probes["dim"], default=0)  # the matched-parameter curves reach m d
    for model, g in (crit.groupby("series") if "critical_n" in crit else []):
        c, marker = _style(model, maxsim_series)
        name = series_label(model)
        open_ = g[g["censored"] == 0]
        ax.scatter(open_["dim"] + open_["seed"].astype(int).map(offsets), open_["critical_n"], s=14, marker=marker,
                   color=c, alpha=0.45, label=f"{name}: each seed's critical n")
        median = g.groupby("dim")["critical_n"].median()
        ax.plot(median.index, median.to_numpy(), f"{marker}-", color=c, label=f"{name}: median over seeds")
        cens = g[g["censored"] > 0]
        if not cens.empty:
            ax.plot(cens["dim"], cens["critical_n"], "^", color=c, mfc="none", ms=9,
                    label=f"{name}: n_max solved (n(d) >= this)")
        m, dm = (int(g["vectors"].iloc[0]), int(g["doc_vectors"].iloc[0])) if model in maxsim_series else (1, 1)
        if m == dm > 1:  # the matched-parameter reading: MaxSim at d beside DR at m d (m d per query and document)
            ax.plot(m * median.index, median.to_numpy(), f"{marker}:", color=c, mfc="none",
                    label=f"{name}: median at x = {m} d (DR's parameters at {m} d)")
            x_hi = max(x_hi, m * g["dim"].max())
        if model in fits:
            d = np.linspace(g["dim"].min(), g["dim"].max(), 100)
            ax.plot(d, np.polyval(fits[model], d), "--", color=c, alpha=0.7, label=f"{name}: cubic fit")
    if not probes.empty:
        # Sign-rank bounds of each probed n's qrels: d >= dim_lower(n) is necessary, d >= dim_upper(n)
        # sufficient, so n(d) lies between the two curves read sideways.
        b = probes.drop_duplicates("n_docs").sort_values("n_docs")
        ax.plot(b["dim_upper"], b["n_docs"], ":", color="gray", label="sign-rank upper bound: n solvable at d = dim_upper(n)")
        ax.plot(b["dim_lower"], b["n_docs"], "<", color="gray", ms=4,
                label="Forster lower bound: n needs d >= dim_lower(n)")
        ax.set_xlim(0, x_hi + 1)
        ax.set_ylim(0, 1.1 * max(probes["n_docs"]))
    if not crit.empty:  # the references: Weller et al.'s measured Table 6, and their cubic fit beside it
        d_max = max(crit["dim"])
        table = {d: n for d, n in WELLER_TABLE6.items() if d <= d_max}
        if table:
            ax.plot(list(table), list(table.values()), "*", color="black", ms=12, zorder=5, label=TABLE6_LABEL)
        d = np.linspace(2, d_max, 100)
        ax.plot(d, weller_cubic(d), "-.", color="gray", lw=1, label=CUBIC_LABEL)
    ax.set_xlabel("dimension d (DR; per vector, MaxSim) / hidden width d (SeqGR)")
    ax.set_ylabel("critical n (largest n with 100% top-2 accuracy)")
    ax.set_title("Free embeddings, k = 2, all pairs as queries")
    ax.grid(alpha=0.3)

    for model, g in probes.groupby("series"):
        shift = _SHIFT.get(model, 0.0)
        if model in maxsim_series:  # several MaxSim curves: side by side within the middle
            shift = 0.08 * (maxsim_series.index(model) - (len(maxsim_series) - 1) / 2)
        x = g["dim"] + shift + g["seed"].astype(int).map(offsets)
        for ok, marker in ((True, _style(model, maxsim_series)[1]), (False, "x")):
            s = (g["solved"] > 0) == ok
            ax_probe.scatter(x[s], g.loc[s, "n_docs"], marker=marker, s=16, color=_style(model, maxsim_series)[0],
                             label=f"{series_label(model)}: {'solved' if ok else 'not solved'}")
        for (d, seed), gd in g.groupby(["dim", "seed"]):
            bumps = non_monotone({int(n): ok > 0 for n, ok in zip(gd["n_docs"], gd["solved"])})
            if bumps:
                ax_probe.scatter([d + shift + offsets.get(int(seed), 0.0)] * len(bumps), bumps, s=140,
                                 facecolors="none", edgecolors="black", label="solved above a failed n (non-monotone)")
    ax_probe.set_yscale("log")
    ax_probe.set_xlabel("dimension d (each seed's probes side by side)")
    ax_probe.set_ylabel("probed n (log scale)")
    ax_probe.set_title("Every probe of every seed's search")
    ax_probe.grid(alpha=0.3)
    outside_legend(fig, [ax, ax_probe], ncol=2)
    temps = sorted({t for t in df.get("temperature", []) if t == t and t is not None})
    budget = ""
    if not probes.empty and "min_delta" in probes:
        budget = (f"; up to {int(probes['max_steps'].max()):,} steps, patience {int(probes['patience'].max()):,}, "
                  f"min_delta {probes['min_delta'].max():g}, seeds {_values(set(probes['seed']))} (one search each)")
    fig.suptitle(f"Critical n(d): Adam lr {_values(set(df['learning_rate']))}, temperature {_values(temps)}, unit norm "
                 f"after each step\n{budget.lstrip('; ')}")
    return fig


def _values(values) -> str:
    """Values for a title: "0.01" or "0, 1", not a Python list."""
    return ", ".join(f"{v:g}" for v in sorted(v for v in values if v == v)) or "-"
