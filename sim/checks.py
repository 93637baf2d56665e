"""The derivation checks of `grdr check` that need a model of sim/: the trie rank bound
(theory.trie_rank_bound, sharp form) against the numerical rank of the real SeqGR's log-probability
matrix, in float64. theory.checks holds the model-free battery; theory never imports sim.
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.docids import trie_from_codes
from grdr.sim.models import ModelConfig, SeqGR
from grdr.theory.checks import CheckResult, _result
from grdr.theory.rank import numerical_rank, trie_rank_bound

__all__ = ["run_checks"]


def _complete_trie_log_probs(rng, vocab, depth, hidden, bias, queries_per_doc=3):
    """log p(d|q) of the real sim.models.SeqGR (float64, one decoder block) over a complete V-ary trie.

    Generic parameters: the zero-initialised level embedding (and, with `bias`, the output bias) are
    drawn at random; a zero output bias is the model without one (beta = 0).
    """
    docids = trie_from_codes("random", np.array(list(itertools.product(range(vocab), repeat=depth))), vocab)
    cfg = ModelConfig(kind="seq_gr", hidden=hidden, depth=1, decoder_depth=1)
    model = SeqGR(cfg, docids, feature_dim=1, rngs=nnx.Rngs(params=int(rng.integers(2**31))))
    nnx.update(model, jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), nnx.state(model, nnx.Param)))
    model.level_embed[...] = jnp.asarray(rng.normal(size=model.level_embed.shape) / math.sqrt(hidden))
    if bias:
        model.out_bias[...] = jnp.asarray(rng.normal(size=model.out_bias.shape))
    num_docs = docids.n_docs
    num_queries = queries_per_doc * num_docs
    query_MxH = jnp.asarray(2.0 * rng.normal(size=(num_queries, hidden)))
    codes = jnp.asarray(np.tile(docids.codes_NxL, (num_queries, 1)))
    valid = jnp.asarray(np.tile(docids.valid_PxV[docids.prefix_NxL], (num_queries, 1, 1)))
    log_p = model.log_prob(jnp.repeat(query_MxH, num_docs, axis=0), codes, valid)
    log_p_MxN = np.asarray(log_p, np.float64).reshape(num_queries, num_docs)
    b_P = docids.children_per_node()
    return log_p_MxN, b_P, np.where(docids.depth_P == depth - 1, b_P, 0)


def run_checks(seed: int = 0) -> list[CheckResult]:
    """SeqGR's log-prob rank against the trie bound, on complete trees and on atomic docids."""
    rng = np.random.default_rng(seed)
    out = []
    with jax.enable_x64(True):
        for vocab, hidden, bias in ((4, 1, False), (4, 3, True), (30, 3, True)):
            depth = 1 if vocab == 30 else 2
            log_p_MxN, b_P, leaves_P = _complete_trie_log_probs(rng, vocab, depth, hidden, bias)
            bound = trie_rank_bound(b_P, hidden, bias, leaf_children_per_node=leaves_P)
            name = "SeqGR, atomic docids" if depth == 1 else f"SeqGR {vocab}-ary depth 2"
            out.append(_result(f"{name} log-prob rank, H={hidden} bias={bias}: trie bound", bound,
                               numerical_rank(log_p_MxN, 1e-10), 0.0))
    return out
