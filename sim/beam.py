"""SeqGR decoding: trie-constrained beam search, and exact log-probabilities of every docid.

Both walk the trie tables of `sim.docids.Docids`: only valid children of a prefix are ever scored,
so every returned docid is a real document, and the log-probabilities of all N docids sum to one.
The tables go to the compiled programs padded to buckets of nodes and documents (sim.buckets: a
padded node has no valid child and no document reaches it), and queries in blocks of one size, so
one program serves every corpus whose trie falls in the same buckets.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.buckets import bucket, pad_rows
from grdr.sim.docids import Docids
from grdr.sim.models import SeqGR, masked_log_softmax

__all__ = ["beam_search", "all_doc_log_probs", "node_paths", "doc_logp_block"]


def _tables(docids: Docids):
    next_PxV = pad_rows(docids.next_PxV, bucket(docids.n_nodes), -1)
    return jax.device_put(next_PxV), jax.device_put(next_PxV >= 0)


def _query_blocks(query_MxH, block: int):
    """Blocks of `block` queries, the last zero-padded: one compiled shape for every M."""
    query_MxH = np.asarray(query_MxH)
    for s in range(0, query_MxH.shape[0], block):
        q = query_MxH[s : s + block]
        yield s, q.shape[0], jax.device_put(pad_rows(q, block))


@partial(jax.jit, static_argnames=("graphdef", "beam", "k"))
def _beam(graphdef, params, query_BxH, next_PxV, valid_PxV, *, beam, k):
    model = nnx.merge(graphdef, params)
    B, H = query_BxH.shape
    L, V = model.out_bias.shape
    W = beam
    node_BxW = jnp.zeros((B, W), jnp.int32)
    tok_sum_BxWxH = jnp.zeros((B, W, H), query_BxH.dtype)
    # one live beam at the root; the others start dead (-inf) so they are never expanded twice
    logp_BxW = jnp.where(jnp.arange(W)[None, :] == 0, 0.0, -jnp.inf) * jnp.ones((B, 1))
    for t in range(L):
        h = model.hidden_states(query_BxH[:, None, :] + tok_sum_BxWxH + model.level_embed[t][None, None, :])
        step_logp = masked_log_softmax(model.level_logits(h, t), valid_PxV[node_BxW])
        cand_BxWV = (logp_BxW[:, :, None] + step_logp).reshape(B, W * V)
        logp_BxW, flat = jax.lax.top_k(cand_BxWV, W)
        src, tok = flat // V, flat % V
        node_BxW = next_PxV[jnp.take_along_axis(node_BxW, src, axis=1), tok]
        tok_sum_BxWxH = jnp.take_along_axis(tok_sum_BxWxH, src[..., None], axis=1) + model.token_embed[t][tok]
    docs = jnp.where(jnp.isfinite(logp_BxW), node_BxW, -1)
    return docs[:, :k], logp_BxW[:, :k]


def beam_search(model: SeqGR, query_BxH, docids: Docids, k: int, beam: int | None = None, batch: int = 256):
    """The k best docids of each query by trie-constrained beam search of width `beam` (>= k).

    Returns (docs_BxK, log p(docid|q)_BxK), best first; -1 / -inf where fewer than k documents exist.
    With beam >= N the search is exhaustive, hence exact.
    """
    beam = max(beam or k, k)
    if beam > docids.n_docs:
        beam = docids.n_docs
    k_eff = min(k, docids.n_docs)
    graphdef, params = nnx.split(model, nnx.Param)
    next_PxV, valid_PxV = _tables(docids)
    batch = min(batch, bucket(query_BxH.shape[0]))
    outs = [(n, _beam(graphdef, params, q, next_PxV, valid_PxV, beam=beam, k=k_eff))
            for _, n, q in _query_blocks(query_BxH, batch)]
    docs, logp = (np.concatenate([np.asarray(o[i])[:n] for n, o in outs]) for i in range(2))
    if k_eff < k:
        pad = k - k_eff
        docs = np.pad(docs, ((0, 0), (0, pad)), constant_values=-1)
        logp = np.pad(logp, ((0, 0), (0, pad)), constant_values=-np.inf)
    return docs, logp


def node_paths(docids: Docids):
    """A representative document for every prefix node (any document below it shares its path)."""
    rep_P = np.zeros(docids.n_nodes, np.int64)
    for t in range(docids.length):
        rep_P[docids.prefix_NxL[:, t]] = np.arange(docids.n_docs)
    return rep_P


@partial(jax.jit, static_argnames=("graphdef",))
def doc_logp_block(graphdef, params, query_mxH, node_prefix_PxH, depth_P, valid_PxV, prefix_NxL, codes_NxL):
    """log p(d|q) of all N docids for m queries (m x N): each prefix node's next-token distribution once
    per query (node_prefix_PxH: the prefix sums at `node_paths`' documents), summed along each docid."""
    model = nnx.merge(graphdef, params)
    h_mxPxH = model.hidden_states(query_mxH[:, None, :] + node_prefix_PxH[None])
    logits = jnp.einsum("mph,pvh->mpv", h_mxPxH, model.out_embed[depth_P]) + model.out_bias[depth_P][None]
    node_logp_mxPxV = masked_log_softmax(logits, valid_PxV[None])
    return node_logp_mxPxV[:, prefix_NxL, codes_NxL].sum(axis=2)


@partial(jax.jit, static_argnames=("graphdef",))
def _doc_logp(graphdef, params, query_mxH, rep_codes_PxL, depth_P, valid_PxV, prefix_NxL, codes_NxL):
    """doc_logp_block with the prefix sum of every node (at its representative document's codes and
    its depth) computed in the same program: cheap, P x L x H, and one program fewer."""
    model = nnx.merge(graphdef, params)
    node_prefix_PxH = model.prefix_sums(rep_codes_PxL)[jnp.arange(depth_P.shape[0]), depth_P]
    return doc_logp_block(graphdef, params, query_mxH, node_prefix_PxH, depth_P, valid_PxV, prefix_NxL, codes_NxL)


def all_doc_log_probs(model: SeqGR, query_MxH, docids: Docids, query_block: int = 32):
    """Yield (start, log p(d|q) for all N docids) for blocks of `query_block` queries.

    Every prefix node's state is computed once per query (P = number of prefix nodes, about N/V),
    so the cost is M x P x H^2, not M x N x L x H^2.
    """
    graphdef, params = nnx.split(model, nnx.Param)
    n_nodes, n_docs = bucket(docids.n_nodes), bucket(docids.n_docs)
    rep_codes_PxL, depth_P, valid_PxV, prefix_NxL, codes_NxL = (jax.device_put(pad_rows(x, rows)) for x, rows in (
        (docids.codes_NxL[node_paths(docids)], n_nodes), (docids.depth_P, n_nodes), (docids.valid_PxV, n_nodes),
        (docids.prefix_NxL, n_docs), (docids.codes_NxL, n_docs)))
    tables = (rep_codes_PxL, depth_P, valid_PxV, prefix_NxL, codes_NxL)
    for s, n, q in _query_blocks(query_MxH, query_block):
        yield s, np.asarray(_doc_logp(graphdef, params, q, *tables))[:n, :docids.n_docs]
