"""Global and local normalization: the two objectives, and their score-space gradients.

docs/design.md, section 1. Global normalization (GR's maximum likelihood, or full-softmax DR):
    l_G = -s(q, d+) + logsumexp_d s(q, d).
Local normalization (DR's sampled softmax / InfoNCE) with K negatives d_i ~ Q(.|q), written over
the K + 1 candidates (positive first) with logits o = s - c:
    l_L = -o(d+) + logsumexp(o(d+), o(d_1), ..., o(d_K)).
The correction c is one of `CORRECTIONS`:
- "none": c = 0 (plain sampled softmax).
- "logq": the standard logQ correction, c(d) = log Q(d|q) for *every* candidate, the positive
  included (TensorFlow's sampled_softmax_loss subtracts log(K Q) from true and sampled logits alike,
  so K cancels; Yi et al. 2019; ranking NCE, Ma & Collins 2018). It is Fisher-consistent: with the
  accidental hits of d+ kept among the negatives, the population minimiser over free scores is
  log p* + const for any K and any proposal with full support (theory.fixed_point).
- "logq_negatives": c = 0 for the positive and log(K Q) for the negatives only. A different,
  biased estimator kept for comparison: its fixed point drifts from log p* (0.7 nats at N = 300,
  K = 16 for a uniform proposal, 2.3 for a popularity one; theory.fixed_point).

Proposal log-probabilities come as one array over the candidates, positive first (`log_q_BxK1`),
the layout of the logits. Every loss is returned per example (shape B); callers take the mean.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["CORRECTIONS", "global_loss", "global_grad", "sampled_loss", "sampled_grad", "candidate_logits"]

CORRECTIONS = ("none", "logq", "logq_negatives")


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


def _check_correction(correction: str, log_q_BxK1) -> None:
    if correction not in CORRECTIONS:
        raise ValueError(f"correction={correction!r}: expected one of {CORRECTIONS}")
    if correction != "none" and log_q_BxK1 is None:
        raise ValueError(f"correction={correction!r} needs the proposal's log Q of every candidate (log_q_BxK1)")


def candidate_logits(scores_BxK1: jax.Array, log_q_BxK1: jax.Array | None = None, correction: str = "none",
                     neg_valid_BxK: jax.Array | None = None) -> jax.Array:
    """The logits o = s - c of the K + 1 candidates (positive first) under a correction rule.

    Args:
      scores_BxK1: s(q, d) of the positive then its K negatives.
      log_q_BxK1: log Q(d|q) of the same candidates (unused for "none").
      correction: one of CORRECTIONS.
      neg_valid_BxK: optional mask; False drops a negative (its logit becomes -inf). The positive is
        never dropped, so no row is ever fully masked.

    >>> import jax.numpy as jnp
    >>> s, lq = jnp.zeros((1, 3)), jnp.log(jnp.array([[0.5, 0.25, 0.25]]))
    >>> candidate_logits(s, lq, "logq").round(4).tolist()             # every candidate: s - log Q
    [[0.6931, 1.3863, 1.3863]]
    >>> candidate_logits(s, lq, "logq_negatives").round(4).tolist()   # negatives only: s - log(K Q)
    [[0.0, 0.6931, 0.6931]]
    """
    _check_correction(correction, log_q_BxK1)
    if correction == "logq":
        logits = scores_BxK1 - log_q_BxK1
    elif correction == "logq_negatives":
        num_negatives = scores_BxK1.shape[1] - 1
        shift = jnp.concatenate([jnp.zeros_like(log_q_BxK1[:, :1]), jnp.log(num_negatives) + log_q_BxK1[:, 1:]],
                                axis=1)
        logits = scores_BxK1 - shift
    else:
        logits = scores_BxK1
    if neg_valid_BxK is not None:
        keep_BxK1 = jnp.concatenate([jnp.ones_like(neg_valid_BxK[:, :1]), neg_valid_BxK], axis=1)
        logits = jnp.where(keep_BxK1, logits, -jnp.inf)
    return logits


def sampled_loss(pos_scores_B: jax.Array, neg_scores_BxK: jax.Array, log_q_BxK1: jax.Array | None = None,
                 correction: str = "none", neg_valid_BxK: jax.Array | None = None) -> jax.Array:
    """Sampled-softmax (InfoNCE) loss per example, one positive then K negatives.

    Args:
      pos_scores_B: s(q, d+).
      neg_scores_BxK: s(q, d_i) of the K sampled negatives.
      log_q_BxK1: log Q(d|q) of the proposal at the positive then at each negative.
      correction: "none", "logq" (standard: every candidate) or "logq_negatives" (module docstring).
      neg_valid_BxK: optional mask; False drops a negative (e.g. an accidental hit of d+, which
        makes the loss inconsistent by O(K/N): theory.fixed_point).

    Returns:
      l_L per example, shape (B,).

    >>> import jax.numpy as jnp
    >>> float(sampled_loss(jnp.zeros(1), jnp.zeros((1, 3)))[0])  # log 4
    1.386294...
    """
    scores_BxK1 = jnp.concatenate([pos_scores_B[:, None], neg_scores_BxK], axis=1)
    logits_BxK1 = candidate_logits(scores_BxK1, log_q_BxK1, correction, neg_valid_BxK)
    return jax.nn.logsumexp(logits_BxK1, axis=1) - logits_BxK1[:, 0]


def sampled_grad(pos_scores_B: jax.Array, neg_scores_BxK: jax.Array, log_q_BxK1: jax.Array | None = None,
                 correction: str = "none", neg_valid_BxK: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Closed-form gradient of `sampled_loss` with respect to (pos_scores_B, neg_scores_BxK).

    With w = softmax over the corrected logits: d l / d s+ = w_0 - 1 and d l / d s_i = w_i. Every
    correction is constant in the scores, so it only reweights.
    """
    scores_BxK1 = jnp.concatenate([pos_scores_B[:, None], neg_scores_BxK], axis=1)
    w_BxK1 = jax.nn.softmax(candidate_logits(scores_BxK1, log_q_BxK1, correction, neg_valid_BxK), axis=1)
    return w_BxK1[:, 0] - 1.0, w_BxK1[:, 1:]
