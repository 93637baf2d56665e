"""sim.models: DR's and atomic GR's score identities, SeqGR's normalisation and teacher forcing, parameter
counts by hand, and the rank of the real SeqGR's log-probability matrix against the trie bound
(docs/design.md, section 1), in float64."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from flax import nnx

from grdr.sim.docids import atomic_docids, random_tree_docids, trie_from_codes
from grdr.sim.models import AtomicGR, DualEncoder, ModelConfig, SeqGR, SoftNorm, count_params, make_model
from grdr.theory.rank import dr_rank_bound, numerical_rank, trie_rank_bound

FEATURES = 3


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _float64(model):
    nnx.update(model, jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), nnx.state(model, nnx.Param)))
    return model


def _generic_seq_gr(docids, hidden, decoder_depth=1, bias=True, seed=0):
    """The real SeqGR in float64, with its zero-initialised level embedding (and, if `bias`, output
    bias) drawn at random: generic parameters. A zero output bias drops beta = 1 from the bound."""
    cfg = ModelConfig(kind="seq_gr", hidden=hidden, depth=1, decoder_depth=decoder_depth)
    model = _float64(SeqGR(cfg, docids, FEATURES, rngs=nnx.Rngs(params=seed)))
    rng = np.random.default_rng(seed)
    model.level_embed[...] = jnp.asarray(rng.normal(size=model.level_embed.shape) / np.sqrt(hidden))
    model.out_bias[...] = jnp.asarray(rng.normal(size=model.out_bias.shape) if bias else np.zeros(model.out_bias.shape))
    return model


def _log_prob_matrix(model, docids, query_MxH):
    """log p(d | q) of every (query, docid) pair through the model's own teacher-forced path."""
    M, N = query_MxH.shape[0], docids.n_docs
    codes = np.tile(docids.codes_NxL, (M, 1))
    valid = np.tile(docids.valid_PxV[docids.prefix_NxL], (M, 1, 1))
    logp = model.log_prob(jnp.repeat(jnp.asarray(query_MxH), N, axis=0), jnp.asarray(codes), jnp.asarray(valid))
    return np.asarray(logp, np.float64).reshape(M, N)


def _sharp_bound_reference(docids, hidden, bias):
    """beta + sum over last-level nodes of min(children, H + 1), capped by N (docs/design.md's correction)."""
    children_per_last_node = np.bincount(docids.prefix_NxL[:, -1])
    children_per_last_node = children_per_last_node[children_per_last_node > 0]
    return min(docids.n_docs, int(bias) + int(np.minimum(children_per_last_node, hidden + 1).sum()))


def _complete(vocab, depth):
    return trie_from_codes("random", np.indices((vocab,) * depth).reshape(depth, -1).T, vocab)


# 4-ary depth 3 (N = 64): bound 1 + 16 min(4, H + 1) = 33, 49, 64, 64 at H = 1..4. The rest: complete
# depth-2 trees with and without an output bias, and a random tree whose last node has 2 of 3 children.
_RANK_CASES = [(random_tree_docids(64, 4, seed=0), hidden, decoder_depth, True)
               for hidden in (1, 2, 3, 4) for decoder_depth in (0, 1)] + [
    (_complete(3, 2), 1, 1, False),   # 3 last-level nodes x 2 = 6 of 9
    (_complete(3, 2), 1, 0, True),    # 1 + 6 = 7
    (_complete(4, 2), 2, 0, False),   # 4 x 3 = 12 of 16
    (_complete(5, 2), 1, 1, True),    # 1 + 5 x 2 = 11 of 25
    (_complete(3, 2), 2, 1, False),   # H + 1 >= V: full rank 9
    (_complete(4, 2), 3, 0, True),    # full rank 16
    (random_tree_docids(23, 3, seed=1), 1, 0, True),   # 1 + 7 x 2 + 2 = 17 of 23
]


@pytest.mark.parametrize("docids, hidden, decoder_depth, bias", _RANK_CASES,
                         ids=[f"N{d.n_docs}-V{d.vocab}-H{h}-depth{k}-bias{int(b)}" for d, h, k, b in _RANK_CASES])
def test_seq_gr_log_prob_matrix_reaches_the_sharp_trie_bound(docids, hidden, decoder_depth, bias):
    model = _generic_seq_gr(docids, hidden, decoder_depth, bias, seed=hidden + decoder_depth)
    # Well-spread query states, 4 per document. At H = 1 every state is a function of one number and
    # the 33rd singular value is small (2e-11 of the largest here, still 1e5 above rounding).
    query_MxH = 2.0 * np.random.default_rng(7).normal(size=(4 * docids.n_docs, hidden))
    log_p_MxN = _log_prob_matrix(model, docids, query_MxH)
    leaves_P = np.where(docids.depth_P == docids.length - 1, docids.children_per_node(), 0)
    sharp = trie_rank_bound(docids.children_per_node(), hidden, bias, leaf_children_per_node=leaves_P)
    assert sharp == _sharp_bound_reference(docids, hidden, bias) <= trie_rank_bound(docids.children_per_node(),
                                                                                    hidden, bias)
    sigma = np.linalg.svd(log_p_MxN, compute_uv=False)
    # The bound holds to rounding (every singular value past it is at float64 noise) ...
    assert sharp == len(sigma) or sigma[sharp] < 1e-14 * sigma[0]
    # ... and is reached: the numerical rank at the default tolerance (max(M, N) * eps) is the bound.
    assert numerical_rank(log_p_MxN) == sharp


