"""real_scaling's unit of work: one group of points (equal but for the seed) trained, ranked and
scored on one corpus of a collection; BM25 and outside runs ranked or read; every run written in TREC
form with its per-query values."""
from __future__ import annotations

import csv
import math
import os
import re
import time
from pathlib import Path

import numpy as np

from grdr.experiments.pipeline import train_group, trained_fields
from grdr.experiments.real_scaling.config import MEASURES, NAME, Config, _collection_fields, _specs
from grdr.experiments.real_scaling.points import RealPoint
from grdr.experiments.points import RecordPoint
from grdr.experiments.sweep import store
from grdr.realdata.bm25 import bm25_topk
from grdr.realdata.protocol import Prepared, docid_features, prepare
from grdr.realdata.trec import read_run, run_digest, trec_id, write_qrels, write_run
from grdr.sim.docids import make_docids
from grdr.sim.evaluate import retrieve
from grdr.sim.metrics import evaluate
from grdr.sim.train import TrainData, model_at

__all__ = ["run_group", "run_file_name"]


def _prepared_for(cfg: Config, point: dict) -> Prepared:
    for spec, _ in _specs(cfg):
        prep = prepare(spec)
        fields = _collection_fields(prep)
        if all(point[k] == v for k, v in fields.items()) and point["n_docs"] in prep.sizes:
            return prep
    raise ValueError(f"no collection of the config matches the point {point}")


def run_group(cfg: Config, points, out: str | Path | None = None):
    """Train the points (equal but for the seed) together; evaluate and, given `out`, write their runs
    and per-query values (an outside run's point reads its file instead).

    Runs and qrels name queries and documents by `trec_id` (whitespace percent-encoded), and the
    metrics are computed on exactly what is written, so ir_measures on the files gives the record.
    """
    p = points[0].record()
    prep = _prepared_for(cfg, p)
    corpus = prep.at(p["n_docs"])
    query_ids = [trec_id(q) for q in prep.query_ids]
    doc_ids = [trec_id(d) for d in corpus.doc_ids]
    qrels = {trec_id(q): {trec_id(d): g for d, g in judged.items()} for q, judged in prep.qrels.items()}
    t0 = time.perf_counter()
    if p["kind"] == "run":
        runs, extras = [_outside_run(p, qrels)], [{}]
    else:
        if p["model"] == "bm25":
            idx, scores = bm25_topk(corpus.doc_texts, prep.query_texts, p["k"], k1=p["bm25_k1"], b=p["bm25_b"],
                                    method=p["bm25_method"], stemmer=p["bm25_stemmer"],
                                    stopwords=p["bm25_stopwords"])
            rankings, extras = [(idx, scores)], [{}]
        else:
            rankings, extras = _train_and_rank(prep, corpus, points)
        runs = [{q: {doc_ids[d]: float(s) for d, s in zip(row_d, row_s) if d >= 0}
                 for q, row_d, row_s in zip(query_ids, np.asarray(docs_MxK), np.asarray(scores_MxK))}
                for docs_MxK, scores_MxK in rankings]
    results = []
    for point, run, extra in zip(points, runs, extras):
        per_query = evaluate(qrels=qrels, run=run, measures=MEASURES, per_query=True)
        extra["run_file"] = extra["qrels_file"] = extra["perquery_file"] = None
        if out is not None:
            extra.update(_write_files(Path(out) / NAME, point, run, qrels, per_query))
        # the mean over every judged query, as evaluate() (and ir_measures' calc_aggregate) averages
        metrics = {m: float(np.sum(np.fromiter(v.values(), np.float64)) / len(v)) if v else math.nan
                   for m, v in per_query.items()}
        results.append((metrics, extra))
    return results, time.perf_counter() - t0


def _outside_run(p, qrels: dict) -> dict:
    """An outside run's file, checked to be the one the point hashed and to rank the collection's queries."""
    path = p["run_path"]
    if run_digest(path)[0] != p["run_sha256"]:
        raise ValueError(f"{path}: changed since the sweep read it; run again")
    run = read_run(path)
    if not set(run) & set(qrels):
        raise ValueError(f"{p['model']}: {path} ranks none of the {len(qrels)} evaluation queries of "
                         f"{p['collection']} ({len(run)} queries, e.g. {next(iter(run), 'none')!r})")
    return run


