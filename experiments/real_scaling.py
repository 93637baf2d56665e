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
["pyserini"] holds pyserini's BEIR defaults) is the baseline, one record per corpus. Every run's ranking is
written in TREC form to <out>/real_scaling/runs/<run_id>.trec (by `run`, which `grdr real` calls).

Grid: collections x N x model (DR local with uniform negatives, DR global, AtomicGR, SeqGR) x
seed at fixed D and H; and on `dim_collections` (LIMIT-small) at the full corpus, a sweep of
D for DR and H for GR, scored by R@2 (the share of each query's two relevant documents in its
top 2). LIMIT-small: Weller, Boratko, Naim, Lee (2025), CC-BY 4.0.

Command:  grdr real --format beir --path realdata/fixtures/limit-small --dims 4 8 16 32 64
          grdr run real_scaling --preset quick --out results
Quick preset: 52 runs in 118 s on 2 cores (400 steps), 2026-12-02, within `grdr demo`.
Last printed (LIMIT-small, R@2 at D = H = 64, two seeds, quick): DR-local 0.766, DR-global 0.847, AtomicGR 0.956,
SeqGR 0.867, BM25 0.991; the full D / H table of a longer run is in realdata/README.md.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np

import realdata
from experiments import store
from experiments.points import RecordPoint, require_known, require_seeds
from experiments.variants import VARIANTS, label, variant
from realdata.bm25 import bm25_topk
from realdata.protocol import Prepared, RealSpec, docid_features, prepare
from realdata.trec import trec_id, write_qrels, write_run
from sim.docids import make_docids
from sim.evaluate import retrieve
from sim.metrics import evaluate
from sim.models import ModelConfig, count_params
from sim.train import TrainConfig, TrainData, model_at, train

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
    models: tuple[str, ...] = ("dr_local_uniform", "dr_global", "atomic_gr", "seq_gr")
    bm25: bool = True
    bm25_k1: float = 1.5
    """BM25 term-frequency saturation k1 (> 0); pyserini's BEIR runs use 0.9."""
    bm25_b: float = 0.75
    """BM25 length normalisation b, in [0, 1]; pyserini's BEIR runs use 0.4."""
    bm25_stemmer: Literal["none", "porter"] = "none"
    """BM25 stemmer: none, or porter (PyStemmer's, as Lucene's PorterStemFilter; pyserini's default)."""
    bm25_stopwords: Literal["none", "en"] = "en"
    """BM25 stopwords: none, or en (Lucene's 33 English stopwords, as pyserini)."""
    seeds: tuple[int, ...] = (0, 1)
    split: str = ""
    """Evaluation split; "" = dev (MS MARCO, NQ320k) or test (BEIR)."""
    features: Literal["hash", "minilm"] = "hash"
    feature_dim: int = 2048
    train_on: Literal["auto", "train", "test"] = "auto"
    max_train_pairs: int = 20_000
    index_pairs: bool = True
    dim: int = 32
    hidden: int = 64
    depth: int = 1
    num_negatives: int = 8
    steps: int = 1000
    batch_size: int = 128
    learning_rate: float = 1e-2
    docid_vocab: int = 10
    docid_dims: int = 64
    k: int = 100
    corpus_seed: int = 0
    on_unknown: Literal["error", "drop"] = "error"

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
        for field in ("dim", "hidden", "depth", "num_negatives", "steps", "batch_size", "k", "docid_dims",
                      "feature_dim", "max_train_pairs"):
            if getattr(self, field) < 1:
                raise ValueError(f"Config.{field}={getattr(self, field)}: expected at least 1")
        if self.docid_vocab < 2:
            raise ValueError(f"Config.docid_vocab={self.docid_vocab}: expected at least 2")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"Config.learning_rate={self.learning_rate}: expected a finite number > 0")
        if self.corpus_seed < 0:
            raise ValueError(f"Config.corpus_seed={self.corpus_seed}: expected >= 0")
        if not (math.isfinite(self.bm25_k1) and self.bm25_k1 > 0):
            raise ValueError(f"Config.bm25_k1={self.bm25_k1}: expected > 0")
        if not 0 <= self.bm25_b <= 1:
            raise ValueError(f"Config.bm25_b={self.bm25_b}: expected a number in [0, 1]")
        for field, allowed in (("bm25_stemmer", ("none", "porter")), ("bm25_stopwords", ("none", "en"))):
            if getattr(self, field) not in allowed:
                raise ValueError(f"Config.{field}={getattr(self, field)!r}: expected one of {allowed}")


