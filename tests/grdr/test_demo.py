"""`grdr demo`'s orchestration: every experiment runs, longest first, and one failure stops none of the others."""
import pytest

from grdr.experiments import demo
from grdr import cli
from grdr.experiments.registry import DEMO_ORDER, EXPERIMENTS


def test_demo_order_runs_every_experiment_once():
    assert sorted(DEMO_ORDER) == sorted(EXPERIMENTS)


def test_a_failing_experiment_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    ran = []

    def fake_run(name, preset, out, progress):
        ran.append(name)
        if name == "critical_n":
            raise RuntimeError("planted failure")
        return {"ran": 2, "skipped": 1, "seconds": 0.5}

    monkeypatch.setattr(demo, "run_one", fake_run)
    monkeypatch.setattr(cli, "cmd_figures", lambda out: [])
    monkeypatch.setattr(cli, "cmd_fit", lambda name, out: None)
    with pytest.raises(SystemExit, match="1 experiment.*critical_n"):
        cli.cmd_demo(tmp_path, "smoke", progress=False, jobs=1)
    assert ran == list(DEMO_ORDER)
    captured = capsys.readouterr()
    assert "planted failure" in captured.err
    assert "drift_corpus: 2 runs done, 1 already stored" in captured.out
    assert (tmp_path / "report.md").exists()  # the report covers what was stored


def test_negative_jobs_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.cmd_demo(tmp_path, "smoke", progress=False, jobs=-1)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "grdr demo: --jobs=-1: expected 0 (one per CPU) or a positive count\n"
