"""BM25 against its Lucene formula, and against a random run on a fixture with ir_measures."""
import math
import re
from pathlib import Path

import ir_measures
import numpy as np
import pytest
from ir_measures import RR, Success, nDCG

from grdr import realdata
from grdr.realdata import bm25_topk, read_collection, run_from_topk

FIXTURES = Path(realdata.__file__).parent / "fixtures"
DOCS = ["the vey river floods the valley every spring", "apple orchards line the vey",
        "copper mining and glass blowing", "river river river", "spring apple festival"]


def _tokens(text, stopwords=(), stem=None):
    words = [w for w in re.findall(r"(?u)\b\w\w+\b", text.lower()) if w not in stopwords]
    return [stem(w) for w in words] if stem else words


def _lucene_bm25(docs, query, k1=1.5, b=0.75, stopwords=(), stem=None):
    """Lucene's BM25 in float64: idf log(1 + (N - df + .5) / (df + .5)), tf / (tf + k1 (1 - b + b dl / avgdl))."""
    tok = [_tokens(d, stopwords, stem) for d in docs]
    n, avg = len(docs), sum(map(len, tok)) / len(docs)
    scores = []
    for words in tok:
        s = 0.0
        for t in _tokens(query, stopwords, stem):  # a repeated term counts again, as in Anserini's queries
            df = sum(t in w for w in tok)
            if df == 0:
                continue
            tf = words.count(t)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            s += idf * tf / (tf + k1 * (1 - b + b * len(words) / avg))
        scores.append(s)
    return np.array(scores)


@pytest.mark.parametrize("query", ["vey river", "apple spring", "copper", "unknown words"])
def test_scores_follow_lucene_bm25(query):
    idx_MxK, scores_MxK = bm25_topk(DOCS, [query], k=len(DOCS), stopwords=None)
    ref_N = _lucene_bm25(DOCS, query)
    assert idx_MxK.shape == scores_MxK.shape == (1, len(DOCS))
    assert sorted(idx_MxK[0]) == list(range(len(DOCS)))
    np.testing.assert_allclose(scores_MxK[0], ref_N[idx_MxK[0]], rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(scores_MxK[0]) <= 0)


LUCENE_EN_STOPWORDS = {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
                       "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
                       "these", "they", "this", "to", "was", "will", "with"}  # Lucene's EnglishAnalyzer
CORPUS = ["the rivers of the vey flooded the valleys in spring", "apple orchards are lining the vey river",
          "copper mining and glass blowing in the hills", "a river, rivers and more flooding rivers",
          "the spring apple festival is held by the flooded orchard", "mining the valley for glass and copper ore",
          "orchards, apples and a festival of springs"]


