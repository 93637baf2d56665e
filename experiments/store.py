"""Results store: one JSON record per run at <out>/<experiment>/<run_id>.json (docs/design.md, section 3).

run_id is a hash of the full resolved configuration, so a rerun of the same point finds its record
and skips it. Writes go to a temporary file in the same folder and are renamed into place, so an
interrupted sweep never leaves a half-written record: it loses at most the run in flight.

Beside the records, per experiment folder:
- `.claims/<run_id>.json`: the process that is running a point (host, pid, since), created with
  O_EXCL so that two writers on one folder (two terminals, two hosts on a shared file system) never
  run a point twice. A claim whose owner died (same host: its pid is gone; another host: no
  heartbeat for CLAIM_TTL seconds) is taken over by the next writer that wants the point.
- `failed/<run_id>.json`: a point that raised, with its config and error; reruns skip it unless
  asked to retry it.
- `quarantine/`: records that could not be read, moved aside on request.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import tempfile
import time
import traceback
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pandas as pd

__all__ = ["StoreError", "run_id", "config_id", "record_path", "exists", "write_record", "read_record", "load",
           "versions", "experiments_in", "claim", "release", "claims", "heartbeat", "write_failure", "failure",
           "failures", "clear_failure", "CLAIM_TTL"]

CLAIM_TTL = 600.0  # seconds without a heartbeat after which another host's claim counts as dead


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
        "metrics": {k: float(v) for k, v in metrics.items()},
        "seconds": float(seconds),
        "versions": versions(),
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


def read_record(path) -> dict:
    """One record; StoreError (naming the file) if it is not valid JSON or not a grdr record."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: not a results record (invalid JSON: {e})") from e
    missing = [k for k in _RECORD_KEYS if not isinstance(rec, dict) or k not in rec]
    if missing:
        raise StoreError(f"{path}: not a results record (no {', '.join(missing)})")
    return rec


_DERIVED = ("params", "corpus_seed_used")  # config fields that follow from the rest (not in the run_id)


def config_id(config: Mapping) -> str:
    """A hash of a flat config without its seed and derived fields: the runs that may be pooled across seeds."""
    return run_id("", {k: v for k, v in config.items() if k != "seed" and k not in _DERIVED})


def experiments_in(out) -> list[str]:
    """The experiments with a folder of records under out."""
    out = Path(out)
    return sorted(p.name for p in out.iterdir() if p.is_dir() and any(p.glob("*.json"))) if out.is_dir() else []


def load(out, experiment: str, *, missing_ok: bool = False, quarantine: bool = False) -> pd.DataFrame:
    """A tidy DataFrame: one row per run, config and metrics as columns, plus run_id, seconds,
    config_id (the config without its seed), mtime (when the record was written) and, where the
    record has them, compile_count, compile_seconds, compile_cache_hits and compile_group_size
    (the compilations of the record's group, shared by its group_size records) and the learning
    curve as lists, one entry per checkpoint (curve_step, curve_kl, curve_success1).

    Raises StoreError when out or its experiment folder does not exist (unless missing_ok: then an
    empty DataFrame), and when a file is not a record, naming it; with quarantine, such a file is
    moved to <out>/<experiment>/quarantine/ with a warning instead, and the rest is loaded.
    """
    folder = Path(out) / experiment
    if not folder.is_dir():
        if missing_ok:
            return pd.DataFrame()
        if not Path(out).is_dir():
            raise StoreError(f"{out}: no such results folder")
        have = experiments_in(out)
        raise StoreError(f"{folder}: no records of {experiment!r} under {out} "
                         f"(it holds: {', '.join(have) if have else 'no records at all'})")
    rows = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = read_record(path)
        except StoreError as err:
            if not quarantine:
                raise StoreError(f"{err}; move it aside with --quarantine") from None
            aside = folder / "quarantine" / path.name
            aside.parent.mkdir(exist_ok=True)
            os.replace(path, aside)
            print(f"warning: {err}; moved to {aside}", flush=True)
            continue
        compiled = {f"compile_{k}": v for k, v in (rec.get("compile") or {}).items()}
        curve = {f"curve_{k}": v for k, v in (rec.get("curve") or {}).items()}   # lists, one per checkpoint
        rows.append({"run_id": rec["run_id"], **rec["config"], **rec["metrics"], "seconds": rec["seconds"],
                     **compiled, **curve, "config_id": config_id(rec["config"]), "mtime": path.stat().st_mtime})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Claims: one writer per point.


def _claim_path(out, experiment: str, rid: str) -> Path:
    return Path(out) / experiment / ".claims" / f"{rid}.json"


