"""The free-embedding protocol of Weller et al. 2025 (DESIGN.md section 1, "The combinatorial limit").

k = 2: every pair of n documents is a query (M = n(n-1)/2). Free query and document vectors of
dimension d are optimised directly, with nothing between them and the scores, so that what fails
is geometry (plus learnability), not an encoder:

- DR: score(q, d) = <u_q, v_d> / temperature, full-softmax InfoNCE with each of the query's two
  relevant documents as a target, Adam, both tables unit-normalised after every step.
- SeqGR at hidden width d: the free (unit-normalised) query vector is the query state of
  `sim.models.SeqGR`, whose prefix-conditioned decoder factorises log p(doc | q) over a random
  V-ary docid tree; trained by maximum likelihood on the same two targets per query.

Training runs inside one compiled `lax.while_loop` (seeds under vmap) and stops when every query
has its two relevant documents on top (solved), when the loss has not improved by `min_delta` for
`patience` steps, or at `max_steps`. A query is correct when the gap between its lower relevant
score and its best irrelevant score (its margin) is positive; for SeqGR the scores are the exact
log-probabilities of all n docids.
"""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sim.docids import Docids, random_tree_docids
from sim.models import ModelConfig, SeqGR, masked_log_softmax

__all__ = ["FreeEmbeddingConfig", "FreeEmbeddingResult", "all_pairs", "train_free_embedding"]

_KINDS = ("dr", "seq_gr")


@dataclasses.dataclass(frozen=True)
class FreeEmbeddingConfig:
    """One probe of the protocol. `dim` is DR's d, or SeqGR's hidden width H."""

    dim: int
    kind: str = "dr"
    temperature: float = 0.1  # DR only; SeqGR's logits carry their own scale
    learning_rate: float = 0.01
    max_steps: int = 5_000
    patience: int = 200
    min_delta: float = 1e-4
    docid_vocab: int = 4  # SeqGR: children per node of the random docid tree
    decoder_depth: int = 1  # SeqGR: residual MLP blocks (as in sim.models.SeqGR)

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"FreeEmbeddingConfig.kind={self.kind!r}: expected one of {_KINDS}")
        for field in ("dim", "max_steps", "patience"):
            if getattr(self, field) < 1:
                raise ValueError(f"FreeEmbeddingConfig.{field}={getattr(self, field)}: expected at least 1")
        if self.docid_vocab < 2:
            raise ValueError(f"FreeEmbeddingConfig.docid_vocab={self.docid_vocab}: expected at least 2")
        if self.decoder_depth < 0:
            raise ValueError(f"FreeEmbeddingConfig.decoder_depth={self.decoder_depth}: expected >= 0")
        for field in ("temperature", "learning_rate"):
            if not getattr(self, field) > 0:
                raise ValueError(f"FreeEmbeddingConfig.{field}={getattr(self, field)}: expected > 0")
        if self.min_delta < 0:
            raise ValueError(f"FreeEmbeddingConfig.min_delta={self.min_delta}: expected >= 0")


@dataclasses.dataclass(frozen=True)
class FreeEmbeddingResult:
    """Per-seed outcome of one probe (arrays of length S)."""

    accuracy_S: np.ndarray  # top-2 accuracy: fraction of queries with both relevant docs on top
    margin_S: np.ndarray  # min over queries of (lower relevant score - best irrelevant score)
    steps_S: np.ndarray  # optimizer steps taken
    loss_S: np.ndarray  # final training loss
    params: int  # trainable parameters of one seed
    seconds: float
    params_S: dict | None = None  # final tables per seed (leading axis S); for tests and inspection

    @property
    def solved_S(self) -> np.ndarray:
        return self.margin_S > 0


def all_pairs(n_docs: int) -> np.ndarray:
    """The k = 2 qrels: every unordered pair of documents, as an M x 2 array of document indices."""
    if n_docs < 2:
        raise ValueError(f"n_docs={n_docs}: all pairs need at least 2 documents")
    i, j = np.triu_indices(n_docs, k=1)
    return np.stack([i, j], axis=1).astype(np.int32)


def _unit(x_xD):
    return x_xD / jnp.maximum(jnp.linalg.norm(x_xD, axis=-1, keepdims=True), 1e-12)


