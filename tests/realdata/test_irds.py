"""Reading by ir_datasets id: a dataset built with ir_datasets' own classes over the MS MARCO
fixture reads equal to the MS MARCO reader; unknown ids and ids whose files are missing fail in
one line, and nothing is downloaded."""
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ir_datasets = pytest.importorskip("ir_datasets")
from ir_datasets.datasets.base import Dataset  # noqa: E402
from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries  # noqa: E402
from ir_datasets.util import Download, LocalDownload, RequestsDownload  # noqa: E402

from grdr import realdata  # noqa: E402
from grdr.cli import cmd_real  # noqa: E402
from grdr.realdata import FormatError, read_collection, scan_doc_ids, splits  # noqa: E402
from grdr.realdata.irds import NotDownloaded, check_available, read_irds  # noqa: E402
from grdr.realdata.protocol import has_train_split  # noqa: E402

FIXTURES = Path(realdata.__file__).parent / "fixtures"
FIELDS = ("doc_ids", "doc_texts", "query_ids", "query_texts", "qrels", "train_pairs", "semantic_ids",
          "n_dropped_qrels")


def _register(root: Path, splits=("dev", "train"), docs=None) -> str:
    """Registers <id>/<split> for each split over the MS MARCO files in `root`; returns <id>."""
    base = f"grdr-test-{uuid.uuid4().hex[:12]}"
    docs = docs or TsvDocs(LocalDownload(root / "collection.tsv"))
    ir_datasets.registry.register(base, Dataset(docs))
    for split in splits:
        ir_datasets.registry.register(f"{base}/{split}", Dataset(
            docs, TsvQueries(LocalDownload(root / f"queries.{split}.tsv")),
            TrecQrels(LocalDownload(root / f"qrels.{split}.tsv"), {})))
    return base


@pytest.fixture
def msmarco(tmp_path):
    root = tmp_path / "msmarco"
    shutil.copytree(FIXTURES / "msmarco", root)  # a copy: ir_datasets may write docstores beside
    return root


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any HTTP request ir_datasets would make fails the test."""
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)


def _same(a, b):
    for field in FIELDS:
        assert getattr(a, field) == getattr(b, field), field


def test_irds_reads_equal_to_the_msmarco_reader(msmarco):
    base = _register(msmarco)
    expected = read_collection("msmarco", msmarco, "dev")
    got = read_irds(f"{base}/dev")
    assert got.name == f"irds:{base}/dev" and got.n_docs == 285 and got.n_queries == expected.n_queries
    _same(got, expected)
    _same(read_collection("irds", base, "dev"), expected)  # the split appended to the id
    _same(read_collection("irds", f"{base}/train"), read_collection("msmarco", msmarco, "train"))
    kept = set(expected.doc_ids[::7]) | expected.judged_doc_ids()
    _same(read_collection("irds", f"{base}/dev", doc_filter=kept),
          read_collection("msmarco", msmarco, "dev", doc_filter=kept))
    assert list(scan_doc_ids("irds", f"{base}/dev")) == list(scan_doc_ids("msmarco", msmarco))
    assert splits("irds", base) == ["dev", "train"]
    assert has_train_split("irds", base, "dev") and not has_train_split("irds", f"{base}/dev", "")


def test_a_duplicate_document_is_reported_by_record(msmarco):
    lines = (msmarco / "collection.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    first_id = lines[2].split("\t")[0]
    lines[9] = first_id + "\t" + lines[9].split("\t", 1)[1]
    (msmarco / "collection.tsv").write_text("".join(lines), encoding="utf-8")
    base = _register(msmarco, splits=("dev",))
    with pytest.raises(FormatError) as info:
        read_irds(f"{base}/dev")
    assert info.value.path == f"irds:{base}/dev:docs" and info.value.line == 10
    assert f"document id {first_id!r} again (first on line 3)" in str(info.value)


def test_unknown_and_not_downloaded_ids_fail_in_one_line(msmarco, tmp_path, capsys):
    with pytest.raises(ValueError, match="not a dataset id that ir_datasets .* knows.*IR_DATASETS_HOME"):
        read_irds("grdr-test-no/such/id")
    # Known, but its documents sit behind a URL that was never fetched (a local port: nothing
    # would leave this machine even if the guard failed).
    missing = tmp_path / "cache" / "collection.tsv"
    docs = TsvDocs(Download([RequestsDownload("http://127.0.0.1:9/collection.tsv")], cache_path=str(missing)))
    base = _register(msmarco, splits=("dev",), docs=docs)
    with pytest.raises(NotDownloaded, match=r"http://127\.0\.0\.1:9/collection\.tsv.*IR_DATASETS_HOME") as info:
        read_collection("irds", f"{base}/dev")
    assert "\n" not in str(info.value) and not missing.exists()
    with pytest.raises(ValueError, match="has no queries.*ids under it with qrels: dev"):
        check_available(base)
    for path, fragment in ((f"{base}/dev", "http://127.0.0.1:9"), ("grdr-test-no/such/id", "not a dataset id")):
        with pytest.raises(SystemExit) as exit_info:
            cmd_real("irds", Path(path), out=tmp_path / "out", preset="smoke", models=(), progress=False)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fragment in err and "IR_DATASETS_HOME" in err, err


def test_grdr_real_on_an_irds_id_trains_on_its_train_split(msmarco, tmp_path):
    base = _register(msmarco)
    assert cmd_real("irds", Path(base), split="dev", sizes=(100, 285), out=tmp_path, preset="smoke", models=(),
                    max_train_pairs=40, progress=False, bm25="pyserini") == 0
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "real_scaling").glob("*.json"))]
    assert sorted(r["config"]["n_docs"] for r in records) == [100, 285]
    for r in records:
        c = r["config"]
        assert (c["format"], c["path"], c["split"], c["train_on"]) == ("irds", base, "dev", "train")
        assert (c["bm25_k1"], c["bm25_b"], c["bm25_stemmer"], c["bm25_stopwords"]) == (0.9, 0.4, "porter", "en")
        assert r["metrics"]["nDCG@10"] > 0.5


def test_a_real_ir_datasets_id_is_not_downloaded(tmp_path):
    """beir/scifact/test as ir_datasets defines it, with an empty IR_DATASETS_HOME, in a fresh
    process whose every HTTP request fails: `grdr real` says which and where, in one line."""
    home = tmp_path / "irds-home"
    script = (
        "import sys, requests\n"
        "def refuse(*a, **k): raise SystemExit('a download was attempted')\n"
        "requests.get = refuse; requests.Session.request = refuse\n"
        "from grdr.cli import main\n"
        f"sys.exit(main(['real', '--format', 'irds', '--path', 'beir/scifact/test', '--out', {str(tmp_path / 'out')!r}]))\n")
    env = {**os.environ, "IR_DATASETS_HOME": str(home), "GRDR_COMPILE_CACHE": "off"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "irds:beir/scifact/test" in lines[0] and "scifact.zip" in lines[0]
    assert f"{home} (IR_DATASETS_HOME)" in lines[0]
    assert not list(home.rglob("*.zip")) and not list(home.rglob("corpus.jsonl"))
