"""The plain in-memory form every reader returns, and the shared qrels checks."""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Container, Iterable, Mapping
from pathlib import Path
from typing import Literal

from grdr.realdata._stream import progress
from grdr.realdata.errors import DroppedQrelsWarning, FormatError

OnUnknown = Literal["error", "drop"]


@dataclasses.dataclass(frozen=True, eq=False)
class Collection:
    """A retrieval collection for one evaluation split.

    Queries are those with at least one judgment in the split. Read with a `doc_filter`, the
    documents are only the kept ones, while `qrels` still name every judged document.

    Attributes:
      name: "<format>:<split>".
      doc_ids, doc_texts: the N documents, in file order (BEIR: title and text joined).
      query_ids, query_texts: the M judged queries, in file order.
      qrels: query id -> document id -> integer grade (ir_measures / pytrec_eval form).
      train_pairs: (query text, document id) training pairs where the format ships them (NQ320k).
      semantic_ids: document id -> semantic docid path where the format ships them (NQ320k).
      n_dropped_qrels: judgments dropped for naming unknown ids (on_unknown="drop").
    """

    name: str
    doc_ids: tuple[str, ...]
    doc_texts: tuple[str, ...]
    query_ids: tuple[str, ...]
    query_texts: tuple[str, ...]
    qrels: Mapping[str, Mapping[str, int]]
    train_pairs: tuple[tuple[str, str], ...] | None = None
    semantic_ids: Mapping[str, tuple[int, ...]] | None = None
    n_dropped_qrels: int = 0

    def __post_init__(self):
        if len(self.doc_ids) != len(self.doc_texts):
            raise ValueError(f"doc_texts: {len(self.doc_texts)} texts for {len(self.doc_ids)} "
                             "doc_ids")
        if len(self.query_ids) != len(self.query_texts):
            raise ValueError(f"query_texts: {len(self.query_texts)} texts for "
                             f"{len(self.query_ids)} query_ids")
        if len(set(self.doc_ids)) != len(self.doc_ids):
            raise ValueError("doc_ids: duplicate ids")
        if len(set(self.query_ids)) != len(self.query_ids):
            raise ValueError("query_ids: duplicate ids")
        if set(self.qrels) != set(self.query_ids):
            raise ValueError("qrels: must judge exactly the queries in query_ids")
        if self.n_dropped_qrels < 0:
            raise ValueError(f"n_dropped_qrels: {self.n_dropped_qrels} < 0")

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    def judged_doc_ids(self) -> frozenset[str]:
        """Every document named in the qrels of the split, whatever its grade."""
        return frozenset(d for judged in self.qrels.values() for d in judged)

    def subset(self, doc_ids: Iterable[str]) -> Collection:
        """The same queries and qrels over the documents `doc_ids` (kept in collection order)."""
        keep = set(doc_ids)
        unknown = keep.difference(self.doc_ids)
        if unknown:
            raise ValueError(f"doc_ids: {len(unknown)} ids not in {self.name}, e.g. "
                             f"{sorted(unknown)[0]!r}")
        kept = [(d, t) for d, t in zip(self.doc_ids, self.doc_texts) if d in keep]
        return dataclasses.replace(self, doc_ids=tuple(d for d, _ in kept),
                                   doc_texts=tuple(t for _, t in kept))