@pytest.mark.parametrize("bias", [False, True])
def test_atomic_seq_gr_is_a_bi_encoder_of_rank_h_plus_one_plus_bias(bias):
    hidden, num_docs = 3, 20
    docids = atomic_docids(num_docs)
    model = _generic_seq_gr(docids, hidden, decoder_depth=1, bias=bias, seed=3)
    query_MxH = np.random.default_rng(3).normal(size=(60, hidden))
    log_p_MxN = _log_prob_matrix(model, docids, query_MxH)
    # One node with N children: a dot product of the state h(q) with a free table, plus a bias.
    h_MxH = np.asarray(model.hidden_states(jnp.asarray(query_MxH) + model.level_embed[0][None]))
    scores_MxN = h_MxH @ np.asarray(model.out_embed[0]).T + np.asarray(model.out_bias[0])[None]
    np.testing.assert_allclose(log_p_MxN, scipy.special.log_softmax(scores_MxN, axis=1), rtol=1e-12, atol=1e-12)
    assert trie_rank_bound([num_docs], hidden, bias) == hidden + 1 + bias == dr_rank_bound(hidden, bias)
    assert numerical_rank(log_p_MxN) == hidden + 1 + bias


@pytest.mark.parametrize("hidden", [1, 2, 3])
def test_soft_norm_is_injective_with_its_closed_form_inverse(hidden):
    # LayerNorm, which SeqGR used before, maps every width-1 input to one point and width-2 inputs to about a sign.
    x_BxH = 3.0 * np.random.default_rng(hidden).normal(size=(10_000, hidden))
    y_BxH = np.asarray(SoftNorm(hidden)(jnp.asarray(x_BxH)))
    assert np.all(np.mean(y_BxH**2, axis=1) < 1.0)
    np.testing.assert_allclose(y_BxH / np.sqrt(1.0 - np.mean(y_BxH**2, axis=1, keepdims=True)), x_BxH, rtol=1e-10)
    assert np.unique(y_BxH, axis=0).shape[0] == x_BxH.shape[0]


@pytest.mark.parametrize("docids", [random_tree_docids(23, 3, seed=1), _complete(2, 4),
                                    trie_from_codes("random", [[0, 0], [1, 0], [1, 1], [1, 2]], 3)],
                         ids=["random-23", "binary-depth4", "single-child-node"])
def test_seq_gr_log_probs_of_all_docids_sum_to_one(docids):
    model = _generic_seq_gr(docids, hidden=2, decoder_depth=2, seed=1)
    log_p_MxN = _log_prob_matrix(model, docids, np.random.default_rng(1).normal(size=(5, 2)))
    np.testing.assert_allclose(scipy.special.logsumexp(log_p_MxN, axis=1), 0.0, atol=1e-12)


def test_seq_gr_teacher_forcing_equals_step_by_step_decoding():
    """log_prob (one pass, prefix sums) against a loop that rebuilds each level's state from the prefix."""
    docids = random_tree_docids(23, 3, seed=1)
    model = _generic_seq_gr(docids, hidden=4, decoder_depth=2, seed=2)
    N, L = docids.codes_NxL.shape
    query_NxH = np.random.default_rng(2).normal(size=(N, 4))   # one query per document
    got_N = np.asarray(model.log_prob(jnp.asarray(query_NxH), jnp.asarray(docids.codes_NxL),
                                      jnp.asarray(docids.valid_PxV[docids.prefix_NxL])))
    token_LxVxH, level_LxH = np.asarray(model.token_embed[...]), np.asarray(model.level_embed[...])
    ref_N = np.zeros(N)
    for i in range(N):
        for t in range(L):
            prefix_H = level_LxH[t] + sum(token_LxVxH[s, docids.codes_NxL[i, s]] for s in range(t))
            logits_V = np.asarray(model.level_logits(model.hidden_states(jnp.asarray(query_NxH[i] + prefix_H)), t))
            valid_V = docids.valid_PxV[docids.prefix_NxL[i, t]]
            ref_N[i] += logits_V[docids.codes_NxL[i, t]] - scipy.special.logsumexp(logits_V[valid_V])
    np.testing.assert_allclose(got_N, ref_N, rtol=1e-12, atol=1e-12)


