"""One entry point over the formats: read a collection, or stream its document ids.

Formats: the three directory layouts as distributed (msmarco, nq320k, beir; any file may be
gzipped) and "irds", whose path is an ir_datasets id read from ir_datasets' own files (irds.py).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Literal

from grdr.realdata._stream import strip_gz
from grdr.realdata.beir import iter_beir_doc_ids, read_beir
from grdr.realdata.collection import Collection, OnUnknown
from grdr.realdata.irds import iter_irds_doc_ids, read_irds
from grdr.realdata.irds import splits as irds_splits
from grdr.realdata.msmarco import iter_msmarco_doc_ids, read_msmarco
from grdr.realdata.nq320k import iter_nq320k_doc_ids, read_nq320k

Format = Literal["msmarco", "nq320k", "beir", "irds"]
_READERS = {"msmarco": (read_msmarco, iter_msmarco_doc_ids, "dev"),
            "nq320k": (read_nq320k, iter_nq320k_doc_ids, "dev"),
            "beir": (read_beir, iter_beir_doc_ids, "test"),
            "irds": (read_irds, iter_irds_doc_ids, "")}


def read_collection(fmt: Format, path: str | Path, split: str | None = None, *,
                    doc_filter: Container[str] | None = None,
                    on_unknown: OnUnknown = "error") -> Collection:
    """Reads `path` in format `fmt` ("msmarco", "nq320k", "beir" or "irds").

    Args:
      fmt: the format.
      path: the directory as distributed; for "irds", an ir_datasets id.
      split: the evaluation split; None picks "dev" (MS MARCO, NQ320k) or "test" (BEIR); for
        "irds", None reads the id itself and a split reads `<id>/<split>`.
      doc_filter: document ids whose text to hold; None holds all.
      on_unknown: "error" or "drop" for judgments naming unknown ids.
    """
    read, _, default_split = _lookup(fmt)
    split = split or default_split
    found = splits(fmt, path)
    if split and found and split not in found:
        raise FileNotFoundError(f"{path}: no split {split!r}; the splits there are {', '.join(found)}")
    return read(path, split, doc_filter=doc_filter, on_unknown=on_unknown)


def splits(fmt: Format, path: str | Path) -> list[str]:
    """The splits whose judgments the directory holds, by their file names. A BEIR directory with a
    single `qrels.jsonl` (MTEB's layout) holds one split, read as "test". Empty when the
    directory holds none (the reader then names the file it expected). Gzipped files count as
    plain ones. For "irds", the ids under `path` that have qrels, relative to it."""
    if fmt == "irds":
        return irds_splits(path)
    root = Path(path)

    def names(folder: Path, pattern: str) -> set[str]:  # file names matching, X.gz read as X
        return {strip_gz(p.name) for p in folder.glob(pattern + "*")
                if p.is_file() and fnmatch.fnmatchcase(strip_gz(p.name), pattern)}

    if fmt == "beir":
        found = sorted(n[:-len(".tsv")] for n in names(root / "qrels", "*.tsv"))
        return found or (["test"] if names(root, "qrels.jsonl") else [])
    if fmt == "msmarco":
        return sorted(n[len("qrels."):-len(".tsv")] for n in names(root, "qrels.*.tsv"))
    if fmt == "nq320k":
        return sorted(n[len("nq_"):-len("_doc_newid.tsv")] for n in names(root, "nq_*_doc_newid.tsv"))
    _lookup(fmt)
    return []


def scan_doc_ids(fmt: Format, path: str | Path) -> Iterator[str]:
    """Yields the document ids of the corpus file in file order, holding neither ids nor texts.

    For `nested_corpora(..., pool=scan_doc_ids(fmt, path))` on a collection too large to hold.
    Only the columns are checked here; `read_collection` checks the rest.
    """
    return _lookup(fmt)[1](path)


def _lookup(fmt: str):
    if fmt not in _READERS:
        raise ValueError(f"fmt: {fmt!r} is not one of {', '.join(_READERS)}")
    return _READERS[fmt]
