import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from grdr.experiments.sweep import claims, store
from grdr.experiments.sweep.runner import run_experiment


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
    from grdr.experiments.points import RecordPoint
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
    script = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import slow_exp; from grdr.experiments.sweep.runner import run_experiment; run_experiment(slow_exp, 8, {str(out)!r}, progress=False)"
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


# ---------------------------------------------------------------------------------------------
# The record schema, checked on load: the file and the field are named; --quarantine moves it aside.


def _two_records(out, experiment="exp"):
    return [store.write_record(out, experiment, {"model": "m", "n_docs": n, "seed": 0}, {"Success@1": 0.5}, 1.0)
            for n in (10, 20)]


def _edit(path, change):
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("change, says", [
    (lambda r: r["metrics"].update({"Success@1": "high"}), """metrics['Success@1']="high": expected a number"""),
    (lambda r: r["metrics"].update({"Success@1": None}), "metrics['Success@1']=null: expected a number"),
    (lambda r: r["metrics"].update({"Success@1": True}), "metrics['Success@1']=true: expected a number"),
    (lambda r: r.update({"seconds": -1.0}), "field seconds=-1.0: expected a finite number >= 0"),
    (lambda r: r.update({"config": [1, 2]}), "field config: a list; expected an object of settings"),
    (lambda r: r["config"].update({"seed": "zero"}), "config.seed='zero': a text where the other records have a number"),
    (lambda r: r["config"].pop("n_docs"), "config lacks 'n_docs', which the other 1 record(s) of model 'm' have"),
    (lambda r: r["config"].update({"n_docs": 11}), "config does not hash to its run_id"),
    (lambda r: r["config"].update({"nested": {"a": 1}}), "config.nested={'a': 1}: expected a number, text"),
    (lambda r: r.update({"run_id": "0" * 16}), "field run_id='0000000000000000': expected"),
    (lambda r: r.update({"experiment": "other"}), "a record of experiment 'other' (its field experiment) in the folder "
                                                  "of 'exp': move it to other/"),
])
def test_an_edited_record_is_named_with_its_field_and_quarantined_on_request(tmp_path, change, says, capsys):
    first, second = _two_records(tmp_path)
    _edit(first, change)
    with pytest.raises(store.StoreError) as err:
        store.load(tmp_path, "exp")
    assert str(err.value).startswith(f"{first}: ") and says in str(err.value), str(err.value)
    assert "--quarantine" in str(err.value)
    df = store.load(tmp_path, "exp", quarantine=True)  # the edited file moves aside, the other loads
    assert list(df["n_docs"]) == [20]
    assert (tmp_path / "exp" / "quarantine" / first.name).is_file() and not first.exists()
    assert says in capsys.readouterr().out


def test_a_record_of_another_experiment_is_not_counted_as_this_ones(tmp_path):
    path = store.write_record(tmp_path, "drift_corpus", {"model": "m", "n_docs": 10, "seed": 0}, {"x": 1.0}, 1.0)
    (tmp_path / "model_scale").mkdir()
    path.rename(tmp_path / "model_scale" / path.name)
    with pytest.raises(store.StoreError, match="a record of experiment 'drift_corpus'.*move it to drift_corpus/"):
        store.load(tmp_path, "model_scale")


def test_older_records_without_their_derived_keys_still_load(tmp_path):
    """Records written before `derived` was stored (their writer may have added derived config keys the
    hash leaves out, as critical_n's probes do) load unless a field departs from their peers'."""
    paths = [store.write_record(tmp_path, "exp", {"model": "m", "n": n, "seed": 0}, {"x": 1.0}, 1.0,
                                derived={"n_padded": 16}) for n in (1, 2, 3)]
    for p in paths:
        _edit(p, lambda r: r.pop("derived"))
    assert len(store.load(tmp_path, "exp")) == 3
    _edit(paths[0], lambda r: r["config"].update({"seed": "zero"}))
    with pytest.raises(store.StoreError, match="config.seed='zero'"):
        store.load(tmp_path, "exp")


def test_load_without_a_name_reads_every_experiment(tmp_path):
    _two_records(tmp_path, "exp")
    store.write_record(tmp_path, "other", {"model": "g", "seed": 1}, {"y": 2.0}, 1.0)
    df = store.load(tmp_path)
    assert sorted(df["experiment"]) == ["exp", "exp", "other"]
    assert df.loc[df["experiment"] == "other", "y"].item() == 2.0
    with pytest.raises(store.StoreError, match="no such results folder"):
        store.load(tmp_path / "missing")
    assert store.load(tmp_path / "missing", missing_ok=True).empty


def test_records_say_which_command_wrote_them(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "COMMAND_LINE", "grdr run exp --preset smoke")
    _two_records(tmp_path)
    assert store.commands(tmp_path, "exp") == {"grdr run exp --preset smoke": 2}


# ---------------------------------------------------------------------------------------------
# Claim files that cannot be read: dead after CLAIM_GRACE, shown as such, never a 10-minute block.


@pytest.mark.parametrize("content", ["", "{trunc", '{"pid": "x"}'])
def test_an_unreadable_claim_is_taken_over_once_its_grace_has_passed(tmp_path, content):
    config = {"i": 1, "seed": 0}
    path = tmp_path / "exp" / ".claims" / f"{store.run_id('exp', config)}.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    t0 = time.time()
    assert claims.claim(tmp_path, "exp", config)  # waits out the grace, not CLAIM_TTL
    assert time.time() - t0 < claims.CLAIM_GRACE + 2.0
    assert json.loads(path.read_text())["pid"] == os.getpid()
    path.write_text(content)
    os.utime(path, (time.time() - 60, time.time() - 60))
    (held,) = claims.claims(tmp_path, "exp")
    assert held["unreadable"] and held["alive"] is False


def test_release_mine_drops_only_this_processs_claims(tmp_path):
    for i in range(3):
        assert claims.claim(tmp_path, "exp", {"i": i, "seed": 0})
    other = tmp_path / "exp" / ".claims" / "other.json"
    other.write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": time.time()}))
    assert claims.release_mine(tmp_path, "exp") == 3
    assert [p.name for p in (tmp_path / "exp" / ".claims").glob("*.json")] == ["other.json"]


def test_per_seed_extras_do_not_split_a_configurations_seeds():
    """model_scale runs its oracles on the first oracle_seeds seeds only: oracle_widths is in the run_id
    (those records hold more) but not in config_id, so the report pools every seed of the configuration
    (it once left the oracle seeds' trained runs out as 'older records under other settings')."""
    from grdr.experiments.sweep.store import config_id, run_id

    base = {"model": "seq_gr", "hidden": 16, "steps": 1000}
    with_oracle = {**base, "seed": 0, "oracle_widths": [2, 4, 8, 16]}
    without = {**base, "seed": 3, "oracle_widths": []}
    assert config_id(with_oracle) == config_id(without)
    assert run_id("model_scale", with_oracle) != run_id("model_scale", {**with_oracle, "oracle_widths": []})
    assert config_id({**without, "steps": 2000}) != config_id(without)
