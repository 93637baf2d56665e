"""Several writers on one results folder, a writer killed mid-sweep, and failed points: real
processes running the real runner and store on a tiny experiment (tiny.py; no JAX: the machinery
is what is tested)."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grdr.experiments.sweep import claims, store
from grdr.experiments.sweep.runner import run_experiment

HERE = Path(__file__).resolve().parent  # tiny.py: the tiny experiment

RUNNER = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import tiny
    from grdr.experiments.sweep.runner import run_experiment
    cfg = tiny.Config(n=int(sys.argv[3]), sleep=float(sys.argv[4]))
    print(json.dumps(run_experiment(tiny, cfg, sys.argv[2], progress=False)), flush=True)
''')


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("TINY_LOG", str(tmp_path / "log.txt"))
    monkeypatch.syspath_prepend(str(HERE))
    import importlib

    import tiny as module
    return importlib.reload(module)


def _writer(tmp_path, n, sleep):
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(HERE), str(tmp_path / "out"), str(n), str(sleep)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TINY_LOG": str(tmp_path / "log.txt")})


def _log(tmp_path) -> list[tuple[int, int]]:
    path = tmp_path / "log.txt"
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()] if path.exists() else []


def _stored(tmp_path) -> dict[int, float]:
    df = store.load(tmp_path / "out", "tiny")
    return dict(zip(df["i"], df["value"]))


def test_two_writers_on_one_folder_run_every_point_once(tmp_path, tiny):
    n = 24
    a, b = _writer(tmp_path, n, 0.05), _writer(tmp_path, n, 0.05)
    summaries = [json.loads(p.communicate(timeout=120)[0].splitlines()[-1]) for p in (a, b)]
    assert _stored(tmp_path) == {i: i * i for i in range(n)}
    ran = [i for _, i in _log(tmp_path)]
    assert sorted(ran) == list(range(n))  # every point run, none twice
    assert sum(s["ran"] for s in summaries) == n
    assert not list((tmp_path / "out" / "tiny" / ".claims").glob("*.json"))  # every claim released


def test_a_killed_writers_points_are_taken_over_and_nothing_is_stored_twice(tmp_path, tiny):
    n = 8
    a = _writer(tmp_path, n, 0.4)
    deadline = time.monotonic() + 60
    while len(_log(tmp_path)) < 3 and time.monotonic() < deadline:  # two points done, the third in flight
        time.sleep(0.02)
    a.send_signal(signal.SIGKILL)
    a.wait()
    in_flight = _log(tmp_path)[-1][1]
    claim = tmp_path / "out" / "tiny" / ".claims"
    assert any(claim.glob("*.json"))  # the dead writer's claim is still there
    b = _writer(tmp_path, n, 0.01)
    summary = json.loads(b.communicate(timeout=120)[0].splitlines()[-1])
    assert _stored(tmp_path) == {i: i * i for i in range(n)}  # nothing lost
    by_a = [i for pid, i in _log(tmp_path) if pid == a.pid]
    by_b = [i for pid, i in _log(tmp_path) if pid == b.pid]
    assert in_flight in by_b and summary["ran"] == len(by_b) == len(set(by_b))  # B took over the killed point
    done_by_a = set(by_a) - {in_flight}
    assert not done_by_a & set(by_b) and done_by_a | set(by_b) == set(range(n))  # no other point ran twice
    assert len(list((tmp_path / "out" / "tiny").glob("*.json"))) == n


def test_a_failing_point_is_kept_skipped_and_retried(tmp_path, tiny, capsys):
    out = tmp_path / "out"
    first = run_experiment(tiny, tiny.Config(n=5, fail_at=2), out, progress=False)
    assert (first["ran"], first["failed"]) == (4, 1)
    [failure] = claims.failures(out, "tiny")
    assert failure["error"] == "RuntimeError: planted failure at 2" and failure["config"]["i"] == 2
    assert "Traceback" in failure["traceback"]
    again = run_experiment(tiny, tiny.Config(n=5, fail_at=2), out, progress=False)
    assert (again["ran"], again["skipped"], again["failed_before"]) == (0, 4, 1)
    retried = run_experiment(tiny, tiny.Config(n=5), out, progress=False, retry_failed=True)
    assert (retried["ran"], retried["failed"]) == (1, 0)
    assert not claims.failures(out, "tiny") and _stored(tmp_path) == {i: i * i for i in range(5)}


def _plant_claim(out, config, owner, age=0.0):
    path = out / "tiny" / ".claims" / f"{store.run_id('tiny', config)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(owner))
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_claims_respect_live_owners_and_take_over_dead_ones(tmp_path):
    out, host = tmp_path / "out", socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cases = [({"host": host, "pid": os.getppid()}, 0.0, False),  # a live process here
             ({"host": host, "pid": dead.pid}, 0.0, True),  # a process here that has exited
             ({"host": "elsewhere", "pid": 1}, 10.0, False),  # another host, heartbeat fresh
             ({"host": "elsewhere", "pid": 1}, claims.CLAIM_TTL + 60, True)]  # another host, silent too long
    for i, (owner, age, taken) in enumerate(cases):
        config = {"i": i, "seed": 0}
        path = _plant_claim(out, config, owner, age)
        assert claims.claim(out, "tiny", config) is taken, owner
        assert (json.loads(path.read_text())["pid"] == os.getpid()) is taken
    assert claims.claim(out, "tiny", {"i": 0, "seed": 0}) is False  # still held by the live owner
    assert claims.claim(out, "tiny", {"i": 1, "seed": 0}) is True  # a writer's own claim is its own
    claims.release(out, "tiny", {"i": 0, "seed": 0})  # not ours: left alone
    assert (out / "tiny" / ".claims" / f"{store.run_id('tiny', {'i': 0, 'seed': 0})}.json").exists()


def test_status_shows_stored_claimed_and_failed(tmp_path, tiny, capsys):
    from grdr import cli

    out = tmp_path / "out"
    run_experiment(tiny, tiny.Config(n=3, fail_at=1), out, progress=False)
    _plant_claim(out, {"i": 7, "seed": 0}, {"host": "elsewhere", "pid": 4242, "since": time.time()})
    capsys.readouterr()
    assert cli.main(["status", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| tiny | 2 | 1 | 1 |" in text
    assert "claimed by elsewhere pid 4242" in text and "(alive)" in text
    assert "failed: RuntimeError: planted failure at 1" in text


def test_the_report_counts_failed_points(tmp_path, tiny, monkeypatch):
    from grdr.experiments import report

    out = tmp_path / "out"
    run_experiment(tiny, tiny.Config(n=3, fail_at=1), out, progress=False)
    monkeypatch.setattr(report, "EXPERIMENTS", ("tiny",))
    monkeypatch.setattr(report, "load_experiment", lambda name: tiny)
    text = report.write_report(out).read_text()
    assert "**1 point(s) failed**" in text and "RuntimeError: planted failure at 1" in text
    assert "grdr run tiny --retry-failed" in text


def test_a_full_disk_leaves_no_half_written_record(tmp_path, monkeypatch):
    import errno

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        store.write_record(tmp_path, "tiny", {"i": 1, "seed": 0}, {"value": 1.0}, 0.1)
    assert not list((tmp_path / "tiny").iterdir())  # neither the record nor its temporary file
