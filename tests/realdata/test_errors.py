"""Every malformed input fails with its file, line, what was found and what was expected.

Broken copies are made from the good fixtures in tmp_path, one defect each.
"""
import json
import pickle
import shutil
import warnings
from pathlib import Path

import pytest

from grdr import realdata
from grdr.realdata import DroppedQrelsWarning, FormatError, read_collection

FIXTURES = Path(realdata.__file__).parent / "fixtures"


def _copy(tmp_path, folder):
    dst = tmp_path / folder
    shutil.copytree(FIXTURES / folder, dst)
    return dst


def _edit_line(path, line_no, edit):
    """Replaces 1-based line `line_no` (bytes, without newline) by edit(old)."""
    lines = path.read_bytes().split(b"\n")
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_bytes(b"\n".join(lines))


def _append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _n_lines(path):
    return path.read_bytes().count(b"\n")


def _raises(path, line, *fragments, read):
    with pytest.raises(FormatError) as info:
        read()
    err = info.value
    assert Path(err.path) == path and err.line == line
    message = str(err)
    assert message.startswith(f"{path}:{line}: found ")
    for fragment in fragments:
        assert fragment in message, message
    return err


def test_wrong_column_count_msmarco_collection(tmp_path):
    root = _copy(tmp_path, "msmarco")
    _edit_line(root / "collection.tsv", 5, lambda b: b.replace(b"\t", b" ", 1))
    err = _raises(root / "collection.tsv", 5, "1 tab-separated columns",
                  "expected 2 tab-separated columns (pid passage)",
                  read=lambda: read_collection("msmarco", root))
    assert err.expected.startswith("2 tab-separated columns")


def test_wrong_column_count_msmarco_qrels_and_nq_docs(tmp_path):
    root = _copy(tmp_path, "msmarco")
    _edit_line(root / "qrels.dev.tsv", 4, lambda b: b + b"\textra")
    _raises(root / "qrels.dev.tsv", 4, "5 whitespace-separated columns",
            "4 whitespace-separated columns (qid iteration docid grade)",
            read=lambda: read_collection("msmarco", root))
    nq = _copy(tmp_path, "nq320k")
    _edit_line(nq / "NQ_doc_content.tsv", 9, lambda b: b.rsplit(b"\t", 1)[0])
    _raises(nq / "NQ_doc_content.tsv", 9, "6 tab-separated columns", "7 tab-separated",
            read=lambda: read_collection("nq320k", nq))
    _copy_again = _copy(tmp_path / "again", "nq320k")
    _edit_line(_copy_again / "nq_dev_doc_newid.tsv", 3, lambda b: b.rsplit(b"\t", 1)[0])
    _raises(_copy_again / "nq_dev_doc_newid.tsv", 3, "3 tab-separated columns",
            "4 tab-separated columns (query id randomid semantic_id)",
            read=lambda: read_collection("nq320k", _copy_again))


def test_beir_header_and_columns(tmp_path):
    root = _copy(tmp_path, "beir")
    _edit_line(root / "qrels/test.tsv", 1, lambda b: b"qid\tdocid\tscore")
    _raises(root / "qrels/test.tsv", 1, "header 'qid\\tdocid\\tscore'",
            "query-id<TAB>corpus-id<TAB>score", read=lambda: read_collection("beir", root))
    _edit_line(root / "qrels/test.tsv", 1, lambda b: b"query-id\tcorpus-id\tscore")
    _edit_line(root / "qrels/test.tsv", 6, lambda b: b.replace(b"\t", b" "))
    _raises(root / "qrels/test.tsv", 6, "1 tab-separated columns",
            read=lambda: read_collection("beir", root))


