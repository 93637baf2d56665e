"""The options of `grdr real` checked against the collection they name, and the Config they make: a
folder that is not there, a split the collection lacks, an ir_datasets id that would need a
download, or an outside run that cannot be read is an OptionError naming the flag, before anything
is read or trained. Config's own checks (`__post_init__`) run when the Config is built."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from grdr.experiments.real_scaling.config import BM25_SETTINGS, PRESETS, Config, baseline_run

__all__ = ["OptionError", "check_collection", "baseline_run_checked", "config"]


class OptionError(ValueError):
    """An option that does not fit the collection; the message is one line and names the flag."""


def check_collection(format: str, path, split: str = "") -> None:
    """--path is the collection's folder (for irds: an id already in ir_datasets' cache), and --split one
    of its splits."""
    from grdr.realdata import splits

    if format != "irds" and not Path(path).is_dir():
        raise OptionError(f"--path {path}: no such folder; expected the {format} collection's directory")
    found = splits(format, path)
    if split and found and split not in found:
        raise OptionError(f"--split {split}: {path} has no such split; it has {', '.join(found)}")
    if format == "irds":  # an unknown id, or one whose files ir_datasets would have to download
        from grdr.realdata import irds

        try:
            irds.check_available(irds.dataset_id(path, split))
        except (ImportError, ValueError, FileNotFoundError) as err:
            raise OptionError(str(err)) from None  # "irds:ID: ..." names the id given as --path


def baseline_run_checked(entry: str) -> str:
    """--baseline-run NAME=FILE checked (a readable TREC run) and resolved to NAME=absolute path."""
    from grdr.realdata.errors import FormatError
    from grdr.realdata.trec import read_run

    try:
        name, file = baseline_run(entry)
    except ValueError as err:
        raise OptionError(f"--baseline-run {entry}: {err}") from None
    path = Path(file).expanduser()
    if not path.is_file():
        raise OptionError(f"--baseline-run {entry}: no such file {file}")
    try:
        if not read_run(path):
            raise OptionError(f"--baseline-run {entry}: {file} holds no ranking")
    except (FormatError, UnicodeDecodeError, OSError) as err:
        raise OptionError(f"--baseline-run {entry}: {err}") from None
    return f"{name}={path.resolve()}"


def config(preset: str, format: str, path, *, sizes=(), dims=(), baseline_runs=(), features: str = "hash",
           split: str = "", train_on: str = "auto", on_unknown: str = "error", bm25: str = "bm25s", models=None,
           seeds=None, max_train_pairs=None, model=None, train=None, docids=None) -> Config:
    """The preset's Config for one collection: swept over N (without dims, or with sizes too) and over D / H
    at the full corpus (with dims); None leaves the preset's models, seeds, pair cap and sections (model,
    train, docids: the ModelConfig, TrainConfig and DocidSpec that `--model.dim`, `--train.steps`, ... set)."""
    entry = f"{format}:{path}"
    if preset not in PRESETS:
        raise OptionError(f"--preset {preset}: real_scaling has no such preset; its presets: {', '.join(PRESETS)}")
    base = PRESETS[preset]
    overrides = {"models": models, "seeds": seeds, "max_train_pairs": max_train_pairs, "model": model, "train": train,
                 "docids": docids, **BM25_SETTINGS[bm25]}
    return dataclasses.replace(
        base, collections=(entry,) if sizes or not dims else (), sizes=tuple(sizes),
        dim_collections=(entry,) if dims else (), baseline_runs=tuple(baseline_runs),
        dims=tuple(dims) or base.dims, features=features, split=split, train_on=train_on, on_unknown=on_unknown,
        **{k: v for k, v in overrides.items() if v is not None})
