"""`grdr check`: a fixed battery of derivation checks, closed form against brute force, in float64.

(The checks that need a model, such as the trie bound against the real SeqGR, are in sim.checks;
`grdr check` runs both.)

Each check reports one scalar: the closed form (or the value the theory predicts), the numerical
value (autodiff, enumeration, Monte Carlo, an optimiser, an SVD), their error and the tolerance the
check allows; Monte Carlo tolerances are k standard errors, approximations carry a stated slack.
The battery runs in about 20 s on 2 cores (`quick=True` shrinks the Monte Carlo sizes).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special

from grdr.theory.confusers import confuser_coverage
from grdr.theory.drift import gradient_bias, normalizer_deficit
from grdr.theory.fixed_point import fixed_point_closed_form, negatives_rule_two_documents, population_fixed_point
from grdr.theory.objectives import global_grad, global_loss, sampled_grad, sampled_loss
from grdr.theory.rank import (bilinear_eckart_young_floor, bilinear_rank_bound, dr_rank_bound, eckart_young_floor,
                         maxsim_rank_bound, numerical_rank, sign_rank_bounds)
from grdr.theory.scaling import fit_power_law

__all__ = ["CheckResult", "run_checks", "format_table"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One derivation check: passed iff error <= tolerance (both finite)."""
    quantity: str
    closed_form: float
    numerical: float
    error: float
    tolerance: float
    passed: bool

    def __post_init__(self):
        if not self.quantity:
            raise ValueError("CheckResult.quantity must name the quantity checked")
        if not self.tolerance >= 0:
            raise ValueError(f"CheckResult.tolerance must be >= 0, got {self.tolerance}")


def _result(quantity, closed_form, numerical, tolerance, error=None):
    error = abs(float(numerical) - float(closed_form)) if error is None else float(error)
    passed = bool(math.isfinite(error) and error <= tolerance)
    return CheckResult(quantity, float(closed_form), float(numerical), error, float(tolerance), passed)


@jax.jit
def _objective_errors(scores_BxN, pos_B, pos_scores_B, neg_BxK, log_q_BxK, others_BxN1):
    """Closed-form gradients against autodiff, and l_L over all other documents against l_G."""
    auto_BxN = jax.grad(lambda s: jnp.sum(global_loss(s, pos_B)))(scores_BxN)
    global_error = jnp.max(jnp.abs(global_grad(scores_BxN, pos_B) - auto_BxN))
    auto_pos_B, auto_neg_BxK = jax.grad(lambda p, n: jnp.sum(sampled_loss(p, n, log_q_BxK, "logq")),
                                        argnums=(0, 1))(pos_scores_B, neg_BxK)
    closed_pos_B, closed_neg_BxK = sampled_grad(pos_scores_B, neg_BxK, log_q_BxK, "logq")
    sampled_error = jnp.maximum(jnp.max(jnp.abs(closed_pos_B - auto_pos_B)),
                                jnp.max(jnp.abs(closed_neg_BxK - auto_neg_BxK)))
    pos_row_scores_B = jnp.take_along_axis(scores_BxN, pos_B[:, None], axis=1)[:, 0]
    return (global_error, sampled_error, global_loss(scores_BxN, pos_B)[0],
            sampled_loss(pos_row_scores_B, others_BxN1)[0])


def _objective_checks(rng):
    scores_BxN, pos_B = rng.normal(size=(4, 9)), np.array([0, 3, 5, 8])
    others_BxN1 = np.stack([np.delete(row, p) for row, p in zip(scores_BxN, pos_B)])
    errors = _objective_errors(jnp.asarray(scores_BxN), jnp.asarray(pos_B), jnp.asarray(rng.normal(size=4)),
                               jnp.asarray(rng.normal(size=(4, 6))),
                               jnp.asarray(np.log(rng.dirichlet(np.ones(7), size=4))), jnp.asarray(others_BxN1))
    global_error, sampled_error, global_value, sampled_value = (float(e) for e in errors)
    yield _result("grad l_G: softmax - onehot vs autodiff (max |diff|)", 0.0, 0.0, 1e-12, error=global_error)
    yield _result("grad l_L (logQ): w - onehot vs autodiff (max |diff|)", 0.0, 0.0, 1e-12, error=sampled_error)
    yield _result("l_L with all N-1 others as negatives = l_G", global_value, sampled_value, 1e-12)


