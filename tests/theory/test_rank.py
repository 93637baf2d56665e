"""Low-rank capacity: Eckart-Young floors against direct minimisation, row-shifted rank bounds against
random scorers, trie rank bounds against SeqGR-like log-probability matrices, sign-rank bounds
against known cases (float64)."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from grdr.theory.rank import (maxsim_rank_bound, dr_rank_bound, eckart_young_floor, numerical_rank, row_shifted_rank_bound, sign_rank_bounds,
                         trie_rank_bound)

NUM_QUERIES, NUM_DOCS, RANK = 16, 12, 2


def _centred_error(target_MxN, scores_MxN):
    """min over per-row shifts c of ||A - S - c 1^T||_F^2: the residual with row means removed."""
    resid_MxN = np.asarray(target_MxN) - np.asarray(scores_MxN)
    return float(np.sum(np.square(resid_MxN - resid_MxN.mean(axis=1, keepdims=True))))


def test_floor_is_the_tail_of_the_centred_spectrum_and_is_reached():
    rng = np.random.default_rng(0)
    target_MxN = rng.normal(size=(NUM_QUERIES, NUM_DOCS))
    centred_MxN = target_MxN - target_MxN.mean(axis=1, keepdims=True)
    u, sigma, vt = np.linalg.svd(centred_MxN)
    for dim in (1, 3, 6):
        floor = float(eckart_young_floor(jnp.asarray(target_MxN), dim))
        assert floor == pytest.approx(np.sum(sigma[dim:] ** 2), rel=1e-12)
        truncated_MxN = (u[:, :dim] * sigma[:dim]) @ vt[:dim]
        assert _centred_error(target_MxN, truncated_MxN) == pytest.approx(floor, rel=1e-10)
        for _ in range(20):  # random rank-D scorers never beat it
            scores_MxN = rng.normal(size=(NUM_QUERIES, dim)) @ rng.normal(size=(dim, NUM_DOCS))
            assert _centred_error(target_MxN, scores_MxN) >= floor
    plain = float(eckart_young_floor(jnp.asarray(target_MxN), 3, center_rows=False))
    assert plain == pytest.approx(np.sum(np.linalg.svd(target_MxN, compute_uv=False)[3:] ** 2), rel=1e-12)


def _target(popularity):
    rng = np.random.default_rng(1)
    logits_MxN = rng.normal(size=(NUM_QUERIES, RANK)) @ rng.normal(size=(RANK, NUM_DOCS))
    if popularity:
        logits_MxN = logits_MxN + 1.5 * rng.normal(size=(1, NUM_DOCS))
    return logits_MxN - scipy.special.logsumexp(logits_MxN, axis=1, keepdims=True)  # log p*


def _least_squares_floor(target_MxN, dim, seed):
    """min over F (M x D), G (N x D), c (M) of ||A - F G^T - c 1^T||_F^2 by L-BFGS in float64 from a
    random start, without any SVD: unweighted low-rank least squares has no spurious local minima
    (Baldi & Hornik 1989), and the free row shift keeps it so."""
    num_queries, num_docs = target_MxN.shape
    split, size = num_queries * dim, (num_queries + num_docs) * dim

    def error_and_grad(x):
        f_MxD, g_NxD = x[:split].reshape(num_queries, dim), x[split:size].reshape(num_docs, dim)
        resid_MxN = target_MxN - f_MxD @ g_NxD.T - x[size:][:, None]
        grad = -2 * np.concatenate([(resid_MxN @ g_NxD).ravel(), (resid_MxN.T @ f_MxD).ravel(), resid_MxN.sum(axis=1)])
        return float(np.sum(resid_MxN ** 2)), grad

    x0 = np.random.default_rng(seed).normal(size=size + num_queries) * 0.3
    result = scipy.optimize.minimize(error_and_grad, x0, jac=True, method="L-BFGS-B",
                                     options=dict(maxiter=5000, gtol=1e-12, ftol=1e-16))
    return float(result.fun)


@pytest.mark.parametrize("target, dim, positive", [
    ("latent", 1, True),          # below the latent rank
    ("latent", RANK, False),      # exact
    ("popular", RANK, True),      # popularity costs one dimension ...
    ("popular", RANK + 1, False),  # ... which D = R + 1 pays for
    ("noise", 3, True),           # full-rank target
])
def test_floor_equals_a_direct_minimisation_over_factors_and_row_shifts(target, dim, positive):
    """The floor against the quantity it claims to be, minimised directly: a wrong tail index, a
    missing or column-wise centring, or unsquared singular values all miss it."""
    log_p_MxN = (np.random.default_rng(7).normal(size=(NUM_QUERIES, NUM_DOCS)) if target == "noise"
                 else _target(target == "popular"))
    floor = float(eckart_young_floor(jnp.asarray(log_p_MxN), dim))
    direct = _least_squares_floor(log_p_MxN, dim, seed=dim)
    scale = float(np.sum(np.square(log_p_MxN - log_p_MxN.mean(axis=1, keepdims=True))))
    assert floor == pytest.approx(direct, abs=1e-9 * scale, rel=1e-7)
    assert (direct > 1e-3 * scale) == positive


def _trie(codes):
    """Prefix nodes of a prefix-free set of docids, each node's children, and how many are leaves."""
    prefixes = sorted({c[:t] for c in codes for t in range(len(c))}, key=lambda p: (len(p), p))
    children = {p: sorted({c[len(p)] for c in codes if c[:len(p)] == p}) for p in prefixes}
    docs = set(codes)
    leaves = {p: sum(p + (c,) in docs for c in children[p]) for p in prefixes}
    return prefixes, children, leaves


