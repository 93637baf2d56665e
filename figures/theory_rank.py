"""Figure of theory_curves' rank family: the Eckart-Young floor of a rank-R true log-posterior against
D (the knee at D = R), and the trie rank bounds against H for atomic, 4-ary and 16-ary docid trees
with the real SeqGR's measured numerical rank as points. Reads stored records only."""
from __future__ import annotations

from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from grdr.figures.common import plt

EXPERIMENT = "theory_curves"

_TREES = {"atomic": "tab:blue", "4-ary": "tab:orange", "16-ary": "tab:green"}


def plot(df):
    floor = df[df["family"] == "rank_floor"].sort_values("dim")
    trie = df[df["family"] == "rank_trie"].sort_values("hidden")
    fig, (ax_floor, ax_trie) = plt.subplots(1, 2, figsize=(7.0, 3.2), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    ranks = sorted(int(r) for r in set(floor["latent_rank"]))
    for i, rank in enumerate(ranks):
        color = cmap(0.85 * i / max(len(ranks) - 1, 1))
        g = floor[floor["latent_rank"] == rank].groupby("dim", as_index=False)["floor_rel"].mean()
        ax_floor.plot(g["dim"], g["floor_rel"], "o-", color=color, ms=4, label=f"R = {rank}")
        ax_floor.axvline(rank, color=color, ls=":", lw=1)
    ax_floor.set_yscale("log")
    ax_floor.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_floor.set_xlabel("scorer rank D")
    ax_floor.set_ylabel("sum_{i > D} sigma_i(A* P)^2 / ||A* P||_F^2")
    ax_floor.set_title("Eckart-Young floor of sim.corpus's true log p*\nof rank R (dotted: D = R)")
    ax_floor.grid(alpha=0.3, which="both")
    ax_floor.legend()
    trees = [t for t in _TREES if t in set(trie["tree"])] + sorted(set(trie["tree"]) - set(_TREES))
    for tree in trees:
        g = trie[trie["tree"] == tree]
        color = _TREES.get(tree)
        ax_trie.plot(g["hidden"], g["bound_sharp"], "-", color=color, lw=1.6)
        ax_trie.plot(g["hidden"], g["bound_nodes"], ":", color=color, lw=1.6)
        m = g[g["measured_rank"].notna()]
        ax_trie.plot(m["hidden"], m["measured_rank"], "o", color=color, ms=7, mfc="none", mew=1.5)
    n_docs = int(trie["n_docs"].iloc[0]) if len(trie) else 0
    if n_docs:
        ax_trie.axhline(n_docs, color="grey", lw=0.8)
    ax_trie.legend(handles=[Line2D([], [], color=_TREES.get(t), lw=2, label=f"{t} docids") for t in trees] + [
        Line2D([], [], color="grey", ls="-", label="sharp bound: beta + sum_last min(l_pi, H+1)"),
        Line2D([], [], color="grey", ls=":", label="bound over every node: sum min(H+1+beta, b_pi)"),
        Line2D([], [], color="grey", marker="o", mfc="none", ls="", label="SeqGR's measured numerical rank")], loc="lower right")
    ax_trie.set_yscale("log")
    ax_trie.set_xlabel("hidden width H")
    ax_trie.set_ylabel("rank of the log-probability matrix")
    ax_trie.set_title(f"Trie rank bound, N = {n_docs} documents,\noutput bias (beta = 1)")
    ax_trie.grid(alpha=0.3, which="both")
    fig.suptitle("Rank: docs/design.md, section 1, \"Low-rank capacity\"")
    return fig
