"""BM25 against its Lucene formula, and against a random run on a fixture with ir_measures."""
import math
import re
from pathlib import Path

import ir_measures
import numpy as np
import pytest
from ir_measures import RR, Success, nDCG

import realdata
from realdata import bm25_topk, read_collection, run_from_topk

FIXTURES = Path(realdata.__file__).parent / "fixtures"
DOCS = ["the vey river floods the valley every spring", "apple orchards line the vey",
        "copper mining and glass blowing", "river river river", "spring apple festival"]


def _lucene_bm25(docs, query, k1=1.5, b=0.75):
    tok = [re.findall(r"(?u)\b\w\w+\b", d.lower()) for d in docs]
    n, avg = len(docs), sum(map(len, tok)) / len(docs)
    scores = []
    for words in tok:
        s = 0.0
        for t in set(re.findall(r"(?u)\b\w\w+\b", query.lower())):
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