def _complete(vocab, depth):
    return list(itertools.product(range(vocab), repeat=depth))


# Irregular: a leaf at depth 1, a 3-way node, a chain of single children, a 2-way node of leaves.
_IRREGULAR = [(0,), (1, 0), (1, 1), (1, 2), (2, 0, 0), (3, 0), (3, 1)]


@pytest.mark.parametrize("codes, hidden, bias", [
    (_complete(3, 2), 1, False),   # DESIGN: 4 nodes x 2 = 8; sharp: 3 leaf-level nodes x 2 = 6
    (_complete(3, 2), 1, True),    # DESIGN: 4 x 3 capped at 9; sharp: 1 + 6 = 7
    (_complete(4, 2), 2, False),   # DESIGN: 5 x 3 = 15; sharp: 4 x 3 = 12
    (_complete(5, 2), 1, True),    # DESIGN: 6 x 3 = 18; sharp: 1 + 5 x 2 = 11
    (_complete(3, 2), 2, False),   # wide enough (H + 1 >= V): both reach full rank 9
    (_complete(4, 2), 3, True),    # wide enough: full rank 16
    (_IRREGULAR, 1, False),
    (_IRREGULAR, 1, True),
])
def test_sharp_trie_bound_is_the_leaf_level_count_and_never_exceeds_designs(codes, hidden, bias):
    """The bound function against its closed forms. That the real SeqGR's log-prob matrix reaches the
    sharp bound is tested in tests/sim/test_models.py and checked in theory.checks (rank group)."""
    prefixes, children, leaves = _trie(codes)
    b_P = [len(children[p]) for p in prefixes]
    design = trie_rank_bound(b_P, hidden, bias)
    sharp = trie_rank_bound(b_P, hidden, bias, leaf_children_per_node=[leaves[p] for p in prefixes])
    assert design == min(len(codes), sum(min(hidden + 1 + bias, b) for b in b_P if b > 1))
    expected_sharp = min(len(codes), bias + sum(min(leaves[p], hidden + 1) for p in prefixes))
    assert sharp == expected_sharp <= design
    if hidden + 1 >= max(b_P):
        assert sharp == design == len(codes)


