"""The BM25 baseline, through bm25s with Lucene's BM25 variant (realdata/README.md, "BM25").

Scores are those of Lucene's BM25Similarity (method "lucene" of bm25s):

    score(q, d) = sum over query terms t in d of  idf(t) * tf / (tf + k1 (1 - b + b |d| / avgdl)),
    idf(t) = log(1 + (N - df + 0.5) / (df + 0.5)),

so that, with the same tokens, a ranking agrees with Anserini / pyserini's up to Lucene's lossy
one-byte document lengths. Tokens: lower-cased runs of two or more word characters, then the
English stopwords (the 33 words of Lucene's EnglishAnalyzer, bm25s' "en" list) removed, then
optionally the Porter stemmer (PyStemmer's "porter", the algorithm of Lucene's PorterStemFilter).
`PYSERINI_BEIR` holds pyserini's BEIR defaults: k1 0.9, b 0.4, Porter stemming, English stopwords.
"""
from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np

STEMMERS = ("none", "porter")
STOPWORDS = ("none", "en")
PYSERINI_BEIR = {"k1": 0.9, "b": 0.4, "stemmer": "porter", "stopwords": "en"}


def bm25_topk(doc_texts: Sequence[str], query_texts: Sequence[str], k: int, *,
              k1: float = 1.5, b: float = 0.75, method: str = "lucene",
              stemmer: str | None = "none", stopwords: str | None = "en"
              ) -> tuple[np.ndarray, np.ndarray]:
    """The k best documents per query by BM25.

    Args:
      doc_texts: the N documents.
      query_texts: the M queries.
      k: documents per query; capped at N, so a small corpus still returns every document.
      k1, b, method: BM25 parameters and variant, as bm25s names them (k1 > 0, b in [0, 1]).
      stemmer: "none" (or None) or "porter" (needs PyStemmer).
      stopwords: "en" (Lucene's English list) or "none" (or None).

    Returns:
      idx_MxK int32 document indices and scores_MxK float32, by decreasing score.

    >>> idx, scores = bm25_topk(["rivers flow", "apples fall"], ["river"], k=1, stemmer="porter")
    >>> int(idx[0, 0]), bool(scores[0, 0] > 0)
    (0, True)
    """
    if k < 1:
        raise ValueError(f"k: {k} < 1")
    if not doc_texts:
        raise ValueError("doc_texts: no documents")
    if not (np.isfinite(k1) and k1 > 0):
        raise ValueError(f"k1: {k1}: expected a finite number > 0")
    if not 0 <= b <= 1:
        raise ValueError(f"b: {b}: expected a number in [0, 1]")
    stemmer = "none" if stemmer is None else stemmer
    stopwords = "none" if stopwords is None else stopwords
    if stemmer not in STEMMERS:
        raise ValueError(f"stemmer: {stemmer!r} is not one of {STEMMERS}")
    if stopwords not in STOPWORDS:
        raise ValueError(f"stopwords: {stopwords!r} is not one of {STOPWORDS}")
    tokenize = dict(stopwords=[] if stopwords == "none" else stopwords,
                    stemmer=_stemmer() if stemmer == "porter" else None, show_progress=False)
    k = min(k, len(doc_texts))
    corpus_tokens = bm25s.tokenize(list(doc_texts), **tokenize)
    retriever = bm25s.BM25(k1=k1, b=b, method=method)
    retriever.index(corpus_tokens, show_progress=False)
    if not query_texts:
        return np.zeros((0, k), np.int32), np.zeros((0, k), np.float32)
    # String tokens are mapped through the corpus vocabulary; words it lacks score nothing.
    query_tokens = bm25s.tokenize(list(query_texts), return_ids=False, **tokenize)
    idx_MxK, scores_MxK = retriever.retrieve(query_tokens, k=k, show_progress=False,
                                             backend_selection="numpy")
    return np.asarray(idx_MxK, np.int32), np.asarray(scores_MxK, np.float32)


def _stemmer():
    try:
        import Stemmer
    except ImportError:
        raise ImportError("stemmer='porter' needs PyStemmer: pip install PyStemmer==3.1.0") from None
    return Stemmer.Stemmer("porter")