class QrelsBuilder:
    """Collects judgments with their line numbers; resolves unknown ids once all ids are known."""

    def __init__(self, path: Path):
        self.path = path
        self._entries: list[tuple[int, str, str, int]] = []
        self._first_line: dict[tuple[str, str], int] = {}

    def add(self, line_no: int, query_id: str, doc_id: str, grade: int) -> None:
        first = self._first_line.setdefault((query_id, doc_id), line_no)
        if first != line_no:
            raise FormatError(self.path, line_no, f"a second judgment of document {doc_id!r} "
                              f"for query {query_id!r} (first on line {first})",
                              "each (query, document) pair judged once")
        self._entries.append((line_no, query_id, doc_id, grade))

    def doc_ids(self) -> set[str]:
        return {d for _, _, d, _ in self._entries}

    def entries(self) -> list[tuple[int, str, str, int]]:
        """(line number, query id, document id, grade) in file order."""
        return list(self._entries)

    def resolve(self, known_queries: Container[str], queries_file: str,
                known_docs: Container[str], corpus_file: str, on_unknown: OnUnknown
                ) -> tuple[dict[str, dict[str, int]], int]:
        """Qrels as nested dicts and the number dropped for naming unknown ids.

        Args:
          known_queries, known_docs: the ids that the queries and corpus files hold.
          queries_file, corpus_file: their names, for messages.
          on_unknown: "error" raises FormatError at the first such judgment; "drop" drops them
            all and warns once with the counts.
        """
        if on_unknown not in ("error", "drop"):
            raise ValueError(f"on_unknown: {on_unknown!r} is not 'error' or 'drop'")
        hint = (' (or --on-unknown drop on the command line, on_unknown="drop" in Python, to drop such judgments '
                'with a counted warning)')
        qrels: dict[str, dict[str, int]] = {}
        n_bad_query = n_bad_doc = 0
        first_bad = None
        for line_no, query_id, doc_id, grade in self._entries:
            if query_id not in known_queries:
                if on_unknown == "error":
                    raise FormatError(self.path, line_no, f"query id {query_id!r}, which "
                                      f"{queries_file} does not hold",
                                      f"a query id from {queries_file}{hint}")
                n_bad_query += 1
            elif doc_id not in known_docs:
                if on_unknown == "error":
                    raise FormatError(self.path, line_no, f"document id {doc_id!r}, which "
                                      f"{corpus_file} does not hold",
                                      f"a document id from {corpus_file}{hint}")
                n_bad_doc += 1
            else:
                qrels.setdefault(query_id, {})[doc_id] = grade
                continue
            first_bad = first_bad or line_no
        dropped = n_bad_query + n_bad_doc
        if dropped:
            warnings.warn(f"{self.path}: dropped {dropped} judgments: {n_bad_query} naming "
                          f"queries not in {queries_file} and {n_bad_doc} naming documents not "
                          f"in {corpus_file} (first on line {first_bad})",
                          DroppedQrelsWarning, stacklevel=3)
        return qrels, dropped


def gather_queries(rows: Iterable[tuple[int, str, str]], path: Path) -> dict[str, str]:
    """Query id -> text from (line number, id, text) rows; FormatError on an empty or repeated
    id."""
    texts: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line_no, query_id, text in rows:
        if not query_id:
            raise FormatError(path, line_no, "an empty query id", "a non-empty query id")
        if query_id in first_line:
            raise FormatError(path, line_no, f"query id {query_id!r} again (first on line "
                              f"{first_line[query_id]})", "each query id once")
        first_line[query_id] = line_no
        texts[query_id] = text
    return texts


def gather_docs(rows: Iterable[tuple[int, str, str]], path: Path, index,
                doc_filter: Container[str] | None, judged: set[str]
                ) -> tuple[list[str], list[str], set[str]]:
    """Streams (line number, id, text) rows, holding only the texts that `doc_filter` keeps.

    Args:
      rows: the corpus rows.
      path: the corpus file, for messages.
      index: an IdIndex that every id goes through (duplicates are reported after the pass).
      doc_filter: ids to keep; None keeps all.
      judged: ids named in qrels, to learn which of them the corpus holds.

    Returns:
      kept ids, their texts, and the judged ids seen in the corpus.
    """
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for line_no, doc_id, text in progress(rows, f"reading {Path(path).name}"):
        if not doc_id:
            raise FormatError(path, line_no, "an empty document id", "a non-empty document id")
        index.add(doc_id, line_no)
        if doc_id in judged:
            seen.add(doc_id)
        if doc_filter is None or doc_id in doc_filter:
            ids.append(doc_id)
            texts.append(text)
    index.check("document id")
    return ids, texts, seen
