"""Results store: one JSON record per run at <out>/<experiment>/<run_id>.json (docs/design.md, section 3).

run_id is a hash of the full resolved configuration, so a rerun of the same point finds its record
and skips it. Writes go to a temporary file in the same folder and are renamed into place, so an
interrupted sweep never leaves a half-written record: it loses at most the run in flight.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pandas as pd

__all__ = ["run_id", "config_id", "record_path", "exists", "write_record", "read_record", "load", "versions"]

_PACKAGES = ("grdr", "jax", "jaxlib", "flax", "optax", "numpy")


def run_id(experiment: str, config: Mapping) -> str:
    """A stable hash of the experiment name and its flat, resolved configuration."""
    blob = json.dumps({"experiment": experiment, "config": dict(config)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def record_path(out: str | os.PathLike, experiment: str, rid: str) -> Path:
    return Path(out) / experiment / f"{rid}.json"


def exists(out, experiment: str, config: Mapping) -> bool:
    return record_path(out, experiment, run_id(experiment, config)).is_file()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def write_record(out, experiment: str, config: Mapping, metrics: Mapping, seconds: float,
                 derived: Mapping | None = None, **extra) -> Path:
    """Write one record atomically and return its path.

    `config` is what the run_id hashes; `derived` adds config fields that follow from it (such as
    the parameter count) without changing the run_id; `extra` adds top-level fields.
    """
    rid = run_id(experiment, config)
    record = {
        "experiment": experiment,
        "run_id": rid,
        "config": {**dict(config), **dict(derived or {})},
        "metrics": {k: float(v) for k, v in metrics.items()},
        "seconds": float(seconds),
        "versions": versions(),
        **extra,
    }
    path = record_path(out, experiment, rid)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{rid}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(path) -> dict:
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a valid results record ({e})") from e


_DERIVED = ("params", "corpus_seed_used")  # config fields that follow from the rest (not in the run_id)


def config_id(config: Mapping) -> str:
    """A hash of a flat config without its seed and derived fields: the runs that may be pooled across seeds."""
    return run_id("", {k: v for k, v in config.items() if k != "seed" and k not in _DERIVED})


def load(out, experiment: str) -> pd.DataFrame:
    """A tidy DataFrame: one row per run, config and metrics as columns, plus run_id, seconds,
    config_id (the config without its seed) and mtime (when the record was written)."""
    folder = Path(out) / experiment
    rows = []
    for path in sorted(folder.glob("*.json")):
        rec = read_record(path)
        rows.append({"run_id": rec["run_id"], **rec["config"], **rec["metrics"], "seconds": rec["seconds"],
                     "config_id": config_id(rec["config"]), "mtime": path.stat().st_mtime})
    return pd.DataFrame(rows)
