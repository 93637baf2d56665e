"""What a new user hits beyond a bad flag: `grdr run` ends with its verdicts, a read-only results folder,
Ctrl-C, an unreadable claim, a sweep larger than the machine, `grdr report`, `grdr check`'s progress,
`grdr --help` and `grdr list` without JAX, and what `grdr real` says about its training budget."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grdr import realdata
from grdr.experiments.sweep import claims, store
from grdr.experiments.points import RecordPoint
from grdr.experiments.verdict.findings import Finding
from grdr.experiments.verdict.stats import effect_verdict
from grdr import cli, configs

FIXTURES = Path(realdata.__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


# -- a toy experiment (no JAX): point i of seed s stores value i + s / 10 -------------------------------


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    n: int = 3
    seeds: tuple[int, ...] = (0, 1, 2)
    interrupt_after: int = -1  # records written before Ctrl-C


def _toy():
    module = types.ModuleType("toy", "The toy value grows with i.")
    module.NAME, module.Config, module.AXES = "toy", ToyConfig, ("i",)
    module.PRESETS = {"smoke": ToyConfig()}

    def sweep(cfg):
        for i in range(cfg.n):
            for s in cfg.seeds:
                yield RecordPoint.of(model="m", i=i, seed=s)

    def run_group(cfg, points, out):
        return [({"value": p["i"] + p["seed"] / 10}, {}) for p in points], 0.01

    def findings(df):
        effects = df.pivot_table(index="seed", columns="i", values="value").diff(axis=1).mean(axis=1)
        return [Finding("toy", "value grows with i", effect_verdict(effects.to_numpy()), effect="per step of i")]

    module.sweep, module.run_group, module.findings = sweep, run_group, findings
    module.report = lambda df: "the toy section"
    return module


def _node(out, cfg=None, **options):
    module = _toy()
    return types.SimpleNamespace(module=module, config=cfg or ToyConfig(),
                                 options=cli.RunOptions(preset="smoke", out=Path(out), progress=False, **options))


@pytest.fixture
def read_only(monkeypatch):
    """Make folders read-only for the process: chmod does not stop root, so writes that the commands
    probe or make through tempfile.mkstemp fail with EACCES under the folders given."""
    folders = []
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and any(Path(dir).resolve().is_relative_to(f) for f in folders):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return lambda folder: folders.append(Path(folder).resolve())


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


# -- row 15: grdr run prints its verdicts and writes summary.csv ------------------------------------------


def test_run_ends_with_its_verdict_table_and_writes_summary_csv(tmp_path, capsys):
    summary = cli.cmd_run(_node(tmp_path))
    assert summary["ran"] == 9
    out = capsys.readouterr().out
    assert "toy: 1 claim(s) read from the 9 record(s)" in out
    assert "| toy | value grows with i | **inconclusive** |" in out  # 3 seeds: no decision is possible
    rows = pd.read_csv(tmp_path / "toy" / "summary.csv")
    assert list(rows["claim"]) == ["value grows with i"] and rows["seeds"].item() == 3
    assert rows["estimate"].item() == pytest.approx(1.0)


def test_run_counts_the_experiments_predictions_among_its_claims_as_the_report_does(tmp_path, capsys):
    """A module with `predictions` (negatives, drift_mechanism): grdr run's table and summary.csv hold each
    agreement as a claim, decided in one Holm family with the findings."""
    from grdr.experiments.verdict.agreement import agreement

    node = _node(tmp_path)

    def predictions(df):
        one = df[df["i"] == 1].sort_values("seed")
        return [agreement("toy", "value at i = 1", np.ones(len(one)), one["value"], abs_tol=0.5,
                          source="the toy's rule")]

    node.module.predictions = predictions
    cli.cmd_run(node)
    out = capsys.readouterr().out
    assert "toy: 2 claim(s) read from the 9 record(s)" in out
    assert "| toy | value at i = 1: measured agrees with the prediction within +-0.5 |" in out
    rows = pd.read_csv(tmp_path / "toy" / "summary.csv")
    assert list(rows["claim"]) == ["value grows with i",
                                   "value at i = 1: measured agrees with the prediction within +-0.5"]
    assert rows["family"].all() and (rows["family_size"] == 2).all()
    assert (rows["p_holm"] >= rows["p"]).all()


def test_report_renders_whatever_is_stored_with_captions_and_the_command(tmp_path, capsys, monkeypatch):
    from grdr.experiments import report

    monkeypatch.setattr(store, "COMMAND_LINE", "grdr run toy --preset smoke --out X")
    cli.cmd_run(_node(tmp_path))
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "toy.png").write_bytes(b"\x89PNG")
    monkeypatch.setattr(report, "EXPERIMENTS", ("toy",))
    monkeypatch.setattr(report, "load_experiment", lambda name: _toy())
    assert cli.main(["report", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "![toy](figures/toy.png)" in text and "value grows with i" in text
    assert "Records written by `grdr run toy --preset smoke --out X`; drawn by `grdr figures --out" in text
    assert (tmp_path / "summary.csv").is_file()


def test_every_shipped_figure_has_a_caption_that_says_what_is_drawn():
    from grdr.figures import FIGURES, caption_of

    for name in FIGURES:
        assert len(caption_of(name)) > 60, name
    for name in ("drift_corpus", "negatives", "capacity_dim", "critical_n", "real_scaling"):
        assert "mean" in caption_of(name) or "median" in caption_of(name), name


# -- row 4: a read-only results folder ------------------------------------------------------------------


def test_a_rerun_with_every_point_stored_needs_no_write_access(tmp_path, read_only, capsys):
    cli.cmd_run(_node(tmp_path))
    before = _listing(tmp_path)
    read_only(tmp_path)
    capsys.readouterr()
    summary = cli.cmd_run(_node(tmp_path))
    assert (summary["ran"], summary["skipped"]) == (0, 9)
    out = capsys.readouterr().out
    assert "| toy | value grows with i |" in out and "summary.csv not written" in out
    assert _listing(tmp_path) == before  # nothing written
    # a point not stored yet needs the folder: one line, exit 2
    with pytest.raises(SystemExit) as exit_:
        cli.cmd_run(_node(tmp_path, ToyConfig(n=4)))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write there (Permission denied)" in err


@pytest.mark.parametrize("argv, where", [(["figures"], "the figures go to"), (["fit"], "fits.csv go to"),
                                         (["report"], "report.md and the summary tables go to")])
def test_figures_fit_and_report_in_a_read_only_folder_say_so_in_one_line(tmp_path, read_only, capsys, argv, where):
    for n in (100, 300, 1000, 3000):
        for seed in (0, 1):
            store.write_record(tmp_path, "drift_corpus", {"model": "dr_global", "n_docs": n, "seed": seed},
                               {"kl_true": n ** -0.5, "Success@1": 0.5}, 1.0)
    read_only(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv + ["--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cannot write there (Permission denied)" in err and where in err


def test_quarantine_in_a_read_only_folder_says_it_cannot_move_the_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "drift_corpus").mkdir()
    (tmp_path / "drift_corpus" / "bad.json").write_text("{not json")

    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(store.StoreError, match="bad.json: not a results record .*cannot move it to .*quarantine "
                                               r"\(Permission denied\)"):
        store.load(tmp_path, "drift_corpus", quarantine=True)


# -- row 10: Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_stops_with_one_line_and_releases_the_claims(tmp_path, monkeypatch, capsys):
    """The interrupt lands after a record is written and before its claim is released (the runner's own
    handler covers only the training): every claim of this process is released all the same."""
    calls = []

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(claims, "clear_failure", interrupted)
    with pytest.raises(SystemExit) as exit_:
        cli.cmd_run(_node(tmp_path))
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    # the first group's three records are stored; of the second group one record is written, and its three
    # claims (that record's, and two of points not run) are released
    assert err.startswith("grdr run toy: interrupted; the records stored so far are kept, 3 claim(s) of this process "
                          "released; the same command resumes")
    assert not list((tmp_path / "toy" / ".claims").glob("*.json"))
    assert len(list((tmp_path / "toy").glob("*.json"))) == 4  # what was stored stays; a rerun resumes
    monkeypatch.undo()
    assert cli.cmd_run(_node(tmp_path))["skipped"] == 4


def test_ctrl_c_during_training_counts_the_claims_the_runner_released(tmp_path, capsys):
    """The interrupt lands inside the second group's training: the runner releases that group's three
    claims as it unwinds, and the message counts them (it once said 0, counting only what was left)."""
    node = _node(tmp_path)
    trained = []

    def run_group(cfg, points, out):
        trained.append(len(points))
        if len(trained) == 2:
            assert len(list((tmp_path / "toy" / ".claims").glob("*.json"))) == 3  # held while it trains
            raise KeyboardInterrupt
        return [({"value": p["i"] + p["seed"] / 10}, {}) for p in points], 0.01

    node.module.run_group = run_group
    with pytest.raises(SystemExit) as exit_:
        cli.cmd_run(node)
    assert exit_.value.code == 130
    err = capsys.readouterr().err
    assert err.startswith("grdr run toy: interrupted; the records stored so far are kept, 3 claim(s) of this process "
                          "released"), err
    assert not list((tmp_path / "toy" / ".claims").glob("*.json"))
    assert claims.release_mine(tmp_path, "toy") == 0  # counted once


def test_ctrl_c_anywhere_else_is_one_line_too(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "list", interrupted)
    monkeypatch.setattr(cli, "parse", lambda argv: interrupted)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["list"])
    assert exit_.value.code == 130
    assert capsys.readouterr().err == ("grdr list: interrupted; the records stored so far are kept and the same "
                                       "command resumes\n")


# -- row 5: an unreadable claim -------------------------------------------------------------------------


def test_status_names_an_unreadable_claim_and_run_takes_it_over(tmp_path, capsys):
    cli.cmd_run(_node(tmp_path, ToyConfig(n=1, seeds=(1,))))  # another point stored: toy/ is a results folder
    node = _node(tmp_path, ToyConfig(n=1, seeds=(0,)))
    rid = store.run_id("toy", {"model": "m", "i": 0, "seed": 0})
    claim = tmp_path / "toy" / ".claims" / f"{rid}.json"
    claim.parent.mkdir(parents=True, exist_ok=True)
    claim.write_text("")
    os.utime(claim, (time.time() - 30, time.time() - 30))
    assert cli.main(["status", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"toy: {rid} has an unreadable claim file (empty, written" in out
    assert "dead, the next writer takes the point over" in out and "None" not in out
    assert cli.cmd_run(node)["ran"] == 1  # not 'claimed by another live writer' for 10 minutes


# -- row 9: a sweep larger than the machine -------------------------------------------------------------


def test_a_sweep_larger_than_the_memory_is_refused_before_anything_is_allocated(tmp_path, monkeypatch, capsys):
    from grdr.experiments import cost

    monkeypatch.setattr(cost, "available_bytes", lambda: 2.0 * 2 ** 30)
    argv = ["run", "drift_corpus", "--preset", "smoke", "--out", str(tmp_path / "out"), "--n-docs", "5000000"]
    for extra in ([], ["--dry-run"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv + extra)
        assert exit_.value.code == 2
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1
        assert captured.err.startswith("grdr run drift_corpus: --n-docs=5000000: dr_global at N = 5,000,000 with 2 "
                                       "seed(s) at once needs at least ")
        assert "more than the 2.0 GiB available here" in captured.err
        if extra:  # the dry run prints the estimate per group and for the largest group before refusing
            assert "memory: at least" in captured.out and "2.0 GiB available here" in captured.out
    assert not (tmp_path / "out").exists()


def test_the_memory_estimate_counts_what_a_group_certainly_holds():
    """At N = 1e6 the two float32 copies a tower DR certainly holds per seed (latents R, features F, the
    documents' D-dim embeddings) bound the estimate from below, and it scales with the seeds."""
    from grdr.experiments import drift_corpus
    from grdr.experiments.cost import group_bytes
    from grdr.experiments.points import point

    cfg = drift_corpus.PRESETS["smoke"]
    pt = point("dr_global", cfg, 1_000_000, 0)
    c, m = pt.corpus, pt.model_cfg
    floor = 1_000_000 * 4.0 * (c.latent_rank + c.feature_dim + m.dim)
    assert floor < group_bytes(pt, 1) < 10 * floor
    assert group_bytes(pt, 3) == pytest.approx(3 * group_bytes(pt, 1))
    table = point("atomic_gr", cfg, 1_000_000, 0)
    assert group_bytes(table, 1) - group_bytes(pt, 1) >= 16.0 * 1_000_000 * table.model_cfg.hidden - 1e6


# -- row 14: fast help and list, progress of check ------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["fit", "--help"]])
def test_help_and_list_do_not_import_jax_and_take_under_a_second(argv):
    code = ("import sys, time; t0 = time.perf_counter(); from grdr import cli\n"
            f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('JAX' if 'jax' in sys.modules else 'no JAX', time.process_time())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    *imported, cpu = done.stdout.strip().splitlines()[-1].split()
    assert imported == ["no", "JAX"], done.stdout[-500:] + done.stderr[-500:]
    assert float(cpu) < 1.0  # CPU seconds of the whole process (wall time on a shared machine varies)
    if argv == ["list"]:
        assert "drift_corpus" in done.stdout and "similarity" in done.stdout


def test_check_announces_each_group_as_it_runs(monkeypatch, capsys):
    from grdr.sim import checks as sim_checks
    from grdr.theory import checks

    ran = []

    def fake(seed=0, quick=False, groups=checks._GROUPS):
        ran.append(groups)
        return [checks.CheckResult(f"{groups[0]} quantity", 1.0, 1.0, 0.0, 1e-9, True)]

    monkeypatch.setattr(checks, "run_checks", fake)
    monkeypatch.setattr(sim_checks, "run_checks", lambda seed=0: [checks.CheckResult("model", 1.0, 1.0, 0.0, 1e-9, True)])
    assert cli.cmd_check() == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == len(checks._GROUPS) + 1 and lines[0].startswith("grdr check: [1/7] objectives ...")
    assert all(" 1 checks, 0 failed, " in line for line in lines)
    assert [g for (g,) in ran] == list(checks._GROUPS)
    assert "7 passed, 0 failed" in captured.out


# -- rows 1 and 15 on real data -------------------------------------------------------------------------


def test_an_outside_run_with_some_unknown_ids_is_scored_with_a_warning_per_kind(tmp_path, capsys):
    docs = [json.loads(line)["_id"] for line in (FIXTURES / "limit-small" / "corpus.jsonl").read_text().splitlines()]
    run = tmp_path / "part.trec"
    run.write_text("".join(f"query_{q} Q0 {d.replace(' ', '%20') if r else 'nobody'} {r + 1} {10 - r} x\n"
                           for q in range(3) for r, d in enumerate(docs[:5])) + "stray Q0 nobody 1 1 x\n")
    argv = ["real", "--format", "beir", "--path", str(FIXTURES / "limit-small"), "--preset", "smoke", "--models",
            "--out", str(tmp_path / "out"), "--baseline-run", f"part={run}", "--no-progress"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: baseline run part=" in err
    assert "1 of its 5 documents are not in limit-small (first 'nobody'" in err and "line 1); they count as not" in err
    assert "1 of its 4 queries are not evaluation queries of limit-small (first 'stray'" in err
    assert "997 of the 1,000 evaluation queries of limit-small have no ranking" in err


def test_real_says_when_the_presets_cap_on_training_pairs_bound(tmp_path, capsys):
    argv = ["real", "--format", "msmarco", "--path", str(FIXTURES / "msmarco"), "--sizes", "100", "--out",
            str(tmp_path), "--preset", "smoke", "--models", "dr_global", "--seeds", "0", "--train.steps", "3",
            "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert ("note: the models trained on 40 pairs of the train split, the cap of --preset smoke (sized for the "
            "shipped fixtures); --max-train-pairs N uses more") in out


def test_a_judgment_of_an_unknown_document_names_the_flag_that_drops_it(tmp_path, capsys):
    """The reader's hint was on_unknown="drop", a Python argument; on the command line it is --on-unknown drop."""
    import shutil

    root = tmp_path / "limit"
    shutil.copytree(FIXTURES / "limit-small", root)
    with open(root / "qrels.jsonl", "a") as f:
        f.write(json.dumps({"query-id": "query_0", "corpus-id": "Nobody Atall", "score": 1}) + "\n")
    argv = ["real", "--format", "beir", "--path", str(root), "--preset", "smoke", "--models", "--out",
            str(tmp_path / "out"), "--no-progress"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "document id 'Nobody Atall'" in err and "--on-unknown drop" in err
    assert cli.main(argv + ["--on-unknown", "drop"]) == 0
