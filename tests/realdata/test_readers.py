"""Each reader on its own fixture and on LIMIT-small, checked against a plain parse of the files."""
import csv
import json
from pathlib import Path

import shutil

import pytest

from grdr import realdata
from grdr.realdata import Collection, read_collection, scan_doc_ids

FIXTURES = Path(realdata.__file__).parent / "fixtures"


def _tsv(path, sep="\t"):
    return [line.rstrip("\n").split(sep) for line in open(path, encoding="utf-8")]


def _jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_msmarco_matches_plain_parse():
    root = FIXTURES / "msmarco"
    c = read_collection("msmarco", root)
    passages = {pid: text for pid, text in _tsv(root / "collection.tsv")}
    queries = dict(_tsv(root / "queries.dev.tsv"))
    qrels = {}
    for qid, _, pid, rel in (line.split() for line in open(root / "qrels.dev.tsv")):
        qrels.setdefault(qid, {})[pid] = int(rel)
    assert c.name == "msmarco:dev"
    assert dict(zip(c.doc_ids, c.doc_texts)) == passages
    assert c.qrels == qrels
    # queries.dev.tsv also holds unjudged queries; only the judged ones are kept, in file order
    assert len(queries) > len(qrels)
    assert list(c.query_ids) == [q for q in queries if q in qrels]
    assert list(c.query_texts) == [queries[q] for q in c.query_ids]
    assert c.train_pairs is None and c.semantic_ids is None and c.n_dropped_qrels == 0


def test_msmarco_train_split():
    c = read_collection("msmarco", FIXTURES / "msmarco", "train")
    assert c.name == "msmarco:train"
    qrels_path = FIXTURES / "msmarco/qrels.train.tsv"
    assert set(c.query_ids) == {line.split()[0] for line in open(qrels_path)}


def test_doc_filter_holds_only_kept_texts_and_keeps_qrels():
    full = read_collection("msmarco", FIXTURES / "msmarco")
    keep = set(full.doc_ids[::7]) | full.judged_doc_ids()
    part = read_collection("msmarco", FIXTURES / "msmarco", doc_filter=keep)
    assert set(part.doc_ids) == keep
    assert part.qrels == full.qrels
    texts = dict(zip(full.doc_ids, full.doc_texts))
    assert all(texts[d] == t for d, t in zip(part.doc_ids, part.doc_texts))
    # order is file order
    assert list(part.doc_ids) == [d for d in full.doc_ids if d in keep]
    none = read_collection("msmarco", FIXTURES / "msmarco", doc_filter=frozenset())
    assert none.n_docs == 0 and none.qrels == full.qrels


def test_beir_joins_title_and_text_and_keeps_grades():
    root = FIXTURES / "beir"
    c = read_collection("beir", root)
    docs = {o["_id"]: f"{o['title']} {o['text']}" for o in _jsonl(root / "corpus.jsonl")}
    rows = _tsv(root / "qrels" / "test.tsv")
    assert rows[0] == ["query-id", "corpus-id", "score"]
    qrels = {}
    for qid, did, score in rows[1:]:
        qrels.setdefault(qid, {})[did] = int(score)
    assert dict(zip(c.doc_ids, c.doc_texts)) == docs
    assert c.qrels == qrels
    assert {g for judged in c.qrels.values() for g in judged.values()} == {0, 1, 2}
    texts = {o["_id"]: o["text"] for o in _jsonl(root / "queries.jsonl")}
    assert [texts[q] for q in c.query_ids] == list(c.query_texts)
    train = read_collection("beir", root, "train")
    assert not set(train.query_ids) & set(c.query_ids)


def test_beir_qrels_jsonl_on_limit_small():
    c = read_collection("beir", FIXTURES / "limit-small")
    assert (c.n_docs, c.n_queries) == (46, 1000)
    assert all(len(j) == 2 and set(j.values()) == {1} for j in c.qrels.values())
    assert c.query_texts[0] == "Who likes Joshua Trees?"
    # empty titles add nothing to the text
    assert c.doc_texts[0].startswith("Geneva Durben likes")
    assert "CC-BY 4.0" in (FIXTURES / "limit-small" / "README.md").read_text()


