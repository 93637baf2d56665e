"""The three models, in flax.nnx (docs/design.md, sections 1-2).

- `DualEncoder` (DR): score(q, d) = <f(q), g(d)> / temperature (+ b_d), or another similarity of
  `sim.scorers` (cosine, bilinear, rank-r bilinear, multi-vector MaxSim: ModelConfig.scorer). f is an
  MLP tower; g is a free table (N x D) or an MLP tower over document features.
- `AtomicGR`: f(q) in R^H and an output table N x H plus a bias: a softmax over all N docids. It is
  a bi-encoder with a free table and a bias, which is why atomic GR shares DR's rank limit.
- `SeqGR`: the docid c_1..c_L is decoded token by token; the state at step t depends on the query
  and on the prefix c_<t, and the softmax runs over the valid children of that prefix only. Its
  norms (`SoftNorm`) do not collapse a narrow state as LayerNorm does, and the final one makes each
  prefix node's state a different function of the query, so for generic parameters its
  log-probability matrix reaches the trie rank bound (docs/design.md, section 1) at any H >= 1 and depth.

DualEncoder and AtomicGR share one interface (`encode_queries`, `doc_table`): score = q . e_d + b_d,
so the same objectives, exact top-k and metrics serve both; a non-dot scorer's representations are
scored by `sim.scorers.scorer_of(model)`.

Initialisation is flax's and JAX's (lecun_normal kernels, zero biases, N(0, 1/D) tables), computed
on the host from draws at bucketed flat lengths (`sim.host_init`): the same values bit for bit,
from a few compiled programs, where eager initialisation compiles several per distinct shape
(every width, depth and N of a sweep).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.docids import Docids
from grdr.sim.host_init import linear, ones, scaled_normal, zeros
from grdr.sim.scorers import SCORERS, make_scorer, scorer_sections

__all__ = ["ModelConfig", "scorer_fields", "DualEncoder", "AtomicGR", "SeqGR", "SoftNorm", "make_model", "count_params",
           "DOC_ROWS", "map_doc_rows"]

_KINDS = ("dr", "atomic_gr", "seq_gr")


@dataclasses.dataclass(frozen=True)
class ModelConfig(scorer_sections()):
    """Sizes of a model. `dim` is DR's embedding dimension D; `hidden` the tower width H. Each scorer
    with settings of its own has a section named after it (inherited from sim.scorers.scorer_sections:
    `lowrank.rank`, `maxsim.vectors`, ...), read when `scorer` chooses it; `scorer_fields` sets both."""

    kind: str = "dr"
    """dr (DualEncoder), atomic_gr or seq_gr."""
    dim: int = 16
    """D, DR's embedding dimension."""
    hidden: int = 64
    """H, the towers' width (AtomicGR's and SeqGR's hidden width)."""
    depth: int = 2
    """Hidden layers of the query tower (and of DR's document tower)."""
    doc_side: str = "tower"
    """DR only: "table" (a free N x D table) or "tower" (an MLP over document features)."""
    temperature: float = 0.1
    """DR only: scores are <f(q), g(d)> / temperature."""
    doc_bias: bool = False
    """DR only: a per-document bias (AtomicGR and SeqGR always carry output biases)."""
    decoder_depth: int = 1
    """SeqGR: pre-norm residual MLP blocks over (query state + prefix embedding)."""
    scorer: str = "dot"
    """DR only: the similarity (sim.scorers.SCORERS): dot, cosine, bilinear, lowrank or maxsim; its
    settings, if it has any, are in the section of its name."""

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"ModelConfig.kind={self.kind!r}: expected one of {_KINDS}")
        if self.doc_side not in ("table", "tower"):
            raise ValueError(f"ModelConfig.doc_side={self.doc_side!r}: expected 'table' or 'tower'")
        for field in ("dim", "hidden", "depth"):
            if getattr(self, field) < 1:
                raise ValueError(f"ModelConfig.{field}={getattr(self, field)}: expected at least 1")
        if not self.temperature > 0:
            raise ValueError(f"ModelConfig.temperature={self.temperature}: expected > 0")
        if self.decoder_depth < 0:
            raise ValueError(f"ModelConfig.decoder_depth={self.decoder_depth}: expected >= 0")
        if self.scorer not in SCORERS:
            raise ValueError(f"ModelConfig.scorer={self.scorer!r}: expected one of {tuple(SCORERS)}")
        for name, cls in SCORERS.items():  # a section read by no scorer would be ignored: refuse it
            section = getattr(self, name, None) if name != self.scorer and cls.settings_class() else None
            for f in dataclasses.fields(section) if section is not None else ():
                if getattr(section, f.name) != f.default:
                    raise ValueError(f"ModelConfig.{name}.{f.name}={getattr(section, f.name)!r}: a setting of the "
                                     f"{name} scorer, but the scorer is {self.scorer!r}; choose {name} or leave "
                                     "its settings at their defaults")


