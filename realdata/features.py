"""Hashed word and bigram TF-IDF features: no download, the same numbers on every machine.

Text is lower-cased and split into Unicode word tokens; each word and each pair of adjacent
words goes to bucket crc32(utf-8 bytes) mod D, a fixed hash (Python's own hash() is salted
per process). A document's row is (1 + log tf) * idf per bucket, L2-normalised; the idf,
log((1 + N) / (1 + df)) + 1, comes from the corpus and is reused for queries. Rows are built
in chunks, so only one chunk of counts is dense at a time.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

_WORD = re.compile(r"\w+")


@dataclasses.dataclass(frozen=True)
class HashTfidfConfig:
    """Args: dim: number of hash buckets D; bigrams: add adjacent word pairs; chunk_size: rows
    counted at once."""

    dim: int = 4096
    bigrams: bool = True
    chunk_size: int = 1024

    def __post_init__(self):
        if self.dim < 1:
            raise ValueError(f"dim: {self.dim} < 1")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size: {self.chunk_size} < 1")


@dataclasses.dataclass(frozen=True, eq=False)
class HashTfidf:
    """A fitted featurizer: the corpus idf per bucket.

    Attributes:
      config: the hashing settings.
      idf_D: float32 inverse document frequency of each bucket.
      n_docs: the size of the corpus it was fitted on.
    """

    config: HashTfidfConfig
    idf_D: np.ndarray
    n_docs: int

    def __post_init__(self):
        if self.idf_D.shape != (self.config.dim,):
            raise ValueError(f"idf_D: shape {self.idf_D.shape} is not ({self.config.dim},)")

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        """float32 features_NxD of `texts` (a text with no word gets a zero row)."""
        chunks = []
        for rows, cols, counts, n in _chunk_counts(texts, self.config):
            feats = np.zeros((n, self.config.dim), np.float32)
            feats[rows, cols] = (1.0 + np.log(counts)) * self.idf_D[cols]
            norms_N = np.linalg.norm(feats, axis=1)
            feats /= np.maximum(norms_N, np.finfo(np.float32).tiny)[:, None]
            chunks.append(feats)
        return np.concatenate(chunks) if chunks else np.zeros((0, self.config.dim), np.float32)


def fit_hash_tfidf(doc_texts: Iterable[str], config: HashTfidfConfig = HashTfidfConfig()
                   ) -> HashTfidf:
    """Counts document frequencies over the corpus in one streaming pass.

    >>> f = fit_hash_tfidf(["red apple", "green apple"], HashTfidfConfig(dim=64))
    >>> feats = f.transform(["red apple", ""])
    >>> feats.shape, round(float(np.linalg.norm(feats[0])), 5), float(feats[1].sum())
    ((2, 64), 1.0, 0.0)
    """
    df_D = np.zeros(config.dim, np.int64)
    n_docs = 0
    for _, cols, _, n in _chunk_counts(doc_texts, config):
        df_D += np.bincount(cols, minlength=config.dim)  # (row, col) pairs are unique
        n_docs += n
    idf_D = np.log((1.0 + n_docs) / (1.0 + df_D)) + 1.0
    return HashTfidf(config, idf_D.astype(np.float32), n_docs)


def tokens(text: str, bigrams: bool = True) -> list[str]:
    """The words of `text`, lower-cased, followed by its adjacent word pairs."""
    words = _WORD.findall(text.lower())
    if bigrams:
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return words


@functools.lru_cache(maxsize=1 << 20)
def _bucket(token: str, dim: int) -> int:
    return zlib.crc32(token.encode("utf-8")) % dim


def _chunk_counts(texts: Iterable[str], config: HashTfidfConfig
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Per chunk: (row, bucket) pairs, each once, with their counts, and the chunk's length."""
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == config.chunk_size:
            yield _counts(chunk, config)
            chunk = []
    if chunk:
        yield _counts(chunk, config)


def _counts(chunk: Sequence[str], config: HashTfidfConfig):
    keys = [row * config.dim + _bucket(tok, config.dim)
            for row, text in enumerate(chunk) for tok in tokens(text, config.bigrams)]
    uniq, counts = np.unique(np.asarray(keys, np.int64), return_counts=True)
    return uniq // config.dim, uniq % config.dim, counts, len(chunk)
