"""Closed-form score-space gradients of both objectives against autodiff (float64)."""
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from grdr.theory.objectives import global_grad, global_loss, sampled_grad, sampled_loss


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    return dict(
        scores_BxN=jnp.asarray(rng.normal(size=(3, 7))),
        pos_B=jnp.asarray([0, 4, 6]),
        pos_scores_B=jnp.asarray(rng.normal(size=3)),
        neg_scores_BxK=jnp.asarray(rng.normal(size=(3, 5))),
        log_q_BxK1=jnp.asarray(np.log(rng.dirichlet(np.ones(6), size=3))),
        valid_BxK=jnp.asarray(rng.random((3, 5)) > 0.3),
    )


def test_global_loss_is_cross_entropy(case):
    s, pos = np.asarray(case["scores_BxN"]), np.asarray(case["pos_B"])
    reference = -np.log(np.exp(s[np.arange(3), pos]) / np.exp(s).sum(axis=1))
    np.testing.assert_allclose(global_loss(case["scores_BxN"], case["pos_B"]), reference, rtol=1e-12)


def test_global_grad_matches_autodiff(case):
    s, pos = case["scores_BxN"], case["pos_B"]
    auto = jax.jit(jax.grad(lambda x: jnp.sum(global_loss(x, pos))))(s)
    np.testing.assert_allclose(global_grad(s, pos), auto, atol=1e-12)
    jax.test_util.check_grads(jax.jit(lambda x: global_loss(x, pos)), (s,), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("correction", ["none", "logq", "logq_negatives"])
@pytest.mark.parametrize("masked", [False, True])
def test_sampled_grad_matches_autodiff(case, correction, masked):
    log_q = case["log_q_BxK1"]
    valid = case["valid_BxK"] if masked else None

    def loss(pos_scores_B, neg_scores_BxK):
        return sampled_loss(pos_scores_B, neg_scores_BxK, log_q, correction, valid)

    args = (case["pos_scores_B"], case["neg_scores_BxK"])
    auto_pos, auto_neg = jax.jit(jax.grad(lambda *a: jnp.sum(loss(*a)), argnums=(0, 1)))(*args)
    closed_pos, closed_neg = sampled_grad(*args, log_q, correction, valid)
    np.testing.assert_allclose(closed_pos, auto_pos, atol=1e-12)
    np.testing.assert_allclose(closed_neg, auto_neg, atol=1e-12)
    if masked:  # a dropped negative gets exactly no gradient
        assert np.all(np.asarray(closed_neg)[~np.asarray(valid)] == 0.0)
    jax.test_util.check_grads(jax.jit(loss), args, order=1, modes=("fwd", "rev"))


def test_sampled_loss_reference_for_every_correction(case):
    """Written out: plain l = log(e^{s+} + sum e^{s_i}) - s+; the standard rule divides every term by its
    Q (the positive's too); the negatives-only rule divides the negatives' by K Q."""
    s_pos, s_neg = np.asarray(case["pos_scores_B"]), np.asarray(case["neg_scores_BxK"])
    q_pos, q_neg = np.exp(np.asarray(case["log_q_BxK1"][:, 0])), np.exp(np.asarray(case["log_q_BxK1"][:, 1:]))
    K = s_neg.shape[1]
    expected = {
        "none": np.log(np.exp(s_pos) + np.exp(s_neg).sum(axis=1)) - s_pos,
        "logq": np.log(np.exp(s_pos) / q_pos + (np.exp(s_neg) / q_neg).sum(axis=1)) - (s_pos - np.log(q_pos)),
        "logq_negatives": np.log(np.exp(s_pos) + (np.exp(s_neg) / (K * q_neg)).sum(axis=1)) - s_pos,
    }
    for correction, reference in expected.items():
        np.testing.assert_allclose(sampled_loss(case["pos_scores_B"], case["neg_scores_BxK"], case["log_q_BxK1"],
                                                correction), reference, rtol=1e-12)
    with pytest.raises(ValueError, match="log_q_BxK1"):
        sampled_loss(case["pos_scores_B"], case["neg_scores_BxK"], None, "logq")
    with pytest.raises(ValueError, match="correction"):
        sampled_loss(case["pos_scores_B"], case["neg_scores_BxK"], case["log_q_BxK1"], True)


def test_sampled_equals_global_when_negatives_are_all_other_documents(case):
    """K = N-1 distinct negatives with no correction: the sampled loss is the global loss."""
    s, pos = np.asarray(case["scores_BxN"]), np.asarray(case["pos_B"])
    others = np.stack([np.delete(s[b], pos[b]) for b in range(3)])
    np.testing.assert_allclose(sampled_loss(jnp.asarray(s[np.arange(3), pos]), jnp.asarray(others)),
                               global_loss(case["scores_BxN"], case["pos_B"]), rtol=1e-12)
