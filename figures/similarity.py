"""Figure of similarity: (a) KL of the rank-r bilinear scorer against r and (b) its row-shifted squared
error with the Eckart-Young floor at min(r, D) (same loss, a theorem); (c) KL of multi-vector MaxSim DR
against m, with the least KL of free rank-D factors (same loss: what training minimises); (d) KL of
every design at its parameter count (GR matched to single-vector DR). Means over seeds; bands and bars
are 95% t-intervals, or the seeds' range where a point has fewer than 3 seeds."""
from __future__ import annotations

from grdr.experiments.variants import with_design
from grdr.figures.common import PAGE_WIDTH, outside_legend, panels, seed_band

EXPERIMENT = "similarity"


def _line(ax, df, x, value, label, **style):
    s, low, high = seed_band(df, x, value)
    (line,) = ax.plot(s[x], s["mean"], marker="o", label=label, **style)
    ax.fill_between(s[x], low, high, alpha=0.2, color=line.get_color(), linewidth=0)


def plot(df):
    df = with_design(df)
    D = int(df.loc[df["kind"] == "dr", "dim"].iloc[0])
    R = int(df["corpus_latent_rank"].iloc[0])
    fig, axes = panels(2, 2, width=PAGE_WIDTH, row_height=2.3, extra=1.0)
    axes = axes.ravel()
    low, mv = df[df["r"].notna()], df[df["m"].notna()]
    ax = axes[0]
    _line(ax, low, "r", "kl_true", "rank-r bilinear: KL")
    ax.axvline(D, color="grey", ls=":", label=f"r = D = {D}")
    ax.set(xlabel="rank r of W = U V^T", ylabel="KL(p* || model)  [nats]", title=f"(a) rank-r bilinear, D = {D}, R = {R}")
    ax.set_ylim(bottom=0)
    ax = axes[1]
    _line(ax, low, "r", "rowshift_sq_err", "rank-r bilinear: error")
    floor = low.groupby("r")["ey_floor"].mean().sort_index()
    ax.plot(floor.index, floor.to_numpy(), "k--", label="Eckart-Young floor at min(r, D) (theory)")
    ax.set(xlabel="rank r", ylabel="min over row shifts of\n||log p* - log p||² per query", title="(b) error and floor")
    ax.set_ylim(bottom=0)
    ax = axes[2]
    _line(ax, mv, "m", "kl_true", "MaxSim: KL")
    if "kl_floor_dim" in df:
        ax.axhline(df.drop_duplicates("seed")["kl_floor_dim"].mean(), color="k", ls="--",
                   label=f"least KL of free rank-{D} factors (optimised)")
    ax.set(xlabel="vectors m = m' (m = 1: dot product)", ylabel="KL(p* || model)  [nats]",
           title=f"(c) multi-vector DR in KL, D = {D}")
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax = axes[3]
    s, lows, highs = seed_band(df, "design", "kl_true")
    params = df.groupby("design")["params"].mean()
    for row, lo, hi in zip(s.itertuples(), lows, highs):
        gr = not (row.design.startswith(("rank", "MaxSim")) or row.design in ("dot product", "cosine", "full bilinear"))
        ax.errorbar(params[row.design], row.mean, yerr=[[row.mean - lo], [hi - row.mean]],
                    fmt="D" if gr else "o", color="tab:green" if gr else "tab:blue", capsize=2)
    ax.set(xlabel="parameters", ylabel="KL [nats]", title="(d) every design at its size\n(GR matched to dot-product DR)")
    ax.set_ylim(bottom=0)
    _spread_labels(ax, [(row.design, params[row.design], row.mean) for row in s.itertuples()])
    for ax in axes:
        ax.grid(alpha=0.3)
    outside_legend(fig, axes[:3], ncol=3)
    fig.suptitle("Similarity design: rank-constrained bilinear and multi-vector DR beside GR\n(mean over seeds; 95% "
                 "interval, or the seeds' range below 3 seeds)")
    return fig


def _spread_labels(ax, points, gap: float = 0.075):
    """Name each point beside it, the names moved apart vertically (at least `gap` of the axes' height)
    so that designs of nearly the same size and KL do not print over each other; a thin line joins a
    moved name to its point."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    placed = []
    for name, x, y in sorted(points, key=lambda p: p[2]):
        fx, fy = (x - x0) / (x1 - x0), (y - y0) / (y1 - y0)
        ty = max(fy, placed[-1] + gap) if placed else fy
        placed.append(ty)
        right = fx < 0.65
        ax.annotate(name, (x, y), xytext=(fx + (0.04 if right else -0.04), ty), textcoords="axes fraction",
                    ha="left" if right else "right", va="center",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"} if abs(ty - fy) > 0.01 else None)

