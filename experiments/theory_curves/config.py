"""theory_curves' configuration: its families, their grids, and the presets."""
from __future__ import annotations

import dataclasses
import math

from grdr.experiments.points import require_known, require_seeds
from grdr.theory.two_level import log_grid

__all__ = ["NAME", "AXES", "FAMILIES", "MODELS", "SOURCE", "Config", "PRESETS", "tree_depth", "tree_name"]

NAME = "theory_curves"
AXES = ("family", "profile", "share", "n_docs", "num_negatives", "confusers", "corrected", "correction", "sampling",
        "latent_rank", "dim", "tree_vocab", "hidden")
FAMILIES = ("deficit", "gradient", "fixed_point", "rank")
# Sampled-softmax variants whose proposal has a closed form over the documents (hard needs a model's pool).
MODELS = ("dr_local_uniform", "dr_local_uniform_logq", "dr_local_popularity", "dr_local_popularity_logq",
          "dr_local_mixed", "dr_local_mixed_logq")
SOURCE = {  # where each family's formulas are derived (captions cite these)
    "deficit": 'docs/design.md, section 1, "Optimization drift" (theory/drift.py, theory/two_level.py)',
    "gradient": 'docs/design.md, section 1, "Optimization drift" (theory/drift.py, theory/two_level.py)',
    "fixed_point": 'docs/design.md, section 1, "Optimization drift": population fixed point, PMI target '
                   '(theory/fixed_point.py)',
    "rank": 'docs/design.md, section 1, "Low-rank capacity" (theory/rank.py)',
    "limit": 'docs/design.md, section 1, "The combinatorial limit (LIMIT)"',
}


def tree_depth(num_docs: int, vocab: int) -> int | None:
    """L with vocab^L = num_docs, or None."""
    depth, size = 0, 1
    while size < num_docs:
        size, depth = size * vocab, depth + 1
    return depth if size == num_docs and depth >= 1 else None


def tree_name(vocab: int, num_docs: int) -> str:
    return "atomic" if vocab == num_docs else f"{vocab}-ary"


def _require(cfg, fields, ok, expected: str, nonempty: bool = False) -> None:
    """Raise `Config.<field>=<value>: expected <what>` for the first of `fields` (a number or a tuple of
    numbers each) with a value that is not `ok` (or, with nonempty, an empty tuple)."""
    for field in fields:
        value = getattr(cfg, field)
        values = value if isinstance(value, tuple) else (value,)
        if (nonempty and not values) or not all(ok(v) for v in values):
            raise ValueError(f"Config.{field}={value}: expected {expected}")


