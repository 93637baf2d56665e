import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from experiments import store
from experiments.runner import run_experiment


def test_record_round_trip_and_run_id(tmp_path):
    cfg = {"model": "dr_global", "n_docs": 10, "seed": 0}
    path = store.write_record(tmp_path, "exp", cfg, {"Success@1": 0.5}, 1.5, derived={"params": 7}, train={"final_loss": 1.0})
    rec = json.loads(path.read_text())
    assert rec["run_id"] == store.run_id("exp", cfg) == path.stem
    assert rec["config"] == {**cfg, "params": 7} and rec["metrics"] == {"Success@1": 0.5}
    assert {"experiment", "seconds", "versions"} <= set(rec)
    assert store.run_id("exp", {**cfg, "seed": 1}) != rec["run_id"]
    assert store.run_id("exp", dict(reversed(list(cfg.items())))) == rec["run_id"]
    df = store.load(tmp_path, "exp")
    assert df.loc[0, "Success@1"] == 0.5 and df.loc[0, "params"] == 7


def test_a_failed_write_leaves_no_record(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", boom)
    with pytest.raises(KeyboardInterrupt):
        store.write_record(tmp_path, "exp", {"a": 1}, {}, 0.0)
    assert list((tmp_path / "exp").iterdir()) == []


SLOW_EXPERIMENT = textwrap.dedent('''
    """A toy experiment whose runs take a moment each."""
    import time
    from experiments.points import RecordPoint
    NAME = "slow_exp"
    def sweep(cfg):
        for i in range(cfg):
            yield RecordPoint.of(point=i, seed=0)
    def run_group(cfg, points, out):
        time.sleep(0.4)
        return [({"value": p["point"] * 2.0}, {}) for p in points], 0.4
''')


def test_a_killed_sweep_keeps_whole_records_and_resumes(tmp_path):
    (tmp_path / "slow_exp.py").write_text(SLOW_EXPERIMENT)
    out = tmp_path / "out"
    script = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import slow_exp; from experiments.runner import run_experiment; run_experiment(slow_exp, 8, {str(out)!r}, progress=False)"
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    folder = out / "slow_exp"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(folder.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up: the hardest interruption
    proc.wait()
    finished = list(folder.glob("*.json"))
    assert 2 <= len(finished) < 8
    for path in finished:
        assert json.loads(path.read_text())["metrics"]["value"] % 2 == 0  # every record is whole
    sys.path.insert(0, str(tmp_path))
    try:
        import slow_exp

        summary = run_experiment(slow_exp, 8, out, progress=False)
    finally:
        sys.path.remove(str(tmp_path))
    assert summary["skipped"] == len(finished) and summary["ran"] == 8 - len(finished)
    assert sorted(store.load(out, "slow_exp")["value"]) == [2.0 * i for i in range(8)]
