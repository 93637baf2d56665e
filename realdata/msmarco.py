"""MS MARCO passage ranking, read as distributed.

Layout of the directory: `collection.tsv` (`pid<TAB>passage`), `queries.<split>.tsv`
(`qid<TAB>text`) and `qrels.<split>.tsv` in TREC form (`qid 0 pid rel`, tabs or spaces), for a
split such as `train`, `dev` or `dev.small`. The 8.8M-passage collection is streamed: only the
passages that `doc_filter` keeps are held. Any of the files may be gzipped (`collection.tsv.gz`
is read where `collection.tsv` is missing, and so on).
"""
from __future__ import annotations

from collections.abc import Container
from pathlib import Path

from grdr.realdata._stream import IdIndex, iter_tsv, require_file
from grdr.realdata.collection import Collection, OnUnknown, gather_docs, gather_queries
from grdr.realdata.trec import iter_trec_qrels

LAYOUT = ("MS MARCO passage layout: collection.tsv, queries.<split>.tsv, qrels.<split>.tsv")
DOC_COLUMNS = ("pid", "passage")


def read_msmarco(path: str | Path, split: str = "dev", *,
                 doc_filter: Container[str] | None = None,
                 on_unknown: OnUnknown = "error") -> Collection:
    """Reads an MS MARCO passage directory.

    Args:
      path: the directory.
      split: picks `queries.<split>.tsv` and `qrels.<split>.tsv`.
      doc_filter: passage ids whose text to hold; None holds all.
      on_unknown: what to do with judgments naming an unknown query or passage.

    Returns:
      the judged queries of the split over the (kept) passages.

    Raises:
      FormatError: at the first malformed line of any of the three files.
    """
    root = Path(path)
    corpus_path = require_file(root / "collection.tsv", LAYOUT)
    queries_path = require_file(root / f"queries.{split}.tsv", LAYOUT)
    qrels_path = require_file(root / f"qrels.{split}.tsv", LAYOUT)

    queries = gather_queries(((n, f[0], f[1]) for n, f in iter_tsv(queries_path, ("qid", "text"))),
                             queries_path)
    qrels_builder = iter_trec_qrels(qrels_path)
    judged = qrels_builder.doc_ids()
    rows = ((n, f[0], f[1]) for n, f in iter_tsv(corpus_path, DOC_COLUMNS))
    index = IdIndex(corpus_path, lambda text: text.split("\t")[0])
    doc_ids, doc_texts, seen = gather_docs(rows, corpus_path, index, doc_filter, judged)
    qrels, dropped = qrels_builder.resolve(queries, queries_path.name, seen, corpus_path.name,
                                           on_unknown)
    query_ids = tuple(q for q in queries if q in qrels)
    return Collection(name=f"msmarco:{split}", doc_ids=tuple(doc_ids), doc_texts=tuple(doc_texts),
                      query_ids=query_ids, query_texts=tuple(queries[q] for q in query_ids),
                      qrels=qrels, n_dropped_qrels=dropped)


def iter_msmarco_doc_ids(path: str | Path):
    """Yields the passage ids of `collection.tsv` in file order, holding nothing."""
    corpus_path = require_file(Path(path) / "collection.tsv", LAYOUT)
    for _, fields in iter_tsv(corpus_path, DOC_COLUMNS):
        yield fields[0]