def _gradient_checks(rng, key, num_samples):
    scores_N = rng.normal(size=6) * 1.5
    proposal_N = rng.dirichlet(np.ones(6)) + 0.05
    exact = gradient_bias(scores_N, 0, 3, proposal_N, "logq", exact=True, sampling="keep")
    mc = gradient_bias(scores_N, 0, 3, proposal_N, "logq", num_samples=num_samples, key=key, sampling="keep")
    # Delta-method standard error of the norm, plus its upward noise bias sum(se^2) / |b|.
    se_N, bias_N = np.asarray(mc.standard_error), np.asarray(mc.bias)
    se_norm = math.sqrt(np.sum(np.square(bias_N * se_N))) / mc.norm + np.sum(np.square(se_N)) / mc.norm
    yield _result("|E_S grad l_L - grad l_G|, standard logQ, N=6 K=3, hits kept: enumeration vs MC", exact.norm,
                  mc.norm, 4 * se_norm)
    own = gradient_bias(scores_N, 0, 3, np.exp(scores_N), "logq_negatives", num_samples=num_samples, key=key)
    noise = math.sqrt(np.sum(np.square(np.asarray(own.standard_error))))
    yield _result("negatives-only logQ, proposal = own softmax: bias 0 (tol 4 x MC noise)", 0.0, own.norm, 4 * noise)


def _deficit_checks(rng, key, num_samples):
    num_negatives, deficits = 16, {}
    for num_docs in (1_000, 10_000):
        scores_N = rng.normal(size=num_docs) * 0.5
        scores_N[0] = -2.0   # negatives hold the mass
        deficits[num_docs] = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), "none",
                                                num_samples=num_samples, key=key)
    d = deficits[1_000]
    # Slack: the Jensen gap Var(e^s) / (2 K E(e^s)^2) ~ 0.01 at sigma = 0.5, K = 16.
    yield _result("E log Z_S - log Z, plain uniform, N=1e3 K=16: -log((N-1)/K)", d.approximation, d.monte_carlo,
                  4 * d.standard_error + 0.03)
    slope = deficits[10_000].monte_carlo - deficits[1_000].monte_carlo
    se = math.hypot(deficits[10_000].standard_error, d.standard_error)
    yield _result("  its change per decade of N: -ln 10", -math.log(10.0), slope, 4 * se + 0.01)
    scores_N = rng.normal(size=1_000) * 0.5
    c = normalizer_deficit(scores_N, 0, num_negatives, np.ones(1_000), "logq_negatives", num_samples=num_samples,
                           key=key)
    yield _result("E log Z_S - log Z, importance-weighted (negatives-only logQ), N=1e3 K=16: delta method",
                  c.approximation, c.monte_carlo,
                  4 * c.standard_error + 0.1 * abs(c.approximation))
    num_docs, num_confusers, trials = 1_000, 5, 20_000
    draws_TxK = np.random.default_rng(int(rng.integers(2**31))).integers(0, num_docs - 1, size=(trials, num_negatives))
    hit_rate = float(np.mean(np.any(draws_TxK < num_confusers, axis=1)))
    exact = confuser_coverage(num_docs, num_negatives, num_confusers).exact
    yield _result("P(K=16 negatives hit one of k=5 confusers), N=1e3: exact vs simulation", exact, hit_rate,
                  4 * math.sqrt(exact * (1 - exact) / trials))
    sparse = confuser_coverage(100_000, num_negatives, num_confusers)
    yield _result("  approximation K k / N, N=1e5 (rel. tol (K-1)k/N)", sparse.exact, sparse.approximation,
                  (num_negatives - 1) * num_confusers / 100_000 * sparse.exact)


def _fixed_point_checks(rng, key, num_samples):
    """Fisher consistency by exact enumeration (every ordered tuple of K negatives, hits kept, float64)."""
    p_N = rng.dirichlet(np.ones(40) * 0.5)
    fp = population_fixed_point(p_N)
    yield _result("global fixed point: KL(p* || softmax s*)", 0.0, fp.kl_to_truth, 1e-10)
    num_docs, num_negatives = 10, 3
    p_N = rng.dirichlet(np.ones(num_docs))
    popularity_N = rng.permutation(1.0 / np.arange(1, num_docs + 1))
    for name, q_N in (("uniform", np.ones(num_docs)), ("popularity", popularity_N)):
        for correction, what in (("logq", "standard logQ"), ("none", "plain")):
            fp = population_fixed_point(p_N, num_negatives, q_N, correction, exact=True, sampling="keep")
            target_N = fixed_point_closed_form(p_N, q_N, correction)
            at = "log p*" if correction == "logq" or name == "uniform" else "the PMI target log p* - log Q"
            yield _result(f"{what}, {name} Q, N={num_docs} K={num_negatives}, every tuple: fixed point at {at} "
                          "(max |diff|)", 0.0, 0.0, 1e-10, error=float(np.max(np.abs(fp.scores - target_N))))
    p_2 = np.array([0.8, 0.2])
    old = population_fixed_point(p_2, 1, np.ones(2), "logq_negatives", exact=True, sampling="keep")
    yield _result("negatives-only logQ, N=2 K=1, p*=(0.8, 0.2): ratio r solves 0.8r^2 + 1.2r - 0.2 = 0",
                  negatives_rule_two_documents(0.8), math.exp(old.scores[1] - old.scores[0]), 1e-10)


