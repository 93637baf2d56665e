"""The theory's closed forms drawn against their exact and Monte Carlo values, with where each approximation breaks.

No training: every run evaluates theory/ (docs/design.md, section 1) on a grid and stores the numbers
as ordinary records, so `grdr figures` redraws the four figures (figures/theory_*.py) from records
alone. Four families (`families`):

- deficit: the normalizer deficit E log Z_S - log Z of sampled softmax against N, for K negatives
  drawn uniformly (with replacement) from the N-1 documents other than d+ ("exclude", as
  theory.drift). Two score profiles of one query (theory.two_level): "flat" (every document weight 1) and "peaked"
  (one confuser holds a share m of the negatives' mass, the N-2 others weight 1; the positive has
  the mean negative weight, p_+ = 1/N). Four values per point: exact (a binomial sum over the
  number J of draws that hit the confuser, Z_S(J) = w_+ + a (J c + K - J), a = 1 plain, (N-1)/K
  with logQ; checked against theory's enumeration over all (N-1)^K samples where that is small),
  Monte Carlo (theory.normalizer_deficit, with its standard error), and theory's two closed forms:
  -log((N-1)/K) uncorrected and the delta method -[(N-1) sum_{j!=+} p_j^2 - (1-p_+)^2] / (2K) with
  logQ. Per (m, K), `deficit_boundary` records the N/K beyond which the delta method's relative
  error |delta - exact| / |exact| exceeds `threshold` (scanned on a fine grid of N, exact values).
  Monte Carlo pads every N to one length with documents of score -inf and proposal 0 (never drawn,
  no mass), so that one compiled program serves every N; the deficit's draws are those of the
  unpadded call (the gradient's chunking, hence its draws, depends on the padded length).
- gradient: the chance that K uniform negatives hold one of k confusers (theory.confuser_coverage:
  exact 1 - (1 - k/(N-1))^K and the closed form K k / N, beside a simulation), and the gradient bias
  |E_S grad l_L - grad l_G| on the peaked profile (theory.gradient_bias by Monte Carlo, beside its
  exact binomial sum), plain and with logQ, at one K.
- fixed_point: the KL to p* of the population fixed point of each sampled-softmax variant in
  `models` for one query whose p* is Zipf over N documents; popularity is an independent Zipf over a
  random order of the documents, the mixed proposal is sim.samplers' (half uniform, half the top
  documents of p*). Each variant under its correction rule ("none", or the standard "logq") and, for
  the logQ variants, the negatives-only rule beside it, with accidental hits kept (as sim.train) and
  masked. Where a closed form exists (hits kept: log p* for the standard rule, the PMI target
  log p* - log q for plain sampling; theory.fixed_point_closed_form, checked by exact enumeration in
  `grdr check`) the record holds it; elsewhere (the negatives-only rule; masked hits) two
  sample-average fixed points (theory.population_fixed_point, S and 4 S negative sets per positive)
  and their extrapolation to S -> infinity, a + b / S, since a sample average's KL is biased upward by
  about 1 / S.
- rank: the Eckart-Young floor (theory.eckart_young_floor) of sim.corpus's true log-posterior of
  rank R against D, and the trie rank bounds (theory.trie_rank_bound, over every node and the
  sharper last-level form) against H for atomic, 4-ary and 16-ary docid trees, with the numerical
  rank of the real sim.models.SeqGR's log-probability matrix (float64, generic random parameters,
  sim.logprobs.random_seq_gr_log_probs) at a few H.

The fifth item of the theory figures, LIMIT's critical n(d) against the published cubic and the
sign-rank bounds, is the critical_n experiment's figure (figures/critical_n.py); the report points to it.

Layout: config (Config, PRESETS), this module (sweep), measure (each family's metrics: the glue
between the records and theory/ or sim/, no formulas of its own), report (the section).

Command:  grdr run theory_curves --preset quick --out results
The quick preset's time and the numbers it printed last are in benchmarks/README.md; each run's own
are in its report.
"""
from __future__ import annotations

from grdr.experiments.points import RecordPoint
from grdr.experiments.theory_curves.config import (AXES, FAMILIES, MODELS, NAME, PRESETS, SOURCE, Config, tree_depth,
                                              tree_name)
from grdr.experiments.theory_curves.measure import measure_point, proposal, run_group
from grdr.experiments.theory_curves.report import boundary_table, report
from grdr.experiments.variants import variant