def test_atomic_gr_doc_table_is_its_output_table_and_bias():
    n_docs, hidden = 7, 4
    model = _float64(AtomicGR(ModelConfig(kind="atomic_gr", hidden=hidden), n_docs, FEATURES, rngs=nnx.Rngs(params=0)))
    model.bias[...] = jnp.asarray(np.random.default_rng(0).normal(size=n_docs))
    emb_NxH, bias_N = (np.asarray(a) for a in model.doc_table(None))
    for got, ref in zip(model.doc_table(jnp.arange(n_docs)), (emb_NxH, bias_N)):
        np.testing.assert_array_equal(np.asarray(got), ref)
    idx_K = jnp.asarray([5, 0, 5])
    emb_KxH, bias_K = model.doc_table(idx_K)
    np.testing.assert_array_equal(np.asarray(emb_KxH), np.asarray(model.out_embed[...])[[5, 0, 5]])
    np.testing.assert_array_equal(np.asarray(bias_K), np.asarray(model.bias[...])[[5, 0, 5]])
    # Scores q . e_d + b_d: a bi-encoder with a bias, so its log-prob matrix has rank H + 2 at most.
    features_MxF = np.random.default_rng(1).normal(size=(30, FEATURES))
    q_MxH = np.asarray(model.encode_queries(jnp.asarray(features_MxF)))
    np.testing.assert_allclose(q_MxH, np.asarray(model.query_tower(jnp.asarray(features_MxF))), rtol=1e-15)
    log_p_MxN = scipy.special.log_softmax(q_MxH @ emb_NxH.T + bias_N[None], axis=1)
    assert numerical_rank(log_p_MxN) <= dr_rank_bound(hidden, bias=True)


@pytest.mark.parametrize("doc_side, doc_bias", [("table", False), ("table", True), ("tower", False), ("tower", True)])
def test_dual_encoder_doc_table_and_temperature(doc_side, doc_bias):
    n_docs = 6
    cfg = ModelConfig(kind="dr", dim=3, hidden=5, doc_side=doc_side, doc_bias=doc_bias, temperature=0.25)
    model = _float64(DualEncoder(cfg, n_docs, FEATURES, rngs=nnx.Rngs(params=0)))
    if doc_bias:
        model.bias[...] = jnp.asarray(np.random.default_rng(0).normal(size=n_docs))
    doc_features_NxF = jnp.asarray(np.random.default_rng(1).normal(size=(n_docs, FEATURES)))
    emb_NxD, bias_N = (np.asarray(a) for a in model.doc_table(None, doc_features_NxF))
    assert emb_NxD.shape == (n_docs, 3) and bias_N.shape == (n_docs,)
    for got, ref in zip(model.doc_table(jnp.arange(n_docs), doc_features_NxF), (emb_NxD, bias_N)):
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-12, atol=1e-15)
    emb_KxD, bias_K = model.doc_table(jnp.asarray([4, 1]), doc_features_NxF)
    np.testing.assert_allclose(np.asarray(emb_KxD), emb_NxD[[4, 1]], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.asarray(bias_K), bias_N[[4, 1]] if doc_bias else np.zeros(2))
    if not doc_bias:
        assert not np.any(bias_N)
    # Scores q . e_d are the tower's inner products divided by the temperature.
    features_MxF = jnp.asarray(np.random.default_rng(2).normal(size=(4, FEATURES)))
    np.testing.assert_allclose(np.asarray(model.encode_queries(features_MxF)) * cfg.temperature,
                               np.asarray(model.query_tower(features_MxF)), rtol=1e-12)


def _mlp_params(d_in, hidden, out, depth):
    sizes = [d_in] + [hidden] * depth + [out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


@pytest.mark.parametrize("decoder_depth", [0, 1, 2])
def test_count_params_equals_a_hand_count(decoder_depth):
    F, H, D, depth, N = FEATURES, 4, 2, 2, 5
    docids = random_tree_docids(N, 2)   # L = 3, V = 2
    L, V = docids.length, docids.vocab
    tower_q = _mlp_params(F, H, H, depth)

    def count(kind, **kw):
        return count_params(make_model(ModelConfig(kind=kind, dim=D, hidden=H, depth=depth, **kw), n_docs=N,
                                       feature_dim=F, docids=docids))

    assert count("dr") == 2 * _mlp_params(F, H, D, depth)
    assert count("dr", doc_side="table", doc_bias=True) == _mlp_params(F, H, D, depth) + N * D + N
    assert count("atomic_gr") == tower_q + N * H + N
    block = _mlp_params(H, 2 * H, H, 1)   # H -> 2H -> H
    norms = (decoder_depth + 1) * H        # a gain per pre-norm and the final norm
    assert count("seq_gr", decoder_depth=decoder_depth) == (tower_q + 2 * L * V * H + L * H + L * V
                                                           + decoder_depth * block + norms)


@pytest.mark.parametrize("field, value", [("kind", "bm25"), ("doc_side", "free"), ("dim", 0), ("hidden", 0),
                                          ("depth", 0), ("temperature", 0.0), ("decoder_depth", -1)])
def test_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value})


def test_seq_gr_needs_docids():
    with pytest.raises(ValueError, match="docids"):
        make_model(ModelConfig(kind="seq_gr"), n_docs=4, feature_dim=FEATURES)