def run_file_name(point: dict) -> str:
    """A run's file under runs/: <collection>-<split>-<model>-N<n>[-D<d> or -H<h>]-seed<s>-<8 hex>.trec
    (BM25: no width or seed). The 8 hex digits of the run_id keep names unique across settings that
    the name does not show (steps, features, BM25's k1 and b, a second folder of the same name)."""
    parts = [point["collection"], point["split"], point["model"], f"N{point['n_docs']}"]
    if point["kind"] not in ("bm25", "run"):
        parts += [f"{'D' if point['kind'] == 'dr' else 'H'}{point['dim']}", f"seed{point['seed']}"]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(str(x) for x in parts if x != ""))
    return f"{stem}-{store.run_id(NAME, point)[:8]}.trec"


def _write_files(folder: Path, point: RecordPoint | RealPoint, run: dict, qrels: dict, per_query: dict) -> dict:
    """The run under runs/ (run_file_name; not for an outside run, whose file stays where it is), the
    split's qrels as runs/<collection>-<split>-<hash>.qrels and the per-query values as
    perquery/<run_id>.csv: query_id, measure, value, every judged query (a file, not the record, since
    it grows with the queries: 5 x 7k rows on MS MARCO dev, too many to load with every record)."""
    point = point.record()
    rid = store.run_id(NAME, point)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    if point["kind"] == "run":
        run_file = point["run_path"]
    else:
        run_file = str(Path("runs") / run_file_name(point))
        write_run(folder / run_file, run, tag=f"{point['model']}.s{point['seed']}")
    key = store.run_id("qrels", {k: point[k] for k in ("format", "path", "split", "on_unknown")})
    qrels_file = Path("runs") / f"{'-'.join(filter(None, (point['collection'], point['split'], key[:8])))}.qrels"
    if not (folder / qrels_file).is_file():
        write_qrels(folder / qrels_file, qrels)
    perquery_file = Path("perquery") / f"{rid}.csv"
    (folder / "perquery").mkdir(exist_ok=True)
    tmp = folder / "perquery" / f".{rid}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("query_id", "measure", "value"))
        for measure, values in per_query.items():
            writer.writerows((q, measure, repr(v)) for q, v in values.items())
    os.replace(tmp, folder / perquery_file)
    return {"run_file": run_file, "qrels_file": str(qrels_file), "perquery_file": str(perquery_file)}


def _train_and_rank(prep: Prepared, corpus, points: list[RealPoint]):
    """Train a group's points on the corpus's training pairs (and, with index_pairs, every document as a
    query for itself) as their ModelConfig and TrainConfig say; rank every evaluation query."""
    p = points[0]
    N = corpus.n_docs
    docids = None
    if p.variant.kind == "seq_gr":
        feats = (docid_features(corpus.doc_features_NxF, p.docid_dims, seed=p.docids.seed)
                 if p.docids.scheme == "semantic" else None)
        docids = make_docids(p.docids.scheme, N, vocab=p.docids.vocab, features_NxF=feats, seed=p.docids.seed)
    query_TxF, pos_T = corpus.train_features_TxF, corpus.train_pos_T
    if p.index_pairs:
        query_TxF = np.concatenate([query_TxF, corpus.doc_features_NxF])
        pos_T = np.concatenate([pos_T, np.arange(N)])
    result = train_group(points, TrainData(query_TxF, pos_T, corpus.doc_features_NxF, docids))
    rankings, extras = [], []
    for i, _ in enumerate(points):
        model = model_at(result, i)
        t1 = time.perf_counter()
        docs_MxK, scores_MxK = retrieve(model, prep.query_features_MxF, corpus.doc_features_NxF, p.k,
                                        docids=docids, beam=p.k if docids is not None else None)
        rankings.append((docs_MxK, scores_MxK))
        extras.append({**trained_fields(result, i, model, len(points)), "eval_seconds": time.perf_counter() - t1,
                       "compiles": result.compiles})
    return rankings, extras
