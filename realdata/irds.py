"""Collections by ir_datasets id, read from ir_datasets' local files only (optional extra `irds`).

`read_irds("beir/scifact/test")` builds the same `Collection` as the file readers, from the
dataset's `docs_iter()`, `queries_iter()` and `qrels_iter()`, so a collection that ir_datasets
already holds (msmarco-passage/dev/small, natural-questions/dev, beir/*) is used by its id.
With a `split`, the id read is `<dataset_id>/<split>` (ir_datasets names splits so:
beir/scifact/test and beir/scifact/train), which lets the protocol train on `<id>/train`.

Texts. A document's text is its `title` (`document_title` in natural-questions) and its `text`
joined by a space, the title alone if the text is empty, as `beir.py` joins them; a document
type without a `text` field (msmarco-document's `body`, for instance) gives its
`default_text()`. A query's text is its `text` field, else its `default_text()` (the title of
TREC topics). Qrels give `query_id`, `doc_id` and an integer `relevance`; other fields (TREC's
iteration) are ignored.

Nothing is downloaded. ir_datasets fetches a missing file when an iterator first needs it; here
every fetch it would start (its RequestsDownload, GoogleDriveDownload and GoogleCloudBucketStream
mirrors) is refused while reading, and `check_available` takes the first record of each
iterator before anything else is read, so an id whose files are not under IR_DATASETS_HOME
fails at once with one line naming the file it lacks. Local work that ir_datasets does by
itself, such as extracting collection.tsv from a downloaded archive, still happens.

Messages name a source as `irds:<id>:docs` (queries, qrels) and a record by its 1-based
position in the iterator, where the file readers give a line number.
"""
from __future__ import annotations

import contextlib
import logging
import os
import types
from collections.abc import Container, Iterator
from pathlib import Path

from grdr.realdata._stream import IdIndex, parse_relevance
from grdr.realdata.collection import Collection, OnUnknown, QrelsBuilder, gather_docs, gather_queries
from grdr.realdata.errors import FormatError

TITLE_FIELDS = ("title", "document_title")
ENTITIES = ("docs", "queries", "qrels")
INSTALL = "pip install 'grdr[irds]' (ir-datasets==0.6.3)"


class NotDownloaded(FileNotFoundError):
    """ir_datasets knows the dataset, but some of its files are not on this machine."""


def home() -> Path:
    """Where ir_datasets keeps its files: $IR_DATASETS_HOME, else ~/.ir_datasets (not created)."""
    return Path(os.environ.get("IR_DATASETS_HOME") or Path.home() / ".ir_datasets")


def dataset_id(path: str | os.PathLike, split: str | None = None) -> str:
    """The id read for `path` and `split`: `path`, or `path/split`."""
    base = os.fspath(path).strip("/")
    return f"{base}/{split}" if split else base


def read_irds(path: str | os.PathLike, split: str | None = None, *,
              doc_filter: Container[str] | None = None,
              on_unknown: OnUnknown = "error") -> Collection:
    """Reads an ir_datasets dataset that ir_datasets already holds.

    Args:
      path: the dataset id, e.g. "beir/scifact/test" or "msmarco-passage/dev/small".
      split: appended to the id as "/<split>" when given (e.g. path "beir/scifact", split "test").
      doc_filter: document ids whose text to hold; None holds all.
      on_unknown: what to do with judgments naming an unknown query or document.

    Returns:
      the judged queries of the dataset over the (kept) documents, named "irds:<id>".

    Raises:
      ValueError: ir_datasets does not know the id, or it lacks docs, queries or qrels.
      NotDownloaded: a file the dataset needs is not under IR_DATASETS_HOME.
      FormatError: a record with an empty or repeated id, or a non-integer grade.
      ImportError: ir_datasets is not installed.
    """
    ds_id = dataset_id(path, split)
    ds = check_available(ds_id)
    docs_src, queries_src, qrels_src = (f"irds:{ds_id}:{what}" for what in ENTITIES)
    with _offline(ds_id):
        builder = QrelsBuilder(qrels_src)
        for n, qrel in enumerate(ds.qrels_iter(), start=1):
            builder.add(n, str(qrel.query_id), str(qrel.doc_id),
                        parse_relevance(qrels_src, n, qrel.relevance))
        queries = gather_queries(((n, str(q.query_id), _query_text(q, queries_src, n))
                                  for n, q in enumerate(ds.queries_iter(), start=1)), queries_src)
        index = IdIndex(docs_src, lambda doc_id: doc_id,
                        lines=lambda: _doc_ids(ds))
        doc_ids, doc_texts, seen = gather_docs(_doc_rows(ds, docs_src), docs_src, index, doc_filter,
                                               builder.doc_ids())
    qrels, dropped = builder.resolve(queries, queries_src, seen, docs_src, on_unknown)
    query_ids = tuple(q for q in queries if q in qrels)
    return Collection(name=f"irds:{ds_id}", doc_ids=tuple(doc_ids), doc_texts=tuple(doc_texts),
                      query_ids=query_ids, query_texts=tuple(queries[q] for q in query_ids),
                      qrels=qrels, n_dropped_qrels=dropped)


def iter_irds_doc_ids(path: str | os.PathLike) -> Iterator[str]:
    """Yields the document ids of the dataset in `docs_iter()` order, holding nothing."""
    ds_id = dataset_id(path)
    ds = check_available(ds_id, ("docs",))
    with _offline(ds_id):
        for _, doc_id in _doc_ids(ds):
            yield doc_id


def docs_count(path: str | os.PathLike) -> int | None:
    """The number of documents as ir_datasets states it (its docstore or metadata), else None."""
    ds = check_available(dataset_id(path), ("docs",))
    with _offline(dataset_id(path)), _quiet():
        count = ds.docs_count() if hasattr(ds, "docs_count") else None
    return int(count) if count is not None else None


