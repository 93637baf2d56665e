"""Gzipped files as distributed (collection.tsv.gz, corpus.jsonl.gz, ...): gzip copies of every
shipped fixture read equal to the plain files, and errors inside a .gz name it and its line."""
import gzip
import shutil
from pathlib import Path

import pytest

from grdr import realdata
from grdr.realdata import FormatError, read_collection, read_qrels, read_run, scan_doc_ids, splits, write_run
from grdr.realdata.protocol import has_train_split

FIXTURES = Path(realdata.__file__).parent / "fixtures"
FIELDS = ("name", "doc_ids", "doc_texts", "query_ids", "query_texts", "qrels", "train_pairs", "semantic_ids",
          "n_dropped_qrels")
CASES = [("msmarco", "msmarco", "dev"), ("msmarco", "msmarco", "train"), ("nq320k", "nq320k", "dev"),
         ("beir", "beir", "test"), ("beir", "beir", "train"), ("beir", "limit-small", "test")]


def _gzip_copy(folder: str, dst: Path, only=None) -> Path:
    """A copy of the fixture with its data files (all, or those named in `only`) gzipped."""
    shutil.copytree(FIXTURES / folder, dst)
    for path in sorted(dst.rglob("*")):
        if path.suffix in (".tsv", ".jsonl") and (only is None or path.name in only):
            with open(path, "rb") as src, gzip.open(path.with_name(path.name + ".gz"), "wb") as out:
                shutil.copyfileobj(src, out)
            path.unlink()
    return dst


def _same(a, b):
    for field in FIELDS:
        assert getattr(a, field) == getattr(b, field), field


@pytest.mark.parametrize("fmt, folder, split", CASES)
def test_gzip_copies_read_equal_to_the_plain_fixture(tmp_path, fmt, folder, split):
    root = _gzip_copy(folder, tmp_path / folder)
    assert not list(root.rglob("*.tsv")) and not list(root.rglob("*.jsonl"))
    _same(read_collection(fmt, root, split), read_collection(fmt, FIXTURES / folder, split))
    assert splits(fmt, root) == splits(fmt, FIXTURES / folder)
    assert list(scan_doc_ids(fmt, root)) == list(scan_doc_ids(fmt, FIXTURES / folder))
    assert has_train_split(fmt, root, "dev" if fmt != "beir" else "test") == has_train_split(
        fmt, FIXTURES / folder, "dev" if fmt != "beir" else "test")


def test_some_files_gzipped_and_trec_files(tmp_path):
    root = _gzip_copy("beir", tmp_path / "beir", only={"corpus.jsonl"})  # as BEIR ships it: qrels plain
    assert (root / "corpus.jsonl.gz").is_file() and (root / "qrels" / "test.tsv").is_file()
    _same(read_collection("beir", root), read_collection("beir", FIXTURES / "beir"))
    plain = read_qrels(FIXTURES / "msmarco" / "qrels.dev.tsv")
    gz = _gzip_copy("msmarco", tmp_path / "msmarco", only={"qrels.dev.tsv"})
    assert read_qrels(gz / "qrels.dev.tsv.gz") == read_qrels(gz / "qrels.dev.tsv") == plain
    run = {"q1": {"d1": 2.0, "d2": 1.5}, "q2": {"d3": 0.25}}
    write_run(tmp_path / "run.trec", run, tag="t")
    with open(tmp_path / "run.trec", "rb") as src, gzip.open(tmp_path / "run.trec.gz", "wb") as out:
        shutil.copyfileobj(src, out)
    (tmp_path / "run.trec").unlink()
    assert read_run(tmp_path / "run.trec.gz") == read_run(tmp_path / "run.trec") == run


def test_a_missing_file_names_both_names(tmp_path):
    root = _gzip_copy("msmarco", tmp_path / "msmarco")
    (root / "collection.tsv.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"collection\.tsv: no such file \(nor collection\.tsv\.gz\)"):
        read_collection("msmarco", root)


def _rewrite_gz(path: Path, line_no: int, edit) -> None:
    lines = gzip.open(path, "rb").read().split(b"\n")
    lines[line_no - 1] = edit(lines[line_no - 1])
    with gzip.open(path, "wb") as f:
        f.write(b"\n".join(lines))


def _raises(path: Path, line: int, fragment: str, read):
    with pytest.raises(FormatError) as info:
        read()
    assert Path(info.value.path) == path and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: found ") and fragment in str(info.value), str(info.value)


def test_a_malformed_line_inside_a_gz_is_reported_with_its_name_and_line(tmp_path):
    root = _gzip_copy("msmarco", tmp_path / "msmarco")
    corpus = root / "collection.tsv.gz"
    _rewrite_gz(corpus, 5, lambda b: b.replace(b"\t", b" ", 1))
    _raises(corpus, 5, "1 tab-separated columns", lambda: read_collection("msmarco", root))

    beir = _gzip_copy("beir", tmp_path / "beir")
    queries = beir / "queries.jsonl.gz"
    _rewrite_gz(queries, 7, lambda b: b[:-3])
    _raises(queries, 7, "invalid JSON", lambda: read_collection("beir", beir))

    nq = _gzip_copy("nq320k", tmp_path / "nq320k")
    docs = nq / "NQ_doc_content.tsv.gz"
    first = gzip.open(docs, "rb").read().split(b"\n")[1].split(b"\t")[0]  # the id on line 2
    _rewrite_gz(docs, 12, lambda b: first + b"\t" + b.split(b"\t", 1)[1])
    _raises(docs, 12, f"document id {first.decode()!r} again (first on line 2)", lambda: read_collection("nq320k", nq))


def test_a_truncated_gz_is_a_format_error(tmp_path):
    root = _gzip_copy("msmarco", tmp_path / "msmarco")
    corpus = root / "collection.tsv.gz"
    data = corpus.read_bytes()
    corpus.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="corrupt or truncated gzip stream") as info:
        read_collection("msmarco", root)
    assert Path(info.value.path) == corpus and info.value.line > 1