def scorer_fields(name: str, **settings) -> dict:
    """The ModelConfig fields that choose scorer `name` with its own `settings` (the fields of its class):
    `ModelConfig(dim=4, **scorer_fields("maxsim", vectors=2))`, `dataclasses.replace(cfg, **...)`."""
    if name not in SCORERS:
        raise ValueError(f"scorer={name!r}: expected one of {tuple(SCORERS)}")
    return {"scorer": name, **({name: SCORERS[name].settings(**settings)} if settings else {})}


class MLP(nnx.Module):
    """depth hidden layers of width H with GELU, then a linear map to `out`."""

    def __init__(self, d_in: int, hidden: int, out: int, depth: int, *, rngs: nnx.Rngs):
        sizes = [d_in] + [hidden] * depth
        self.layers = nnx.List([linear(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = linear(sizes[-1], out, rngs)

    def __call__(self, x):
        for layer in self.layers:
            x = jax.nn.gelu(layer(x))
        return self.out(x)


class DualEncoder(nnx.Module):
    def __init__(self, cfg: ModelConfig, n_docs: int, feature_dim: int, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.scorer = scorer = make_scorer(cfg)
        self.query_tower = MLP(feature_dim, cfg.hidden, scorer.query_out, cfg.depth, rngs=rngs)
        if cfg.doc_side == "table":
            self.doc_embed = nnx.Param(scaled_normal(rngs.params(), (n_docs, scorer.doc_out), np.sqrt(cfg.dim)))
        else:
            self.doc_tower = MLP(feature_dim, cfg.hidden, scorer.doc_out, cfg.depth, rngs=rngs)
        if cfg.doc_bias:
            self.bias = nnx.Param(zeros((n_docs,)))
        if scorer.num_params():  # drawn last, so the dot product's initialisation is unchanged
            self.score_params = nnx.Dict({k: nnx.Param(v) for k, v in scorer.init(rngs.params()).items()})

    def _score_params(self):
        params = getattr(self, "score_params", None)
        return {} if params is None else {k: v[...] for k, v in params.items()}

    def encode_queries(self, query_features_BxF):
        """The scorer's query representations (the dot product's: f(q) / temperature)."""
        return self.scorer.queries(self._score_params(), self.query_tower(query_features_BxF))

    def doc_table(self, doc_idx_K, doc_features_NxF):
        """(the scorer's representations of the documents `doc_idx_K` (K x D for the dot product), biases K);
        all N when doc_idx_K is None."""
        if self.cfg.doc_side == "table":
            emb = self.doc_embed[...] if doc_idx_K is None else self.doc_embed[doc_idx_K]
        else:
            feats = doc_features_NxF if doc_idx_K is None else doc_features_NxF[doc_idx_K]
            emb = self.doc_tower(feats)
        emb = self.scorer.docs(self._score_params(), emb)
        if self.cfg.doc_bias:
            bias = self.bias[...] if doc_idx_K is None else self.bias[doc_idx_K]
        else:
            bias = jnp.zeros(emb.shape[:1], emb.dtype)
        return emb, bias


class AtomicGR(nnx.Module):
    def __init__(self, cfg: ModelConfig, n_docs: int, feature_dim: int, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.query_tower = MLP(feature_dim, cfg.hidden, cfg.hidden, cfg.depth, rngs=rngs)
        self.out_embed = nnx.Param(scaled_normal(rngs.params(), (n_docs, cfg.hidden), np.sqrt(cfg.hidden)))
        self.bias = nnx.Param(zeros((n_docs,)))

    def encode_queries(self, query_features_BxF):
        return self.query_tower(query_features_BxF)

    def doc_table(self, doc_idx_K, doc_features_NxF=None):
        if doc_idx_K is None:
            return self.out_embed[...], self.bias[...]
        return self.out_embed[doc_idx_K], self.bias[doc_idx_K]


class SoftNorm(nnx.Module):
    """n(x) = g * x / sqrt(1 + mean_H(x^2)): RMS normalisation with a unit floor under the mean square.

    LayerNorm over a width-H state removes its mean and its scale, so at H = 1 it is a constant and
    at H = 2 a sign; RMSNorm is a sign at H = 1. This map is bounded like RMSNorm for large states and
    near the identity for small ones, and injective at every width: with g = 1 its inverse is
    y / sqrt(1 - mean_H(y^2)). Being nonlinear, it also makes the state a nonlinear function of its input.
    """

    def __init__(self, width: int):
        self.scale = nnx.Param(ones((width,)))

    def __call__(self, x_xH):
        inv_rms_x1 = jax.lax.rsqrt(1.0 + jnp.mean(jnp.square(x_xH), axis=-1, keepdims=True))
        return self.scale[...].reshape((1,) * (x_xH.ndim - 1) + (-1,)) * x_xH * inv_rms_x1


class SeqGR(nnx.Module):
    """Prefix-conditioned decoder over docid tokens.

    State at level t: x_t = f(q) + level_t + sum_{s<t} E[s, c_s]; then `decoder_depth` pre-norm
    residual MLP blocks x <- x + MLP(n(x)); h_t = n_final(x_t); logits_t = W_t h_t + b_t over the V
    tokens, masked to the valid children of c_<t. All L levels are computed at once under teacher
    forcing (the prefix sums are an exclusive cumulative sum).

    The norms are `SoftNorm`, not LayerNorm: LayerNorm made the block input a constant at H = 1 and a
    sign at H = 2. The final norm is the decoder's nonlinearity even at decoder_depth = 0: without it
    that decoder's state is f(q) plus a per-node constant, the same function of the query at every
    prefix node, and the log-probability matrix has rank <= H + 1 + (number of last-level nodes).
    With it, each node's state is a different function of the query, and for generic parameters the
    rank reaches the sharp trie bound beta + sum over last-level nodes of min(children, H + 1)
    (`theory.trie_rank_bound` with `leaf_children_per_node`; beta = 1 once the output bias, which
    starts at zero, is nonzero).
    """

    def __init__(self, cfg: ModelConfig, docids: Docids, feature_dim: int, *, rngs: nnx.Rngs):
        self.cfg = cfg
        L, V, H = docids.length, docids.vocab, cfg.hidden
        self.query_tower = MLP(feature_dim, H, H, cfg.depth, rngs=rngs)
        self.token_embed = nnx.Param(scaled_normal(rngs.params(), (L, V, H), np.sqrt(H)))
        self.level_embed = nnx.Param(zeros((L, H)))
        self.blocks = nnx.List([MLP(H, 2 * H, H, 1, rngs=rngs) for _ in range(cfg.decoder_depth)])
        self.norms = nnx.List([SoftNorm(H) for _ in range(cfg.decoder_depth)])
        self.final_norm = SoftNorm(H)
        self.out_embed = nnx.Param(scaled_normal(rngs.params(), (L, V, H), np.sqrt(H)))
        self.out_bias = nnx.Param(zeros((L, V)))

    def encode_queries(self, query_features_BxF):
        return self.query_tower(query_features_BxF)

    def hidden_states(self, x_xH):
        """The decoder state h of inputs x = query state + prefix sum, for any leading shape."""
        for norm, block in zip(self.norms, self.blocks):
            x_xH = x_xH + block(norm(x_xH))
        return self.final_norm(x_xH)

    def level_logits(self, h_xH, level):
        """Token logits at a (static or traced) level for states h of any leading shape."""
        logits = h_xH @ self.out_embed[level].T
        return logits + self.out_bias[level].reshape((1,) * (logits.ndim - 1) + (-1,))

    def prefix_sums(self, codes_BxL):
        """sum_{s<t} E[s, c_s] + level_t, for t = 0..L-1 (exclusive cumulative sum)."""
        L = codes_BxL.shape[1]
        emb_BxLxH = self.token_embed[jnp.arange(L)[None, :], codes_BxL]
        excl_BxLxH = jnp.cumsum(emb_BxLxH, axis=1) - emb_BxLxH
        return excl_BxLxH + self.level_embed[...][None]

    def log_prob(self, query_BxH, codes_BxL, valid_BxLxV):
        """log p(docid | q) under teacher forcing, with the trie mask at every level."""
        h_BxLxH = self.hidden_states(query_BxH[:, None, :] + self.prefix_sums(codes_BxL))
        logits_BxLxV = jnp.einsum("blh,lvh->blv", h_BxLxH, self.out_embed[...]) + self.out_bias[...][None]
        logp_BxLxV = masked_log_softmax(logits_BxLxV, valid_BxLxV)
        return jnp.take_along_axis(logp_BxLxV, codes_BxL[..., None], axis=2)[..., 0].sum(axis=1)


def masked_log_softmax(logits, valid):
    """log softmax over the valid entries; invalid entries get -inf, and no row is all -inf or NaN."""
    logits = jnp.where(valid, logits, -jnp.inf)
    lse = jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    lse = jnp.where(jnp.isfinite(lse), lse, 0.0)
    return logits - lse


def make_model(cfg: ModelConfig, *, n_docs: int, feature_dim: int, docids: Docids | None = None, seed: int = 0):
    rngs = nnx.Rngs(params=seed)
    if cfg.kind == "dr":
        return DualEncoder(cfg, n_docs, feature_dim, rngs=rngs)
    if cfg.kind == "atomic_gr":
        return AtomicGR(cfg, n_docs, feature_dim, rngs=rngs)
    if docids is None:
        raise ValueError("SeqGR needs docids (sim.docids.make_docids)")
    return SeqGR(cfg, docids, feature_dim, rngs=rngs)


DOC_ROWS = {"dr": ("doc_embed", "bias"), "atomic_gr": ("out_embed", "bias"), "seq_gr": ()}
"""The parameters with one row per document, by model kind (padded with the corpus, sim.buckets)."""


def map_doc_rows(params, kind: str, fn):
    """`params` (an nnx.State or a dict) with fn applied to each parameter that has one row per document."""
    names = DOC_ROWS[kind]
    return jax.tree_util.tree_map_with_path(lambda path, x: fn(x) if path[0].key in names else x, params)


def count_params(model: nnx.Module) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param))))
