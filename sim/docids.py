"""Document identifiers for generative retrieval, and the trie tables that decoding uses.

Three schemes (docs/design.md, section 2):
- atomic: one token per document (L = 1, V = N), a softmax over all docids;
- random: a random balanced V-ary tree, L = ceil(log_V N) tokens;
- semantic: balanced hierarchical k-means over document features, so that documents sharing a
  prefix are similar.

Every scheme ends in a `Docids`, whose trie tables serve masked training and constrained decoding:
prefix node 0 is the root; `next_PxV[p, c]` is the child prefix node reached by token c from node p
(or, at the last level, the document index), -1 where c is not a valid child.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Docids", "DocidSpec", "SCHEMES", "atomic_docids", "random_tree_docids", "semantic_docids", "make_docids"]


@dataclasses.dataclass(frozen=True)
class Docids:
    kind: str
    codes_NxL: np.ndarray  # token of each document at each level
    prefix_NxL: np.ndarray  # prefix node c_<t of each document at each level
    next_PxV: np.ndarray  # child node (or document at the last level); -1 = invalid
    depth_P: np.ndarray  # level of each prefix node

    @property
    def n_docs(self) -> int:
        return self.codes_NxL.shape[0]

    @property
    def length(self) -> int:
        return self.codes_NxL.shape[1]

    @property
    def vocab(self) -> int:
        return self.next_PxV.shape[1]

    @property
    def n_nodes(self) -> int:
        return self.next_PxV.shape[0]

    @property
    def valid_PxV(self) -> np.ndarray:
        return self.next_PxV >= 0

    def children_per_node(self) -> np.ndarray:
        """b_pi for every prefix node (the input of theory.rank.trie_rank_bound)."""
        return self.valid_PxV.sum(axis=1)


def trie_from_codes(kind: str, codes_NxL: np.ndarray, vocab: int) -> Docids:
    """Build the trie tables of a set of distinct code sequences."""
    codes_NxL = np.asarray(codes_NxL, np.int64)
    N, L = codes_NxL.shape
    if codes_NxL.min() < 0 or codes_NxL.max() >= vocab:
        raise ValueError(f"docid tokens must lie in [0, {vocab}); found [{codes_NxL.min()}, {codes_NxL.max()}]")
    prefix_NxL = np.zeros((N, L), np.int64)
    depth = [np.zeros(1, np.int64)]
    parent_child = []
    n_nodes = 1
    for t in range(1, L):
        # a prefix of length t is identified by (prefix node at t-1, token at t-1)
        key_N = prefix_NxL[:, t - 1] * vocab + codes_NxL[:, t - 1]
        uniq, inverse = np.unique(key_N, return_inverse=True)
        prefix_NxL[:, t] = n_nodes + inverse
        parent_child.append((uniq // vocab, uniq % vocab, n_nodes + np.arange(len(uniq))))
        depth.append(np.full(len(uniq), t))
        n_nodes += len(uniq)
    next_PxV = np.full((n_nodes, vocab), -1, np.int64)
    for parent, child, node in parent_child:
        next_PxV[parent, child] = node
    last_parent, last_token = prefix_NxL[:, L - 1], codes_NxL[:, L - 1]
    if np.any(next_PxV[last_parent, last_token] >= 0):
        raise ValueError("docids are not unique: two documents share a full code")
    next_PxV[last_parent, last_token] = np.arange(N)
    if np.unique(last_parent * vocab + last_token).size != N:
        raise ValueError("docids are not unique: two documents share a full code")
    return Docids(kind, codes_NxL.astype(np.int32), prefix_NxL.astype(np.int32), next_PxV.astype(np.int32),
                  np.concatenate(depth).astype(np.int32))


def _length(n_docs: int, vocab: int) -> int:
    L = 1
    while vocab**L < n_docs:
        L += 1
    return L


def atomic_docids(n_docs: int) -> Docids:
    return trie_from_codes("atomic", np.arange(n_docs)[:, None], n_docs)


def random_tree_docids(n_docs: int, vocab: int, seed: int = 0) -> Docids:
    """A random balanced V-ary tree: the base-V digits of a random permutation of the documents."""
    if vocab < 2:
        raise ValueError(f"vocab={vocab}: expected at least 2 children per node")
    L = _length(n_docs, vocab)
    slot_N = np.random.default_rng(seed).permutation(n_docs)
    codes = np.stack([(slot_N // vocab ** (L - 1 - t)) % vocab for t in range(L)], axis=1)
    return trie_from_codes("random", codes, vocab)


def _balanced_kmeans(x_nxF, k, capacity, rng, iters=8):
    """k clusters of at most `capacity` points: Lloyd steps, then a greedy capacity-bounded assignment."""
    n = x_nxF.shape[0]
    centres = x_nxF[rng.choice(n, size=k, replace=False)]
    for _ in range(iters):
        d_nxk = ((x_nxF[:, None, :] - centres[None]) ** 2).sum(-1)
        assign = d_nxk.argmin(1)
        for j in range(k):
            members = x_nxF[assign == j]
            if len(members):
                centres[j] = members.mean(0)
    d_nxk = ((x_nxF[:, None, :] - centres[None]) ** 2).sum(-1)
    order = np.argsort(d_nxk, axis=None, kind="stable")
    assign = np.full(n, -1)
    room = np.full(k, capacity)
    for flat in order:  # nearest pairs first; a point takes its best cluster with room left
        i, j = divmod(flat, k)
        if assign[i] < 0 and room[j] > 0:
            assign[i] = j
            room[j] -= 1
    return assign


def semantic_docids(features_NxF: np.ndarray, vocab: int, seed: int = 0) -> Docids:
    """Balanced hierarchical k-means: every node splits its documents into at most V balanced clusters."""
    if vocab < 2:
        raise ValueError(f"vocab={vocab}: expected at least 2 children per node")
    x = np.asarray(features_NxF, np.float64)
    N = x.shape[0]
    L = _length(N, vocab)
    codes = np.zeros((N, L), np.int64)
    rng = np.random.default_rng(seed)
    stack = [(np.arange(N), 0)]
    while stack:
        idx, t = stack.pop()
        remaining = L - t
        if remaining == 1:  # at most V documents left: order them along their first coordinate
            codes[idx, t] = np.argsort(np.argsort(x[idx, 0], kind="stable"), kind="stable")
            continue
        # V balanced clusters of ceil(n/V) <= V^(remaining-1) documents, so the subtree always fits
        k = min(vocab, len(idx))
        capacity = -(-len(idx) // k)
        assign = np.zeros(len(idx), np.int64) if k == 1 else _balanced_kmeans(x[idx], k, capacity, rng)
        codes[idx, t] = assign
        stack.extend((idx[assign == j], t + 1) for j in range(k))
    return trie_from_codes("semantic", codes, vocab)


@dataclasses.dataclass(frozen=True)
class DocidSpec:
    """Which docids a generative model decodes (SeqGR; AtomicGR's are always atomic)."""

    scheme: str = "semantic"
    """atomic, random (a random balanced V-ary tree) or semantic (hierarchical k-means of features)."""
    vocab: int = 10
    """V, children per trie node (random and semantic)."""
    seed: int = 0
    """Seed of the random tree or of k-means."""

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"DocidSpec.scheme={self.scheme!r}: expected one of {tuple(SCHEMES)}")
        if self.vocab < 2:
            raise ValueError(f"DocidSpec.vocab={self.vocab}: expected at least 2 children per node")
        if self.seed < 0:
            raise ValueError(f"DocidSpec.seed={self.seed}: expected a non-negative integer")


def _semantic(n_docs, vocab, features_NxF, seed):
    if features_NxF is None:
        raise ValueError("semantic docids need document features (features_NxF)")
    return semantic_docids(features_NxF, vocab, seed)


# scheme -> builder(n_docs, vocab, features_NxF, seed): a new scheme is one function and one entry
SCHEMES = {
    "atomic": lambda n_docs, vocab, features_NxF, seed: atomic_docids(n_docs),
    "random": lambda n_docs, vocab, features_NxF, seed: random_tree_docids(n_docs, vocab, seed),
    "semantic": _semantic,
}


def make_docids(kind: str, n_docs: int, *, vocab: int = 10, features_NxF: np.ndarray | None = None, seed: int = 0) -> Docids:
    if kind not in SCHEMES:
        raise ValueError(f"docid kind={kind!r}: expected one of {tuple(SCHEMES)}")
    return SCHEMES[kind](n_docs, vocab, features_NxF, seed)
