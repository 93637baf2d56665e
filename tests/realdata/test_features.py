"""Hashed TF-IDF against a plain dictionary implementation of its definition."""
import math
import zlib

import numpy as np
import pytest

from grdr.realdata import HashTfidfConfig, fit_hash_tfidf
from grdr.realdata.features import tokens

DOCS = ["The river Vey flows north.", "The Vey river, the Vey valley!", "Red apples; green apples",
        "", "Ünïcode wörds count too", "river"]
QUERIES = ["vey river", "apples", "nothing matches here", ""]


def _reference(docs, queries, dim):
    """sublinear tf x smooth idf over crc32 buckets, L2-normalised, written out plainly."""
    def bags(text):
        words = [w for w in "".join(c if c.isalnum() or c == "_" else " "
                                    for c in text.lower()).split()]
        grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        bag = {}
        for g in grams:
            j = zlib.crc32(g.encode()) % dim
            bag[j] = bag.get(j, 0) + 1
        return bag

    df = {}
    for text in docs:
        for j in bags(text):
            df[j] = df.get(j, 0) + 1
    n = len(docs)

    def vec(text):
        v = np.zeros(dim)
        for j, tf in bags(text).items():
            v[j] = (1 + math.log(tf)) * (math.log((1 + n) / (1 + df.get(j, 0))) + 1)
        norm = np.linalg.norm(v)
        return v / norm if norm else v

    return np.stack([vec(t) for t in docs]), np.stack([vec(t) for t in queries])


@pytest.mark.parametrize("dim", [16, 1024])
def test_matches_the_definition(dim):
    feats = fit_hash_tfidf(DOCS, HashTfidfConfig(dim=dim))
    ref_docs, ref_queries = _reference(DOCS, QUERIES, dim)
    docs_ND = feats.transform(DOCS)
    queries_MD = feats.transform(QUERIES)
    assert docs_ND.dtype == np.float32 and docs_ND.shape == (len(DOCS), dim)
    np.testing.assert_allclose(docs_ND, ref_docs, atol=1e-6)
    np.testing.assert_allclose(queries_MD, ref_queries, atol=1e-6)
    assert feats.n_docs == len(DOCS)


def test_rows_are_unit_or_zero_and_chunking_changes_nothing():
    one = fit_hash_tfidf(iter(DOCS), HashTfidfConfig(dim=256, chunk_size=1))
    many = fit_hash_tfidf(DOCS, HashTfidfConfig(dim=256, chunk_size=1000))
    np.testing.assert_array_equal(one.idf_D, many.idf_D)
    np.testing.assert_array_equal(one.transform(DOCS), many.transform(iter(DOCS)))
    norms = np.linalg.norm(many.transform(DOCS + QUERIES), axis=1)
    expected = [0.0 if not tokens(t) else 1.0 for t in DOCS + QUERIES]
    np.testing.assert_allclose(norms, expected, atol=1e-6)
    assert many.transform([]).shape == (0, 256)


def test_word_order_matters_only_through_bigrams():
    plain = fit_hash_tfidf(DOCS, HashTfidfConfig(dim=4096, bigrams=False))
    bigram = fit_hash_tfidf(DOCS, HashTfidfConfig(dim=4096))
    a, b = "vey river flows", "flows river vey"
    np.testing.assert_array_equal(*plain.transform([a, b]))
    assert not np.array_equal(*bigram.transform([a, b]))


def test_retrieves_the_matching_document():
    feats = fit_hash_tfidf(DOCS, HashTfidfConfig(dim=4096))
    scores_MN = feats.transform(["green apples", "wörds"]) @ feats.transform(DOCS).T
    assert list(scores_MN.argmax(axis=1)) == [2, 4]


def test_config_validation():
    with pytest.raises(ValueError, match="dim"):
        HashTfidfConfig(dim=0)
    with pytest.raises(ValueError, match="chunk_size"):
        HashTfidfConfig(chunk_size=0)
