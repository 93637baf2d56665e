"""The free-embedding protocol of Weller et al. 2025 (docs/design.md, section 1, "The combinatorial limit").

k = 2: every pair of n documents is a query (M = n(n-1)/2). Free query and document vectors of
dimension d are optimised directly, with nothing between them and the scores, so that what fails
is geometry (plus learnability), not an encoder:

- DR: score(q, d) = <u_q, v_d> / temperature, full-softmax InfoNCE averaged over every (query,
  relevant document) pair, full batch, Adam, both tables unit-normalised after every step.
- DR with MaxSim (multi-vector late interaction, ColBERT's scorer; docs/design.md, section 2,
  "A similarity"): each query has m free vectors and each document m' free vectors of dimension d,
  score(q, d) = sum_i max_j <u_qi, v_dj> / temperature, the same loss, optimiser and success
  criterion as DR's, every vector unit-normalised after every step. Its score matrix is not a
  rank-d bilinear form, so the sign-rank bound of d need not bind it. With m = m' = 1 it is DR: the
  same initial draws, the same matmul, the same trajectory.
- SeqGR at hidden width d: the free (unit-normalised) query vector is the query state of
  `sim.models.SeqGR`, whose prefix-conditioned decoder factorises log p(doc | q) over a random
  V-ary docid tree; trained by maximum likelihood on the same two targets per query.

The defaults are the published protocol (google-deepmind/limit, `free_embedding_experiment.py`):
temperature 0.1, Adam lr 0.01, up to 100,000 full-batch steps, early stop when the loss has not
fallen by `min_delta` = 1e-5 below its best for `patience` = 1,000 steps, and success read as
top-2 accuracy = 1 after steps 1, 1 + E, 1 + 2E, ... (E = `eval_every` = 50) and on the final
tables, the top-2 taken by sorting scores with ties going to the lower document index. The strict
criterion (`success="margin"`: lower relevant score minus best irrelevant score > 0) is computed
beside it; it differs only on exact ties. Initialisation draws theirs bit for bit
(`jax.random.key(seed)` split into query and document keys, standard normals; then unit rows,
equal to theirs up to the last bit of rounding).

Training runs inside one compiled `lax.while_loop` per seed (restarts run one after another through
the same compiled program). A probe can pad n to `pad_to` document slots (and pad_to(pad_to-1)/2
query slots; for SeqGR, prefix nodes too) that are masked out of the softmax, the loss, the top-2
and the margin, so that one compiled program serves every n up to pad_to (of one docid length, for
SeqGR); padded slots get no gradient, so Adam leaves them unchanged, and a padded run equals the
unpadded one up to float rounding (which a long, chaotic run can amplify).
"""
from __future__ import annotations

import dataclasses
import time
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from grdr.sim.docids import Docids, random_tree_docids
from grdr.sim.models import ModelConfig, SeqGR, masked_log_softmax
from grdr.sim.free_scores import _dr_scores, _margins, _maxsim_scores, _top2_hits, tf32_scores

__all__ = ["FreeEmbeddingConfig", "FreeEmbeddingResult", "MATMULS", "STOP_REASONS", "all_pairs", "tf32_scores",
           "train_free_embedding"]

_KINDS = ("dr", "maxsim", "seq_gr")
_SOFTMAX_KINDS = ("dr", "maxsim")  # trained by full-softmax InfoNCE over their scores
_SUCCESS = ("topk", "margin")
MATMULS = ("float32", "tf32")
STOP_REASONS = ("running", "solved", "patience", "max_steps")  # index = the stop code of a run
_RUNNING, _SOLVED, _PATIENCE, _MAX_STEPS = range(4)