@pytest.mark.parametrize("bias", [False, True])
def test_atomic_ids_are_a_bi_encoder(bias):
    """One node with N children: the trie bound, sharp or not, is DR's D + 1 + bias at D = H (the real
    SeqGR on atomic docids reaches it: tests/sim/test_models.py)."""
    hidden, num_docs = 3, 20
    assert trie_rank_bound([num_docs], hidden, bias) == hidden + 1 + bias == dr_rank_bound(hidden, bias)
    assert trie_rank_bound([num_docs], hidden, bias, leaf_children_per_node=[num_docs]) == hidden + 1 + bias


@pytest.mark.parametrize("bias", [False, True])
def test_dr_log_probability_matrix_has_rank_d_plus_one(bias):
    rng = np.random.default_rng(4)
    dim = 4
    scores_MxN = rng.normal(size=(50, dim)) @ rng.normal(size=(dim, 30))
    if bias:
        scores_MxN = scores_MxN + rng.normal(size=(1, 30))
    log_p_MxN = scores_MxN - scipy.special.logsumexp(scores_MxN, axis=1, keepdims=True)
    assert numerical_rank(log_p_MxN, rtol=1e-9) == dr_rank_bound(dim, bias)


def _row_centred_rank(log_p_MxN):
    """min over c of rank(log P - c 1^T): every shift has the same row-centred part (X + c 1^T) P = X P,
    and X P is itself a shift of X, so the row-centred rank is the minimum."""
    return numerical_rank(log_p_MxN - log_p_MxN.mean(axis=1, keepdims=True), rtol=1e-9)


@pytest.mark.parametrize("kind, bias", [("dr", False), ("dr", True), ("atomic_gr", True)])
def test_row_shifted_rank_bound_holds_and_is_reached_by_random_scorers(kind, bias):
    """DR: S = F G^T (+ 1 b^T); AtomicGR: query states against a free output table plus a bias,
    the same form. log P = S - logsumexp(S) has rank D + 1 (+ bias), one more than the bound."""
    rng = np.random.default_rng(8)
    for width, num_queries, num_docs in ((1, 20, 9), (4, 40, 25), (6, 30, 7), (9, 30, 7)):
        for _ in range(3):
            scores_MxN = rng.normal(size=(num_queries, width)) @ rng.normal(size=(width, num_docs))
            if bias:
                scores_MxN = scores_MxN + rng.normal(size=(1, num_docs)) * 2
            log_p_MxN = scores_MxN - scipy.special.logsumexp(scores_MxN, axis=1, keepdims=True)
            bound = row_shifted_rank_bound(kind, width, bias=bias)
            rank = _row_centred_rank(log_p_MxN)
            assert rank == min(bound, num_docs - 1)   # never above the bound; reached when it fits
            if bound < num_docs - 1:
                assert numerical_rank(log_p_MxN, rtol=1e-9) == bound + 1   # the shift removes one
    assert row_shifted_rank_bound("atomic_gr", 5, bias=True) == row_shifted_rank_bound("dr", 5, bias=True) == 6


def test_row_shifted_rank_bound_of_seq_gr_is_the_trie_bound():
    b_P, leaves_P = [3] * 4, [0, 3, 3, 3]   # complete 3-ary tree of depth 2
    for hidden, bias in ((1, False), (1, True), (2, True)):
        assert (row_shifted_rank_bound("seq_gr", hidden, bias=bias, children_per_node=b_P)
                == trie_rank_bound(b_P, hidden, bias))
        assert (row_shifted_rank_bound("seq_gr", hidden, bias=bias, children_per_node=b_P,
                                       leaf_children_per_node=leaves_P)
                == trie_rank_bound(b_P, hidden, bias, leaf_children_per_node=leaves_P))


def test_row_shifted_rank_bound_validates_its_arguments():
    with pytest.raises(ValueError, match="kind"):
        row_shifted_rank_bound("late_interaction", 4, bias=False)
    with pytest.raises(ValueError, match="children_per_node"):
        row_shifted_rank_bound("seq_gr", 4, bias=True)
    with pytest.raises(ValueError, match="children_per_node"):
        row_shifted_rank_bound("dr", 4, bias=False, children_per_node=[3])
    with pytest.raises(ValueError, match="width"):
        row_shifted_rank_bound("dr", -1, bias=False)


