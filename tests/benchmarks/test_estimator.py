"""The dry run's time model: its calibration recovers known coefficients, and the shipped coefficients
estimate a tiny measured sweep within a stated factor."""
import dataclasses
import json

import numpy as np
import pytest

from grdr.benchmarks.estimator import compare, compare_work, measured_groups, probe_steps
from grdr.experiments import drift_corpus
from grdr.experiments.calibration import CALIBRATION, KINDS, Shape, calibrate, features, group_seconds
from grdr.experiments.points import point
from grdr.experiments.sweep.runner import groups, run_experiment
from grdr.experiments.work import WORK_CALIBRATION



def test_calibration_recovers_the_coefficients_that_generated_the_times():
    rng = np.random.default_rng(0)
    cfg = drift_corpus.PRESETS["smoke"]
    truth = {"group": 3.0, "step": 4e-4, "eval": 0.05, "corpus": 0.2,
             **{f"flop_{k}": 1 / (10.0 + 10 * i) for i, k in enumerate(KINDS)}}
    rows = []
    for _ in range(80):
        name = str(rng.choice(["dr_global", "dr_local_uniform", "dr_table_global", "dr_table_local_uniform",
                               "atomic_gr", "seq_gr"]))
        n = int(rng.choice([100, 1_000, 10_000]))
        train = dataclasses.replace(cfg.train, steps=int(rng.integers(50, 5_000)))
        pt = point(name, dataclasses.replace(cfg, train=train), n, 0, sparse_table=bool(rng.integers(2)))
        f = features(Shape.of_point(pt), int(rng.integers(1, 6)), int(rng.integers(0, 3)), "drift_corpus")
        rows.append((f, sum(v * truth[k] for k, v in f.items())))
    cal = calibrate(rows)
    for k, v in truth.items():
        if any(k in f for f, _ in rows):
            assert cal.coefficient(k) == pytest.approx(v, rel=1e-4), k


def test_a_measured_sweep_is_read_back_as_the_groups_the_runner_trained(tmp_path):
    """The estimator's accuracy against measured times is a benchmark (python -m grdr.benchmarks.estimator), not
    a test: in a test process the programs of a tiny sweep are often compiled already, so its seconds say
    nothing about the coefficients. What is tested is that the records are read back as the groups trained."""
    cfg = dataclasses.replace(drift_corpus.PRESETS["smoke"], n_docs=(150,), table_n_docs=(150,), seeds=(0, 1),
                              models=("dr_global", "dr_local_uniform", "atomic_gr"))
    run_experiment(drift_corpus, cfg, tmp_path, progress=False)
    found = measured_groups(tmp_path, drift_corpus.NAME)
    planned = groups(drift_corpus, cfg)
    # the groups read back from the records are the groups the runner trained, in order
    assert [(g["model"], g["seeds"]) for g in found] == [(g[0].model, len(g)) for g in planned]
    assert [g["new_corpora"] for g in found] == [2, 0, 0]  # one corpus per seed, built by the first group
    measured = sum(g["measured"] for g in found)
    estimated = [group_seconds(g["shape"], g["seeds"], g["new_corpora"], g["experiment"], CALIBRATION) for g in found]
    assert measured > 0 and all(np.isfinite(e) and e > 0 for e in estimated)
    _, totals, _ = compare(found * 3)  # the comparison's table covers the folder it read
    assert totals[0]["groups"] == 9 and totals[0]["measured_s"] == pytest.approx(3 * measured, abs=0.1)  # rounded to 0.1 s


def test_model_scales_floors_count_in_the_estimate_as_in_the_dry_run(tmp_path):
    """The dry run adds model_scale's per-corpus measures (the KL floor, the oracles) to the group that carries
    them (experiments.cost.sweep_seconds): the estimate compared with the measured seconds does too, and the
    trained groups' fit sees the seconds without them."""
    from grdr.benchmarks.estimator import _estimate, _rows_for
    from grdr.experiments import model_scale
    from grdr.experiments.work import point_measures

    cfg = dataclasses.replace(model_scale.PRESETS["smoke"], widths=(4,), seeds=(0,), models=("dr_global", "atomic_gr"),
                              oracle_seeds=0, floor_restarts=1, floor_max_iter=1_000)
    run_experiment(model_scale, cfg, tmp_path, progress=False)
    found, planned = measured_groups(tmp_path, model_scale.NAME), groups(model_scale, cfg)
    assert [g["model"] for g in found] == ["dr_global", "atomic_gr"]
    expected = [point_measures(model_scale.NAME, g) for g in planned]
    assert expected[0] > 0 and expected[1] == 0  # the carrier (model_scale.carrier) holds its corpus's floor
    for g, extra, (_, seconds) in zip(found, expected, _rows_for(found)):
        trained = group_seconds(g["shape"], g["seeds"], g["new_corpora"], g["experiment"], CALIBRATION,
                                new_program=g["new_program"])
        assert g["measures_s"] == pytest.approx(extra)
        assert _estimate(g, CALIBRATION) == pytest.approx(trained + extra)
        assert seconds == pytest.approx(max(g["measured"] - extra, 1e-3))


def _probe(folder, i, kind, steps, max_steps=100_000):
    rec = {"run_id": f"p{i}", "experiment": "critical_n", "seconds": 1.0, "metrics": {"steps": steps},
           "config": {"record": "probe", "kind": kind, "model": kind, "dim": 4, "seed": 0, "max_steps": max_steps}}
    (folder / "critical_n").mkdir(parents=True, exist_ok=True)
    (folder / "critical_n" / f"p{i}.json").write_text(json.dumps(rec))


def test_a_probes_steps_are_their_mean_at_the_protocols_budget(tmp_path):
    """A search's time is linear in its probes' steps: the typical probe is their mean (here 400, where the
    median is 200), and probes cut short by a smaller budget (the smoke preset's) do not count."""
    for i, steps in enumerate((100, 200, 900)):
        _probe(tmp_path, i, "dr", steps)
    _probe(tmp_path, 3, "dr", 2_000, max_steps=2_000)
    _probe(tmp_path, 4, "seq_gr", 50)
    assert probe_steps([tmp_path]) == {"dr": 400.0, "seq_gr": 50.0}


def test_the_work_fit_reads_the_steps_taken_and_the_estimate_the_replayed_search():
    """Rows with `fit_features` (the probes a search made) are fitted on those; every estimate uses
    `features` (what the dry run replays); a folder alone has no held-out fit and no error."""
    rows = [{"experiment": "critical_n", "results": "a", "measured": 2.0 * k,
             "fit_features": {"critical_n.probe": float(k)}, "features": {"critical_n.probe": 10.0}}
            for k in (1, 2, 3)]
    totals, fitted = compare_work(rows, WORK_CALIBRATION)
    assert fitted["critical_n.probe"] == pytest.approx(2.0)
    assert totals[0]["in_sample_s"] == pytest.approx(3 * 10.0 * 2.0)
    assert totals[0]["held_out_s"] == 0.0