@pytest.mark.parametrize("bad", [b"yes", b"1.5", b""])
def test_non_integer_relevance_trec_qrels(tmp_path, bad):
    root = _copy(tmp_path, "msmarco")
    _edit_line(root / "qrels.dev.tsv", 3, lambda b: b.rsplit(b"\t", 1)[0] + b"\t" + bad)
    if bad:
        _raises(root / "qrels.dev.tsv", 3, f"relevance {bad.decode()!r}",
                "an integer relevance grade", read=lambda: read_collection("msmarco", root))
    else:  # an empty last field leaves three whitespace-separated columns
        _raises(root / "qrels.dev.tsv", 3, "3 whitespace-separated columns",
                read=lambda: read_collection("msmarco", root))


def test_non_integer_relevance_beir_tsv_and_jsonl(tmp_path):
    root = _copy(tmp_path, "beir")
    _edit_line(root / "qrels/test.tsv", 2, lambda b: b.rsplit(b"\t", 1)[0] + b"\t0.5")
    _raises(root / "qrels/test.tsv", 2, "relevance '0.5'", "an integer relevance grade",
            read=lambda: read_collection("beir", root))
    limit = _copy(tmp_path, "limit-small")
    for value, shown in [(1.0, "1.0"), ("1", "'1'"), (True, "True")]:
        def edit(b, value=value):
            obj = json.loads(b)
            obj["score"] = value
            return json.dumps(obj).encode()
        shutil.copy(FIXTURES / "limit-small/qrels.jsonl", limit / "qrels.jsonl")
        _edit_line(limit / "qrels.jsonl", 7, edit)
        if value == "1":  # a string that is an integer is an integer grade
            assert read_collection("beir", limit).n_queries == 1000
            continue
        _raises(limit / "qrels.jsonl", 7, f"relevance {shown}", "an integer relevance grade",
                read=lambda: read_collection("beir", limit))


def test_unknown_query_in_qrels_error_and_drop(tmp_path):
    root = _copy(tmp_path, "msmarco")
    n = _n_lines(root / "qrels.dev.tsv")
    _append(root / "qrels.dev.tsv", "999\t0\t0\t1\n")
    _raises(root / "qrels.dev.tsv", n + 1, "query id '999', which queries.dev.tsv does not hold",
            'on_unknown="drop"', read=lambda: read_collection("msmarco", root))
    full = read_collection("msmarco", FIXTURES / "msmarco")
    with pytest.warns(DroppedQrelsWarning, match=r"dropped 1 judgments: 1 naming queries not in "
                      rf"queries.dev.tsv and 0 naming .* \(first on line {n + 1}\)"):
        c = read_collection("msmarco", root, on_unknown="drop")
    assert c.qrels == full.qrels and c.n_dropped_qrels == 1


def test_unknown_document_in_qrels_error_and_drop(tmp_path):
    root = _copy(tmp_path, "beir")
    full = read_collection("beir", FIXTURES / "beir")
    qid = full.query_ids[0]
    n = _n_lines(root / "qrels/test.tsv")
    _append(root / "qrels/test.tsv", f"{qid}\tnot-a-doc\t1\n{qid}\tnor-this\t2\nq-x\tdoc\t1\n")
    _raises(root / "qrels/test.tsv", n + 1, "document id 'not-a-doc', which corpus.jsonl does "
            "not hold", "a document id from corpus.jsonl",
            read=lambda: read_collection("beir", root))
    with pytest.warns(DroppedQrelsWarning, match="dropped 3 judgments: 1 naming queries not in "
                      "queries.jsonl and 2 naming documents not in corpus.jsonl"):
        c = read_collection("beir", root, on_unknown="drop")
    assert c.qrels == full.qrels and c.n_dropped_qrels == 3
    with pytest.raises(ValueError, match="on_unknown: 'skip'"):
        read_collection("beir", root, on_unknown="skip")


