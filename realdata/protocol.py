"""The corpus-size protocol on a real collection, as the arrays that sim/ models train on.

`prepare(spec)` reads a collection once and returns, for every corpus size N of the sweep, the
nested corpus, document and query features, the evaluation qrels and the training pairs.

Training pairs come from the collection's train split when it has one (MS MARCO
`qrels.train.tsv`, BEIR `qrels/train.tsv`, NQ320k `nq_train_doc_newid.tsv`), at most
`max_train_pairs` of them drawn with the seed; otherwise from the evaluation queries themselves
(`train_on="test"`, the best-case protocol of the LIMIT paper). The documents of the training
pairs are held in every corpus, like the judged documents of the evaluation queries, so that the
training set and the judged documents are the same at every N and only the distractors change.
Features are fitted once, on the largest corpus, for the same reason. An ir_datasets collection
("irds") is named by its id; given a split, it is `<id>/<split>` and its train split `<id>/train`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Literal

import numpy as np

from grdr.realdata import irds
from grdr.realdata._stream import existing, progress
from grdr.realdata.collection import Collection
from grdr.realdata.corpus_size import nested_corpora
from grdr.realdata.features import HashTfidfConfig, fit_hash_tfidf
from grdr.realdata.readers import read_collection, scan_doc_ids, splits

__all__ = ["RealSpec", "Prepared", "CorpusPoint", "prepare", "auto_sizes", "docid_features"]

FORMATS = ("msmarco", "nq320k", "beir", "irds")
_DEFAULT_SPLIT = {"msmarco": "dev", "nq320k": "dev", "beir": "test", "irds": ""}


@dataclasses.dataclass(frozen=True)
class RealSpec:
    """What to read and how to featurise it.

    Args:
      format: "msmarco", "nq320k", "beir" or "irds".
      path: the collection's directory, as distributed; for "irds", the ir_datasets id.
      split: evaluation split; "" picks the format's default (dev, dev, test; irds: the id itself).
      features: "hash" (hashed word + bigram TF-IDF) or "minilm" (all-MiniLM-L6-v2, 384-d).
      feature_dim: hash buckets F (ignored for minilm).
      train_on: "train" (the train split), "test" (the evaluation queries), or "auto" (train when
        the collection has a train split).
      max_train_pairs: cap on training pairs from a train split (a seeded subset).
      sizes: corpus sizes N; () = automatic (the anchored documents, then two sizes a decade,
        then the whole collection).
      seed: fixes the distractors and the subset of training pairs.
      on_unknown: "error" or "drop" for qrels naming unknown ids.
    """

    format: str
    path: str
    split: str = ""
    features: Literal["hash", "minilm"] = "hash"
    feature_dim: int = 4096
    train_on: Literal["auto", "train", "test"] = "auto"
    max_train_pairs: int = 20_000
    sizes: tuple[int, ...] = ()
    seed: int = 0
    on_unknown: Literal["error", "drop"] = "error"

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format: {self.format!r} is not one of {FORMATS}")
        if self.features not in ("hash", "minilm"):
            raise ValueError(f"features: {self.features!r} is not 'hash' or 'minilm'")
        if self.train_on not in ("auto", "train", "test"):
            raise ValueError(f"train_on: {self.train_on!r} is not 'auto', 'train' or 'test'")
        for field in ("feature_dim", "max_train_pairs"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field}: {getattr(self, field)} < 1")
        if any(n < 1 for n in self.sizes):
            raise ValueError(f"sizes: {self.sizes} must be positive")


@dataclasses.dataclass(frozen=True, eq=False)
class CorpusPoint:
    """One corpus of the sweep: N documents, the evaluation queries, the training pairs.

    Attributes:
      doc_ids, doc_texts: the N documents, in collection order.
      doc_features_NxF: their features.
      train_features_TxF, train_pos_T: training queries and their document's index in 0..N-1.
    """

    doc_ids: tuple[str, ...]
    doc_texts: tuple[str, ...]
    doc_features_NxF: np.ndarray
    train_features_TxF: np.ndarray
    train_pos_T: np.ndarray

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)


@dataclasses.dataclass(frozen=True, eq=False)
class Prepared:
    """A collection read for the protocol.

    Attributes:
      spec: what was asked; split and train_on resolved below.
      split, train_on: the evaluation split and "train" or "test".
      sizes: the corpus sizes, increasing; corpora[i] indexes doc_ids for sizes[i].
      n_pool: documents in the whole collection.
      doc_ids, doc_texts, doc_features_NxF: the largest corpus.
      query_ids, query_texts, query_features_MxF, qrels: the evaluation queries.
      train_features_TxF, train_doc_T: training queries and their document (index in doc_ids).
      n_dropped_qrels: judgments dropped with on_unknown="drop".
    """

    spec: RealSpec
    split: str
    train_on: str
    sizes: tuple[int, ...]
    corpora: tuple[np.ndarray, ...]
    n_pool: int
    doc_ids: tuple[str, ...]
    doc_texts: tuple[str, ...]
    doc_features_NxF: np.ndarray
    query_ids: tuple[str, ...]
    query_texts: tuple[str, ...]
    query_features_MxF: np.ndarray
    qrels: dict
    train_features_TxF: np.ndarray
    train_doc_T: np.ndarray
    n_dropped_qrels: int = 0

    @property
    def feature_dim(self) -> int:
        return self.doc_features_NxF.shape[1]

    @property
    def n_train_pairs(self) -> int:
        return len(self.train_doc_T)

    def at(self, n_docs: int) -> CorpusPoint:
        """The corpus of size `n_docs` (one of `sizes`)."""
        if n_docs not in self.sizes:
            raise ValueError(f"n_docs: {n_docs} is not one of the prepared sizes {self.sizes}")
        idx_N = self.corpora[self.sizes.index(n_docs)]
        position = np.full(len(self.doc_ids), -1, np.int64)
        position[idx_N] = np.arange(len(idx_N))
        train_pos_T = position[self.train_doc_T]
        assert np.all(train_pos_T >= 0), "training documents are held in every corpus"
        return CorpusPoint(tuple(self.doc_ids[i] for i in idx_N), tuple(self.doc_texts[i] for i in idx_N),
                           self.doc_features_NxF[idx_N], self.train_features_TxF, train_pos_T)


def auto_sizes(n_anchor: int, n_pool: int, per_decade: int = 2) -> tuple[int, ...]:
    """Corpus sizes from the anchored documents to the whole pool, `per_decade` a decade.

    >>> auto_sizes(50, 1000)
    (50, 158, 500, 1000)
    """
    if not 1 <= n_anchor <= n_pool:
        raise ValueError(f"n_anchor: {n_anchor} must lie in [1, n_pool={n_pool}]")
    steps = math.floor(per_decade * math.log10(n_pool / n_anchor) + 1e-9)
    sizes = {round(n_anchor * 10 ** (i / per_decade)) for i in range(steps + 1)}
    return tuple(sorted(s for s in sizes | {n_pool} if s <= n_pool))


def docid_features(features_NxF: np.ndarray, rank: int, seed: int = 0) -> np.ndarray:
    """The top `rank` principal directions of the features (randomised SVD), for docid k-means.

    Semantic docids cluster documents by their features; k-means over F = 4096 hash buckets
    would hold an N x V x F distance array, so the clustering runs on a rank-R projection
    that keeps most of the variance.
    """
    x = np.asarray(features_NxF, np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    N, F = x.shape
    r = min(rank, N, F)
    if r == F:
        return x
    omega_FxS = np.random.default_rng(seed).standard_normal((F, min(F, r + 10)))
    q_NxS, _ = np.linalg.qr(x @ omega_FxS)
    q_NxS, _ = np.linalg.qr(x @ (x.T @ q_NxS))  # one power iteration: sharper spectrum
    u_SxS, s_S, _ = np.linalg.svd(q_NxS.T @ x, full_matrices=False)
    return (q_NxS @ u_SxS[:, :r]) * s_S[None, :r]


def has_train_split(fmt: str, path: str | Path, split: str) -> bool:
    """Whether the directory ships training pairs other than the evaluation split (an irds id:
    whether `<id>/train` exists with its files at hand, the evaluation split being `<id>/<split>`)."""
    root = Path(path)
    if split == "train":
        return False
    if fmt == "irds":
        if not split or "train" not in splits(fmt, path):
            return False
        try:
            irds.check_available(irds.dataset_id(path, "train"), ("queries", "qrels"))
        except (ValueError, FileNotFoundError):
            return False
        return True
    if fmt == "msmarco":
        return bool(existing(root / "queries.train.tsv") and existing(root / "qrels.train.tsv"))
    if fmt == "nq320k":
        return bool(existing(root / "nq_train_doc_newid.tsv"))
    return bool(existing(root / "qrels" / "train.tsv"))


@functools.lru_cache(maxsize=2)
def prepare(spec: RealSpec) -> Prepared:
    """Reads the collection of `spec` and builds every corpus of its size sweep."""
    fmt = spec.format
    path = spec.path if fmt == "irds" else Path(spec.path)
    split = spec.split or _DEFAULT_SPLIT[fmt]
    train_on = spec.train_on
    if train_on == "auto":
        train_on = "train" if has_train_split(fmt, path, split) else "test"
    elif train_on == "train" and not has_train_split(fmt, path, split):
        raise ValueError(f"train_on: 'train', but {path} has no train split besides {split!r}")

    # First pass: qrels only (no passage text is held), then the training pairs.
    head = read_collection(fmt, path, split, doc_filter=frozenset(), on_unknown=spec.on_unknown)
    pairs = _train_pairs(head, fmt, path, train_on, spec)
    anchor = _anchor(head, {d for _, d in pairs})
    n_pool = (irds.docs_count(path) if fmt == "irds" else None) or sum(
        1 for _ in progress(scan_doc_ids(fmt, path), "counting documents"))
    n_anchor = len(anchor.judged_doc_ids())
    sizes = tuple(sorted(spec.sizes)) or auto_sizes(n_anchor, n_pool)
    corpora = nested_corpora(anchor, sizes, spec.seed, pool=scan_doc_ids(fmt, path))

    # Second pass: the texts of the largest corpus only.
    full = read_collection(fmt, path, split, doc_filter=set(corpora[-1]), on_unknown=spec.on_unknown)
    position = {d: i for i, d in enumerate(full.doc_ids)}
    encode = _featurizer(spec, full.doc_texts)
    train_texts = [q for q, _ in pairs]
    return Prepared(
        spec=spec, split=split, train_on=train_on, sizes=sizes,
        corpora=tuple(np.sort([position[d] for d in c]) for c in corpora), n_pool=n_pool,
        doc_ids=full.doc_ids, doc_texts=full.doc_texts, doc_features_NxF=encode(full.doc_texts),
        query_ids=head.query_ids, query_texts=head.query_texts,
        query_features_MxF=encode(head.query_texts), qrels={q: dict(j) for q, j in head.qrels.items()},
        train_features_TxF=encode(train_texts), train_doc_T=np.array([position[d] for _, d in pairs], np.int64),
        n_dropped_qrels=head.n_dropped_qrels,
    )


def _train_pairs(head: Collection, fmt: str, path: Path, train_on: str, spec: RealSpec) -> list[tuple[str, str]]:
    """(query text, relevant document id) pairs to train on."""
    if train_on == "test":
        text = dict(zip(head.query_ids, head.query_texts))
        return [(text[q], d) for q in head.query_ids for d, g in head.qrels[q].items() if g >= 1]
    if fmt == "nq320k":
        pairs = list(head.train_pairs or ())
    else:
        train = read_collection(fmt, path, "train", doc_filter=frozenset(), on_unknown=spec.on_unknown)
        text = dict(zip(train.query_ids, train.query_texts))
        pairs = [(text[q], d) for q in train.query_ids for d, g in train.qrels[q].items() if g >= 1]
    if len(pairs) > spec.max_train_pairs:
        keep = np.sort(np.random.default_rng(spec.seed).choice(len(pairs), spec.max_train_pairs, replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs


def _anchor(head: Collection, train_docs: set[str]) -> Collection:
    """The evaluation qrels plus one pseudo-query judging the training documents, so that
    `nested_corpora` holds both in every corpus."""
    extra = sorted(train_docs - head.judged_doc_ids())
    if not extra:
        return head
    key = "\x00training-pairs"
    return Collection(name=head.name, doc_ids=(), doc_texts=(), query_ids=head.query_ids + (key,),
                      query_texts=head.query_texts + ("",),
                      qrels={**head.qrels, key: {d: 1 for d in extra}})


def _featurizer(spec: RealSpec, doc_texts):
    if spec.features == "minilm":
        from grdr.realdata.minilm import load_minilm

        model = load_minilm()
        return lambda texts: model.encode(list(progress(texts, "MiniLM", total=len(texts), unit="text")))
    fitted = fit_hash_tfidf(progress(doc_texts, "fitting TF-IDF", total=len(doc_texts)),
                            HashTfidfConfig(dim=spec.feature_dim))
    return lambda texts: fitted.transform(progress(texts, "featurising", total=len(texts), unit="text"))
