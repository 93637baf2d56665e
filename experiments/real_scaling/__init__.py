"""On real text, as on synthetic corpora, DR trained with a sampled softmax loses more than DR-global and GR as the corpus grows, and on LIMIT-small DR needs a larger D than GR needs H.

The real-data counterpart of drift_corpus and capacity_dim (docs/design.md, sections 1 and 3). Each
collection is read as distributed (MS MARCO, NQ320k, BEIR/MTEB JSON lines) and cut into nested
corpora that all hold the judged documents of the evaluation queries and of the training pairs,
padded with seeded distractors, so only N changes between points (realdata.protocol).
The towers read hashed word + bigram TF-IDF features (or MiniLM-L6 embeddings); SeqGR's
semantic docids are hierarchical k-means over the documents' features. Training pairs come
from the collection's train split where it has one, otherwise from the evaluation queries
themselves (`train_on="test"`, the LIMIT paper's best-case protocol: LIMIT-small has only test
queries; every record says which). With `index_pairs`, every document also trains as a query
for itself, as in DSI's indexing task, so GR can learn documents that no training query names.
BM25 (bm25s, Lucene variant; k1, b, stemmer and stopwords are Config fields, and BM25_SETTINGS
["pyserini"] holds pyserini's BEIR defaults) is the baseline, one record per corpus. Outside runs
(`baseline_runs`, NAME=PATH: a pyserini, Tevatron or any TREC run of the collection's queries) are
scored on the same queries and qrels as the models, one record each (model "run:NAME") at the full
corpus. Every run's ranking is written in TREC form to <out>/real_scaling/runs/ (`run_file_name`), its
per-query values to perquery/<run_id>.csv, which the report's paired tests read (experiments.real_scaling.report).

Grid: collections x N x model (DR local with uniform negatives, DR global, AtomicGR, SeqGR) x
seed at fixed D and H; and on `dim_collections` (LIMIT-small) at the full corpus, a sweep of
D for DR and H for GR, scored by R@2 (the share of each query's two relevant documents in its
top 2). LIMIT-small: Weller, Boratko, Naim, Lee (2025), CC-BY 4.0.

Command:  grdr real --format beir --path realdata/fixtures/limit-small --dims 4 8 16 32 64
          grdr run real_scaling --preset quick --out results
The quick preset's time and the numbers it printed are in the report (`grdr demo`) and, for a longer run's
D / H table, in realdata/README.md.
"""
from __future__ import annotations

from grdr.experiments.real_scaling.config import (AXES, BM25_SETTINGS, FIXTURES, LIMIT_SMALL, MEASURES, NAME, PRESETS, Config,
                                             OutsideRunError, baseline_run, check_outside_run, sweep)
from grdr.experiments.real_scaling.report import findings, report
from grdr.experiments.real_scaling.run import run_file_name, run_group

__all__ = ["NAME", "AXES", "FIXTURES", "LIMIT_SMALL", "MEASURES", "BM25_SETTINGS", "Config", "PRESETS", "sweep",
           "run_group", "run_file_name", "baseline_run", "OutsideRunError", "check_outside_run", "findings", "report"]