@dataclasses.dataclass(frozen=True)
class FreeEmbeddingConfig:
    """One probe of the protocol. `dim` is DR's d (per vector, for MaxSim), or SeqGR's hidden width H.
    Defaults: LIMIT's."""

    dim: int
    kind: str = "dr"  # "dr" (one vector per side), "maxsim" (m and m' vectors) or "seq_gr"
    temperature: float = 0.1  # DR and MaxSim; SeqGR's logits carry their own scale
    learning_rate: float = 0.01
    max_steps: int = 100_000  # LIMIT's num_iterations (full-batch steps)
    patience: int = 1_000  # LIMIT's early_stopping_patience: steps without the loss beating best - min_delta
    min_delta: float = 1e-5  # LIMIT's early_stopping_min_delta
    eval_every: int = 50  # LIMIT's log_interval: success is read after steps 1, 1 + E, 1 + 2E, ... and at the end
    success: str = "topk"  # "topk": LIMIT's argsort top-2 (ties to the lower index); "margin": strict margin > 0
    docid_vocab: int = 4  # SeqGR: children per node of the random docid tree
    decoder_depth: int = 1  # SeqGR: residual MLP blocks (as in sim.models.SeqGR)
    matmul: str = "float32"  # DR's score matmuls: "float32", or "tf32" (NVIDIA tensor cores' default, emulated)
    vectors: int = 1  # MaxSim: m, free vectors per query
    doc_vectors: int = 1  # MaxSim: m', free vectors per document

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"FreeEmbeddingConfig.kind={self.kind!r}: expected one of {_KINDS}")
        if self.success not in _SUCCESS:
            raise ValueError(f"FreeEmbeddingConfig.success={self.success!r}: expected one of {_SUCCESS}")
        if self.matmul not in MATMULS:
            raise ValueError(f"FreeEmbeddingConfig.matmul={self.matmul!r}: expected one of {MATMULS}")
        for field in ("dim", "max_steps", "patience", "eval_every", "vectors", "doc_vectors"):
            if getattr(self, field) < 1:
                raise ValueError(f"FreeEmbeddingConfig.{field}={getattr(self, field)}: expected at least 1")
        if self.kind != "maxsim" and (self.vectors, self.doc_vectors) != (1, 1):
            raise ValueError(f"FreeEmbeddingConfig.vectors={self.vectors}, doc_vectors={self.doc_vectors}: "
                             f"only kind='maxsim' has more than one vector per side (kind={self.kind!r})")
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
    """Per-seed outcome of one probe (arrays of length S), all read on the final tables."""

    accuracy_S: np.ndarray  # LIMIT's top-2 accuracy: fraction of (query, relevant doc) pairs in the top 2
    margin_S: np.ndarray  # min over queries of (lower relevant score - best irrelevant score)
    steps_S: np.ndarray  # optimizer steps taken to reach the final tables
    loss_S: np.ndarray  # training loss of the final tables
    stop_S: np.ndarray  # why training stopped: an index into STOP_REASONS
    solved_S: np.ndarray  # by the configured criterion (cfg.success)
    params: int  # trainable parameters of one seed (padding not counted)
    seconds: float
    n_padded: int  # document slots of the compiled program (n_docs when unpadded)
    params_S: dict | None = None  # final tables per seed (leading axis S, unpadded); for tests and inspection

    @property
    def solved_topk_S(self) -> np.ndarray:
        return self.accuracy_S >= 1.0

    @property
    def solved_margin_S(self) -> np.ndarray:
        return self.margin_S > 0

    @property
    def stop_reasons(self) -> list[str]:
        return [STOP_REASONS[int(s)] for s in self.stop_S]


def all_pairs(n_docs: int) -> np.ndarray:
    """The k = 2 qrels: every unordered pair of documents, as an M x 2 array of document indices."""
    if n_docs < 2:
        raise ValueError(f"n_docs={n_docs}: all pairs need at least 2 documents")
    i, j = np.triu_indices(n_docs, k=1)
    return np.stack([i, j], axis=1).astype(np.int32)


def _unit(x_xD):
    return x_xD / jnp.maximum(jnp.linalg.norm(x_xD, axis=-1, keepdims=True), 1e-12)


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


def _pad_rows(x, rows: int, fill=None):
    """x with rows appended up to `rows`: copies of row 0, or `fill`."""
    extra = np.repeat(x[:1], rows - len(x), axis=0)
    if fill is not None:
        extra[...] = fill
    return np.concatenate([x, extra])


