"""Figure of capacity_dim: KL, Success@1 and the row-shifted squared error against D, one row per
corpus, with the Eckart-Young floor at rank D and the transition at D = R (R+1) marked."""
from __future__ import annotations

from experiments.variants import VARIANTS
from figures.common import line_with_band, plt
from theory.rank import dr_transition_dim

EXPERIMENT = "capacity_dim"


def plot(df):
    corpora = sorted(df.groupby(["corpus_latent_rank", "corpus_zipf"]).groups)
    fig, axes = plt.subplots(len(corpora), 3, figsize=(15, 4.2 * len(corpora)), constrained_layout=True, squeeze=False)
    panels = [("kl_true", "KL(p* || model)  [nats]"), ("Success@1", "Success@1 (top-1 = argmax of p*)"),
              ("rowshift_sq_err", "min over row shifts of ||log p* - log p||²  per query  [nats²]")]
    models = [m for m in VARIANTS if m in set(df["model"])]
    for row, (rank, zipf) in zip(axes, corpora):
        sub = df[(df["corpus_latent_rank"] == rank) & (df["corpus_zipf"] == zipf)]
        bias = bool(sub.loc[sub["kind"] == "dr", "doc_bias"].any())
        d_star = dr_transition_dim(int(rank), float(zipf) > 0, bias)
        for ax, (value, label) in zip(row, panels):
            for model in models:
                line_with_band(ax, sub, "dim", value, model)
            if value == "rowshift_sq_err":
                floor = sub.groupby("dim")["ey_floor_dim"].mean().sort_index()
                ax.plot(floor.index, floor.to_numpy(), "k--", label="Eckart-Young floor at rank D (exact; bounds DR without a bias)")
            ax.axvline(d_star, color="grey", ls=":", label=f"D = {'R+1' if d_star > rank else 'R'} = {d_star}")
            # Intervals from a few seeds can cross impossible values; the axes keep the possible range.
            ax.set_ylim(0, 1.02) if value == "Success@1" else ax.set_ylim(bottom=0)
            ax.set_xlabel("embedding dimension D (= hidden width H for GR)")
            ax.set_ylabel(label)
            ax.set_title(f"R = {rank}, Zipf exponent {zipf}", fontsize=10)
            ax.grid(alpha=0.3)
        row[2].legend(fontsize=8)
    fig.suptitle("Dimension caps DR: global-objective DR (free table, tower), AtomicGR and SeqGR against D "
                 "(mean and 95% interval over seeds)")
    return fig
