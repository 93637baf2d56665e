"""Figure of similarity: (a) KL and the row-shifted squared error of the rank-r bilinear scorer against
r, the error with the Eckart-Young floor at min(r, D) (same loss, a theorem); (b) KL of multi-vector
MaxSim DR against m, with the least KL of free rank-D factors (same loss: what training minimises);
(c) KL of every design at its parameter count (GR matched to single-vector DR)."""
from __future__ import annotations

from grdr.experiments.variants import with_design
from grdr.experiments.verdict.seeds import seed_summary
from grdr.figures.common import plt

EXPERIMENT = "similarity"


def _line(ax, df, x, value, label, **style):
    s = seed_summary(df, [x], value).sort_values(x)
    (line,) = ax.plot(s[x], s["mean"], marker="o", label=label, **style)
    ax.fill_between(s[x], s["low"].fillna(s["mean"]), s["high"].fillna(s["mean"]), alpha=0.2, color=line.get_color())


def plot(df):
    df = with_design(df)
    D = int(df.loc[df["kind"] == "dr", "dim"].iloc[0])
    R = int(df["corpus_latent_rank"].iloc[0])
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4), constrained_layout=True)
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
    ax.set(xlabel="rank r", ylabel="min over row shifts of ||log p* - log p||² per query", title="(a) error and floor")
    ax.set_ylim(bottom=0)
    ax = axes[2]
    _line(ax, mv, "m", "kl_true", "MaxSim: KL")
    if "kl_floor_dim" in df:
        ax.axhline(df.drop_duplicates("seed")["kl_floor_dim"].mean(), color="k", ls="--",
                   label=f"least KL of free rank-{D} factors (optimised)")
    ax.set(xlabel="vectors m = m' (m = 1: dot product)", ylabel="KL(p* || model)  [nats]",
           title=f"(b) multi-vector DR in KL, D = {D}")
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax = axes[3]
    s = seed_summary(df, ["design"], "kl_true")
    params = df.groupby("design")["params"].mean()
    for row in s.itertuples():
        gr = not (row.design.startswith(("rank", "MaxSim")) or row.design in ("dot product", "cosine", "full bilinear"))
        ax.errorbar(params[row.design], row.mean, yerr=[[row.mean - row.low], [row.high - row.mean]] if row.low == row.low
                    else None, fmt="D" if gr else "o", color="tab:green" if gr else "tab:blue", capsize=3)
        ax.annotate(row.design, (params[row.design], row.mean), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="parameters", ylabel="KL [nats]", title="(c) every design at its size (GR matched to dot-product DR)")
    ax.set_ylim(bottom=0)
    for ax in axes[:3]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[3].grid(alpha=0.3)
    fig.suptitle("Similarity design: rank-constrained bilinear and multi-vector DR beside GR (mean and 95% interval "
                 "over seeds)")
    return fig
