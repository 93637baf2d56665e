"""Real-data harness: MS MARCO, NQ320k and BEIR/MTEB readers, nested corpora, features, BM25,
TREC files."""
from grdr.realdata.bm25 import bm25_topk
from grdr.realdata.collection import Collection
from grdr.realdata.corpus_size import nested_corpora
from grdr.realdata.errors import DroppedQrelsWarning, FormatError
from grdr.realdata.features import HashTfidf, HashTfidfConfig, fit_hash_tfidf
from grdr.realdata.readers import read_collection, scan_doc_ids, splits
from grdr.realdata.trec import read_qrels, read_run, run_from_topk, write_qrels, write_run

__all__ = [
    "Collection", "DroppedQrelsWarning", "FormatError", "HashTfidf", "HashTfidfConfig",
    "bm25_topk", "fit_hash_tfidf", "nested_corpora", "read_collection", "read_qrels",
    "read_run", "run_from_topk", "scan_doc_ids", "splits", "write_qrels", "write_run",
]
