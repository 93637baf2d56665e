"""theory_curves' measurements: the metrics of one record, from theory/ and sim/.

Glue only: every formula, exact sum, simulation and model log-probability is theory/'s
(theory.drift, theory.two_level, theory.fixed_point, theory.rank) or sim/'s (sim.logprobs,
sim.samplers); this module picks each family's inputs from the record and names the outputs.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from grdr.experiments.theory_curves.config import NAME, Config
from grdr.theory.two_level import (closed_forms, delta_boundary, exact_deficit, exact_gradient_bias, global_gradient,
                              hit_probability, norm_error, simulated_coverage, two_level_scores)

__all__ = ["measure_point", "run_group", "proposal", "fixed_point_samples"]

MAX_ENUMERATED = 200_000  # theory.drift enumerates at most this many ordered samples
# The deficit and gradient families' "logq" is the importance-weighted partition e^{s+} + sum e^{s_i} / (K Q):
# the negatives-only rule's (the standard rule with a uniform proposal is plain sampling).
_DEFICIT_RULES = (("plain", "none"), ("logq", "logq_negatives"))


def _seed(point: dict) -> int:
    from grdr.experiments.sweep.store import run_id

    return int(run_id(NAME, point)[:8], 16)


def _key(point: dict):
    import jax

    return jax.random.key(_seed(point))


def _padded_profile(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """The two-level scores and the uniform proposal, padded to the point's mc_padded_to with documents
    of score -inf and proposal 0 (never drawn, no mass): one compiled program serves every N."""
    n = p["n_docs"]
    padded = max(p["mc_padded_to"], n)
    scores_P, proposal_P = np.full(padded, -np.inf), np.zeros(padded)
    scores_P[:n], proposal_P[:n] = two_level_scores(n, p["share"], p["confusers"]), 1.0
    return scores_P, proposal_P


def _deficit(p: dict) -> dict:
    from grdr.theory import normalizer_deficit

    n, K, share, k = p["n_docs"], p["num_negatives"], p["share"], p["confusers"]
    closed_plain, delta = closed_forms(n, K, share, k)
    out = {"exact_plain": exact_deficit(n, K, share, k, False), "exact_logq": exact_deficit(n, K, share, k, True),
           "closed_plain": closed_plain, "delta_logq": delta, "enumerated_plain": math.nan,
           "enumerated_logq": math.nan}
    for name in ("plain", "logq"):
        err = abs(out["closed_plain" if name == "plain" else "delta_logq"] - out[f"exact_{name}"])
        out[f"rel_error_{name}"] = err / abs(out[f"exact_{name}"]) if out[f"exact_{name}"] else math.nan
        out[f"abs_error_{name}"] = err
    if (n - 1) ** K <= MAX_ENUMERATED:
        scores_N = two_level_scores(n, share, k)
        for name, correction in _DEFICIT_RULES:
            enumerated = normalizer_deficit(scores_N, 0, K, np.ones(n), correction, exact=True)
            out[f"enumerated_{name}"] = enumerated.monte_carlo
    for name in ("plain", "logq"):
        out[f"mc_{name}"] = out[f"mc_{name}_se"] = math.nan
    if p["mc_samples"]:
        scores_P, proposal_P = _padded_profile(p)
        key = _key(p)
        # samples expected to hold a confuser: below 1, the estimate never sees the rare term
        out["mc_expected_hits"] = p["mc_samples"] * hit_probability(n, K, k)
        for name, correction in _DEFICIT_RULES:
            d = normalizer_deficit(scores_P, 0, K, proposal_P, correction, num_samples=p["mc_samples"], key=key)
            out[f"mc_{name}"], out[f"mc_{name}_se"] = d.monte_carlo, d.standard_error
            out[f"closed_{name}_theory"] = d.approximation   # theory's own closed form, beside closed_forms()
    return out


def _gradient(p: dict) -> dict:
    from grdr.theory import gradient_bias

    n, K, share, k, corrected = p["n_docs"], p["num_negatives"], p["share"], p["confusers"], p["corrected"]
    out = {"exact_norm": exact_gradient_bias(n, K, share, k, corrected), "mc_norm": math.nan, "mc_norm_se": math.nan,
           "mc_noise": math.nan}
    # the global gradient, and its push on the confusers that a sample without them lacks
    out["global_grad_norm"], out["global_confuser_grad"] = global_gradient(n, share, k)
    if p["mc_samples"]:
        scores_P, proposal_P = _padded_profile(p)   # padded as the deficit's
        g = gradient_bias(scores_P, 0, K, proposal_P, "logq_negatives" if corrected else "none",
                          num_samples=p["mc_samples"], key=_key(p))
        out["mc_norm"] = g.norm
        out["mc_norm_se"], out["mc_noise"] = norm_error(g.bias, g.standard_error, g.norm)
    return out


def _coverage(p: dict) -> dict:
    from grdr.theory import confuser_coverage

    n, K, k, trials = p["n_docs"], p["num_negatives"], p["confusers"], p["trials"]
    cov = confuser_coverage(n, K, k)
    rate, se = simulated_coverage(n, K, k, trials, _seed(p))
    return {"exact": cov.exact, "closed_form": cov.approximation, "mc": rate, "mc_se": se,
            "rel_error_closed": abs(cov.approximation - cov.exact) / cov.exact}


@lru_cache(maxsize=64)
def _fixed_point_inputs(n: int, target_zipf: float, popularity_zipf: float, seed: int):
    """p* (Zipf in document order) and the popularity (an independent Zipf over a random order)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    p_N = ranks ** -target_zipf
    popularity_N = (1.0 + np.random.default_rng(seed).permutation(n)) ** -popularity_zipf
    return p_N / p_N.sum(), popularity_N / popularity_N.sum()


