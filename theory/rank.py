"""Low-rank capacity: what a D-dimensional bilinear scorer, or a trie-factorised GR, can express.

docs/design.md, section 1, "Low-rank capacity". The softmax ignores a per-query constant, so a rank-D
scorer S = F G^T is judged against the row-centred target A* P (P = I - 11^T/N): the best squared
Frobenius error is the tail of A* P's squared singular values (Eckart & Young 1936). For binary
qrels A, the sign rank of 2A-1 brackets the least embedding dimension (Weller et al. 2025,
"On the theoretical limitations of embedding-based retrieval"), and Forster's bound (Forster 2002)
sqrt(MN) / ||2A-1||_op is a computable lower bound on the sign rank. Log-probability matrices:
DR has rank <= D+1 (+1 with a document bias); a GR trie has rank <= sum over prefix nodes of
min(H+1+beta, b_pi), capped by the number of leaves (docs/design.md), and more sharply
beta + sum over prefix nodes of min(#leaf children, H+1) (see `trie_rank_bound`). Up to the
best per-row shift, the rank at which a model's Eckart-Young floor is taken, DR drops its
log-normalizer: D (+1 with a bias) (`row_shifted_rank_bound`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SignRankBounds", "eckart_young_floor", "numerical_rank", "sign_rank_bounds",
           "trie_rank_bound", "dr_rank_bound", "row_shifted_rank_bound", "bilinear_rank_bound",
           "bilinear_eckart_young_floor"]


@dataclasses.dataclass(frozen=True)
class SignRankBounds:
    """Bounds on the sign rank of 2A-1 and on the least dimension D of a scorer that ranks every
    relevant document above every irrelevant one in each row.

    forster: sqrt(MN) / ||2A-1||_op (real-valued); sign_rank_lower = ceil(forster);
    sign_rank_upper = rank(2A-1); dim_lower = sign_rank_lower - 1; dim_upper = min(rank(2A-1), rank(A))
    (S = A itself already ranks each row correctly).
    """
    forster: float
    sign_rank_lower: int
    sign_rank_upper: int
    dim_lower: int
    dim_upper: int


@functools.partial(jax.jit, static_argnames=("center_rows",))
def eckart_young_floor(target_MxN: jax.Array, dim: int, center_rows: bool = True) -> jax.Array:
    """Least squared Frobenius error of a rank-`dim` scorer, up to per-row shifts.

    min over rank-D S and c of ||A* - S - c 1^T||_F^2 = sum_{i > D} sigma_i(A* P)^2.

    Args:
      target_MxN: target scores A* (e.g. log p*(d|q)), M queries by N documents.
      dim: D, the scorer's rank (traced: one compiled program serves every D of a shape).
      center_rows: allow per-row shifts (the softmax's invariance); False gives the plain
        Eckart-Young tail of A*.

    Returns:
      The floor, a scalar.

    Reference: Eckart & Young 1936; docs/design.md, section 1 (low-rank capacity).

    >>> import jax.numpy as jnp
    >>> a = jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    >>> float(eckart_young_floor(a, 2, center_rows=False))   # the smallest singular value, squared
    1.0
    """
    if center_rows:
        target_MxN = target_MxN - jnp.mean(target_MxN, axis=1, keepdims=True)
    sigma = jnp.linalg.svd(target_MxN, compute_uv=False)  # descending
    return jnp.sum(jnp.where(jnp.arange(sigma.shape[0]) >= dim, jnp.square(sigma), 0.0))


def numerical_rank(matrix, rtol: float | None = None) -> int:
    """Number of singular values above rtol * sigma_max.

    Args:
      matrix: a 2-D array.
      rtol: relative tolerance; None uses max(M, N) * machine epsilon of the matrix's dtype.

    Returns:
      The numerical rank (0 for a zero matrix).

    >>> import numpy as np
    >>> numerical_rank(np.outer([1.0, 2.0], [3.0, 4.0, 5.0]), 1e-10)
    1
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {matrix.shape}")
    if matrix.size == 0:
        return 0
    sigma = np.linalg.svd(matrix, compute_uv=False)
    if rtol is None:
        rtol = max(matrix.shape) * np.finfo(matrix.dtype if matrix.dtype.kind == "f" else np.float64).eps
    return int(np.sum(sigma > rtol * sigma[0])) if sigma[0] > 0 else 0


def sign_rank_bounds(qrels_MxN) -> SignRankBounds:
    """Forster's lower bound and the rank upper bound on sign-rank(2A-1), and the implied bounds on
    the least embedding dimension: sign-rank(2A-1) - 1 <= D_min <= sign-rank(2A-1).

    Args:
      qrels_MxN: binary relevance A (M queries by N documents), any 0/1 or boolean array.

    Returns:
      SignRankBounds(forster, sign_rank_lower, sign_rank_upper, dim_lower, dim_upper).

    Reference: Forster 2002, "A linear lower bound on the unbounded error probabilistic
    communication complexity"; Weller et al. 2025; docs/design.md, section 1.

    >>> import numpy as np
    >>> h = np.array([[1, 1, 1, 1], [1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1]])   # a Hadamard sign pattern
    >>> b = sign_rank_bounds(h)
    >>> round(b.forster, 6), b.sign_rank_lower, b.sign_rank_upper
    (2.0, 2, 4)
    """
    qrels_MxN = np.asarray(qrels_MxN)
    if qrels_MxN.ndim != 2 or qrels_MxN.size == 0:
        raise ValueError(f"qrels_MxN must be a non-empty 2-D array, got shape {qrels_MxN.shape}")
    if not np.all((qrels_MxN == 0) | (qrels_MxN == 1)):
        raise ValueError("qrels_MxN must be binary (0/1)")
    qrels_MxN = qrels_MxN.astype(np.float64)
    signs_MxN = 2.0 * qrels_MxN - 1.0
    num_queries, num_docs = signs_MxN.shape
    forster = math.sqrt(num_queries * num_docs) / float(np.linalg.norm(signs_MxN, ord=2))
    # Sign rank is an integer >= forster; the slack absorbs rounding when forster is an integer.
    lower = max(1, math.ceil(forster - 1e-9))
    upper = numerical_rank(signs_MxN)
    dim_upper = min(upper, max(1, numerical_rank(qrels_MxN)))
    return SignRankBounds(forster=forster, sign_rank_lower=lower, sign_rank_upper=upper,
                          dim_lower=max(lower - 1, 0), dim_upper=dim_upper)


def trie_rank_bound(children_per_node: Sequence[int], hidden: int, bias: bool = False, *,
                    leaf_children_per_node: Sequence[int] | None = None) -> int:
    """Upper bound on the rank of a trie-factorised GR log-probability matrix (queries x docids).

    docs/design.md's bound: each prefix node pi with b_pi children adds a block of rank
    <= min(H+1+beta, b_pi) (its H hidden coordinates, its own log-normalizer and, beta = 1, an
    output bias), capped by the number of leaves. A node with a single child adds nothing.

    That bound is loose below the last level. A node's contribution is constant on each child
    subtree, which the child's own log-normalizer already spans, and the output bias multiplies the
    same all-ones query vector at every node. Given how many children of each node are leaves
    (l_pi), the sharper bound is beta + sum_pi min(l_pi, H+1), capped by the number of leaves. It is
    the generic rank (reached for H >= 1 and generic parameters). For sim.docids tries, pass
    `np.where(depth_P == length - 1, children_per_node(), 0)`.

    Args:
      children_per_node: b_pi for every prefix (internal) node of the trie, whose leaves are the
        documents; a complete V-ary tree of depth L has (V^L - 1)/(V - 1) entries equal to V.
      hidden: H, the width of the prefix-dependent hidden state.
      bias: whether the output layer has a bias.
      leaf_children_per_node: optional l_pi (same order), which sharpens the bound as above.

    Returns:
      The bound (an int), assuming at least as many queries.

    Reference: docs/design.md, section 1 (low-rank capacity: GR escapes through the docid prefix).

    >>> trie_rank_bound([4] * 21, hidden=3)       # 4-ary tree of depth 3: 21 nodes of rank 4, capped at 64
    64
    >>> trie_rank_bound([1000], hidden=3, bias=True)   # atomic docids: exactly DR's D + 1 + bias
    5
    >>> trie_rank_bound([4] * 5, hidden=1, leaf_children_per_node=[0, 4, 4, 4, 4])   # 4-ary, depth 2
    8
    """
    if int(hidden) < 0:
        raise ValueError(f"hidden must be >= 0, got {hidden}")
    children = [int(b) for b in children_per_node]
    if not children or min(children) < 1:
        raise ValueError("children_per_node must list at least one node, each with >= 1 child")
    num_leaves = 1 + sum(children) - len(children)
    per_node = int(hidden) + 1 + int(bool(bias))
    bound = min(num_leaves, sum(min(per_node, b) for b in children if b > 1))
    if leaf_children_per_node is not None:
        leaves = [int(leaf) for leaf in leaf_children_per_node]
        if len(leaves) != len(children) or any(not 0 <= leaf <= b for leaf, b in zip(leaves, children)):
            raise ValueError("leaf_children_per_node must give 0 <= l_pi <= b_pi for every node of children_per_node")
        if sum(leaves) != num_leaves:
            raise ValueError(f"leaf_children_per_node must sum to the number of leaves, {num_leaves}")
        # Single-child nodes count here: a leaf below a chain of them acts as a leaf of the chain's top.
        sharp = int(bool(bias)) + sum(min(leaf, int(hidden) + 1) for leaf in leaves)
        bound = min(bound, sharp)
    return bound


def dr_rank_bound(dim: int, bias: bool = False) -> int:
    """Rank bound D + 1 + bias of a D-dimensional DR log-probability matrix S - logsumexp(S).

    Args:
      dim: D, the embedding dimension.
      bias: whether the scorer has a per-document bias.

    Returns:
      D + 1 + bias.

    Reference: docs/design.md, section 1 (low-rank capacity).

    >>> dr_rank_bound(3), dr_rank_bound(3, bias=True)
    (4, 5)
    """
    if int(dim) < 0:
        raise ValueError(f"dim must be >= 0, got {dim}")
    return int(dim) + 1 + int(bool(bias))


def bilinear_rank_bound(dim: int, rank: int, bias: bool = False) -> int:
    """Rank bound min(r, D) + 1 + bias of the log-probability matrix of a rank-r bilinear scorer
    s = f(q)^T U V^T g(d) with D-dimensional towers (U, V: D x r).

    S = (F U)(G V)^T has rank <= min(r, D); the log-normalizer adds one column of ones' worth
    (`dr_rank_bound`'s +1), a document bias one more. Up to a per-row shift (where the
    Eckart-Young floor is taken, `bilinear_eckart_young_floor`) the bound is min(r, D) + bias.
    At r >= D it is `dr_rank_bound(D, bias)`: a full D x D bilinear form is no richer than the
    dot product in rank.

    Args:
      dim: D, the towers' output dimension.
      rank: r, the rank of W = U V^T (any r >= 0, set independently of D).
      bias: whether the scorer has a per-document bias.

    Returns:
      min(r, D) + 1 + bias.

    Reference: docs/design.md, section 1 (low-rank capacity).

    >>> bilinear_rank_bound(8, 3), bilinear_rank_bound(8, 12), bilinear_rank_bound(8, 3, bias=True)
    (4, 9, 5)
    """
    if int(dim) < 0 or int(rank) < 0:
        raise ValueError(f"dim and rank must be >= 0, got dim={dim}, rank={rank}")
    return dr_rank_bound(min(int(rank), int(dim)), bias=bias)


def bilinear_eckart_young_floor(target_MxN, dim: int, rank: int, *, bias: bool = False,
                                center_rows: bool = True) -> jax.Array:
    """Least squared error of a rank-r bilinear scorer with D-dimensional towers, up to per-row shifts:
    `eckart_young_floor` at rank min(r, D) (+ 1 with a document bias, which the floor counts as one
    more rank-one term, as `row_shifted_rank_bound` does for DR).

    >>> import jax.numpy as jnp
    >>> a = jnp.diag(jnp.array([3.0, 2.0, 1.0]))
    >>> float(bilinear_eckart_young_floor(a, dim=8, rank=1, center_rows=False))   # 2^2 + 1^2
    5.0
    """
    width = min(int(rank), int(dim)) + int(bool(bias))
    return eckart_young_floor(jnp.asarray(target_MxN), min(width, min(target_MxN.shape)), center_rows)


def maxsim_rank_bound(dim: int, vectors: int, doc_vectors: int, n_queries: int, n_docs: int) -> int:
    """Upper bound on min over c of rank(log P - c 1^T) for a MaxSim (late-interaction) scorer,
    s(q, d) = sum_i max_j <q_i, d_j>, with m = `vectors` query vectors and m' = `doc_vectors`
    document vectors of dimension D, on M queries and N documents.

    - m' = 1: the max is over one vector, so s(q, d) = <sum_i q_i, d> is a dot product and the
      row-shifted rank is at most D (as `row_shifted_rank_bound("dr", D, bias=False)`).
    - m' >= 2, D = 1: max_j q_i d_j is q_i max_j d_j when q_i > 0 and q_i min_j d_j otherwise, so
      s(q, d) = (sum of the positive q_i) max_j d_j + (sum of the negative q_i) min_j d_j: rank <= 2.
    - m' >= 2, D >= 2 (any m): s(., d) is a sum of maxima of linear functions of the query, not a
      bilinear form, and we know no bound below the trivial one: row-centred rows sum to zero, so
      it is min(M, N - 1). Random Gaussian vectors attain it at D = 3 in the cases we enumerated
      (N = 12 to 60, m = 1 to 8) and at D = 2 whenever m >= 2 or m' >= 4 (`grdr check` and
      tests/theory/test_rank.py); at D = 2 with m = 1 and m' = 2 they fall a little short (55-56
      of 59 at M = 200, N = 60, seeds 0-2): the bound holds and is not always reached. This is
      the sense in which multi-vector DR escapes the rank-D floor.

    Reference: Khattab & Zaharia 2020 (ColBERT's MaxSim); docs/design.md, section 2 (similarities).

    >>> maxsim_rank_bound(4, 3, 1, 100, 50), maxsim_rank_bound(4, 2, 2, 100, 50), maxsim_rank_bound(4, 2, 2, 30, 50)
    (4, 49, 30)
    """
    for name, value in (("dim", dim), ("vectors", vectors), ("doc_vectors", doc_vectors), ("n_queries", n_queries),
                        ("n_docs", n_docs)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    trivial = min(int(n_queries), int(n_docs) - 1)
    if int(doc_vectors) == 1:
        return min(int(dim), trivial)
    return min(2, trivial) if int(dim) == 1 else trivial


_KINDS = ("dr", "atomic_gr", "seq_gr")


def row_shifted_rank_bound(kind: str, width: int, *, bias: bool, children_per_node: Sequence[int] | None = None,
                           leaf_children_per_node: Sequence[int] | None = None) -> int:
    """Upper bound on min over c of rank(log P - c 1^T), log P a model's log-probabilities (queries x docs).

    This is the rank the Eckart-Young floor must be taken at (`eckart_young_floor` centres rows).
    DR and atomic GR: log P = S - logsumexp(S) 1^T, so up to a row shift the rank is that of
    S = F G^T (+ 1 b^T): D, +1 with a bias (`dr_rank_bound` - 1), reached for generic F, G, b when
    there are more documents. SeqGR: `trie_rank_bound`, which counts every node's log-normalizer;
    a row shift removes at most one of them, so it stays an upper bound.

    Args:
      kind: "dr", "atomic_gr" (a bi-encoder with a free output table) or "seq_gr".
      width: D for DR, H (the hidden width) for GR.
      bias: whether the scores carry a per-document (DR) or output (GR) bias. sim.models' AtomicGR
        and SeqGR always do: pass True for them.
      children_per_node: b_pi for every prefix node of the docid trie (seq_gr only).
      leaf_children_per_node: l_pi, as in `trie_rank_bound` (seq_gr only, optional).

    Returns:
      The bound (an int); min(bound, M, N) is the rank of the floor.

    Reference: Eckart & Young 1936; docs/design.md, section 1 (low-rank capacity).

    >>> row_shifted_rank_bound("dr", 4, bias=False), row_shifted_rank_bound("atomic_gr", 4, bias=True)
    (4, 5)
    >>> row_shifted_rank_bound("seq_gr", 1, bias=True, children_per_node=[4] * 5,
    ...                        leaf_children_per_node=[0, 4, 4, 4, 4])   # 4-ary, depth 2: 1 + 4 x 2
    9
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if int(width) < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    if kind == "seq_gr":
        if children_per_node is None:
            raise ValueError("children_per_node is required for kind 'seq_gr'")
        return trie_rank_bound(children_per_node, int(width), bias=bool(bias),
                               leaf_children_per_node=leaf_children_per_node)
    if children_per_node is not None or leaf_children_per_node is not None:
        raise ValueError(f"children_per_node and leaf_children_per_node apply to kind 'seq_gr' only, not {kind!r}")
    return dr_rank_bound(int(width), bias=bool(bias)) - 1


def dr_transition_dim(latent_rank: int, popularity: bool, doc_bias: bool) -> int:
    """The least D at which DR's Eckart-Young floor on a rank-R corpus reaches zero: R, or R + 1 when a
    popularity term (log pi_d, not constant across documents) must be carried by the embedding
    because the scorer has no document bias.

    >>> dr_transition_dim(8, popularity=True, doc_bias=False), dr_transition_dim(8, True, True)
    (9, 8)
    """
    return int(latent_rank) + int(bool(popularity) and not doc_bias)