def splits(path: str | os.PathLike) -> list[str]:
    """The ids under `path` that have qrels, relative to it ("test", "dev/small"); [] when
    ir_datasets is missing or knows nothing under `path`."""
    try:
        import ir_datasets
    except ImportError:
        return []
    base = dataset_id(path) + "/"
    found = []
    with _quiet():
        for key in [k for k in ir_datasets.registry if k.startswith(base)]:
            try:
                if ir_datasets.registry[key].has("qrels"):
                    found.append(key[len(base):])
            except Exception:  # a dataset that cannot even be described is not a split
                continue
    return sorted(found)


def check_available(ds_id: str, entities: tuple[str, ...] = ENTITIES):
    """The ir_datasets dataset `ds_id`, once each of `entities` has yielded a first record
    without a download; else one-line ValueError (unknown id, missing entity) or NotDownloaded.
    """
    try:
        import ir_datasets
    except ImportError:
        raise ImportError(f"irds:{ds_id}: reading by ir_datasets id needs ir_datasets: "
                          f"{INSTALL}") from None
    where = f"ir_datasets keeps its files in {home()} (IR_DATASETS_HOME)"
    try:
        with _quiet():
            ds = ir_datasets.load(ds_id)
    except KeyError:
        raise ValueError(f"irds:{ds_id}: not a dataset id that ir_datasets "
                         f"{ir_datasets.__version__} knows (`ir_datasets list` names them); "
                         f"{where}") from None
    for what in entities:
        if not ds.has(what):
            under = splits(ds_id)
            hint = (f"; ids under it with qrels: {', '.join(under[:8])}"
                    f"{', ...' if len(under) > 8 else ''}" if under else "")
            raise ValueError(f"irds:{ds_id}: this ir_datasets dataset has no {what}; expected one "
                             f"with docs, queries and qrels{hint}")
    with _offline(ds_id), _quiet():
        for what in entities:
            next(iter(getattr(ds, f"{what}_iter")()), None)
    return ds


class _DownloadAttempt(BaseException):
    """Raised in place of a download. Not an Exception: ir_datasets tries each mirror under
    `except Exception`, and this must reach `_offline` whatever lies between."""

    def __init__(self, source: str):
        super().__init__(source)
        self.source = source


@contextlib.contextmanager
def _offline(ds_id: str):
    """Refuses every download ir_datasets starts inside; NotDownloaded names what it wanted."""
    from ir_datasets.util import download

    def refuse(self, *args, **kwargs):
        raise _DownloadAttempt(getattr(self, "url", None) or getattr(self, "uri", None) or repr(self))

    saved = [(cls, name, vars(cls)[name])
             for cls in (download.RequestsDownload, download.GoogleDriveDownload,
                         download.GoogleCloudBucketStream)
             for name in ("stream", "__iter__") if name in vars(cls)]
    for cls, name, _ in saved:
        setattr(cls, name, refuse)
    try:
        yield
    except _DownloadAttempt as attempt:
        raise NotDownloaded(
            f"irds:{ds_id}: ir_datasets knows this dataset but not all its files are on this "
            f"machine (it would download {attempt.source}); ir_datasets keeps its files in "
            f"{home()} (IR_DATASETS_HOME), and grdr downloads nothing: fetch them with "
            f"ir_datasets first, or point IR_DATASETS_HOME at a copy") from None
    finally:
        for cls, name, method in saved:
            setattr(cls, name, method)


@contextlib.contextmanager
def _quiet():
    """ir_datasets' INFO lines (hints about local copies) and progress bars held back during
    checks, so that a failed check prints one line."""
    import ir_datasets
    import tqdm

    class Silent(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})

    previous, lazy_tqdm = logging.root.manager.disable, ir_datasets.lazy_libs.tqdm
    logging.disable(logging.INFO)
    ir_datasets.lazy_libs.tqdm = lambda: types.SimpleNamespace(tqdm=Silent)
    try:
        yield
    finally:
        logging.disable(previous)
        ir_datasets.lazy_libs.tqdm = lazy_tqdm


def _doc_rows(ds, source: str) -> Iterator[tuple[int, str, str]]:
    for n, doc in enumerate(ds.docs_iter(), start=1):
        yield n, str(doc.doc_id), _doc_text(doc, source, n)


def _doc_ids(ds) -> Iterator[tuple[int, str]]:
    for n, doc in enumerate(ds.docs_iter(), start=1):
        yield n, str(doc.doc_id)


def _doc_text(doc, source: str, n: int) -> str:
    fields = getattr(doc, "_fields", ())
    if "text" not in fields:
        return _default_text(doc, source, n, "a document with a text field or default_text()")
    text = _string(doc, "text", source, n)
    title = next((_string(doc, f, source, n) for f in TITLE_FIELDS if f in fields), "")
    return f"{title} {text}".strip() if title else text


def _query_text(query, source: str, n: int) -> str:
    if "text" in getattr(query, "_fields", ()):
        return _string(query, "text", source, n)
    return _default_text(query, source, n, "a query with a text field or default_text()")


def _string(record, field: str, source: str, n: int) -> str:
    value = getattr(record, field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormatError(source, n, f"field {field!r} of type {type(value).__name__}: {value!r}",
                          f"a string {field!r}")
    return value


def _default_text(record, source: str, n: int, expected: str) -> str:
    if not hasattr(record, "default_text"):
        raise FormatError(source, n, f"a {type(record).__name__} with fields "
                          f"{', '.join(getattr(record, '_fields', ()))}", expected)
    return record.default_text()