def proposal(model: str, p: dict) -> np.ndarray:
    """The proposal of a variant over the fixed-point query's documents (sim.samplers' proposal_N)."""
    from grdr.experiments.variants import variant
    from grdr.sim.samplers import get_sampler

    p_N, popularity_N = _fixed_point_inputs(p["n_docs"], p["target_zipf"], p["popularity_zipf"], p["seed"])
    sampler = variant(model).sampler
    pool_N = np.argsort(-p_N, kind="stable")[:p["hard_pool"]] if sampler == "mixed" else None
    return get_sampler(sampler).proposal_N(p["n_docs"], popularity_N=popularity_N, pool_N=pool_N,
                                           num_negatives=p["num_negatives"])


_MIN_DRAWS = 15.0


def fixed_point_samples(min_samples: int, proposal_N: np.ndarray, num_negatives: int) -> int:
    """Negative sets per positive of a sample average: enough that even the rarest document is expected
    `_MIN_DRAWS` times over all N positives (a document never drawn is only ever pushed up, and the
    sample problem then has no minimiser); all N are drawn with probability about 1 - N e^-15."""
    q_N = proposal_N / proposal_N.sum()
    need = _MIN_DRAWS / ((q_N.shape[0] - 1) * num_negatives * q_N.min())
    return int(max(min_samples, np.ceil(need)))


