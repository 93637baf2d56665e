"""Global and local normalization: the two objectives, and their score-space gradients.

docs/design.md, section 1. Global normalization (GR's maximum likelihood, or full-softmax DR):
    l_G = -s(q, d+) + logsumexp_d s(q, d).
Local normalization (DR's sampled softmax / InfoNCE) with K negatives d_i ~ Q(.|q):
    l_L = -s(q, d+) + log(exp s(q, d+) + sum_i exp(s(q, d_i) - c_i)),
with c_i = 0 (plain) or c_i = log(K Q(d_i|q)) (logQ correction: the corrected logit is s - log(KQ)).

Every loss is returned per example (shape B); callers take the mean.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["global_loss", "global_grad", "sampled_loss", "sampled_grad", "corrected_logits"]


def global_loss(scores_BxN: jax.Array, pos_B: jax.Array) -> jax.Array:
    """Full-softmax cross-entropy per example.

    Args:
      scores_BxN: model scores s(q, d) over all N documents.
      pos_B: index of the positive document of each query.

    Returns:
      l_G per example, shape (B,).

    >>> import jax.numpy as jnp
    >>> float(global_loss(jnp.zeros((1, 4)), jnp.array([2]))[0])  # log 4
    1.386294...
    """
    pos_scores_B = jnp.take_along_axis(scores_BxN, pos_B[:, None], axis=1)[:, 0]
    return jax.nn.logsumexp(scores_BxN, axis=1) - pos_scores_B


def global_grad(scores_BxN: jax.Array, pos_B: jax.Array) -> jax.Array:
    """Closed-form gradient of `global_loss` in score space: softmax(s) - onehot(d+)."""
    return jax.nn.softmax(scores_BxN, axis=1) - jax.nn.one_hot(pos_B, scores_BxN.shape[1], dtype=scores_BxN.dtype)


def corrected_logits(neg_scores_BxK: jax.Array, log_q_neg_BxK: jax.Array | None) -> jax.Array:
    """Negative logits s - log(K Q); the plain logits s when no proposal is given."""
    if log_q_neg_BxK is None:
        return neg_scores_BxK
    num_negatives = neg_scores_BxK.shape[1]
    return neg_scores_BxK - (jnp.log(num_negatives) + log_q_neg_BxK)


def _sampled_logits(pos_scores_B, neg_scores_BxK, log_q_neg_BxK, neg_valid_BxK):
    neg_logits_BxK = corrected_logits(neg_scores_BxK, log_q_neg_BxK)
    if neg_valid_BxK is not None:
        neg_logits_BxK = jnp.where(neg_valid_BxK, neg_logits_BxK, -jnp.inf)
    return jnp.concatenate([pos_scores_B[:, None], neg_logits_BxK], axis=1)


def sampled_loss(
    pos_scores_B: jax.Array,
    neg_scores_BxK: jax.Array,
    log_q_neg_BxK: jax.Array | None = None,
    neg_valid_BxK: jax.Array | None = None,
) -> jax.Array:
    """Sampled-softmax (InfoNCE) loss per example, one positive then K negatives.

    Args:
      pos_scores_B: s(q, d+).
      neg_scores_BxK: s(q, d_i) of the K sampled negatives.
      log_q_neg_BxK: log Q(d_i|q) of the proposal; given, the logits are logQ-corrected
        to s - log(K Q). None means plain (uncorrected) sampled softmax.
      neg_valid_BxK: optional mask; False drops a negative (e.g. an accidental hit of d+).
        The positive is never masked, so no row is ever fully masked.

    Returns:
      l_L per example, shape (B,).

    >>> import jax.numpy as jnp
    >>> float(sampled_loss(jnp.zeros(1), jnp.zeros((1, 3)))[0])  # log 4
    1.386294...
    """
    logits_Bx1K = _sampled_logits(pos_scores_B, neg_scores_BxK, log_q_neg_BxK, neg_valid_BxK)
    return jax.nn.logsumexp(logits_Bx1K, axis=1) - pos_scores_B


def sampled_grad(
    pos_scores_B: jax.Array,
    neg_scores_BxK: jax.Array,
    log_q_neg_BxK: jax.Array | None = None,
    neg_valid_BxK: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Closed-form gradient of `sampled_loss` with respect to (pos_scores_B, neg_scores_BxK).

    With w = softmax over [s+, s_i - c_i]: d l / d s+ = w_0 - 1 and d l / d s_i = w_i. The
    correction c_i is constant in the scores, so it only reweights.
    """
    w_Bx1K = jax.nn.softmax(_sampled_logits(pos_scores_B, neg_scores_BxK, log_q_neg_BxK, neg_valid_BxK), axis=1)
    return w_Bx1K[:, 0] - 1.0, w_Bx1K[:, 1:]
