"""Several writers on one results folder, and the points that failed (docs/design.md, section 3).

Per experiment folder:
- `.claims/<run_id>.json`: the process that is running a point (host, pid, since), created with
  O_EXCL so that two writers on one folder (two terminals, two hosts on a shared file system) never
  run a point twice. A claim whose owner died (same host: its pid is gone; another host: no
  heartbeat for CLAIM_TTL seconds) is taken over by the next writer that wants the point.
- `failed/<run_id>.json`: a point that raised, with its config and error; reruns skip it unless
  asked to retry it.
"""
from __future__ import annotations

import json
import os
import socket
import time
import traceback
from collections.abc import Mapping
from pathlib import Path

from grdr.experiments.sweep.store import _write_json, run_id, versions

__all__ = ["CLAIM_TTL", "CLAIM_GRACE", "claim", "release", "release_interrupted",
           "release_mine", "heartbeat", "claims", "write_failure",
           "failure", "clear_failure", "failures"]

CLAIM_TTL = 600.0  # seconds without a heartbeat after which another host's claim counts as dead
CLAIM_GRACE = 2.0  # seconds a claim file may stay unreadable (its writer fills it right after creating it)


def _claim_path(out, experiment: str, rid: str) -> Path:
    return Path(out) / experiment / ".claims" / f"{rid}.json"


def _owner(token: str | None = None) -> dict:
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    return {**owner, "token": token} if token else owner


def _alive(owner: dict, mtime: float) -> bool:
    """Whether a claim's owner may still be running: its pid exists on this host, or (another host)
    its heartbeat is younger than CLAIM_TTL. A claim file that cannot be read (empty, not JSON, not a
    claim) is alive only for CLAIM_GRACE seconds: its writer fills it right after creating it."""
    if owner.get("unreadable"):
        return time.time() - mtime < CLAIM_GRACE
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
    """(owner, mtime) of a claim file, None if it is gone; an owner that cannot be read is
    {"unreadable": why}."""
    try:
        mtime = path.stat().st_mtime
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        return {"unreadable": f"cannot be read ({e.strerror or e})"}, time.time()
    if not text.strip():
        return {"unreadable": "empty"}, mtime
    try:
        owner = json.loads(text)
    except ValueError:
        return {"unreadable": "not JSON"}, mtime
    if not (isinstance(owner, dict) and isinstance(owner.get("host"), str) and isinstance(owner.get("pid"), int)):
        return {"unreadable": "not a claim (no host and pid)"}, mtime
    return owner, mtime


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
    earlier attempt of a retried task, on any host) counts as this process's own and is renewed.
    A claim file that stays unreadable past CLAIM_GRACE (empty or corrupt) is a dead claim."""
    path = _claim_path(out, experiment, run_id(experiment, config))
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(40):
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
                if held[0].get("unreadable"):  # perhaps being written: wait out its grace, then look again
                    time.sleep(min(0.25, max(0.0, CLAIM_GRACE - (time.time() - held[1])) + 0.01))
                    continue
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


def release(out, experiment: str, config: Mapping) -> bool:
    """Drop this process's claim on a point (a no-op if it holds none); whether it held one."""
    path = _claim_path(out, experiment, run_id(experiment, config))
    held = _read_claim(path)
    if held and _mine(held[0]):
        path.unlink(missing_ok=True)
        return True
    return False


# Claims released where an interrupt stopped a group (experiments.sweep.group), per (folder, experiment),
# not yet counted by release_mine: the handler that reports the interrupt counts them with its own.
_released_on_interrupt: dict[tuple[str, str], int] = {}


def release_interrupted(out, experiment: str, configs) -> int:
    """Drop this process's claims on `configs` as an interrupt unwinds; their count, which the next
    release_mine on the experiment adds to its own."""
    dropped = sum(release(out, experiment, config) for config in configs)
    key = (str(Path(out).resolve()), experiment)
    _released_on_interrupt[key] = _released_on_interrupt.get(key, 0) + dropped
    return dropped


def release_mine(out, experiment: str) -> int:
    """Drop every claim this process holds on the experiment's points (after an interrupt); their count,
    with those that release_interrupted dropped as the interrupt unwound."""
    dropped = _released_on_interrupt.pop((str(Path(out).resolve()), experiment), 0)
    for path in (Path(out) / experiment / ".claims").glob("*.json"):
        held = _read_claim(path)
        if held and _mine(held[0]):
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped


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
    """Every claim on the experiment's points: run_id, host, pid, since, alive, and `unreadable` (why)
    with `written` (its file's time) for a claim file that cannot be read."""
    found = []
    for path in sorted((Path(out) / experiment / ".claims").glob("*.json")):
        held = _read_claim(path)
        if held:
            owner, mtime = held
            found.append({"run_id": path.stem, **owner, "alive": _alive(owner, mtime), "written": mtime})
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