@pytest.mark.parametrize("k1, b", [(0.9, 0.4), (1.2, 0.0), (2.0, 1.0), (0.3, 0.75)])
@pytest.mark.parametrize("stemmer, stopwords", [("none", "none"), ("none", "en"), ("porter", "en")])
@pytest.mark.parametrize("query", ["rivers flooding the valley", "apple festival orchards apple orchard", "copper and glass mining in the river valley"])
def test_k1_b_stemmer_stopwords_against_brute_force_lucene_bm25(k1, b, stemmer, stopwords, query):
    stem = None
    if stemmer == "porter":
        stem = pytest.importorskip("Stemmer").Stemmer("porter").stemWord
    ref_N = _lucene_bm25(CORPUS, query, k1=k1, b=b, stem=stem,
                         stopwords=LUCENE_EN_STOPWORDS if stopwords == "en" else ())
    assert np.sum(ref_N > 0) >= 2
    idx_MxK, scores_MxK = bm25_topk(CORPUS, [query], k=len(CORPUS), k1=k1, b=b, stemmer=stemmer,
                                    stopwords=stopwords)
    # Each returned document carries its reference score, and the scores come in the reference's
    # decreasing order: the ranking is the reference's, up to documents whose scores tie.
    np.testing.assert_allclose(scores_MxK[0], ref_N[idx_MxK[0]], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(scores_MxK[0], np.sort(ref_N)[::-1], rtol=1e-5, atol=1e-12)
    top3 = bm25_topk(CORPUS, [query], k=3, k1=k1, b=b, stemmer=stemmer, stopwords=stopwords)[1][0]
    np.testing.assert_allclose(top3, np.sort(ref_N)[::-1][:3], rtol=1e-5)


def test_stemming_and_stopwords_change_what_matches():
    docs = ["the rivers flooded", "a river flood"]
    plain = bm25_topk(docs, ["flooding river"], k=2, stopwords="none")[1][0]
    stemmed = bm25_topk(docs, ["flooding river"], k=2, stemmer="porter")[1][0]
    assert plain[0] > 0 and plain[1] == 0  # only "river" matches, once
    assert stemmed[1] > 0  # flooding, flooded, flood and rivers, river share their stems
    assert bm25_topk(["the the the", "cats"], ["the cats"], k=2, stopwords="en")[0][0, 0] == 1


def test_bm25_settings_are_validated_by_name():
    from grdr.experiments.real_scaling import Config

    for kwargs, message in [({"bm25_k1": -1}, "Config.bm25_k1=-1: expected > 0"),
                            ({"bm25_k1": float("nan")}, "Config.bm25_k1=nan: expected > 0"),
                            ({"bm25_b": 1.5}, "Config.bm25_b=1.5: expected a number in [0, 1]"),
                            ({"bm25_stemmer": "snowball"}, "Config.bm25_stemmer='snowball': expected one of"),
                            ({"bm25_stopwords": "de"}, "Config.bm25_stopwords='de': expected one of")]:
        with pytest.raises(ValueError) as info:
            Config(**kwargs)
        assert str(info.value).startswith(message), str(info.value)
    for kwargs, message in [({"k1": 0}, "k1: 0"), ({"b": -0.1}, "b: -0.1"), ({"stemmer": "lancaster"}, "stemmer"),
                            ({"stopwords": "fr"}, "stopwords")]:
        with pytest.raises(ValueError, match=message):
            bm25_topk(DOCS, ["river"], k=1, **kwargs)


def test_k_is_capped_at_the_corpus_and_validated():
    idx_MxK, scores_MxK = bm25_topk(DOCS, ["river", "apple"], k=100)
    assert idx_MxK.shape == (2, len(DOCS)) and idx_MxK.dtype == np.int32
    assert scores_MxK.dtype == np.float32
    assert bm25_topk(DOCS, [], k=3)[0].shape == (0, 3)
    with pytest.raises(ValueError, match="k: 0"):
        bm25_topk(DOCS, ["river"], k=0)
    with pytest.raises(ValueError, match="doc_texts"):
        bm25_topk([], ["river"], k=1)


@pytest.mark.parametrize("fmt,folder", [("msmarco", "msmarco"), ("beir", "beir"),
                                        ("nq320k", "nq320k")])
def test_bm25_beats_a_random_run_on_the_fixture(fmt, folder):
    c = read_collection(fmt, FIXTURES / folder)
    run = run_from_topk(c.query_ids, c.doc_ids, *bm25_topk(c.doc_texts, c.query_texts, k=10))
    rng = np.random.default_rng(0)
    random_run = {q: {c.doc_ids[j]: float(10 - r) for r, j in
                      enumerate(rng.choice(c.n_docs, size=10, replace=False))}
                  for q in c.query_ids}
    measures = [nDCG @ 10, RR @ 10, Success @ 1]
    bm25 = ir_measures.calc_aggregate(measures, c.qrels, run)
    rand = ir_measures.calc_aggregate(measures, c.qrels, random_run)
    assert bm25[nDCG @ 10] > 0.6 and rand[nDCG @ 10] < 0.15
    assert bm25[Success @ 1] > rand[Success @ 1] + 0.3
