"""Figure of capacity_dim: KL, Success@1 and the row-shifted squared error against D, one row per
corpus, with the Eckart-Young floor at rank D and the transition at D = R (R+1) marked."""
from __future__ import annotations

from grdr.experiments.variants import VARIANTS
from grdr.figures.common import PAGE_WIDTH, line_with_band, outside_legend, panels
from grdr.theory.rank import dr_transition_dim

EXPERIMENT = "capacity_dim"
CAPTION = ("Each row is one corpus (true rank R, Zipf exponent of the popularity). Left: KL(p* || model) in nats; "
           "middle: Success@1 against the argmax of p*; right: the row-shifted squared error "
           "min over per-query shifts of ||log p* - log p||^2 per query (nats^2), with the Eckart-Young floor at "
           "rank D (dashed black: no model of rank D can go below it). Each coloured line is one model's mean over "
           "seeds (each seed its own corpus) against the embedding dimension D of DR (the hidden width H = D of "
           "AtomicGR and SeqGR); bands are 95% t-intervals, or the seeds' range where a point has fewer than 3 "
           "seeds. The dotted vertical line marks D = R (R + 1 with a popularity term and no bias), where the "
           "theory says DR stops gaining.")

_PANELS = (("kl_true", "KL(p* || model) [nats]"), ("Success@1", "Success@1"),
           ("rowshift_sq_err", "row-shifted error [nats²]"))


def plot(df):
    corpora = sorted(df.groupby(["corpus_latent_rank", "corpus_zipf"]).groups)
    fig, axes = panels(len(corpora), 3, width=PAGE_WIDTH, row_height=1.8, extra=0.6)
    models = [m for m in VARIANTS if m in set(df["model"])]
    for row, (rank, zipf) in zip(axes, corpora):
        sub = df[(df["corpus_latent_rank"] == rank) & (df["corpus_zipf"] == zipf)]
        bias = bool(sub.loc[sub["kind"] == "dr", "doc_bias"].any())
        d_star = dr_transition_dim(int(rank), float(zipf) > 0, bias)
        for ax, (value, ylabel) in zip(row, _PANELS):
            for model in models:
                line_with_band(ax, sub, "dim", value, model)
            if value == "rowshift_sq_err":
                floor = sub.groupby("dim")["ey_floor_dim"].mean().sort_index()
                ax.plot(floor.index, floor.to_numpy(), "k--", label="Eckart-Young floor at rank D (exact bound)")
            ax.axvline(d_star, color="grey", ls=":", label=f"D = {'R+1' if d_star > rank else 'R'}")
            # Intervals from a few seeds can cross impossible values; the axes keep the possible range.
            ax.set_ylim(0, 1.02) if value == "Success@1" else ax.set_ylim(bottom=0)
            ax.set_xlabel("D (DR), H = D (GR)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"R = {rank}, zipf = {zipf:g}")
            ax.grid(alpha=0.3)
    outside_legend(fig, axes[0], ncol=3)
    fig.suptitle("Dimension caps DR: KL, Success@1 and the row-shifted error against D (mean over seeds)")
    return fig