def _seq_gr_consts(docids: Docids, pad_docs: int | None) -> dict:
    """The trie tables and the 0/1 path matrix (row p * V + v, column doc: 1 when the doc's docid
    passes through child v of node p), so that log p(doc | q) is one matmul of the node-wise
    log-probabilities (a gather's scatter-add gradient costs far more on CPU). Padded, every n of one
    docid length L shares their shapes: documents up to pad_docs (copies of document 0 in the node
    tables, empty path columns, masked out of the scores) and prefix nodes up to the balanced tree of
    pad_docs leaves (copies of node 0's representative, all children valid, on no path)."""
    # Passed as arguments, not closed over: XLA would otherwise constant-fold the gathers' transposes.
    rep_doc_P, rep_level_P = _node_tables(docids)
    codes_NxL, valid_PxV = docids.codes_NxL, docids.valid_PxV
    (N, L), V = codes_NxL.shape, docids.vocab
    P = docids.n_nodes
    if pad_docs is not None:
        P = sum(-(-pad_docs // V ** (L - t)) for t in range(L))  # nodes per level of a balanced tree
        if P < docids.n_nodes:
            raise ValueError(f"pad_to={pad_docs}: the docid tree has {docids.n_nodes} prefix nodes, more than "
                             f"a balanced tree of {pad_docs} leaves ({P})")
        codes_NxL = _pad_rows(codes_NxL, pad_docs)
        rep_doc_P, rep_level_P = _pad_rows(rep_doc_P, P, 0), _pad_rows(rep_level_P, P, 0)
        valid_PxV = _pad_rows(valid_PxV, P, True)
    path_PVxN = np.zeros((P * V, len(codes_NxL)), np.float32)
    for t in range(L):
        path_PVxN[docids.prefix_NxL[:, t] * V + docids.codes_NxL[:, t], np.arange(N)] = 1.0
    return {"rep_doc_P": rep_doc_P, "rep_level_P": rep_level_P, "codes_NxL": codes_NxL,
            "valid_PxV": valid_PxV, "path_PVxN": path_PVxN}


def _seq_gr_scores(graphdef):
    def scores(params, consts):
        """Exact log p(doc | q) for all M queries and N docids: node states once, then path sums."""
        model = nnx.merge(graphdef, params["decoder"])
        codes_NxL, valid_PxV = consts["codes_NxL"], consts["valid_PxV"]
        rep_doc_P, rep_level_P = consts["rep_doc_P"], consts["rep_level_P"]
        prefix_PxH = model.prefix_sums(codes_NxL)[rep_doc_P, rep_level_P]
        h_MxPxH = model.hidden_states(params["queries"][:, None, :] + prefix_PxH[None])
        logits_MxPxV = jnp.einsum("mph,pvh->mpv", h_MxPxH, model.out_embed[...][rep_level_P])
        logits_MxPxV = logits_MxPxV + model.out_bias[...][rep_level_P][None]
        # invalid children (-inf) are on no path: zero them so that the matmul sees no 0 * inf
        logp_MxPxV = jnp.where(valid_PxV[None], masked_log_softmax(logits_MxPxV, valid_PxV[None]), 0.0)
        return logp_MxPxV.reshape(logp_MxPxV.shape[0], -1) @ consts["path_PVxN"]

    return scores


@partial(jax.jit, static_argnames=("dim", "pad_docs", "pad_queries", "vectors", "doc_vectors"))
def _tables_init(seed, n_docs, n_queries, *, dim: int, pad_docs: int, pad_queries: int,
                 vectors: int | None = None, doc_vectors: int | None = None):
    """LIMIT's initialisation (key split into query and document keys, standard normals, unit rows),
    drawn at the padded shapes: threefry draws depend on the flat index only, so the first rows are
    the unpadded draws bit for bit. Padded rows are e_0 (unit norm, never scored, never moved), and
    n enters as a traced value, so one compilation serves every n of a bucket.

    With `vectors` / `doc_vectors` (MaxSim), each row is m (m') unit vectors, pad x m x dim: the same
    flat draws, so that m = m' = 1 gives DR's tables exactly (with a unit axis)."""
    key_q, key_d = jax.random.split(jax.random.key(seed))
    e0_D = jnp.zeros(dim).at[0].set(1.0)

    def rows(key, real, pad, per_row):
        shape = (pad, dim) if per_row is None else (pad, per_row, dim)
        x_xD = _unit(jax.random.normal(key, shape))
        real_x1 = (jnp.arange(pad) < real).reshape((pad,) + (1,) * (len(shape) - 1))
        return jnp.where(real_x1, x_xD, e0_D)

    return {"queries": rows(key_q, n_queries, pad_queries, vectors),
            "docs": rows(key_d, n_docs, pad_docs, doc_vectors)}


def _decoder_init(cfg: FreeEmbeddingConfig, docids: Docids, seed: int):
    """SeqGR's decoder, initialised from `seed`; its shapes (and graph) depend on L, V and H only."""
    model_cfg = ModelConfig(kind="seq_gr", dim=cfg.dim, hidden=cfg.dim, depth=1, decoder_depth=cfg.decoder_depth)
    model = SeqGR(model_cfg, docids, feature_dim=1, rngs=nnx.Rngs(params=seed))
    del model.query_tower  # the free query vectors replace the encoder
    return nnx.split(model, nnx.Param)


def _normalise(params):
    out = dict(params, queries=_unit(params["queries"]))
    if "docs" in params:
        out["docs"] = _unit(params["docs"])
    return out


def _make_program(cfg: FreeEmbeddingConfig, scores_fn):
    """The compiled training run of one seed: (params, consts) -> final carry and final metrics."""
    opt = optax.adam(cfg.learning_rate)
    is_dr = cfg.kind in _SOFTMAX_KINDS  # DR and MaxSim: InfoNCE; SeqGR's scores are log-probabilities

    def forward(params, consts):
        scores_MxN = jnp.where(consts["valid_N"][None], scores_fn(params, consts), -jnp.inf)
        logp_MxN = jax.nn.log_softmax(scores_MxN, axis=1) if is_dr else scores_MxN
        rel_MxN = consts["rel_MxN"]
        loss = -jnp.where(rel_MxN, logp_MxN, 0.0).sum() / rel_MxN.sum()
        return loss, scores_MxN

    def solved(scores_MxN, consts):
        rel_MxN = consts["rel_MxN"]
        if cfg.success == "margin":
            return _margins(scores_MxN, rel_MxN).min() > 0
        return _top2_hits(scores_MxN, rel_MxN) == rel_MxN.sum()

    def run(params, consts):
        # Body i holds the tables after i steps: it first reads success on them where LIMIT does
        # (after steps 1, 1 + E, ...), then takes step i + 1 with the loss of the tables it holds,
        # which is the loss LIMIT's patience counts.
        def body(c):
            i = c["step"]
            (loss, scores_MxN), grads = jax.value_and_grad(forward, has_aux=True)(c["params"], consts)
            check = (i >= 1) & ((i - 1) % cfg.eval_every == 0)
            ok = jax.lax.cond(check, solved, lambda *_: jnp.bool_(False), scores_MxN, consts)
            updates, opt_state = opt.update(grads, c["opt_state"], c["params"])
            stepped = _normalise(optax.apply_updates(c["params"], updates))
            improved = loss < c["best"] - cfg.min_delta
            since_best = jnp.where(improved, 0, c["since_best"] + 1)
            stop = jnp.where(ok, _SOLVED, jnp.where(since_best >= cfg.patience, _PATIENCE,
                                                     jnp.where(i + 1 >= cfg.max_steps, _MAX_STEPS, _RUNNING)))
            stop = stop.astype(jnp.int32)
            keep = lambda old, new: jax.tree.map(lambda o, n: jnp.where(ok, o, n), old, new)  # noqa: E731
            return {"params": keep(c["params"], stepped), "opt_state": keep(c["opt_state"], opt_state),
                    "step": jnp.where(ok, i, i + 1), "best": jnp.where(improved & ~ok, loss, c["best"]),
                    "since_best": jnp.where(ok, c["since_best"], since_best), "stop": stop}

        init = {"params": params, "opt_state": opt.init(params), "step": jnp.int32(0),
                "best": jnp.asarray(jnp.inf, params["queries"].dtype), "since_best": jnp.int32(0),
                "stop": jnp.int32(_RUNNING)}
        final = jax.lax.while_loop(lambda c: c["stop"] == _RUNNING, body, init)
        # LIMIT also reads success on the tables it stopped with.
        loss, scores_MxN = forward(final["params"], consts)
        rel_MxN = consts["rel_MxN"]
        return {"params": final["params"], "step": final["step"], "stop": final["stop"], "loss": loss,
                "accuracy": _top2_hits(scores_MxN, rel_MxN) / rel_MxN.sum(),
                "margin": _margins(scores_MxN, rel_MxN).min()}

    return jax.jit(run)


@lru_cache(maxsize=32)
def _dr_program(cfg: FreeEmbeddingConfig):
    # One jitted function per config: every call with the same padded shapes reuses its compilation.
    return _make_program(cfg, _dr_scores(cfg.temperature, cfg.matmul))


@lru_cache(maxsize=32)
def _maxsim_program(cfg: FreeEmbeddingConfig):
    return _make_program(cfg, _maxsim_scores(cfg.temperature, cfg.matmul))


@lru_cache(maxsize=32)
def _seq_gr_program(cfg: FreeEmbeddingConfig, graphdef):
    return _make_program(cfg, _seq_gr_scores(graphdef))


def train_free_embedding(cfg: FreeEmbeddingConfig, n_docs: int, seeds, *, pad_to: int | None = None,
                         docid_seed: int = 0, keep_params: bool = False) -> FreeEmbeddingResult:
    """Run the protocol on n_docs documents for every seed (one after another) and report each outcome.

    Args:
      cfg: the probe's model, optimiser, budget and success criterion.
      n_docs: n; the queries are all n(n-1)/2 pairs.
      seeds: initialisation seeds (restarts); LIMIT's single run is seed 42.
      pad_to: document slots of the compiled program (>= n_docs; None: no padding). The queries are
        padded to pad_to(pad_to-1)/2 slots, and SeqGR's prefix nodes to those of a balanced tree of
        pad_to leaves, so every n up to pad_to (of one docid length, for SeqGR) shares one compilation.
      docid_seed: seed of SeqGR's random docid tree (the same tree for every seed).
      keep_params: return the final tables (for tests; MaxSim's are S x M x m x d and S x n x m' x d).

    Returns:
      FreeEmbeddingResult with per-seed accuracy, margin, steps, stop reason, loss and success.
    """
    seeds = [int(s) for s in seeds]
    t0 = time.perf_counter()
    N = n_docs if pad_to is None else int(pad_to)
    if N < n_docs:
        raise ValueError(f"pad_to={pad_to}: expected at least n_docs={n_docs}")
    pairs_Mx2 = all_pairs(n_docs)
    M, M_pad = pairs_Mx2.shape[0], N * (N - 1) // 2
    rel_MxN = np.zeros((M_pad, N), bool)  # padded query rows have no relevant document
    rel_MxN[np.arange(M)[:, None], pairs_Mx2] = True
    consts = {"rel_MxN": rel_MxN, "valid_N": np.arange(N) < n_docs}
    docids = None
    if cfg.kind == "seq_gr":
        docids = random_tree_docids(n_docs, cfg.docid_vocab, docid_seed)
        consts.update(_seq_gr_consts(docids, None if pad_to is None else N))
    consts = jax.device_put(consts)  # jnp.asarray would compile a program per shape
    finals = []
    multi = {"vectors": cfg.vectors, "doc_vectors": cfg.doc_vectors} if cfg.kind == "maxsim" else {}
    for seed in seeds:
        params = _tables_init(seed, n_docs, M, dim=cfg.dim, pad_docs=N, pad_queries=M_pad, **multi)
        if cfg.kind == "dr":
            program = _dr_program(cfg)
            n_params = (M + n_docs) * cfg.dim
        elif cfg.kind == "maxsim":
            program = _maxsim_program(cfg)
            n_params = (M * cfg.vectors + n_docs * cfg.doc_vectors) * cfg.dim
        else:
            graphdef, decoder = _decoder_init(cfg, docids, seed)
            params = {"queries": params["queries"], "decoder": decoder}
            program = _seq_gr_program(cfg, graphdef)
            n_params = M * cfg.dim + sum(int(np.prod(x.shape)) for x in jax.tree.leaves(decoder))
        finals.append(jax.device_get(program(params, consts)))
    stacked = {k: np.stack([np.asarray(f[k]) for f in finals]) for k in ("accuracy", "margin", "step", "loss", "stop")}
    accuracy_S, margin_S = stacked["accuracy"].astype(float), stacked["margin"].astype(float)
    params_S = None
    if keep_params:
        params_S = jax.tree.map(lambda *xs: np.stack(xs), *[f["params"] for f in finals])
        params_S["queries"] = params_S["queries"][:, :M]
        if "docs" in params_S:
            params_S["docs"] = params_S["docs"][:, :n_docs]
    return FreeEmbeddingResult(
        accuracy_S=accuracy_S, margin_S=margin_S, steps_S=stacked["step"].astype(int),
        loss_S=stacked["loss"].astype(float), stop_S=stacked["stop"].astype(int),
        solved_S=(accuracy_S >= 1.0) if cfg.success == "topk" else (margin_S > 0),
        params=n_params, seconds=time.perf_counter() - t0, n_padded=N, params_S=params_S,
    )