def _owner(token: str | None = None) -> dict:
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    return {**owner, "token": token} if token else owner


def _alive(owner: dict, mtime: float) -> bool:
    """Whether a claim's owner may still be running: its pid exists on this host, or (another host)
    its heartbeat is younger than CLAIM_TTL."""
    if owner.get("host") != socket.gethostname():
        return time.time() - mtime < CLAIM_TTL
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError, ValueError):
        return True
    return True


def _read_claim(path: Path) -> tuple[dict, float] | None:
    try:
        mtime = path.stat().st_mtime
        with open(path) as f:
            return json.load(f), mtime
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, OSError):  # still being written (or its writer died writing it)
        return {"host": None, "pid": None}, mtime


def _mine(owner: dict, token: str | None = None) -> bool:
    """This process's claim, or (with a token) one made by an earlier attempt of the same task,
    such as a Ray task retried after its worker died."""
    if token is not None and owner.get("token") == token:
        return True
    return owner.get("host") == socket.gethostname() and owner.get("pid") == os.getpid()


def claim(out, experiment: str, config: Mapping, token: str | None = None) -> bool:
    """Claim a point for this process; False if a live process holds it. A dead owner's claim is
    removed under a takeover lock (so that a recoverer never removes a claim made meanwhile), and
    the point is claimed afresh. `token` names the unit of work: a claim with the same token (an
    earlier attempt of a retried task, on any host) counts as this process's own and is renewed."""
    path = _claim_path(out, experiment, run_id(experiment, config))
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _read_claim(path)
            if held is None:
                continue  # released meanwhile: try again
            if _mine(held[0]):
                return True
            if _mine(held[0], token):  # an earlier attempt of this task: make it this process's
                _write_json(path, _owner(token))
                return True
            if _alive(*held):
                return False
            _remove_dead_claim(path)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(_owner(token), f)
        return True
    return False


def _remove_dead_claim(path: Path) -> None:
    lock = path.with_suffix(".takeover")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - lock.stat().st_mtime > 30:  # its holder died while recovering
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
        return
    try:
        held = _read_claim(path)  # again, under the lock: it may be a new, live claim by now
        if held is not None and not _mine(held[0]) and not _alive(*held):
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)


def release(out, experiment: str, config: Mapping) -> None:
    """Drop this process's claim on a point (a no-op if it holds none)."""
    path = _claim_path(out, experiment, run_id(experiment, config))
    held = _read_claim(path)
    if held and _mine(held[0]):
        path.unlink(missing_ok=True)


def heartbeat(out, experiment: str) -> None:
    """Touch this process's claims, so that other hosts see them alive."""
    for path in (Path(out) / experiment / ".claims").glob("*.json"):
        held = _read_claim(path)
        if held and _mine(held[0]):
            try:
                os.utime(path)
            except FileNotFoundError:
                pass


def claims(out, experiment: str) -> list[dict]:
    """Every claim on the experiment's points: run_id, host, pid, since, alive."""
    found = []
    for path in sorted((Path(out) / experiment / ".claims").glob("*.json")):
        held = _read_claim(path)
        if held:
            owner, mtime = held
            found.append({"run_id": path.stem, **owner, "alive": _alive(owner, mtime)})
    return found


# ---------------------------------------------------------------------------------------------
# Failures: kept, counted, retried on request.


def _failure_path(out, experiment: str, rid: str) -> Path:
    return Path(out) / experiment / "failed" / f"{rid}.json"


def write_failure(out, experiment: str, config: Mapping, err: BaseException) -> Path:
    """Record that a point raised: its config, the error and its traceback."""
    rid = run_id(experiment, config)
    path = _failure_path(out, experiment, rid)
    _write_json(path, {"experiment": experiment, "run_id": rid, "config": dict(config),
                       "error": f"{type(err).__name__}: {err}", "traceback": "".join(traceback.format_exception(err)),
                       **_owner(), "versions": versions()})
    return path


def failure(out, experiment: str, config: Mapping) -> dict | None:
    path = _failure_path(out, experiment, run_id(experiment, config))
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def clear_failure(out, experiment: str, config: Mapping) -> None:
    _failure_path(out, experiment, run_id(experiment, config)).unlink(missing_ok=True)


def failures(out, experiment: str) -> list[dict]:
    found = []
    for path in sorted((Path(out) / experiment / "failed").glob("*.json")):
        try:
            with open(path) as f:
                found.append(json.load(f))
        except json.JSONDecodeError:
            found.append({"run_id": path.stem, "error": "unreadable failure record"})
    return found