PRESETS = {
    "smoke": Config(sizes=(100, 285), dims=(8,), seeds=(0,), steps=20, feature_dim=256, max_train_pairs=40, dim=8,
                    hidden=16, k=20, docid_dims=16),
    "quick": Config(sizes=(120, 200, 285), dims=(4, 16, 64), steps=400, seeds=(0, 1), max_train_pairs=60, feature_dim=1024),
    # The shipped fixtures and LIMIT-small at full length; point `collections` at your own copies of
    # MS MARCO or NQ320k (or use `grdr real`) for the paper-scale runs.
    "paper": Config(collections=(f"msmarco:{FIXTURES / 'msmarco'}", f"nq320k:{FIXTURES / 'nq320k'}",
                                 f"beir:{FIXTURES / 'beir'}"),
                    max_train_pairs=60, dims=(2, 4, 8, 16, 32, 64, 128), seeds=(0, 1, 2), steps=3000, feature_dim=8192),
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


def _model_fields(cfg: Config, name: str, width: int | None) -> dict:
    v = variant(name)
    kind, objective, sampler, logq = v.kind, v.objective, v.sampler, v.logq
    dim, hidden = (cfg.dim, cfg.hidden) if width is None else (width, cfg.hidden if kind == "dr" else width)
    return {
        "model": name, "kind": kind, "objective": objective, "sampler": sampler, "logq": logq,
        "dim": dim if kind == "dr" else hidden, "hidden": hidden, "depth": cfg.depth, "doc_side": v.doc_side,
        "num_negatives": cfg.num_negatives if objective == "local" else 0,
        "steps": cfg.steps, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
        "index_pairs": cfg.index_pairs, "docids": "semantic" if kind == "seq_gr" else "atomic",
        "docid_vocab": cfg.docid_vocab, "docid_dims": cfg.docid_dims,
    }


def sweep(cfg: Config):
    """One flat record config per (collection, N, model, seed) and per (LIMIT-small, D or H, model, seed)."""
    baselines = set()
    for spec, kind in _specs(cfg):
        prep = prepare(spec)
        data = _collection_fields(prep)
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
                        yield RecordPoint.of(**data, **_model_fields(cfg, name, width), sweep=kind, n_docs=n,
                                             k=cfg.k, seed=seed)


def _bm25_fields(cfg: Config) -> dict:
    """What a BM25 record says about its settings (bm25s' Lucene variant, realdata/bm25.py)."""
    return {"model": "bm25", "kind": "bm25", "bm25_k1": cfg.bm25_k1, "bm25_b": cfg.bm25_b, "bm25_method": "lucene",
            "bm25_stemmer": cfg.bm25_stemmer, "bm25_stopwords": cfg.bm25_stopwords}


def _bm25_label(record) -> str:
    """"BM25" for grdr's default settings, else the settings, so that two settings are not averaged together."""
    values = [record.get(f"bm25_{k}") for k in ("k1", "b", "stemmer", "stopwords")]
    values = [v for v in values if isinstance(v, str) or (v is not None and v == v)]  # NaN: older records
    settings = dict(zip(("k1", "b", "stemmer", "stopwords"), values)) if len(values) == 4 else {}
    default = {k.removeprefix("bm25_"): v for k, v in BM25_SETTINGS["bm25s"].items()}
    if not settings or settings == default:
        return "BM25"
    if settings == {k.removeprefix("bm25_"): v for k, v in BM25_SETTINGS["pyserini"].items()}:
        return "BM25 (pyserini)"
    return f"BM25 (k1 {settings['k1']:g}, b {settings['b']:g}, {settings['stemmer']}, stopwords {settings['stopwords']})"


def _prepared_for(cfg: Config, point: dict) -> Prepared:
    for spec, _ in _specs(cfg):
        prep = prepare(spec)
        fields = _collection_fields(prep)
        if all(point[k] == v for k, v in fields.items()) and point["n_docs"] in prep.sizes:
            return prep
    raise ValueError(f"no collection of the config matches the point {point}")


def run_group(cfg: Config, points, out: str | Path | None = None):
    """Train the points (equal but for the seed) together; evaluate and, given `out`, write their runs.

    Runs and qrels name queries and documents by `trec_id` (whitespace percent-encoded), and the
    metrics are computed on exactly what is written, so ir_measures on the files gives the record.
    """
    p = points[0]
    prep = _prepared_for(cfg, p)
    corpus = prep.at(p["n_docs"])
    query_ids = [trec_id(q) for q in prep.query_ids]
    doc_ids = [trec_id(d) for d in corpus.doc_ids]
    qrels = {trec_id(q): {trec_id(d): g for d, g in judged.items()} for q, judged in prep.qrels.items()}
    t0 = time.perf_counter()
    if p["model"] == "bm25":
        idx, scores = bm25_topk(corpus.doc_texts, prep.query_texts, p["k"], k1=p["bm25_k1"], b=p["bm25_b"],
                                method=p["bm25_method"], stemmer=p["bm25_stemmer"], stopwords=p["bm25_stopwords"])
        rankings, extras = [(idx, scores)], [{}]
    else:
        rankings, extras = _train_and_rank(prep, corpus, points)
    results = []
    for point, (docs_MxK, scores_MxK), extra in zip(points, rankings, extras):
        run = {q: {doc_ids[d]: float(s) for d, s in zip(row_d, row_s) if d >= 0}
               for q, row_d, row_s in zip(query_ids, np.asarray(docs_MxK), np.asarray(scores_MxK))}
        extra["run_file"] = extra["qrels_file"] = None
        if out is not None:
            extra.update(_write_files(Path(out) / NAME, point, run, qrels))
        results.append((evaluate(qrels=qrels, run=run, measures=MEASURES), extra))
    return results, time.perf_counter() - t0


def _write_files(folder: Path, point: RecordPoint, run: dict, qrels: dict) -> dict:
    """The run as runs/<run_id>.trec and the split's qrels as runs/<collection>-<hash>.qrels."""
    point = point.record()
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    run_file = Path("runs") / f"{store.run_id(NAME, point)}.trec"
    write_run(folder / run_file, run, tag=f"{point['model']}.s{point['seed']}")
    key = store.run_id("qrels", {k: point[k] for k in ("format", "path", "split", "on_unknown")})
    qrels_file = Path("runs") / f"{'-'.join(filter(None, (point['collection'], point['split'], key[:8])))}.qrels"
    if not (folder / qrels_file).is_file():
        write_qrels(folder / qrels_file, qrels)
    return {"run_file": str(run_file), "qrels_file": str(qrels_file)}


def _train_and_rank(prep: Prepared, corpus, points):
    p = points[0]
    N = corpus.n_docs
    docids = None
    if p["kind"] == "seq_gr":
        feats = docid_features(corpus.doc_features_NxF, p["docid_dims"], seed=p["corpus_seed"])
        docids = make_docids("semantic", N, vocab=p["docid_vocab"], features_NxF=feats, seed=p["corpus_seed"])
    query_TxF, pos_T = corpus.train_features_TxF, corpus.train_pos_T
    if p["index_pairs"]:
        query_TxF = np.concatenate([query_TxF, corpus.doc_features_NxF])
        pos_T = np.concatenate([pos_T, np.arange(N)])
    model_cfg = ModelConfig(kind=p["kind"], dim=p["dim"], hidden=p["hidden"], depth=p["depth"],
                            doc_side=p["doc_side"] if p["kind"] == "dr" else "tower")
    train_cfg = TrainConfig(objective=p["objective"], sampler=p["sampler"], logq=p["logq"],
                            num_negatives=max(p["num_negatives"], 1), steps=p["steps"], batch_size=p["batch_size"],
                            learning_rate=p["learning_rate"], hard_pool=min(32, N))
    result = train(model_cfg, train_cfg, TrainData(query_TxF, pos_T, corpus.doc_features_NxF, docids),
                   [q["seed"] for q in points])
    rankings, extras = [], []
    for i, _ in enumerate(points):
        model = model_at(result, i)
        t1 = time.perf_counter()
        docs_MxK, scores_MxK = retrieve(model, prep.query_features_MxF, corpus.doc_features_NxF, p["k"],
                                        docids=docids, beam=p["k"] if docids is not None else None)
        rankings.append((docs_MxK, scores_MxK))
        extras.append({"params": count_params(model), "final_loss": float(result.losses_SxT[i, -1]),
                       "train_seconds": result.seconds / len(points), "eval_seconds": time.perf_counter() - t1,
                       "compiles": result.compiles})
    return rankings, extras


def findings(df) -> list:
    """Per collection swept over N: does each sampled-softmax DR fall further behind (Success@1)?"""
    from experiments.report import slope_finding

    found = []
    sized = df[df["sweep"] == "size"]
    for path, d in sized.groupby("path", sort=True):
        if d["n_docs"].nunique() < 2:
            continue
        models = set(d["model"])
        for local in [m for m in VARIANTS if VARIANTS[m].objective == "local" and m in models]:
            for ref in [m for m in ("dr_global", "atomic_gr", "seq_gr") if m in models]:
                title = f"{d['collection'].iloc[0]}: {label(local)} vs {label(ref)}"
                found.append(slope_finding(NAME, d, local, ref, "Success@1", title, higher_is_better=True,
                                           negligible=0.02))
    return found


def report(df) -> str:
    """Report section: metrics against N per collection, and R@2 against D / H on the dim collections."""
    from experiments.report import finding_lines, mean_table

    df = df.assign(label=[_bm25_label(r) if r["model"] == "bm25" else label(r["model"]) for _, r in df.iterrows()])
    lines = []
    dims = df[df["sweep"] == "dim"]
    for path, d in df[df["sweep"].isin(["size", "baseline"])].groupby("path", sort=True):
        sized = d["sweep"] == "size"
        if not sized.any() and path in set(dims["path"]):
            continue  # only the BM25 of a D / H sweep, reported below
        if sized.any():
            d = d[d["n_docs"].isin(set(d.loc[sized, "n_docs"]))]
        lines += [f"**{d['collection'].iloc[0]}** ({d['format'].iloc[0]}, trained on its {d['train_on'].iloc[0]} "
                  "queries), Success@1 and nDCG@10 against N (mean ± 95% interval over seeds):", "",
                  mean_table(d, "label", "n_docs", "Success@1"), "", mean_table(d, "label", "n_docs", "nDCG@10"), ""]
    if not dims.empty:
        dims = dims.assign(dim=dims["dim"].astype(int))
    for path, d in dims.groupby("path", sort=True):
        name = d["collection"].iloc[0]
        lines += [f"**{name}**, R@2 against D (DR) and H (GR) at N = {int(d['n_docs'].iloc[0])} "
                  f"(trained on its {d['train_on'].iloc[0]} queries):", "", mean_table(d, "label", "dim", "R@2"), ""]
        base = df[(df["model"] == "bm25") & (df["path"] == path) & (df["n_docs"] == d["n_docs"].iloc[0])]
        if not base.empty:
            lines += [f"BM25: R@2 = {base['R@2'].iloc[0]:.3f}.", ""]
        for model, m in d.groupby("label", sort=False):
            means = m.groupby("dim")["R@2"].mean()
            reach = means[means >= 0.9]
            lines.append(f"- {model}: best mean R@2 {means.max():.3f} (width {means.idxmax()}); "
                         + (f"0.9 reached at width {reach.index.min()}" if len(reach) else "0.9 not reached"))
        if "limit" in name.lower():
            lines += ["", "LIMIT-small: Weller, Boratko, Naim, Lee (2025), CC-BY 4.0."]
        lines.append("")
    found = findings(df)
    if found:
        lines += ["Verdicts: slope per decade of N of the paired Success@1 gap (> 0: the sampled DR falls further "
                  "behind as the collection grows):", ""] + finding_lines(found)
    return "\n".join(lines)