def test_trie_bound_counts_single_child_nodes_as_zero_and_caps_at_leaves():
    # A chain of single-child prefixes above a 5-way split: log p is 0 on the chain.
    assert trie_rank_bound([1, 1, 5], hidden=10) == 5
    assert trie_rank_bound([4] * 21, hidden=3) == 64
    assert trie_rank_bound([4] * 21, hidden=1) == 42
    assert trie_rank_bound([4] * 21, hidden=1, leaf_children_per_node=[0] * 5 + [4] * 16) == 32
    with pytest.raises(ValueError, match="children_per_node"):
        trie_rank_bound([], hidden=2)
    with pytest.raises(ValueError, match="leaf_children_per_node"):
        trie_rank_bound([2, 2], hidden=1, leaf_children_per_node=[2, 2])


def test_numerical_rank_counts_singular_values_above_tolerance():
    u = scipy.linalg.qr(np.random.default_rng(5).normal(size=(8, 8)))[0]
    matrix = u @ np.diag([1.0, 1e-3, 1e-6, 1e-12, 0, 0, 0, 0]) @ u.T
    assert [numerical_rank(matrix, rtol) for rtol in (1e-2, 1e-4, 1e-9, 1e-14)] == [1, 2, 3, 4]
    assert numerical_rank(np.zeros((3, 4))) == 0


