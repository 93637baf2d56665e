"""DR's similarity functions: one interface for every scorer (docs/design.md, sections 1-2).

A DualEncoder's towers give f(q) and g(d); its scorer decides what they are and how they meet:

- `dot`: s = <f(q), g(d)> / temperature (the original DR; rank of S <= D).
- `cosine`: s = cos(f(q), g(d)) / temperature, the temperature fixed (rank <= D).
- `bilinear`: s = f(q)^T W g(d) / temperature, W a full D x D matrix (starts at the identity; rank <= D).
- `lowrank`: W = U V^T with U, V of D x r, r set independently of D (rank <= min(r, D);
  `theory.bilinear_rank_bound`).
- `maxsim`: multi-vector late interaction (ColBERT): the towers emit m query vectors and m'
  document vectors of dimension D, s = sum_i max_j <f_i(q), g_j(d)> / temperature. Not a bilinear
  form, so its rank is not capped by D (`maxsim_log_prob_rank` measures it).

Every scorer maps the towers' outputs to *representations* (`queries`, `docs`) and scores them
(`scores`: a batch against every document; `gathered`: each query against its own candidates);
`topk` is the exact chunked top-k and `softmax_loss` the global objective. The first four are
"dot-form": their representations meet by a plain dot product (cosine normalises, the bilinear
forms fold W, U or V into the query and document sides), so the blocked full softmax and the
two-stage top-k apply unchanged. MaxSim scores in document chunks (`sim.retrieve.topk_scored`),
never as an M x N x m x m' array. The hard-negative pool (`sim.hard_pool`) and the row-sparse
table (`sim.sparse_train`) go through `scores` and `gathered`, so they serve every scorer.

Adding a scorer is one class plus its test: a subclass of Scorer with a `name` of its own is
registered in SCORERS, and says what a sweep record stores about it (`record_fields`).
ModelConfig.scorer names it, and the models, objectives, top-k, evaluation and log-probabilities all
go through it. Its settings are its own dataclass fields beyond the shared `dim` and `temperature`
(LowRank's `rank`, MaxSim's `vectors` and `doc_vectors`), documented and checked (`check`) in the
class itself: `settings_class()` makes them a frozen dataclass, and ModelConfig holds one such
section per scorer that has settings, named after the scorer (`scorer_sections`), so the command
line reads `--model.scorer lowrank --model.lowrank.rank 2`; `from_config` builds the scorer from
ModelConfig's dim and temperature and its own section. Such a scorer is defined in this module, so
that its section exists when sim.models builds ModelConfig.
The scorer's own parameters (`init`, counted by `num_params`) become nnx.Params of the DualEncoder.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from grdr.sim.host_init import eye_plus_noise
from grdr.sim.sections import section_class

__all__ = ["Scorer", "Dot", "Cosine", "Bilinear", "LowRank", "MaxSim", "SCORERS", "make_scorer", "scorer_of",
           "scorer_sections", "late_interaction", "maxsim_log_prob_rank"]

_MAXSIM_BUDGET = 1 << 22  # query-document vector pairs scored at once (16 MiB of float32)


SCORERS: dict[str, type] = {}  # every scorer class by name, in the order of definition


def _register(cls) -> None:
    if cls.name in SCORERS:
        raise ValueError(f"two scorers named {cls.name!r}: {SCORERS[cls.name].__name__} and {cls.__name__}")
    SCORERS[cls.name] = cls


@dataclasses.dataclass(frozen=True)
class Scorer:
    """The dot product, and the interface every scorer implements (frozen: it is static in the graph)."""

    name: ClassVar[str] = "dot"
    dot_form: ClassVar[bool] = True
    """Representations meet by a plain dot product (the dot-product machinery applies)."""
    dim: int = 16
    temperature: float = 0.1

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _register(cls)

    def __post_init__(self):
        self.check()

    # --- construction -------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ValueError, naming the field (`LowRank.rank=0: ...`), where a setting of this scorer is invalid."""

    @classmethod
    def own_fields(cls) -> tuple[dataclasses.Field, ...]:
        """The settings this scorer declares itself: its dataclass fields beyond `dim` and `temperature`."""
        return tuple(f for f in dataclasses.fields(cls) if f.name not in _SHARED)

    @classmethod
    def settings_class(cls) -> type | None:
        """The scorer's section of ModelConfig (None when it has no settings of its own): a frozen
        dataclass of its own fields with their defaults and documentation, checked as the scorer checks them."""
        if "Settings" not in cls.__dict__:
            cls.Settings = _settings_class(cls) if cls.own_fields() else None
        return cls.Settings

    @classmethod
    def settings(cls, **values):
        """The scorer's section with `values` for its settings (LowRank.settings(rank=2))."""
        if cls.settings_class() is None:
            raise ValueError(f"the {cls.name} scorer has no settings; got {sorted(values)}")
        return cls.settings_class()(**values)

    @classmethod
    def from_config(cls, model_cfg) -> "Scorer":
        """The scorer of a ModelConfig: its `dim` and `temperature`, and the settings of its own section."""
        own = {}
        if cls.settings_class() is not None:
            section = getattr(model_cfg, cls.name, None)
            if section is None:
                raise ValueError(f"ModelConfig has no section for the {cls.name} scorer's settings: define "
                                 f"{cls.__name__} in sim/scorers.py, before sim.models builds ModelConfig")
            own = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
        return cls(dim=model_cfg.dim, temperature=model_cfg.temperature, **own)

    @property
    def query_out(self) -> int:
        """Width of the query tower's output."""
        return self.dim

    @property
    def doc_out(self) -> int:
        """Width of the document tower's output (or of a free table's rows)."""
        return self.dim

    def init(self, key) -> dict[str, jax.Array]:
        """The scorer's own parameters (become nnx.Params of the model)."""
        return {}

    def num_params(self) -> int:
        """Hand-counted size of `init`'s parameters."""
        return 0

    def record_fields(self) -> dict:
        """Fields of a sweep record's config (empty for the dot product, so old run_ids stay)."""
        return {"scorer": self.name}

    # --- representations ---------------------------------------------------------------------------
    def queries(self, params: dict, f_BxO):
        return f_BxO / self.temperature

    def docs(self, params: dict, g_KxO):
        return g_KxO

    # --- scores ------------------------------------------------------------------------------------
    def scores(self, q, d):
        """Scores of every query against every document: B x K."""
        return q @ d.T

    def gathered(self, q, d_BxK):
        """Each query against its own K candidates (d_BxK: the representations of B x K documents)."""
        return jnp.einsum("bd,bkd->bk", q, d_BxK)

    def topk(self, q, d, k: int, bias_N=None, *, chunk_size: int | None = None):
        """Exact top-k of every query over all documents, in document chunks: (scores, idx)."""
        from grdr.sim.retrieve import DEFAULT_CHUNK, topk

        return topk(q, d, k, doc_bias_N=bias_N, chunk_size=chunk_size or DEFAULT_CHUNK)

    def softmax_loss(self, q, d, bias_N, pos_B, *, allow_blocks: bool = True):
        """Per-example full-softmax cross-entropy over every document."""
        from grdr.sim.softmax import full_softmax_loss

        return full_softmax_loss(q, d, bias_N, pos_B, allow_blocks=allow_blocks)


