"""The BM25 baseline, through bm25s (Lucene's BM25 variant by default)."""
from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np


def bm25_topk(doc_texts: Sequence[str], query_texts: Sequence[str], k: int, *,
              k1: float = 1.5, b: float = 0.75, method: str = "lucene",
              stopwords: str | None = "en") -> tuple[np.ndarray, np.ndarray]:
    """The k best documents per query by BM25.

    Args:
      doc_texts: the N documents.
      query_texts: the M queries.
      k: documents per query; capped at N, so a small corpus still returns every document.
      k1, b, method: BM25 parameters and variant, as bm25s names them.
      stopwords: bm25s stopword list ("en") or None.

    Returns:
      idx_MxK int32 document indices and scores_MxK float32, by decreasing score.
    """
    if k < 1:
        raise ValueError(f"k: {k} < 1")
    if not doc_texts:
        raise ValueError("doc_texts: no documents")
    k = min(k, len(doc_texts))
    corpus_tokens = bm25s.tokenize(list(doc_texts), stopwords=stopwords, show_progress=False)
    retriever = bm25s.BM25(k1=k1, b=b, method=method)
    retriever.index(corpus_tokens, show_progress=False)
    if not query_texts:
        return np.zeros((0, k), np.int32), np.zeros((0, k), np.float32)
    # String tokens are mapped through the corpus vocabulary; words it lacks score nothing.
    query_tokens = bm25s.tokenize(list(query_texts), stopwords=stopwords, return_ids=False,
                                  show_progress=False)
    idx_MxK, scores_MxK = retriever.retrieve(query_tokens, k=k, show_progress=False,
                                             backend_selection="numpy")
    return np.asarray(idx_MxK, np.int32), np.asarray(scores_MxK, np.float32)
