"""One entry point over the three formats: read a collection, or stream its document ids."""
from __future__ import annotations

from collections.abc import Container, Iterator
from pathlib import Path
from typing import Literal

from realdata.beir import iter_beir_doc_ids, read_beir
from realdata.collection import Collection, OnUnknown
from realdata.msmarco import iter_msmarco_doc_ids, read_msmarco
from realdata.nq320k import iter_nq320k_doc_ids, read_nq320k

Format = Literal["msmarco", "nq320k", "beir"]
_READERS = {"msmarco": (read_msmarco, iter_msmarco_doc_ids, "dev"),
            "nq320k": (read_nq320k, iter_nq320k_doc_ids, "dev"),
            "beir": (read_beir, iter_beir_doc_ids, "test")}


def read_collection(fmt: Format, path: str | Path, split: str | None = None, *,
                    doc_filter: Container[str] | None = None,
                    on_unknown: OnUnknown = "error") -> Collection:
    """Reads `path` in format `fmt` ("msmarco", "nq320k" or "beir").

    Args:
      fmt: the format.
      path: the directory as distributed.
      split: the evaluation split; None picks "dev" (MS MARCO, NQ320k) or "test" (BEIR).
      doc_filter: document ids whose text to hold; None holds all.
      on_unknown: "error" or "drop" for judgments naming unknown ids.
    """
    read, _, default_split = _lookup(fmt)
    return read(path, split or default_split, doc_filter=doc_filter, on_unknown=on_unknown)


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