def _margins(scores_MxN, rel_MxN):
    """Per query: lower relevant score minus best irrelevant score (> 0 iff top-2 is correct)."""
    worst_rel_M = jnp.where(rel_MxN, scores_MxN, jnp.inf).min(axis=1)
    best_irr_M = jnp.where(rel_MxN, -jnp.inf, scores_MxN).max(axis=1)
    return worst_rel_M - best_irr_M


def _node_tables(docids: Docids):
    """A representative (document, level) of each prefix node, to compute node states once per query."""
    P = docids.n_nodes
    rep_doc_P = np.zeros(P, np.int32)
    rep_level_P = np.zeros(P, np.int32)
    N, L = docids.codes_NxL.shape
    for t in range(L):
        rep_doc_P[docids.prefix_NxL[:, t]] = np.arange(N)
        rep_level_P[docids.prefix_NxL[:, t]] = t
    return rep_doc_P, rep_level_P


def _dr_scores(cfg: FreeEmbeddingConfig):
    def scores(params, consts):
        return params["queries"] @ params["docs"].T / cfg.temperature

    return scores


def _seq_gr_consts(docids: Docids) -> dict:
    # Passed as arguments, not closed over: XLA would otherwise constant-fold the gathers' transposes.
    rep_doc_P, rep_level_P = _node_tables(docids)
    return {"rep_doc_P": rep_doc_P, "rep_level_P": rep_level_P, "codes_NxL": docids.codes_NxL,
            "prefix_NxL": docids.prefix_NxL, "valid_PxV": docids.valid_PxV}


def _seq_gr_scores(graphdef, length: int):
    def scores(params, consts):
        """Exact log p(doc | q) for all M queries and N docids: node states once, then path sums."""
        model = nnx.merge(graphdef, params["decoder"])
        codes_NxL, prefix_NxL, valid_PxV = consts["codes_NxL"], consts["prefix_NxL"], consts["valid_PxV"]
        rep_doc_P, rep_level_P = consts["rep_doc_P"], consts["rep_level_P"]
        prefix_PxH = model.prefix_sums(codes_NxL)[rep_doc_P, rep_level_P]
        h_MxPxH = model.hidden_states(params["queries"][:, None, :] + prefix_PxH[None])
        logits_MxPxV = jnp.einsum("mph,pvh->mpv", h_MxPxH, model.out_embed[...][rep_level_P])
        logits_MxPxV = logits_MxPxV + model.out_bias[...][rep_level_P][None]
        logp_MxPxV = masked_log_softmax(logits_MxPxV, valid_PxV[None])
        return sum(logp_MxPxV[:, prefix_NxL[:, t], codes_NxL[:, t]] for t in range(length))

    return scores


def _init(cfg: FreeEmbeddingConfig, n_docs: int, n_queries: int, seed: int, docids: Docids | None):
    key_q, key_d = jax.random.split(jax.random.key(seed))
    params = {"queries": _unit(jax.random.normal(key_q, (n_queries, cfg.dim)))}
    if cfg.kind == "dr":
        params["docs"] = _unit(jax.random.normal(key_d, (n_docs, cfg.dim)))
        return None, params
    model_cfg = ModelConfig(kind="seq_gr", dim=cfg.dim, hidden=cfg.dim, depth=1, decoder_depth=cfg.decoder_depth)
    model = SeqGR(model_cfg, docids, feature_dim=1, rngs=nnx.Rngs(params=seed))
    del model.query_tower  # the free query vectors replace the encoder
    graphdef, state = nnx.split(model, nnx.Param)
    params["decoder"] = state
    return graphdef, params


def _normalise(params):
    out = dict(params, queries=_unit(params["queries"]))
    if "docs" in params:
        out["docs"] = _unit(params["docs"])
    return out


