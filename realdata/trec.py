"""TREC run and qrels files, in and out.

Run lines are `qid Q0 docid rank score tag`; qrels lines are `qid 0 docid grade`. Both are
whitespace-separated; a `.gz` file is read as it is, and `X.gz` where `X` is missing. Within a
query a run is written by decreasing score, ties by decreasing docid, which is the order
trec_eval and pytrec_eval re-sort it into, so the rank column agrees with how the run is scored.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from grdr.realdata._stream import existing, iter_tsv, parse_relevance
from grdr.realdata.collection import QrelsBuilder
from grdr.realdata.errors import FormatError

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]
QREL_COLUMNS = ("qid", "iteration", "docid", "grade")
RUN_COLUMNS = ("qid", "Q0", "docid", "rank", "score", "tag")


def iter_trec_qrels(path: Path) -> QrelsBuilder:
    """Parses a TREC qrels file into a QrelsBuilder (ids not yet checked against any corpus)."""
    builder = QrelsBuilder(path)
    for line_no, (query_id, _, doc_id, grade) in iter_tsv(path, QREL_COLUMNS, sep=None):
        builder.add(line_no, query_id, doc_id, parse_relevance(path, line_no, grade))
    return builder


def read_qrels(path: str | Path) -> Qrels:
    """A TREC qrels file as query id -> document id -> grade."""
    qrels: Qrels = {}
    for _, query_id, doc_id, grade in iter_trec_qrels(existing(Path(path)) or Path(path)).entries():
        qrels.setdefault(query_id, {})[doc_id] = grade
    return qrels


def write_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]]) -> None:
    """Writes qrels in TREC form, queries and documents in the mapping's order (atomically)."""
    lines = []
    for query_id, judged in qrels.items():
        for doc_id, grade in judged.items():
            _check_token("query id", query_id)
            _check_token("document id", doc_id)
            lines.append(f"{query_id} 0 {doc_id} {int(grade)}\n")
    _write_atomic(Path(path), lines)


def read_run(path: str | Path) -> Run:
    """A TREC run file as query id -> document id -> score (the rank column is checked, unused)."""
    path = existing(Path(path)) or Path(path)
    run: Run = {}
    first_line: dict[tuple[str, str], int] = {}
    for line_no, (query_id, _, doc_id, rank, score, _) in iter_tsv(path, RUN_COLUMNS, sep=None):
        try:
            int(rank)
        except ValueError:
            raise FormatError(path, line_no, f"rank {rank!r}", "an integer rank") from None
        try:
            value = float(score)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FormatError(path, line_no, f"score {score!r}", "a finite number")
        first = first_line.setdefault((query_id, doc_id), line_no)
        if first != line_no:
            raise FormatError(path, line_no, f"document {doc_id!r} again for query {query_id!r} "
                              f"(first on line {first})", "each document once per query")
        run.setdefault(query_id, {})[doc_id] = value
    return run


def run_digest(path: str | Path) -> tuple[str, int]:
    """(sha256 of a run file's bytes, the most documents it ranks for one query: its depth), without
    parsing it (read_run checks it)."""
    path = Path(path)
    digest, counts = hashlib.sha256(), Counter()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as f:
        for line in f:
            if qid := line.split(None, 1)[:1]:
                counts[qid[0]] += 1
    return digest.hexdigest(), max(counts.values(), default=0)


def write_run(path: str | Path, run: Mapping[str, Mapping[str, float]], tag: str) -> None:
    """Writes a run in TREC form, each query's documents by decreasing score (atomically).

    Args:
      path: the file to write.
      run: query id -> document id -> score; queries are written in the mapping's order.
      tag: the run name (no whitespace).
    """
    _check_token("tag", tag)
    lines = []
    for query_id, scored in run.items():
        _check_token("query id", query_id)
        ranked = sorted(scored.items(), key=lambda kv: (float(kv[1]), kv[0]), reverse=True)
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            _check_token("document id", doc_id)
            if not math.isfinite(float(score)):
                raise ValueError(f"run: score {score!r} of {doc_id!r} for {query_id!r} is not "
                                 "finite")
            lines.append(f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")
    _write_atomic(Path(path), lines)


def run_from_topk(query_ids: Sequence[str], doc_ids: Sequence[str], idx_MxK: np.ndarray,
                  scores_MxK: np.ndarray) -> Run:
    """A run from top-k document indices and scores, one row per query."""
    idx_MxK = np.asarray(idx_MxK)
    scores_MxK = np.asarray(scores_MxK)
    if idx_MxK.shape != scores_MxK.shape or idx_MxK.ndim != 2:
        raise ValueError(f"idx_MxK {idx_MxK.shape} and scores_MxK {scores_MxK.shape} must be "
                         "equal 2-d shapes")
    if idx_MxK.shape[0] != len(query_ids):
        raise ValueError(f"query_ids: {len(query_ids)} ids for {idx_MxK.shape[0]} rows")
    return {q: {doc_ids[int(i)]: float(s) for i, s in zip(row_i, row_s)}
            for q, row_i, row_s in zip(query_ids, idx_MxK, scores_MxK)}


def trec_id(value: str) -> str:
    """`value` with '%' and whitespace percent-encoded, so that a TREC file can carry it.

    Ids without either are returned unchanged; the mapping is one-to-one (urllib.parse.unquote
    inverts it). LIMIT's document ids are names such as 'Geneva Durben'.

    >>> trec_id("Geneva Durben"), trec_id("doc7")
    ('Geneva%20Durben', 'doc7')
    """
    if "%" not in value and not any(c.isspace() for c in value):
        return value
    return "".join("".join(f"%{b:02X}" for b in c.encode("utf-8")) if c == "%" or c.isspace() else c
                   for c in value)


def _check_token(what: str, value: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{what}: {value!r} is empty or holds whitespace, which TREC files "
                         "cannot carry")


def _write_atomic(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)
    os.replace(tmp, path)
