"""`--preset scale` on the command line: a preset an experiment lacks is refused with the presets it
has, and the dry run prints the estimates on the CPU, one GPU and Ray workers."""
import pytest

from grdr import cli
from grdr.cli import main


def test_run_refuses_a_preset_the_experiment_lacks(capsys):
    with pytest.raises(SystemExit) as err:
        main(["run", "negatives", "--preset", "scale", "--dry-run"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "--preset scale" in message and "negatives has no such preset" in message and "quick" in message


def test_the_scale_dry_run_prints_the_cpu_gpu_and_ray_estimates(capsys):
    assert main(["run", "drift_corpus", "--preset", "scale", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "N=100,000" in out and "pairs/doc=300.0" in out
    for line in ("estimated total", "on one H100 GPU", "16 workers ~", "the longest task"):
        assert line in out, line


def test_the_scale_demo_runs_the_experiments_that_have_the_preset_then_the_report(tmp_path, monkeypatch, capsys):
    ran = []
    from grdr.experiments import demo

    monkeypatch.setattr(demo, "run_one", lambda name, preset, out, progress, **executor:
                        ran.append((name, preset)) or {"ran": 1, "skipped": 0, "seconds": 0.1})
    monkeypatch.setattr(cli, "cmd_figures", lambda out: [])
    monkeypatch.setattr(cli, "cmd_fit", lambda name, out: None)
    cli.cmd_demo(tmp_path, "scale", progress=False, jobs=1)
    assert ran == [("drift_corpus", "scale"), ("capacity_dim", "scale"), ("model_scale", "scale")]
    assert "3 experiments (drift_corpus, capacity_dim, model_scale)" in capsys.readouterr().out
    assert (tmp_path / "report.md").exists()