def test_unknown_document_in_nq_rows_drop_counts_train_too(tmp_path):
    root = _copy(tmp_path, "nq320k")
    _edit_line(root / "nq_dev_doc_newid.tsv", 2, lambda b: b"some question\t17\t9999\t")
    _edit_line(root / "nq_train_doc_newid.tsv", 5, lambda b: b"another question\t18\t9998\t")
    _raises(root / "nq_dev_doc_newid.tsv", 2, "document id '9999', which NQ_doc_content.tsv",
            read=lambda: read_collection("nq320k", root))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = read_collection("nq320k", root, on_unknown="drop")
    assert sorted(str(w.message).split(":")[0] for w in caught) == sorted(
        [str(root / "nq_dev_doc_newid.tsv"), str(root / "nq_train_doc_newid.tsv")])
    assert c.n_dropped_qrels == 2 and c.n_queries == 59 and len(c.train_pairs) == 699


@pytest.mark.parametrize("fmt,folder,file,line,copy_from,fragment", [
    ("msmarco", "msmarco", "collection.tsv", None, 3, "document id"),
    ("msmarco", "msmarco", "queries.dev.tsv", None, 2, "query id"),
    ("beir", "beir", "corpus.jsonl", None, 1, "document id"),
    ("beir", "beir", "queries.jsonl", None, 4, "query id"),
    ("nq320k", "nq320k", "NQ_doc_content.tsv", None, 10, "document id"),
    ("nq320k", "nq320k", "nq_dev_doc_newid.tsv", None, 6, "query id"),
])
def test_duplicate_ids(tmp_path, fmt, folder, file, line, copy_from, fragment):
    root = _copy(tmp_path, folder)
    path = root / file
    lines = path.read_bytes().split(b"\n")
    n = _n_lines(path)
    path.write_bytes(path.read_bytes() + lines[copy_from - 1] + b"\n")
    _raises(path, n + 1, fragment, f"again (first on line {copy_from})", "each",
            read=lambda: read_collection(fmt, root))


def test_duplicate_judgment(tmp_path):
    root = _copy(tmp_path, "msmarco")
    first = (root / "qrels.dev.tsv").read_text().splitlines()[1]
    n = _n_lines(root / "qrels.dev.tsv")
    _append(root / "qrels.dev.tsv", first + "\n")
    _raises(root / "qrels.dev.tsv", n + 1, "a second judgment", "(first on line 2)",
            "each (query, document) pair judged once",
            read=lambda: read_collection("msmarco", root))


@pytest.mark.parametrize("fmt,folder,file", [
    ("msmarco", "msmarco", "collection.tsv"), ("msmarco", "msmarco", "queries.dev.tsv"),
    ("msmarco", "msmarco", "qrels.dev.tsv"), ("beir", "beir", "corpus.jsonl"),
    ("beir", "beir", "qrels/test.tsv"), ("beir", "limit-small", "qrels.jsonl"),
    ("nq320k", "nq320k", "NQ_doc_content.tsv"), ("nq320k", "nq320k", "nq_train_doc_newid.tsv"),
])
def test_empty_file(tmp_path, fmt, folder, file):
    root = _copy(tmp_path, folder)
    (root / file).write_bytes(b"")
    _raises(root / file, 1, "an empty file", read=lambda: read_collection(fmt, root))