Dot = Scorer
_register(Scorer)
_SHARED = ("dim", "temperature")  # every scorer's, from ModelConfig; the rest of a scorer's fields are its own


def _settings_class(cls) -> type:
    """`cls`'s own fields as a frozen dataclass (its section of ModelConfig), which checks its values by
    building the scorer (so `check` names the field)."""

    def check(self):
        cls(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    summary = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
    return section_class(cls, cls.own_fields(), f"Settings of the {cls.name} scorer (used when ModelConfig.scorer "
                         f"is {cls.name}): {summary}", check)


def scorer_sections() -> type:
    """A frozen dataclass with one field per registered scorer that has settings of its own, named
    after the scorer and holding its section at its defaults: ModelConfig's base, so that the command
    line reads --model.lowrank.rank and --model.maxsim.vectors."""
    owners = {name: cls.settings_class() for name, cls in SCORERS.items() if cls.settings_class() is not None}
    doc = "The settings of each scorer that has its own.\n\nArgs:\n" + "".join(
        f"    {name}: settings of the {name} scorer (used when scorer is {name}).\n" for name in owners)
    sections = dataclasses.make_dataclass(
        "ScorerSections", [(name, settings, dataclasses.field(default=settings())) for name, settings in owners.items()],
        frozen=True, namespace={"__doc__": doc})
    sections.__module__ = __name__
    return sections


@dataclasses.dataclass(frozen=True)
class Cosine(Scorer):
    """cos(f(q), g(d)) / temperature: both sides normalised, the temperature fixed."""

    name: ClassVar[str] = "cosine"

    def queries(self, params, f_BxO):
        return _unit(f_BxO) / self.temperature

    def docs(self, params, g_KxO):
        return _unit(g_KxO)


@dataclasses.dataclass(frozen=True)
class Bilinear(Scorer):
    """f(q)^T W g(d) / temperature with a full D x D matrix W (initialised at the identity)."""

    name: ClassVar[str] = "bilinear"

    def init(self, key):
        return {"score_w": eye_plus_noise(key, self.dim, self.dim)}

    def num_params(self):
        return self.dim * self.dim

    def queries(self, params, f_BxO):
        return f_BxO @ params["score_w"] / self.temperature


@dataclasses.dataclass(frozen=True)
class LowRank(Scorer):
    """f(q)^T U V^T g(d) / temperature, U and V of D x r: rank min(r, D) whatever D is.

    U and V start as the first r columns of the identity (plus 1% noise), so at r >= D the scorer
    starts as the dot product and at r < D as its projection on r coordinates."""

    name: ClassVar[str] = "lowrank"
    rank: int = 1
    """r, the rank of W = U V^T (independent of D)."""

    def check(self):
        if self.rank < 1:
            raise ValueError(f"LowRank.rank={self.rank}: expected r >= 1")

    def init(self, key):
        ku, kv = jax.random.split(key)
        return {"score_u": eye_plus_noise(ku, self.dim, self.rank), "score_v": eye_plus_noise(kv, self.dim, self.rank)}

    def num_params(self):
        return 2 * self.dim * self.rank

    def record_fields(self):
        return {"scorer": self.name, "scorer_rank": self.rank}

    def queries(self, params, f_BxO):
        return f_BxO @ params["score_u"] / self.temperature

    def docs(self, params, g_KxO):
        return g_KxO @ params["score_v"]


@dataclasses.dataclass(frozen=True)
class MaxSim(Scorer):
    """Late interaction: sum over the m query vectors of the max over the m' document vectors of
    <f_i(q), g_j(d)>, divided by the temperature. Representations: B x m x D and K x m' x D."""

    name: ClassVar[str] = "maxsim"
    dot_form: ClassVar[bool] = False
    vectors: int = 1
    """m, query vectors (each of dimension D)."""
    doc_vectors: int = 0
    """m', document vectors (0: the same as m)."""

    def check(self):
        if self.vectors < 1:
            raise ValueError(f"MaxSim.vectors={self.vectors}: expected m >= 1")
        if self.doc_vectors < 0:
            raise ValueError(f"MaxSim.doc_vectors={self.doc_vectors}: expected m' >= 1, or 0 for m' = m")
        if self.doc_vectors == 0:
            object.__setattr__(self, "doc_vectors", self.vectors)  # frozen: set once, while it is built

    @property
    def query_out(self):
        return self.vectors * self.dim

    @property
    def doc_out(self):
        return self.doc_vectors * self.dim

    def record_fields(self):
        return {"scorer": self.name, "vectors": self.vectors, "doc_vectors": self.doc_vectors}

    def queries(self, params, f_BxO):
        return f_BxO.reshape(f_BxO.shape[:-1] + (self.vectors, self.dim)) / self.temperature

    def docs(self, params, g_KxO):
        return g_KxO.reshape(g_KxO.shape[:-1] + (self.doc_vectors, self.dim))

    def _chunk(self, num_queries: int) -> int:
        """Documents scored at once so that at most ~_MAXSIM_BUDGET vector pairs exist."""
        return max(16, _MAXSIM_BUDGET // max(1, num_queries * self.vectors * self.doc_vectors))

    def _dense(self, q_Bxmxd, d_Kxnxd):
        return late_interaction(q_Bxmxd, d_Kxnxd)

    def scores(self, q, d):
        B, K = q.shape[0], d.shape[0]
        chunk = self._chunk(B)
        if K <= chunk:
            return self._dense(q, d)
        pad = -K % chunk
        d_CxKxnxd = jnp.pad(d, ((0, pad), (0, 0), (0, 0))).reshape(-1, chunk, *d.shape[1:])
        s_CxBxK = jax.lax.map(lambda dc: self._dense(q, dc), d_CxKxnxd)
        return jnp.transpose(s_CxBxK, (1, 0, 2)).reshape(B, -1)[:, :K]

    def gathered(self, q, d_BxK):
        return jnp.einsum("bid,bkjd->bkij", q, d_BxK).max(axis=3).sum(axis=2)

    def topk(self, q, d, k, bias_N=None, *, chunk_size=None):
        from grdr.sim.retrieve import topk_scored

        return topk_scored(q, d, k, self, doc_bias_N=bias_N, chunk_size=chunk_size or self._chunk(q.shape[0]))

    def softmax_loss(self, q, d, bias_N, pos_B, *, allow_blocks=True):
        from grdr.theory.objectives import global_loss

        return global_loss(self.scores(q, d) + bias_N[None, :], pos_B)


def _rows_dot(a_IxD, b_JxD):
    return a_IxD @ b_JxD.T


def late_interaction(q_Bxmxd, d_Kxnxd, dot=_rows_dot):
    """sum_i max_j <q_i, d_j> of every query against every document: one matmul of every query vector
    against every document vector (`dot(a, b)` = a b^T, so a caller chooses its precision), then the
    max over each document's n vectors and the sum over each query's m vectors. B x K."""
    (B, m, D), (K, n) = q_Bxmxd.shape, d_Kxnxd.shape[:2]
    s_BmxKn = dot(q_Bxmxd.reshape(B * m, D), d_Kxnxd.reshape(K * n, D))
    return s_BmxKn.reshape(B, m, K, n).max(axis=3).sum(axis=1)




@lru_cache(maxsize=256)
def make_scorer(model_cfg) -> Scorer:
    """The scorer of a ModelConfig (its `scorer` builds itself from the model's dim and temperature and
    its own section); one object per configuration, shared by the model, the trainers and the record."""
    name = getattr(model_cfg, "scorer", "dot")
    if name not in SCORERS:
        raise ValueError(f"ModelConfig.scorer={name!r}: expected one of {tuple(SCORERS)}")
    return SCORERS[name].from_config(model_cfg)


_DOT = Scorer(dim=1, temperature=1.0)  # representations of GR's bi-encoder (AtomicGR) meet by the dot product


def scorer_of(model) -> Scorer:
    """The scorer of a model (AtomicGR's output layer is a dot product)."""
    return getattr(model, "scorer", _DOT)


def _unit(x):
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), 1e-12))


def maxsim_log_prob_rank(vectors: int, doc_vectors: int, dim: int, n_queries: int, n_docs: int, *, seed: int = 0,
                         scale: float = 1.0, rtol: float = 1e-9) -> int:
    """Numerical rank, up to per-row shifts, of the log-probability matrix of a MaxSim scorer at
    random (Gaussian, N(0, scale^2)) query and document vectors, in float64.

    For m = m' = 1 it is D (the dot product); with more vectors each document's score is a
    different piecewise-linear function of the query, and the rank grows with N and m, not capped at D.
    Returns the rank of the row-centred log p (the one the Eckart-Young floor is taken at).
    """
    from grdr.theory.rank import numerical_rank

    rng = np.random.default_rng(seed)
    q = scale * rng.normal(size=(n_queries, vectors, dim))
    d = scale * rng.normal(size=(n_docs, doc_vectors, dim))
    s = np.einsum("bid,kjd->bkij", q, d).max(axis=3).sum(axis=2)
    logp = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    return numerical_rank(logp - logp.mean(axis=1, keepdims=True), rtol)
