"""Results store: one JSON record per run at <out>/<experiment>/<run_id>.json (docs/design.md, section 3).

run_id is a hash of the full resolved configuration, so a rerun of the same point finds its record
and skips it. Writes go to a temporary file in the same folder and are renamed into place, so an
interrupted sweep never leaves a half-written record: it loses at most the run in flight.

Beside the records, per experiment folder: `quarantine/`, records that could not be read, moved aside
on request; and the claims and failure records of experiments.sweep.claims.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

__all__ = ["StoreError", "run_id", "config_id", "record_path", "exists", "write_record", "read_record", "load",
           "check_record", "commands", "COMMAND_LINE", "versions", "experiments_in"]

COMMAND_LINE: str | None = None
"""The command line that is writing records (set by the `grdr` command), stored in each record as
`command`, so that a figure's caption can say which command made it."""


class StoreError(ValueError):
    """A results folder that cannot be read as asked: missing, empty, or holding a file that is not a record."""

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
        "derived": sorted(derived or {}),  # the config keys the run_id leaves out: lets load() check the hash
        "metrics": {k: float(v) for k, v in metrics.items()},
        "seconds": float(seconds),
        "versions": versions(),
        **({"command": COMMAND_LINE} if COMMAND_LINE else {}),
        **extra,
    }
    path = record_path(out, experiment, rid)
    _write_json(path, record)
    return path


def _write_json(path: Path, obj) -> None:
    """Write obj to path atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_RECORD_KEYS = ("run_id", "config", "metrics", "seconds")
_DERIVED = ("params", "corpus_seed_used")  # config fields that follow from the rest (not in the run_id)


def read_record(path, experiment: str | None = None) -> dict:
    """One record, checked against the record schema (check_record); StoreError naming the file and the
    field if it is not valid JSON, not a grdr record, or (given `experiment`) another experiment's."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: not a results record (invalid JSON: {e})") from e
    missing = [k for k in _RECORD_KEYS if not isinstance(rec, dict) or k not in rec]
    if missing:
        raise StoreError(f"{path}: not a results record (no {', '.join(missing)})")
    problem = check_record(rec, Path(path), experiment)
    if problem:
        raise StoreError(f"{path}: {problem}")
    return rec


def _read_checked(path: Path, experiment: str) -> dict:
    """read_record less its hash check, which load() makes with the folder's other records at hand."""
    try:
        return read_record(path, experiment)
    except StoreError as err:
        if "does not hash to its run_id" not in str(err):
            raise
        with open(path) as f:
            return json.load(f)