def train_free_embedding(cfg: FreeEmbeddingConfig, n_docs: int, seeds, *, docid_seed: int = 0,
                         keep_params: bool = False) -> FreeEmbeddingResult:
    """Run the protocol on n_docs documents for every seed (under vmap) and report each seed's outcome.

    Args:
      cfg: the probe's model and optimiser settings.
      n_docs: n; the queries are all n(n-1)/2 pairs.
      seeds: initialisation seeds, trained together.
      docid_seed: seed of SeqGR's random docid tree (the same tree for every seed).
      keep_params: return the final tables (for tests).

    Returns:
      FreeEmbeddingResult with per-seed accuracy, margin, steps and loss.
    """
    seeds = [int(s) for s in seeds]
    t0 = time.perf_counter()
    pairs_Mx2 = all_pairs(n_docs)
    M = pairs_Mx2.shape[0]
    rel_MxN = np.zeros((M, n_docs), bool)
    rel_MxN[np.arange(M)[:, None], pairs_Mx2] = True
    consts = {"rel_MxN": rel_MxN}  # a mask rather than indices: no scatter in the compiled gradient
    docids = random_tree_docids(n_docs, cfg.docid_vocab, docid_seed) if cfg.kind == "seq_gr" else None
    inits = [_init(cfg, n_docs, M, s, docids) for s in seeds]
    graphdef = inits[0][0]
    params_S = jax.tree.map(lambda *xs: jnp.stack(xs), *[p for _, p in inits])
    if cfg.kind == "dr":
        scores_fn = _dr_scores(cfg)
    else:
        scores_fn = _seq_gr_scores(graphdef, docids.length)
        consts.update(_seq_gr_consts(docids))
    opt = optax.adam(cfg.learning_rate)

    def loss_and_margins(params, consts):
        scores_MxN = scores_fn(params, consts)
        logp_MxN = jax.nn.log_softmax(scores_MxN, axis=1) if cfg.kind == "dr" else scores_MxN
        rel_MxN = consts["rel_MxN"]
        loss = -jnp.where(rel_MxN, logp_MxN, 0.0).sum() / rel_MxN.sum()
        return loss, _margins(scores_MxN, rel_MxN)

    def one_seed(params, consts):
        # The carried loss and margin describe the carried params: a step is taken only while the
        # current params do not solve the probe, so a solved run stops on exactly the params that solve
        # it (one forward pass per step). A run stopped by patience or max_steps has moved one step
        # past the params its loss and margin describe.
        def cond(c):
            return (c["step"] < cfg.max_steps) & (c["since_best"] < cfg.patience) & (c["margin"] <= 0)

        def body(c):
            (loss, margins_M), grads = jax.value_and_grad(loss_and_margins, has_aux=True)(c["params"], consts)
            margin = margins_M.min()
            updates, opt_state = opt.update(grads, c["opt_state"], c["params"])
            stepped = _normalise(optax.apply_updates(c["params"], updates))
            go = margin <= 0
            params = jax.tree.map(lambda new, old: jnp.where(go, new, old), stepped, c["params"])
            improved = loss < c["best"] - cfg.min_delta
            return {
                "params": params, "opt_state": opt_state, "step": c["step"] + go.astype(jnp.int32),
                "best": jnp.where(improved, loss, c["best"]),
                "since_best": jnp.where(improved, 0, c["since_best"] + 1),
                "loss": loss, "margin": margin, "accuracy": (margins_M > 0).mean(),
            }

        init = {
            "params": params, "opt_state": opt.init(params), "step": jnp.int32(0), "best": jnp.float32(jnp.inf),
            "since_best": jnp.int32(0), "loss": jnp.float32(jnp.inf), "margin": jnp.float32(-jnp.inf),
            "accuracy": jnp.float32(0.0),
        }
        return jax.lax.while_loop(cond, body, init)

    final = jax.jit(jax.vmap(one_seed, in_axes=(0, None)))(params_S, jax.tree.map(jnp.asarray, consts))
    final = jax.device_get(final)
    n_params = sum(int(np.prod(x.shape[1:])) for x in jax.tree.leaves(params_S))
    return FreeEmbeddingResult(
        accuracy_S=np.asarray(final["accuracy"], float), margin_S=np.asarray(final["margin"], float),
        steps_S=np.asarray(final["step"], int), loss_S=np.asarray(final["loss"], float), params=n_params,
        seconds=time.perf_counter() - t0, params_S=final["params"] if keep_params else None,
    )