def test_header_only_beir_qrels(tmp_path):
    root = _copy(tmp_path, "beir")
    (root / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    _raises(root / "qrels/test.tsv", 2, "no judgment after the header",
            read=lambda: read_collection("beir", root))


@pytest.mark.parametrize("fmt,folder,file,line", [
    ("msmarco", "msmarco", "collection.tsv", 7), ("beir", "beir", "queries.jsonl", 12),
    ("nq320k", "nq320k", "nq_dev_doc_newid.tsv", 4), ("nq320k", "nq320k", "NQ_doc_content.tsv", 1),
])
def test_invalid_utf8(tmp_path, fmt, folder, file, line):
    root = _copy(tmp_path, folder)
    _edit_line(root / file, line, lambda b: b[:12] + b"\xff\xfe" + b[12:])
    _raises(root / file, line, "not valid UTF-8 at byte 12", "\\xff\\xfe", "expected UTF-8 text",
            read=lambda: read_collection(fmt, root))


def test_bad_json_and_fields(tmp_path):
    root = _copy(tmp_path, "beir")
    corpus = root / "corpus.jsonl"
    _edit_line(corpus, 3, lambda b: b[:-1])
    _raises(corpus, 3, "invalid JSON", read=lambda: read_collection("beir", root))
    shutil.copy(FIXTURES / "beir/corpus.jsonl", corpus)
    _edit_line(corpus, 4, lambda b: json.dumps({"_id": 5, "text": "x"}).encode())
    _raises(corpus, 4, 'field "_id" of JSON type int', "string fields",
            read=lambda: read_collection("beir", root))
    _edit_line(corpus, 4, lambda b: json.dumps({"_id": "x"}).encode())
    _raises(corpus, 4, 'no field "text"', read=lambda: read_collection("beir", root))
    _edit_line(corpus, 4, lambda b: b"[1, 2]")
    _raises(corpus, 4, "a JSON list", read=lambda: read_collection("beir", root))
    _edit_line(corpus, 4, lambda b: b"")
    _raises(corpus, 4, "invalid JSON", read=lambda: read_collection("beir", root))
    _edit_line(corpus, 4, lambda b: json.dumps({"_id": "", "text": "x"}).encode())
    _raises(corpus, 4, "an empty document id", read=lambda: read_collection("beir", root))


def test_nq_semantic_ids(tmp_path):
    root = _copy(tmp_path, "nq320k")
    dev = root / "nq_dev_doc_newid.tsv"
    _edit_line(dev, 2, lambda b: b.rsplit(b"\t", 1)[0] + b"\t3-x-1")
    _raises(dev, 2, "semantic id '3-x-1'", "integers joined by '-'",
            read=lambda: read_collection("nq320k", root))
    # the same document under a different semantic id in the train file
    doc = dev.read_text().splitlines()[0].split("\t")[2]
    _edit_line(dev, 2, lambda b: b.rsplit(b"\t", 1)[0] + b"\t3-1-1")
    train = (root / "nq_train_doc_newid.tsv").read_text().splitlines()
    line = next(i for i, row in enumerate(train, 1) if row.split("\t")[2] == doc)
    _edit_line(root / "nq_train_doc_newid.tsv", line, lambda b: b.rsplit(b"\t", 1)[0] + b"\t9-9")
    err = _raises(root / "nq_train_doc_newid.tsv", line, f"for document {doc!r}",
                  read=lambda: read_collection("nq320k", root))
    assert "nq_dev_doc_newid.tsv:1" in err.expected


def test_nq_bad_quoting(tmp_path):
    root = _copy(tmp_path, "nq320k")
    dev = root / "nq_dev_doc_newid.tsv"
    _edit_line(dev, 5, lambda b: b'"open quote ' + b)  # never closed: runs to the end of file
    _raises(dev, 5, "a badly quoted field", "4 tab-separated columns",
            read=lambda: read_collection("nq320k", root))
    _edit_line(dev, 5, lambda b: b'"closed" then text\t1\t2\t3')
    _raises(dev, 5, "a badly quoted field", read=lambda: read_collection("nq320k", root))


def test_nq_quoted_fields_may_span_lines(tmp_path):
    root = _copy(tmp_path, "nq320k")
    dev = root / "nq_dev_doc_newid.tsv"
    doc = read_collection("nq320k", root).doc_ids[0]
    _edit_line(dev, 5, lambda b: f'"two\nlines\twith a tab"\t77\t{doc}\t'.encode())
    c = read_collection("nq320k", root)
    assert c.query_texts[4] == "two\nlines\twith a tab" and c.qrels["77"] == {doc: 1}
    _edit_line(dev, 7, lambda b: b"x\ty")  # line 7 of the file is record 6
    _raises(dev, 7, "2 tab-separated columns", read=lambda: read_collection("nq320k", root))


def test_format_error_pickles():
    err = FormatError("a/b.tsv", 3, "x", "y")
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.line, back.found, back.expected, str(back)) == (
        "a/b.tsv", 3, "x", "y", str(err))