def test_nq320k_queries_train_pairs_and_semantic_ids():
    root = FIXTURES / "nq320k"
    c = read_collection("nq320k", root)
    docs = {f[0]: f[3] for f in _tsv(root / "NQ_doc_content.tsv")}
    with open(root / "nq_dev_doc_newid.tsv", newline="") as f:
        dev = list(csv.reader(f, delimiter="\t"))
    with open(root / "nq_train_doc_newid.tsv", newline="") as f:
        train = list(csv.reader(f, delimiter="\t"))
    assert dict(zip(c.doc_ids, c.doc_texts)) == docs
    assert list(c.query_ids) == [row[1] for row in dev]
    assert list(c.query_texts) == [row[0] for row in dev]
    assert c.qrels == {row[1]: {row[2]: 1} for row in dev}
    assert any('"' in t for t in c.query_texts)  # pandas-quoted fields come back unquoted
    assert c.train_pairs == tuple((row[0], row[2]) for row in train)
    expected_sem = {row[2]: tuple(int(x) for x in row[3].split("-")) for row in dev + train}
    assert c.semantic_ids == expected_sem
    assert len(set(c.semantic_ids.values())) == len(c.semantic_ids)  # a docid names one doc


def test_nq320k_train_split_and_without_train():
    root = FIXTURES / "nq320k"
    train = read_collection("nq320k", root, "train")
    assert train.n_queries == len(train.train_pairs) == 700
    bare = realdata.nq320k.read_nq320k(root, with_train=False)
    assert bare.train_pairs is None and bare.n_queries == 60


@pytest.mark.parametrize("fmt,folder", [("msmarco", "msmarco"), ("beir", "beir"),
                                        ("nq320k", "nq320k"), ("beir", "limit-small")])
def test_scan_doc_ids_streams_the_corpus_in_file_order(fmt, folder):
    c = read_collection(fmt, FIXTURES / folder)
    assert tuple(scan_doc_ids(fmt, FIXTURES / folder)) == c.doc_ids


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="fmt: 'trec'"):
        read_collection("trec", FIXTURES / "msmarco")
    # a split that is not there: the splits that are
    with pytest.raises(FileNotFoundError, match="no split 'eval'; the splits there are dev, train"):
        read_collection("msmarco", FIXTURES / "msmarco", "eval")
    with pytest.raises(FileNotFoundError, match="no split 'dev'; the splits there are test"):
        read_collection("beir", FIXTURES / "beir", "dev")
    # a split whose judgments are there but whose queries are not: the file and the layout
    shutil.copytree(FIXTURES / "msmarco", tmp_path / "m")
    (tmp_path / "m" / "qrels.dev.tsv").rename(tmp_path / "m" / "qrels.eval.tsv")
    with pytest.raises(FileNotFoundError, match="queries.eval.tsv.*MS MARCO"):
        read_collection("msmarco", tmp_path / "m", "eval")


def test_collection_validates_fields_and_subsets():
    good = dict(name="t", doc_ids=("a", "b"), doc_texts=("x", "y"), query_ids=("q",),
                query_texts=("z",), qrels={"q": {"a": 1}})
    c = Collection(**good)
    assert c.subset(["b", "a"]).doc_ids == ("a", "b")
    assert c.subset(["b"]).doc_texts == ("y",)
    with pytest.raises(ValueError, match="doc_ids: 1 ids not in t"):
        c.subset(["c"])
    for change, field in [({"doc_texts": ("x",)}, "doc_texts"),
                          ({"doc_ids": ("a", "a")}, "doc_ids"),
                          ({"query_texts": ()}, "query_texts"),
                          ({"qrels": {}}, "qrels"),
                          ({"n_dropped_qrels": -1}, "n_dropped_qrels")]:
        with pytest.raises(ValueError, match=field):
            Collection(**{**good, **change})