@dataclasses.dataclass(frozen=True)
class Config:
    families: tuple[str, ...] = FAMILIES
    """Which families to compute: deficit, gradient, fixed_point, rank."""
    models: tuple[str, ...] = MODELS
    """Sampled-softmax variants whose population fixed points are computed (fixed_point family)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds of the Monte Carlo draws, the fixed points' negative sets and the random parameters."""
    # -- deficit
    n_docs: tuple[int, ...] = (10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
                               200_000, 500_000, 1_000_000)
    """N of the deficit curves (exact and closed forms at every N)."""
    mc_n_docs: tuple[int, ...] = (100, 1_000, 10_000, 100_000, 1_000_000)
    """N at which the deficit is also estimated by Monte Carlo."""
    num_negatives: tuple[int, ...] = (4, 16, 64, 256)
    """K of the deficit curves and its boundary."""
    peaked_share: float = 0.5
    """m of the peaked profile: the share of the negatives' mass on its one confuser."""
    shares: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 0.9)
    """Peakedness m at which the delta method's boundary is located (peaked_share is added)."""
    threshold: float = 0.1
    """Relative error of the delta method that marks its boundary."""
    boundary_per_decade: int = 32
    """Grid of N (per decade, up to the largest n_docs) on which the boundary is scanned."""
    mc_samples: int = 2_048
    """Monte Carlo samples of K negatives per deficit point."""
    # -- gradient
    gradient_negatives: int = 16
    """K of the gradient family."""
    gradient_n_docs: tuple[int, ...] = (30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
    """N of the coverage and gradient-bias curves."""
    gradient_mc_max_n: int = 10_000
    """Largest N at which the gradient bias is estimated by Monte Carlo (each sample is an N-vector)."""
    gradient_mc_samples: int = 2_048
    """Monte Carlo samples of K negatives per gradient point."""
    coverage_confusers: tuple[int, ...] = (1, 4, 16)
    """k of the coverage curves."""
    coverage_trials: int = 200_000
    """Simulated samples of K negatives per coverage point."""
    # -- fixed point
    fp_n_docs: tuple[int, ...] = (30, 100, 300, 1_000)
    """N of the fixed-point curves."""
    fp_negatives: int = 16
    """K of the fixed points."""
    fp_samples: int = 32
    """Negative sets per positive in the smaller of the two sample averages of a fixed point without a closed form
    (at least; experiments.predictions adds more where a document would be drawn too rarely); the larger has 4x."""
    fp_samplings: tuple[str, ...] = ("keep", "mask")
    """How accidental hits of d+ are treated: keep (the closed forms hold) and mask (dropped: an O(K/N) bias)."""
    fp_negatives_only: bool = True
    """Beside every logQ variant, the negatives-only rule (log(K Q) on the negatives alone), a biased estimator."""
    fp_max_iter: int = 1_000
    """L-BFGS iterations of each fixed point."""
    target_zipf: float = 1.0
    """p*(d) of the query is proportional to rank^-target_zipf."""
    popularity_zipf: float = 1.0
    """The popularity proposal is proportional to rank^-popularity_zipf over a random order of the documents."""
    hard_pool: int = 32
    """Pool of the mixed proposal: the top documents of p* (at most N // 2)."""
    # -- rank
    latent_ranks: tuple[int, ...] = (4, 8, 16)
    """True ranks R of the sim.corpus corpora whose Eckart-Young floors are drawn against D = 1 ... R + floor_past."""
    floor_past: int = 4
    """Dimensions past R at which the floor is computed (each D is one compiled SVD tail)."""
    rank_docs: int = 256
    """Documents of those corpora and leaves of the docid trees."""
    rank_queries: int = 256
    """Test queries of those corpora (rows of log p*)."""
    tree_vocabs: tuple[int, ...] = (256, 4, 16)
    """Docid trees: complete V-ary tries over rank_docs leaves (V = rank_docs: atomic docids)."""
    hiddens: tuple[int, ...] = tuple(range(1, 17))
    """H of the trie-bound curves."""
    measured_hiddens: tuple[int, ...] = (1, 2, 4)
    """H at which the real SeqGR's numerical rank is measured."""
    queries_per_doc: int = 2
    """Rows of each measured log-probability matrix: queries_per_doc x rank_docs random query states."""


    def __post_init__(self):
        require_known(self, "families", FAMILIES)
        require_known(self, "models", MODELS, allow_empty="fixed_point" not in self.families)
        require_seeds(self)
        _require(self, ("n_docs", "gradient_n_docs"), lambda n: n >= 10, "corpus sizes N >= 10, at least one",
                 nonempty=True)
        _require(self, ("mc_n_docs", "fp_n_docs"), lambda n: n >= 10, "corpus sizes N >= 10")
        _require(self, ("num_negatives", "latent_ranks", "hiddens", "measured_hiddens", "coverage_confusers"),
                 lambda v: v >= 1, "positive integers, at least one", nonempty=True)
        if not set(self.mc_n_docs) <= set(self.n_docs):
            raise ValueError(f"Config.mc_n_docs={self.mc_n_docs}: expected entries of Config.n_docs={self.n_docs}")
        if max(self.coverage_confusers) >= min(self.gradient_n_docs) - 1:
            raise ValueError(f"Config.coverage_confusers={self.coverage_confusers}: expected k below N - 1 = "
                             f"{min(self.gradient_n_docs) - 1} (the smallest N of Config.gradient_n_docs)")
        _require(self, ("peaked_share", "shares"), lambda v: 0.0 < v < 1.0, "shares of the mass in (0, 1)")
        _require(self, ("threshold",), lambda v: math.isfinite(v) and v > 0, "a finite relative error > 0")
        if not set(self.fp_samplings) <= {"keep", "mask"} or not self.fp_samplings:
            raise ValueError(f"Config.fp_samplings={self.fp_samplings}: expected some of ('keep', 'mask')")
        _require(self, ("target_zipf", "popularity_zipf"), lambda v: math.isfinite(v) and v >= 0,
                 "a finite Zipf exponent >= 0")
        _require(self, ("mc_samples", "gradient_mc_samples", "coverage_trials"), lambda v: v >= 2, "at least 2")
        _require(self, ("gradient_negatives", "fp_negatives", "fp_samples", "fp_max_iter", "boundary_per_decade",
                        "hard_pool", "queries_per_doc", "rank_queries"), lambda v: v >= 1, "at least 1")
        _require(self, ("gradient_mc_max_n",), lambda v: v >= 0, "at least 0 (0: no Monte Carlo)")
        _require(self, ("floor_past",), lambda v: v >= 0, "at least 0")
        _require(self, ("rank_docs",), lambda v: v >= 2, "at least 2")
        _require(self, ("tree_vocabs",), lambda v: v >= 2 and tree_depth(self.rank_docs, v) is not None,
                 f"vocabularies V >= 2 of complete trees with V^L = Config.rank_docs = {self.rank_docs} leaves")


PRESETS = {
    "smoke": Config(n_docs=(10, 100, 1_000), mc_n_docs=(100, 1_000), num_negatives=(4,), shares=(0.1,),
                    boundary_per_decade=8, mc_samples=256, gradient_n_docs=(30, 100, 1_000), gradient_mc_max_n=100,
                    gradient_mc_samples=128, coverage_confusers=(1,), coverage_trials=1_000, fp_n_docs=(20,),
                    models=("dr_local_uniform", "dr_local_popularity"), fp_samples=4, fp_max_iter=50,
                    latent_ranks=(2,), floor_past=1, rank_docs=16, rank_queries=32, tree_vocabs=(16, 4),
                    hiddens=(1, 2, 3),
                    measured_hiddens=(1,)),
    "quick": Config(fp_samplings=("keep",)),
    "paper": Config(n_docs=log_grid(10, 1_000_000, 8), mc_n_docs=(100, 1_000, 10_000, 100_000, 1_000_000),
                    shares=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
                    mc_samples=65_536, gradient_mc_max_n=100_000, gradient_mc_samples=8_192,
                    coverage_trials=2_000_000, fp_n_docs=(30, 100, 300, 1_000, 3_000), fp_samples=128,
                    fp_samplings=("keep", "mask"),
                    latent_ranks=(4, 8, 16, 32), hiddens=tuple(range(1, 33)),
                    measured_hiddens=(1, 2, 3, 4, 6, 8, 12, 16), floor_past=16),
}