def _rank_checks(rng):
    target_MxN = rng.normal(size=(30, 20))
    dim = 4
    floor = float(eckart_young_floor(jnp.asarray(target_MxN), dim))

    def error_and_grad(x):   # ||A - F G^T - c 1^T||^2 over free F, G, c
        f_MxD, g_NxD = x[:30 * dim].reshape(30, dim), x[30 * dim:50 * dim].reshape(20, dim)
        resid_MxN = target_MxN - f_MxD @ g_NxD.T - x[50 * dim:][:, None]
        return np.sum(resid_MxN ** 2), -2 * np.concatenate([(resid_MxN @ g_NxD).ravel(),
                                                           (resid_MxN.T @ f_MxD).ravel(), resid_MxN.sum(axis=1)])

    x = scipy.optimize.minimize(error_and_grad, rng.normal(size=50 * dim + 30) * 0.1, jac=True, method="L-BFGS-B",
                                options=dict(maxiter=5000, gtol=1e-12, ftol=1e-16)).x
    yield _result("Eckart-Young floor, D=4: tail sigma^2 vs optimised F G^T + c", floor, error_and_grad(x)[0],
                  1e-6 * floor)
    logits_MxN = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20)) + rng.normal(size=(1, 20))
    yield _result("rank-3 target + popularity: floor at D = R+1", 0.0,
                  float(eckart_young_floor(jnp.asarray(logits_MxN), 4)), 1e-18 * np.sum(logits_MxN ** 2))
    scores_MxN = rng.normal(size=(40, 5)) @ rng.normal(size=(5, 25)) + rng.normal(size=(1, 25))
    log_p_MxN = scores_MxN - scipy.special.logsumexp(scores_MxN, axis=1, keepdims=True)
    yield _result("DR log-prob rank, D=5 with bias: D+2", dr_rank_bound(5, bias=True),
                  numerical_rank(log_p_MxN, 1e-10), 0.0)
    bounds = sign_rank_bounds((scipy.linalg.hadamard(16) + 1) // 2)
    yield _result("Forster bound of a 16 x 16 Hadamard pattern: sqrt(N)", 4.0, bounds.forster, 1e-12)
    yield from _similarity_rank_checks(rng)


def _log_p(scores_MxN):
    return scores_MxN - scipy.special.logsumexp(scores_MxN, axis=1, keepdims=True)


def _maxsim(q_Mxmxd, d_Nxnxd):
    return np.einsum("bid,kjd->bkij", q_Mxmxd, d_Nxnxd).max(axis=3).sum(axis=2)


def _similarity_rank_checks(rng):
    """Rank bounds of the scorers other than the dot product (sim/scorers.py), by enumeration."""
    M, N, D = 40, 25, 6
    f_MxD, g_NxD, b_N = rng.normal(size=(M, D)), rng.normal(size=(N, D)), rng.normal(size=N)
    for r in (3, 9):
        u_Dxr, v_Dxr = rng.normal(size=(D, r)), rng.normal(size=(D, r))
        log_p = _log_p(f_MxD @ u_Dxr @ v_Dxr.T @ g_NxD.T + b_N[None, :])
        yield _result(f"rank-r bilinear log-prob rank, D={D} r={r} with bias: min(r, D) + 2",
                      bilinear_rank_bound(D, r, bias=True), numerical_rank(log_p, 1e-10), 0.0)

    target_MxN = rng.normal(size=(30, 20))
    dim, rank = 5, 2
    floor = float(bilinear_eckart_young_floor(jnp.asarray(target_MxN), dim, rank))
    sizes = (30 * dim, 20 * dim, dim * rank, dim * rank, 30)
    cuts = np.cumsum(sizes)[:-1]

    def error_and_grad(x):   # ||A - F U V^T G^T - c 1^T||^2 over free towers F, G, factors U, V and shifts c
        f, g, u, v, c = np.split(x, cuts)
        f, g, u, v = f.reshape(30, dim), g.reshape(20, dim), u.reshape(dim, rank), v.reshape(dim, rank)
        fu, gv = f @ u, g @ v
        resid = target_MxN - fu @ gv.T - c[:, None]
        return np.sum(resid ** 2), -2 * np.concatenate([(resid @ gv @ u.T).ravel(), (resid.T @ fu @ v.T).ravel(),
                                                        (f.T @ resid @ gv).ravel(), (g.T @ resid.T @ fu).ravel(),
                                                        resid.sum(axis=1)])

    x = scipy.optimize.minimize(error_and_grad, rng.normal(size=sum(sizes)) * 0.3, jac=True, method="L-BFGS-B",
                                options=dict(maxiter=20000, gtol=1e-12, ftol=1e-16)).x
    yield _result(f"rank-r bilinear floor, D={dim} r={rank}: tail sigma^2 at min(r, D) vs optimised F U V^T G^T + c",
                  floor, error_and_grad(x)[0], 1e-6 * floor)

    for m, m_doc, n_docs in ((3, 1, 25), (2, 2, 12), (1, 4, 12), (4, 4, 60)):
        q, d = rng.normal(size=(200, m, 2)), rng.normal(size=(n_docs, m_doc, 2))
        log_p = _log_p(_maxsim(q, d))
        measured = numerical_rank(log_p - log_p.mean(axis=1, keepdims=True), 1e-9)
        yield _result(f"MaxSim row-shifted log-prob rank, D=2 m={m} m'={m_doc} N={n_docs}: "
                      + ("D (m' = 1 is a dot product)" if m_doc == 1 else "N - 1, not capped by D"),
                      maxsim_rank_bound(2, m, m_doc, 200, n_docs), measured, 0.0)


def _scaling_checks(rng, bootstrap):
    x = np.logspace(2, 5, 8)
    y = 3.0 * x ** -0.4 + 0.2 + rng.normal(0.0, 0.005, x.shape)
    fit = fit_power_law(x, y, bootstrap=bootstrap, seed=int(rng.integers(2**31)))
    inside = fit.alpha_ci[0] <= 0.4 <= fit.alpha_ci[1]
    half_width = 0.5 * (fit.alpha_ci[1] - fit.alpha_ci[0])
    # Pass iff the planted alpha lies in the 95% interval; the tolerance shown is its half width.
    yield CheckResult("power-law fit: planted alpha in its 95% profile interval", 0.4, fit.alpha,
                      abs(fit.alpha - 0.4), half_width, bool(inside and fit.converged))


_GROUPS = ("objectives", "gradients", "deficit", "fixed_point", "rank", "scaling")


def run_checks(seed: int = 0, quick: bool = False, groups: tuple[str, ...] = _GROUPS) -> list[CheckResult]:
    """Run the battery (float64) and return one CheckResult per quantity.

    Args:
      seed: seeds every random input and Monte Carlo key.
      quick: smaller Monte Carlo and bootstrap sizes (for tests).
      groups: which of "objectives", "gradients", "deficit", "fixed_point", "rank", "scaling" to run.

    Returns:
      The results, in a fixed order.

    >>> results = run_checks(groups=("rank",))
    >>> all(r.passed for r in results), len(results)
    (True, 11)
    """
    unknown = sorted(set(groups) - set(_GROUPS))
    if unknown:
        raise ValueError(f"groups: unknown {unknown}; known: {list(_GROUPS)}")
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    num_samples, bootstrap = (4_096, 200) if quick else (32_768, 1_000)
    battery = {
        "objectives": lambda: _objective_checks(rng),
        "gradients": lambda: _gradient_checks(rng, key, num_samples),
        "deficit": lambda: _deficit_checks(rng, key, num_samples),
        "fixed_point": lambda: _fixed_point_checks(rng, key, num_samples),
        "rank": lambda: _rank_checks(rng),
        "scaling": lambda: _scaling_checks(rng, bootstrap),
    }
    with jax.enable_x64(True):
        return [result for group in _GROUPS if group in groups for result in battery[group]()]


def format_table(results: list[CheckResult]) -> str:
    """A fixed-width table: quantity, closed form, numerical, error, tolerance, pass/FAIL.

    >>> print(format_table([CheckResult("x", 1.0, 1.0, 0.0, 1e-12, True)]))   # doctest: +NORMALIZE_WHITESPACE
    quantity  closed form  numerical  error  tolerance  result
    x         1            1          0      1e-12      pass
    """
    header = ("quantity", "closed form", "numerical", "error", "tolerance", "result")
    rows = [(r.quantity, f"{r.closed_form:.6g}", f"{r.numerical:.6g}", f"{r.error:.3g}", f"{r.tolerance:.3g}",
             "pass" if r.passed else "FAIL") for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])