__all__ = ["NAME", "AXES", "FAMILIES", "MODELS", "SOURCE", "Config", "PRESETS", "sweep", "run_group", "report",
           "boundary_table", "measure_point", "proposal", "tree_name"]


# ---------------------------------------------------------------------------------------------
# Sweep


def sweep(cfg: Config):
    """One record per point of every family's grid (see the module docstring)."""
    for seed in cfg.seeds:
        if "deficit" in cfg.families:
            for profile in ("flat", "peaked"):
                for n in cfg.n_docs:
                    for K in cfg.num_negatives:
                        yield RecordPoint.of(family="deficit", profile=profile,
                                             share=cfg.peaked_share if profile == "peaked" else None, confusers=1,
                                             n_docs=n, num_negatives=K, sampling="exclude", proposal="uniform",
                                             mc_samples=cfg.mc_samples if n in cfg.mc_n_docs else 0,
                                             mc_padded_to=max(cfg.mc_n_docs) if n in cfg.mc_n_docs else 0, seed=seed)
            for share in sorted(set(cfg.shares) | {cfg.peaked_share}):
                for K in cfg.num_negatives:
                    yield RecordPoint.of(family="deficit_boundary", profile="peaked", share=share, confusers=1,
                                         num_negatives=K, threshold=cfg.threshold, n_max=max(cfg.n_docs),
                                         per_decade=cfg.boundary_per_decade, sampling="exclude", proposal="uniform",
                                         seed=seed)
        if "gradient" in cfg.families:
            K = cfg.gradient_negatives
            for n in cfg.gradient_n_docs:
                for k in cfg.coverage_confusers:
                    yield RecordPoint.of(family="coverage", n_docs=n, num_negatives=K, confusers=k,
                                         trials=cfg.coverage_trials, seed=seed)
                for corrected in (False, True):
                    yield RecordPoint.of(family="gradient", profile="peaked", share=cfg.peaked_share, confusers=1,
                                         n_docs=n, num_negatives=K, corrected=corrected, sampling="exclude",
                                         proposal="uniform",
                                         mc_samples=cfg.gradient_mc_samples if n <= cfg.gradient_mc_max_n else 0,
                                         mc_padded_to=_gradient_pad(cfg) if n <= cfg.gradient_mc_max_n else 0,
                                         seed=seed)
        if "fixed_point" in cfg.families:
            for model in cfg.models:
                logq = variant(model).logq
                rules = ("logq", "logq_negatives") if logq and cfg.fp_negatives_only else ("logq" if logq else "none",)
                for correction in rules:
                    for sampling in cfg.fp_samplings:
                        for n in cfg.fp_n_docs:
                            yield RecordPoint.of(family="fixed_point", model=model, correction=correction,
                                                 sampling=sampling, n_docs=n, num_negatives=cfg.fp_negatives,
                                                 min_samples=cfg.fp_samples, max_iter=cfg.fp_max_iter,
                                                 target_zipf=cfg.target_zipf, popularity_zipf=cfg.popularity_zipf,
                                                 hard_pool=min(cfg.hard_pool, n // 2), seed=seed)
        if "rank" in cfg.families:
            for rank in cfg.latent_ranks:
                for dim in range(1, rank + cfg.floor_past + 1):
                    yield RecordPoint.of(family="rank_floor", latent_rank=rank, dim=dim, n_docs=cfg.rank_docs,
                                         n_test_queries=cfg.rank_queries, corpus_zipf=0.0, corpus_seed=seed, seed=seed)
            for vocab in cfg.tree_vocabs:
                for hidden in sorted(set(cfg.hiddens) | set(cfg.measured_hiddens)):
                    measured = hidden in cfg.measured_hiddens
                    yield RecordPoint.of(family="rank_trie", tree=tree_name(vocab, cfg.rank_docs), tree_vocab=vocab,
                                         tree_depth=tree_depth(cfg.rank_docs, vocab), n_docs=cfg.rank_docs,
                                         hidden=hidden, bias=True, decoder_depth=1,
                                         n_queries=cfg.queries_per_doc * cfg.rank_docs if measured else 0, seed=seed)


def _gradient_pad(cfg: Config) -> int:
    return max((n for n in cfg.gradient_n_docs if n <= cfg.gradient_mc_max_n), default=0)
