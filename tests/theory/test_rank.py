"""Low-rank capacity: Eckart-Young floors against trained scorers, trie rank bounds against
SeqGR-like log-probability matrices, sign-rank bounds against known cases (float64)."""
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from theory.rank import dr_rank_bound, eckart_young_floor, numerical_rank, sign_rank_bounds, trie_rank_bound

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


def _scores(params, dim, bias):
    split = NUM_QUERIES * dim
    f_MxD = params[:split].reshape(NUM_QUERIES, dim)
    g_NxD = params[split:split + NUM_DOCS * dim].reshape(NUM_DOCS, dim)
    scores_MxN = f_MxD @ g_NxD.T
    return scores_MxN + params[split + NUM_DOCS * dim:][None, :] if bias else scores_MxN


@functools.partial(jax.jit, static_argnames=("dim", "bias"))
def _cross_entropy_and_grad(params, log_p_MxN, dim, bias):
    def cross_entropy(x):
        return -jnp.sum(jnp.exp(log_p_MxN) * jax.nn.log_softmax(_scores(x, dim, bias), axis=1))
    return jax.value_and_grad(cross_entropy)(params)


def _train_bilinear(log_p_MxN, dim, bias):
    """Free query and document vectors (and a document bias), full softmax against p*, L-BFGS."""
    size = (NUM_QUERIES + NUM_DOCS) * dim + (NUM_DOCS if bias else 0)

    def fun(x):
        value, grad = _cross_entropy_and_grad(jnp.asarray(x), log_p_MxN, dim, bias)
        return float(value), np.asarray(grad)

    x0 = np.random.default_rng(2).normal(size=size) * 0.3
    x = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B",
                                options=dict(maxiter=3000, gtol=1e-11, ftol=1e-16)).x
    return np.asarray(_scores(jnp.asarray(x), dim, bias))


@pytest.mark.parametrize("popularity, dim, bias, exact", [
    (False, RANK, False, True),
    (True, RANK, False, False),      # popularity costs one dimension ...
    (True, RANK + 1, False, True),   # ... which D = R + 1 pays for
    (True, RANK, True, True),        # ... or a document bias
])
def test_trained_bilinear_scorer_never_beats_the_floor(popularity, dim, bias, exact):
    log_p_MxN = _target(popularity)
    scores_MxN = _train_bilinear(jnp.asarray(log_p_MxN), dim, bias)
    error = _centred_error(log_p_MxN, scores_MxN)
    # With a bias the scorer has rank D + 1 (the bias is a rank-one term).
    floor = float(eckart_young_floor(jnp.asarray(log_p_MxN), dim + int(bias)))
    assert error >= floor * (1 - 1e-9)
    if exact:
        assert error < 1e-8
    else:
        assert float(eckart_young_floor(jnp.asarray(log_p_MxN), dim)) > 0.1


def _trie(codes):
    """Prefix nodes of a prefix-free set of docids, each node's children, and how many are leaves."""
    prefixes = sorted({c[:t] for c in codes for t in range(len(c))}, key=lambda p: (len(p), p))
    children = {p: sorted({c[len(p)] for c in codes if c[:len(p)] == p}) for p in prefixes}
    docs = set(codes)
    leaves = {p: sum(p + (c,) in docs for c in children[p]) for p in prefixes}
    return prefixes, children, leaves


def _seqgr_log_probs(codes, hidden, bias, num_queries, seed):
    """log p(d|q) = sum_t log softmax over the valid children c of prefix_t of h(q, prefix_t) . w_c + b_c:
    h is a tanh layer over a query vector plus a prefix embedding; output vectors are shared."""
    rng = np.random.default_rng(seed)
    prefixes, children, _ = _trie(codes)
    node = {p: i for i, p in enumerate(prefixes)}
    vocab = 1 + max(max(c) for c in codes)
    hidden_MxPxH = np.tanh(rng.normal(size=(num_queries, 1, hidden)) + rng.normal(size=(1, len(prefixes), hidden)))
    out_VxH = rng.normal(size=(vocab, hidden))
    out_V = rng.normal(size=vocab) if bias else np.zeros(vocab)
    columns = []
    for code in codes:
        column_M = np.zeros(num_queries)
        for t in range(len(code)):
            valid = children[code[:t]]
            logits_MxC = hidden_MxPxH[:, node[code[:t]]] @ out_VxH[valid].T + out_V[valid]
            column_M += scipy.special.log_softmax(logits_MxC, axis=1)[:, valid.index(code[t])]
        columns.append(column_M)
    return np.stack(columns, axis=1)


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
def test_trie_rank_bounds_hold_and_the_sharp_bound_is_reached(codes, hidden, bias):
    prefixes, children, leaves = _trie(codes)
    log_p_MxN = _seqgr_log_probs(codes, hidden, bias, 4 * len(codes), seed=len(codes) + hidden)
    b_P = [len(children[p]) for p in prefixes]
    design = trie_rank_bound(b_P, hidden, bias)
    sharp = trie_rank_bound(b_P, hidden, bias, leaf_children_per_node=[leaves[p] for p in prefixes])
    expected_sharp = min(len(codes), bias + sum(min(leaves[p], hidden + 1) for p in prefixes))
    assert sharp == expected_sharp <= design
    # Well-conditioned inputs: a clean gap, every singular value past the rank at rounding level.
    sigma = np.linalg.svd(log_p_MxN, compute_uv=False)
    assert sigma[sharp - 1] > 1e-8 * sigma[0] and (sharp == len(sigma) or sigma[sharp] < 1e-13 * sigma[0])
    assert numerical_rank(log_p_MxN, rtol=1e-10) == sharp
    if hidden + 1 >= max(b_P):
        assert sharp == design == len(codes)


@pytest.mark.parametrize("bias", [False, True])
def test_atomic_ids_are_a_bi_encoder(bias):
    hidden, num_docs = 3, 20
    log_p_MxN = _seqgr_log_probs(_complete(num_docs, 1), hidden, bias, 60, seed=3)
    assert trie_rank_bound([num_docs], hidden, bias) == hidden + 1 + bias == dr_rank_bound(hidden, bias)
    assert numerical_rank(log_p_MxN, rtol=1e-9) == hidden + 1 + bias


@pytest.mark.parametrize("bias", [False, True])
def test_dr_log_probability_matrix_has_rank_d_plus_one(bias):
    rng = np.random.default_rng(4)
    dim = 4
    scores_MxN = rng.normal(size=(50, dim)) @ rng.normal(size=(dim, 30))
    if bias:
        scores_MxN = scores_MxN + rng.normal(size=(1, 30))
    log_p_MxN = scores_MxN - scipy.special.logsumexp(scores_MxN, axis=1, keepdims=True)
    assert numerical_rank(log_p_MxN, rtol=1e-9) == dr_rank_bound(dim, bias)


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