def _json_type(value) -> str:
    """The JSON kind of a value, as a record's reader sees it: number (int or float), bool, text, null, list, object."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def check_record(rec: dict, path: Path | None = None, experiment: str | None = None) -> str | None:
    """What is wrong with a record, naming the field, or None. The schema (docs/design.md, section 3):
    `experiment` (text, the folder's experiment), `run_id` (text, the file's name), `config` (an object of
    scalars and lists of scalars that hashes to run_id, less the keys listed in `derived`), `metrics` (an
    object of numbers; NaN for none, never null or text), `seconds` (a finite number >= 0)."""
    if experiment is not None and rec.get("experiment") != experiment:
        found = rec.get("experiment")
        if not isinstance(found, str):
            return f"field experiment={found!r}: expected {experiment!r}"
        return (f"a record of experiment {found!r} (its field experiment) in the folder of {experiment!r}: "
                f"move it to {found}/")
    if not isinstance(rec["run_id"], str):
        return f"field run_id={rec['run_id']!r}: expected a text (the file's name)"
    if path is not None and rec["run_id"] != path.stem:
        return f"field run_id={rec['run_id']!r}: expected {path.stem!r}, the file's name"
    config, metrics, seconds = rec["config"], rec["metrics"], rec["seconds"]
    if not isinstance(config, dict):
        return f"field config: a {_json_type(config)}; expected an object of settings"
    for key, value in config.items():
        if not (_scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value))):
            return f"config.{key}={value!r}: expected a number, text, true/false, null or a list of these"
    if not isinstance(metrics, dict):
        return f"field metrics: a {_json_type(metrics)}; expected an object of numbers"
    for key, value in metrics.items():
        if _json_type(value) != "number":
            return f"metrics[{key!r}]={json.dumps(value)}: expected a number (NaN for a value that does not exist)"
        from grdr.experiments.verdict.seeds import metric_range  # numpy/scipy/pandas: not at `grdr --help`

        low, high = metric_range(key)
        if math.isfinite(value) and not low - 1e-3 <= value <= high + 1e-3:  # 1e-3: float32 round-off near 0
            return f"metrics[{key!r}]={value!r}: outside the values it can take, [{low:g}, {high:g}]"
    if _json_type(seconds) != "number" or not (seconds >= 0 and seconds != float("inf")):
        return f"field seconds={seconds!r}: expected a finite number >= 0"
    derived = rec.get("derived")
    if derived is not None and not (isinstance(derived, list) and all(isinstance(k, str) for k in derived)):
        return f"field derived={derived!r}: expected a list of config keys"
    if _hash_matches(rec) is False:
        return (f"config does not hash to its run_id {rec['run_id']} (a field changed, added or deleted after it "
                "was written?)")
    return None


def _hash_matches(rec: dict) -> bool | None:
    """Whether the config (less its derived keys) hashes to the run_id: True or False for a record that
    lists its derived keys; for an older record, True, or None when it does not match (its writer may
    have added derived keys it did not list, so the hash cannot tell an edit)."""
    derived = rec.get("derived")
    keys = set(derived) if isinstance(derived, list) else set(_DERIVED)
    rid = run_id(str(rec.get("experiment")), {k: v for k, v in rec["config"].items() if k not in keys})
    if rid == rec["run_id"]:
        return True
    return False if isinstance(derived, list) else None


def _peer_key(config: dict) -> tuple:
    return tuple(str(config.get(k)) for k in ("model", "record", "kind", "sweep", "scorer"))


def _diagnose(records: list[tuple[Path, dict]], suspects: list[Path]) -> dict[Path, str]:
    """For each suspect record (one whose config does not hash to its run_id), the field that departs
    from the other records of its kind (same model, record type, kind, sweep and scorer), if any: a key
    that every one of them has is missing, or a value of another JSON kind than every one of theirs
    (a hand edit such as `"seed": "zero"`)."""
    problems = {}
    by_kind: dict = {}
    for path, rec in records:
        by_kind.setdefault(_peer_key(rec["config"]), []).append((path, rec))
    for path in suspects:
        config = next(r for p, r in records if p == path)["config"]
        others = [(p, r["config"]) for p, r in by_kind[_peer_key(config)] if p != path]
        if not others:
            continue
        # a verified peer (its hash matches) is evidence on its own; unverified ones (older records) only
        # when at least two agree, so that of two older records neither is blamed for the other's edit
        trusted = len(others) >= 2 or all(p not in suspects for p, _ in others)
        peers = [c for _, c in others]
        common = set.intersection(*(set(c) for c in peers))
        missing = sorted(common - set(config) - set(_DERIVED))
        if missing and trusted:
            problems[path] = (f"config lacks {', '.join(map(repr, missing))}, which the other {len(peers)} "
                              f"record(s) of model {config.get('model')!r} have (deleted by hand?)")
            continue
        for key, value in config.items():
            kinds = {_json_type(c[key]) for c in peers if key in c} - {"null"}
            if trusted and len(kinds) == 1 and _json_type(value) not in kinds | {"null"}:
                problems[path] = (f"config.{key}={value!r}: a {_json_type(value)} where the other records have a "
                                  f"{kinds.pop()}")
                break
    return problems


# Config fields that a sweep sets on some of its seeds only, to measure more on them without changing what
# is trained (model_scale's oracles run on its first `oracle_seeds` seeds): in the run_id, since the record
# holds more, but not in config_id, so they never split one configuration's seeds in two.
_PER_SEED_EXTRAS = ("oracle_widths",)


def config_id(config: Mapping) -> str:
    """A hash of a flat config without its seed, its derived fields and the per-seed extras: the runs that
    may be pooled across seeds."""
    return run_id("", {k: v for k, v in config.items()
                       if k != "seed" and k not in _DERIVED and k not in _PER_SEED_EXTRAS})


def experiments_in(out) -> list[str]:
    """The experiments with a folder of records under out."""
    out = Path(out)
    return sorted(p.name for p in out.iterdir() if p.is_dir() and any(p.glob("*.json"))) if out.is_dir() else []


def load(out, experiment: str | None = None, *, missing_ok: bool = False, quarantine: bool = False):
    """A tidy DataFrame: one row per run, config and metrics as columns, plus run_id, seconds,
    config_id (the config without its seed), mtime (when the record was written) and, where the
    record has them, compile_count, compile_seconds, compile_cache_hits and compile_group_size
    (the compilations of the record's group, shared by its group_size records) and the learning
    curve as lists, one entry per checkpoint (curve_step, curve_kl, curve_success1). Without an
    experiment, every experiment's records under out, with an `experiment` column.

    Every file is checked against the record schema (check_record: the folder's experiment, the
    run_id, the types of config, metrics and seconds, and the config's hash) and against the other
    records of its folder (a config key they all have, or a value of another kind). Raises StoreError
    when out or its experiment folder does not exist (unless missing_ok: then an empty DataFrame),
    and when a file is not a valid record, naming the file and the field; with quarantine, such a
    file is moved to <out>/<experiment>/quarantine/ with a warning instead, and the rest is loaded.
    """
    import pandas as pd

    if experiment is None:
        if not Path(out).is_dir():
            if missing_ok:
                return pd.DataFrame()
            raise StoreError(f"{out}: no such results folder")
        frames = [load(out, name, missing_ok=True, quarantine=quarantine).assign(experiment=name)
                  for name in experiments_in(out)]
        frames = [f for f in frames if not f.empty]
        if not frames:
            if missing_ok:
                return pd.DataFrame()
            raise StoreError(f"{out}: no records of any experiment")
        return pd.concat(frames, ignore_index=True, sort=False)
    folder = Path(out) / experiment
    if not folder.is_dir():
        if missing_ok:
            return pd.DataFrame()
        if not Path(out).is_dir():
            raise StoreError(f"{out}: no such results folder")
        have = experiments_in(out)
        raise StoreError(f"{folder}: no records of {experiment!r} under {out} "
                         f"(it holds: {', '.join(have) if have else 'no records at all'})")

    def set_aside(path: Path, err: str) -> None:
        if not quarantine:
            raise StoreError(f"{err}; move it aside with --quarantine") from None
        aside = folder / "quarantine" / path.name
        try:
            aside.parent.mkdir(exist_ok=True)
            os.replace(path, aside)
        except OSError as e:
            raise StoreError(f"{err}; cannot move it to {aside.parent} ({e.strerror or e}): the folder is not "
                             "writable, so move or fix it by hand") from None
        print(f"warning: {err}; moved to {aside}", flush=True)

    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append((path, _read_checked(path, experiment)))
        except StoreError as err:
            set_aside(path, str(err))
    # a config that does not hash to its run_id was edited: name the field where its peers show which
    suspects = [p for p, r in records if not _hash_matches(r)]
    problems = _diagnose(records, suspects)
    for path, rec in records:
        if path in suspects and path not in problems and _hash_matches(rec) is False:
            problems[path] = (f"config does not hash to its run_id {rec['run_id']} (a field changed, added or "
                              "deleted after it was written?)")
    rows = []
    for path, rec in records:
        if path in problems:
            set_aside(path, f"{path}: {problems[path]}")
            continue
        compiled = {f"compile_{k}": v for k, v in (rec.get("compile") or {}).items()}
        curve = {f"curve_{k}": v for k, v in (rec.get("curve") or {}).items()}   # lists, one per checkpoint
        rows.append({"run_id": rec["run_id"], **rec["config"], **rec["metrics"], "seconds": rec["seconds"],
                     **compiled, **curve, "config_id": config_id(rec["config"]), "mtime": path.stat().st_mtime})
    return pd.DataFrame(rows)


def commands(out, experiment: str) -> dict[str, int]:
    """The command lines that wrote an experiment's records (field `command`), with how many records each."""
    found: dict[str, int] = {}
    for path in sorted((Path(out) / experiment).glob("*.json")):
        try:
            with open(path) as f:
                command = json.load(f).get("command")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(command, str):
            found[command] = found.get(command, 0) + 1
    return found


# ---------------------------------------------------------------------------------------------
# Claims: one writer per point.