def _fixed_point(p: dict) -> dict:
    """The fixed point's KL: its closed form where one exists (hits kept, standard or no correction), else
    two sample averages (S and 4 S sets per positive) extrapolated in 1 / S."""
    import jax

    from grdr.theory import fixed_point_closed_form, pmi_target, population_fixed_point

    p_N, _ = _fixed_point_inputs(p["n_docs"], p["target_zipf"], p["popularity_zipf"], p["seed"])
    q_N = proposal(p["model"], p)
    K, correction, sampling = p["num_negatives"], p["correction"], p["sampling"]
    target_N = np.asarray(pmi_target(p_N, q_N), np.float64)
    out = {"pmi_kl": float(p_N @ (np.log(p_N) - target_N)), "uniform_kl": float(p_N @ np.log(p_N * p["n_docs"])),
           "closed_form": 0.0, "kl_small": math.nan, "kl_large": math.nan, "samples": math.nan,
           "converged": math.nan}
    if sampling == "keep" and correction != "logq_negatives":
        fixed_N = fixed_point_closed_form(p_N, q_N, correction)
        return {**out, "closed_form": 1.0, "kl": float(p_N @ (np.log(p_N) - fixed_N))}
    samples = fixed_point_samples(p["min_samples"], q_N, K)
    kls, converged = [], True
    for i, S in enumerate((samples, 4 * samples)):
        fp = population_fixed_point(p_N, K, q_N, correction, num_samples=S, key=jax.random.fold_in(_key(p), i),
                                    sampling=sampling, max_iter=p["max_iter"], gtol=1e-8)
        kls.append(fp.kl_to_truth)
        converged &= fp.converged
    # KL(S) = a + b / S through both: a = (4 KL(4S) - KL(S)) / 3
    return {**out, "kl": (4.0 * kls[1] - kls[0]) / 3.0, "kl_small": kls[0], "kl_large": kls[1],
            "samples": float(samples), "converged": float(converged)}


def _rank_floor(p: dict) -> dict:
    from grdr.sim.logprobs import corpus_floors, corpus_true_log_probs

    corpus = (p["latent_rank"], p["n_docs"], p["n_test_queries"], p["corpus_seed"])
    num_queries = corpus_true_log_probs(*corpus).shape[0]
    floors = corpus_floors(*corpus, p["dim"])
    return {"floor": floors[p["dim"]] / num_queries, "floor_rel": floors[p["dim"]] / floors[0],
            "energy": floors[0] / num_queries}


def _rank_trie(p: dict) -> dict:
    from grdr.sim.logprobs import complete_trie, random_seq_gr_log_probs, trie_children
    from grdr.theory.rank import numerical_rank, trie_rank_bound

    vocab, depth, hidden = p["tree_vocab"], p["tree_depth"], p["hidden"]
    b_P, leaves_P = trie_children(complete_trie(vocab, depth))
    out = {"bound_nodes": float(trie_rank_bound(b_P, hidden, p["bias"])),
           "bound_sharp": float(trie_rank_bound(b_P, hidden, p["bias"], leaf_children_per_node=leaves_P)),
           "measured_rank": math.nan, "measured_rank_1e10": math.nan, "sigma_at_bound": math.nan,
           "sigma_past_bound": math.nan}
    if p["n_queries"]:
        log_p_MxN, _, _ = random_seq_gr_log_probs(vocab, depth, hidden, p["n_queries"], p["seed"])
        sigma = np.linalg.svd(log_p_MxN, compute_uv=False)
        sigma = sigma / sigma[0]
        bound = int(out["bound_sharp"])
        out.update(measured_rank=float(numerical_rank(log_p_MxN)),   # rtol max(M, N) x eps, numpy's convention
                   measured_rank_1e10=float(numerical_rank(log_p_MxN, 1e-10)),   # sim.checks' tolerance
                   sigma_at_bound=float(sigma[bound - 1]),
                   sigma_past_bound=float(sigma[bound]) if bound < len(sigma) else math.nan)
    return out


_RUNS = {"deficit": _deficit, "gradient": _gradient, "coverage": _coverage, "fixed_point": _fixed_point,
         "rank_trie": _rank_trie}


def measure_point(p: dict) -> dict:
    """The metrics of one record (a flat point config)."""
    import jax

    if p["family"] == "deficit_boundary":
        return delta_boundary(p["num_negatives"], p["share"], p["confusers"], p["threshold"], p["n_max"],
                              p["per_decade"])
    if p["family"] == "rank_floor":   # the corpus is built in float32, as everywhere else
        return _rank_floor(p)
    with jax.enable_x64(True):
        return _RUNS[p["family"]](p)


def run_group(cfg: Config, points, out=None):
    """Compute each point's metrics (no training); returns [(metrics, extra)], seconds."""
    import time

    t0 = time.perf_counter()
    results = [(measure_point(point.record()), {}) for point in points]
    return results, time.perf_counter() - t0
