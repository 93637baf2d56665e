"""NQ320k as prepared by the NCI / DSI line of work, read as distributed.

Assumed layout, mirroring what the NCI repository's `NQ_dataset_Process.ipynb` writes
(solidsea98/Neural-Corpus-Indexer-NCI), which later DSI-style work reuses:

- `nq_<split>_doc_newid.tsv` for split `train` and `dev`: no header, four tab-separated columns
  `query  id  randomid  semantic_id`, written by pandas (fields may be CSV-quoted). `id` is the
  Natural Questions example id and serves as the query id; `randomid` is the document's key in
  the document table; `semantic_id` is its hierarchical k-means path such as `3-17-5` (may be
  empty).
- `NQ_doc_content.tsv`: the document table, no header, seven tab-separated columns
  `randomid  ''  ''  text  ''  ''  language` (text = title, abstract and content), written by
  a plain tab join (no quoting).

Each query judges exactly its one document with grade 1. The training pairs come from
`nq_train_doc_newid.tsv`; semantic ids from both query files, checked to agree. Any of the files
may be gzipped (`X.gz` is read where `X` is missing).
"""
from __future__ import annotations

from collections.abc import Container, Iterator
from pathlib import Path

from grdr.realdata._stream import IdIndex, iter_csv_tsv, iter_tsv, require_file
from grdr.realdata.collection import (Collection, OnUnknown, QrelsBuilder, gather_docs,
                                         gather_queries)
from grdr.realdata.errors import FormatError

LAYOUT = "NQ320k layout of NCI: NQ_doc_content.tsv and nq_<split>_doc_newid.tsv"
DOCS_FILE = "NQ_doc_content.tsv"
QUERY_COLUMNS = ("query", "id", "randomid", "semantic_id")
DOC_COLUMNS = ("randomid", "", "", "text", "", "", "language")


def read_nq320k(path: str | Path, split: str = "dev", *,
                doc_filter: Container[str] | None = None, on_unknown: OnUnknown = "error",
                with_train: bool = True) -> Collection:
    """Reads an NQ320k directory in the NCI layout.

    Args:
      path: the directory.
      split: picks `nq_<split>_doc_newid.tsv` as the evaluation queries.
      doc_filter: document ids (`randomid`) whose text to hold; None holds all.
      on_unknown: what to do with query rows naming a document the table lacks.
      with_train: also read `nq_train_doc_newid.tsv` into `train_pairs`.

    Returns:
      the split's queries over the (kept) documents, with training pairs and semantic ids.

    Raises:
      FormatError: at the first malformed line of any file, or where one document is given
        two different semantic ids.
    """
    root = Path(path)
    docs_path = require_file(root / DOCS_FILE, LAYOUT)
    split_path = require_file(root / f"nq_{split}_doc_newid.tsv", LAYOUT)
    train_path = require_file(root / "nq_train_doc_newid.tsv", LAYOUT) if with_train else None

    semantic: dict[str, tuple[tuple[int, ...], Path, int]] = {}
    split_rows = _read_query_file(split_path, semantic)
    train_rows = (split_rows if train_path == split_path else
                  _read_query_file(train_path, semantic) if train_path else None)

    judged = split_rows[1].doc_ids() | (train_rows[1].doc_ids() if train_rows else set())
    index = IdIndex(docs_path, lambda text: text.split("\t")[0])
    doc_ids, doc_texts, seen = gather_docs(_doc_rows(docs_path), docs_path, index, doc_filter,
                                           judged)
    queries, builder = split_rows
    qrels, dropped = builder.resolve(queries, split_path.name, seen, docs_path.name, on_unknown)
    train_pairs = None
    if train_rows:
        train_texts, train_builder = train_rows
        train_qrels, train_dropped = (
            (qrels, 0) if train_rows is split_rows else
            train_builder.resolve(train_texts, train_path.name, seen, docs_path.name, on_unknown))
        train_pairs = tuple((train_texts[q], d) for q, judged_q in train_qrels.items()
                            for d in judged_q)
        dropped += train_dropped
    query_ids = tuple(q for q in queries if q in qrels)
    semantic_ids = {d: s for d, (s, _, _) in semantic.items() if d in seen} or None
    return Collection(name=f"nq320k:{split}", doc_ids=tuple(doc_ids), doc_texts=tuple(doc_texts),
                      query_ids=query_ids, query_texts=tuple(queries[q] for q in query_ids),
                      qrels=qrels, train_pairs=train_pairs, semantic_ids=semantic_ids,
                      n_dropped_qrels=dropped)


def iter_nq320k_doc_ids(path: str | Path) -> Iterator[str]:
    """Yields the document ids of `NQ_doc_content.tsv` in file order, holding nothing."""
    for _, doc_id, _ in _doc_rows(require_file(Path(path) / DOCS_FILE, LAYOUT)):
        yield doc_id


def _doc_rows(docs_path: Path) -> Iterator[tuple[int, str, str]]:
    for line_no, fields in iter_tsv(docs_path, DOC_COLUMNS):
        yield line_no, fields[0], fields[3]


def _read_query_file(path: Path, semantic: dict) -> tuple[dict[str, str], QrelsBuilder]:
    """Query id -> text and the one-document judgments; records semantic ids into `semantic`."""
    rows = []
    for line_no, (text, query_id, doc_id, sem) in iter_csv_tsv(path, QUERY_COLUMNS):
        if not doc_id:
            raise FormatError(path, line_no, "an empty randomid", "a document id")
        rows.append((line_no, query_id, text, doc_id))
        if sem:
            _record_semantic(path, line_no, doc_id, sem, semantic)
    texts = gather_queries(((n, q, t) for n, q, t, _ in rows), path)  # ids are unique
    builder = QrelsBuilder(path)
    for line_no, query_id, _, doc_id in rows:
        builder.add(line_no, query_id, doc_id, 1)
    return texts, builder


def _record_semantic(path: Path, line_no: int, doc_id: str, text: str, semantic: dict) -> None:
    try:
        path_ids = tuple(int(part) for part in text.split("-"))
    except ValueError:
        raise FormatError(path, line_no, f"semantic id {text!r}",
                          "integers joined by '-', such as 3-17-5") from None
    first = semantic.setdefault(doc_id, (path_ids, path, line_no))
    if first[0] != path_ids:
        raise FormatError(path, line_no, f"semantic id {text!r} for document {doc_id!r}",
                          f"the semantic id {'-'.join(map(str, first[0]))} given to it on "
                          f"{first[1].name}:{first[2]}")
