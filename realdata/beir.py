"""BEIR / MTEB retrieval sets in JSON lines, read as distributed.

Layout of the directory: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`,
`text`) and the judgments either as `qrels/<split>.tsv` (header `query-id corpus-id score`,
tab-separated) or, as MTEB ships some sets such as LIMIT, as one `qrels.jsonl` (`query-id`,
`corpus-id`, `score`) that holds a single split. `qrels/<split>.tsv` wins when both exist.
A document's text is its title and text joined by a space (the title alone if the text is
empty), as BEIR's dense models encode them. Any of the files may be gzipped as BEIR ships them
(`corpus.jsonl.gz`, `queries.jsonl.gz`; `X.gz` is read where `X` is missing).
"""
from __future__ import annotations

import json
from collections.abc import Container, Iterator
from pathlib import Path

from grdr.realdata._stream import (IdIndex, existing, iter_jsonl, iter_tsv, parse_relevance,
                              require_file)
from grdr.realdata.collection import (Collection, OnUnknown, QrelsBuilder, gather_docs,
                                         gather_queries)
from grdr.realdata.errors import FormatError

LAYOUT = ("BEIR layout: corpus.jsonl, queries.jsonl and qrels/<split>.tsv (or qrels.jsonl)")
QRELS_HEADER = ["query-id", "corpus-id", "score"]
DOC_FIELDS = {"_id": True, "title": False, "text": True}


def read_beir(path: str | Path, split: str = "test", *,
              doc_filter: Container[str] | None = None,
              on_unknown: OnUnknown = "error") -> Collection:
    """Reads a BEIR / MTEB directory.

    Args:
      path: the directory.
      split: picks `qrels/<split>.tsv`; ignored when only `qrels.jsonl` is there.
      doc_filter: document ids whose text to hold; None holds all.
      on_unknown: what to do with judgments naming an unknown query or document.

    Returns:
      the judged queries of the split over the (kept) documents.

    Raises:
      FormatError: at the first malformed line of any file.
    """
    root = Path(path)
    corpus_path = require_file(root / "corpus.jsonl", LAYOUT)
    queries_path = require_file(root / "queries.jsonl", LAYOUT)
    qrels_path = existing(root / "qrels" / f"{split}.tsv")
    if qrels_path is not None:
        qrels_builder = _read_qrels_tsv(qrels_path)
    else:
        qrels_path = require_file(root / "qrels.jsonl", f"{LAYOUT}; no qrels/{split}.tsv either")
        qrels_builder = _read_qrels_jsonl(qrels_path)

    queries = gather_queries(((n, o["_id"], o["text"]) for n, o in
                              iter_jsonl(queries_path, {"_id": True, "text": True})),
                             queries_path)
    judged = qrels_builder.doc_ids()
    index = IdIndex(corpus_path, lambda text: json.loads(text)["_id"])
    doc_ids, doc_texts, seen = gather_docs(_doc_rows(corpus_path), corpus_path, index,
                                           doc_filter, judged)
    qrels, dropped = qrels_builder.resolve(queries, queries_path.name, seen, corpus_path.name,
                                           on_unknown)
    query_ids = tuple(q for q in queries if q in qrels)
    return Collection(name=f"beir:{split}", doc_ids=tuple(doc_ids), doc_texts=tuple(doc_texts),
                      query_ids=query_ids, query_texts=tuple(queries[q] for q in query_ids),
                      qrels=qrels, n_dropped_qrels=dropped)


def iter_beir_doc_ids(path: str | Path) -> Iterator[str]:
    """Yields the document ids of `corpus.jsonl` in file order, holding nothing."""
    for _, doc_id, _ in _doc_rows(require_file(Path(path) / "corpus.jsonl", LAYOUT)):
        yield doc_id


def _doc_rows(corpus_path: Path) -> Iterator[tuple[int, str, str]]:
    for line_no, obj in iter_jsonl(corpus_path, DOC_FIELDS):
        title = obj.get("title") or ""
        yield line_no, obj["_id"], f"{title} {obj['text']}".strip() if title else obj["text"]


def _read_qrels_tsv(path: Path) -> QrelsBuilder:
    builder = QrelsBuilder(path)
    rows = iter_tsv(path, tuple(QRELS_HEADER))
    line_no, header = next(rows)
    if header != QRELS_HEADER:
        raise FormatError(path, line_no, f"header {chr(9).join(header)!r}",
                          "the header query-id<TAB>corpus-id<TAB>score")
    for line_no, (query_id, doc_id, score) in rows:
        builder.add(line_no, query_id, doc_id, parse_relevance(path, line_no, score))
    if not builder.entries():
        raise FormatError(path, line_no + 1, "no judgment after the header",
                          "at least one query-id<TAB>corpus-id<TAB>score line")
    return builder


def _read_qrels_jsonl(path: Path) -> QrelsBuilder:
    builder = QrelsBuilder(path)
    for line_no, obj in iter_jsonl(path, {"query-id": True, "corpus-id": True}):
        if "score" not in obj:
            raise FormatError(path, line_no, 'no field "score"', 'an integer "score"')
        builder.add(line_no, obj["query-id"], obj["corpus-id"],
                    parse_relevance(path, line_no, obj["score"]))
    return builder
