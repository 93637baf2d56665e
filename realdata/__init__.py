"""Real-data harness: MS MARCO, NQ320k and BEIR/MTEB readers, nested corpora, features, BM25,
TREC files."""
from experiments.real.bm25 import bm25_topk
from experiments.real.collection import Collection
from experiments.real.corpus_size import nested_corpora
from experiments.real.errors import DroppedQrelsWarning, FormatError
from experiments.real.features import HashTfidf, HashTfidfConfig, fit_hash_tfidf
from experiments.real.readers import read_collection, scan_doc_ids
from experiments.real.trec import read_qrels, read_run, run_from_topk, write_qrels, write_run

__all__ = [
    "Collection", "DroppedQrelsWarning", "FormatError", "HashTfidf", "HashTfidfConfig",
    "bm25_topk", "fit_hash_tfidf", "nested_corpora", "read_collection", "read_qrels",
    "read_run", "run_from_topk", "scan_doc_ids", "write_qrels", "write_run",
]