def test_forster_bound_of_a_hadamard_matrix_is_sqrt_n():
    hadamard = scipy.linalg.hadamard(16)
    bounds = sign_rank_bounds((hadamard + 1) // 2)
    assert bounds.forster == pytest.approx(math.sqrt(16), rel=1e-12)
    assert bounds.sign_rank_lower == 4 and bounds.sign_rank_upper == 16 and bounds.dim_lower == 3


def test_sign_rank_bounds_bracket_planted_low_rank_patterns():
    rng = np.random.default_rng(6)
    for rank in (1, 2, 3, 5):
        scores_MxN = rng.normal(size=(40, rank)) @ rng.normal(size=(rank, 30))
        bounds = sign_rank_bounds(scores_MxN > 0)   # sign rank <= rank by construction
        assert bounds.forster <= rank + 1e-9
        assert bounds.sign_rank_lower <= rank <= bounds.sign_rank_upper
        assert bounds.dim_lower <= bounds.dim_upper


def test_identity_qrels_need_two_dimensions_and_the_bounds_bracket_it():
    """One relevant document per query: D = 2 works (points on a circle), D = 1 cannot."""
    num = 9
    angles = 2 * np.pi * np.arange(num) / num
    circle_Nx2 = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    scores_NxN = circle_Nx2 @ circle_Nx2.T
    assert np.all(np.argmax(scores_NxN, axis=1) == np.arange(num))
    bounds = sign_rank_bounds(np.eye(num))
    assert bounds.dim_lower <= 2 <= bounds.dim_upper
    assert bounds.forster == pytest.approx(num / (num - 2), rel=1e-12)   # ||2I - J||_op = N - 2
    with pytest.raises(ValueError, match="binary"):
        sign_rank_bounds(np.full((2, 2), 0.5))


# --- rank-r bilinear scorers (sim.scorers' lowrank): bound and floor ---------------------------------

def test_bilinear_rank_bound_matches_the_numerical_rank_of_random_instances():
    """log P = S - logsumexp(S) with S = F U V^T G^T (+ 1 b^T): its rank is min(min(r, D) + 1 + bias, M, N)
    for generic factors, enumerated over small D, r, N; row-centred, min(r, D) + bias."""
    from grdr.theory import bilinear_rank_bound

    rng = np.random.default_rng(0)
    M = 24
    for dim in (1, 2, 3, 5):
        for rank in (1, 2, 4, 6):
            for n_docs in (3, 7, 12):
                for bias in (False, True):
                    F, G = rng.normal(size=(M, dim)), rng.normal(size=(n_docs, dim))
                    U, V = rng.normal(size=(dim, rank)), rng.normal(size=(dim, rank))
                    S = F @ U @ V.T @ G.T + (rng.normal(size=n_docs)[None, :] if bias else 0.0)
                    logp = S - np.logaddexp.reduce(S, axis=1, keepdims=True)
                    bound = bilinear_rank_bound(dim, rank, bias)
                    assert bound == min(rank, dim) + 1 + bias
                    where = (dim, rank, n_docs, bias)
                    assert numerical_rank(logp, 1e-9) == min(bound, M, n_docs), where
                    centred = logp - logp.mean(axis=1, keepdims=True)
                    assert numerical_rank(centred, 1e-9) == min(bound - 1, n_docs - 1), where


def test_bilinear_floor_is_the_eckart_young_tail_at_min_r_d():
    from grdr.theory import bilinear_eckart_young_floor

    rng = np.random.default_rng(1)
    target = rng.normal(size=(15, 9))
    sigma = np.linalg.svd(target - target.mean(axis=1, keepdims=True), compute_uv=False)
    with jax.enable_x64(True):
        for dim, rank in ((4, 2), (2, 4), (3, 3), (4, 20)):
            got = float(bilinear_eckart_young_floor(jnp.asarray(target, jnp.float64), dim, rank))
            np.testing.assert_allclose(got, np.sum(sigma[min(rank, dim):] ** 2), rtol=1e-10, atol=1e-12)
        got = float(bilinear_eckart_young_floor(jnp.asarray(target, jnp.float64), 4, 2, bias=True))
        np.testing.assert_allclose(got, np.sum(sigma[3:] ** 2), rtol=1e-10)


@pytest.mark.parametrize("dim, m, m_doc, n_queries, n_docs", [
    (2, 1, 1, 50, 20), (3, 4, 1, 50, 20), (2, 2, 2, 50, 20), (2, 1, 3, 50, 20), (3, 4, 4, 15, 40), (1, 3, 2, 60, 10)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maxsim_rank_bound_holds_and_random_vectors_reach_it(dim, m, m_doc, n_queries, n_docs, seed):
    """Enumerate MaxSim's log-probabilities in float64 (every query against every document, the max
    over document vectors taken explicitly) and compare the row-shifted rank with the bound."""
    rng = np.random.default_rng(seed)
    q, d = rng.normal(size=(n_queries, m, dim)), rng.normal(size=(n_docs, m_doc, dim))
    s = np.array([[sum(max(float(qi @ dj) for dj in dk) for qi in qb) for dk in d] for qb in q])
    log_p = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    measured = numerical_rank(log_p - log_p.mean(axis=1, keepdims=True), 1e-9)
    assert measured == maxsim_rank_bound(dim, m, m_doc, n_queries, n_docs)


def test_maxsim_with_one_document_vector_is_a_dot_product_of_summed_query_vectors():
    assert maxsim_rank_bound(5, 8, 1, 1000, 1000) == 5 == row_shifted_rank_bound("dr", 5, bias=False)
    assert maxsim_rank_bound(5, 1, 2, 1000, 1000) == 999
    assert maxsim_rank_bound(1, 3, 2, 1000, 1000) == 2  # D = 1: the positive and the negative part
    with pytest.raises(ValueError, match="doc_vectors must be >= 1"):
        maxsim_rank_bound(5, 1, 0, 10, 10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maxsim_rank_bound_holds_where_random_vectors_do_not_reach_it(seed):
    """D = 2, m = 1, m' = 2: the rank stays below min(M, N - 1) (the docstring says so), never above."""
    rng = np.random.default_rng(seed)
    q, d = rng.normal(size=(200, 1, 2)), rng.normal(size=(60, 2, 2))
    s = np.einsum("bid,kjd->bkij", q, d).max(axis=3).sum(axis=2)
    log_p = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    measured = numerical_rank(log_p - log_p.mean(axis=1, keepdims=True), 1e-9)
    assert 2 < measured <= maxsim_rank_bound(2, 1, 2, 200, 60) == 59
