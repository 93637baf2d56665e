"""The dry run's time model: its calibration recovers known coefficients, and the shipped coefficients
estimate a tiny measured sweep within a stated factor."""
import dataclasses
import os

import numpy as np
import pytest

from benchmarks.estimator import compare, measured_groups
from experiments import drift_corpus
from experiments.cost import CALIBRATION, KINDS, Shape, calibrate, features, group_seconds
from experiments.points import point
from experiments.sweep.runner import groups, run_experiment

# A tiny sweep is mostly fixed costs (compiling, the first corpus), which vary with the machine's
# load more than training does: the shipped coefficients (measured at a load of 5-10 on 2 cores) must
# land within this factor of it, widened in proportion where the machine is busier than that.
TINY_FACTOR = 3.0
CALIBRATION_LOAD_PER_CPU = 2.5


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


def test_the_shipped_coefficients_estimate_a_tiny_measured_sweep(tmp_path):
    cfg = dataclasses.replace(drift_corpus.PRESETS["smoke"], n_docs=(150,), table_n_docs=(150,), seeds=(0, 1),
                              models=("dr_global", "dr_local_uniform", "atomic_gr"))
    run_experiment(drift_corpus, cfg, tmp_path, progress=False)
    found = measured_groups(tmp_path, drift_corpus.NAME)
    planned = groups(drift_corpus, cfg)
    # the groups read back from the records are the groups the runner trained, in order
    assert [(g["model"], g["seeds"]) for g in found] == [(g[0].model, len(g)) for g in planned]
    assert [g["new_corpora"] for g in found] == [2, 0, 0]  # one corpus per seed, built by the first group
    measured = sum(g["measured"] for g in found)
    estimated = sum(group_seconds(g["shape"], g["seeds"], g["new_corpora"], g["experiment"], CALIBRATION)
                    for g in found)
    busier = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1) / CALIBRATION_LOAD_PER_CPU)
    assert 1 / (TINY_FACTOR * busier) <= estimated / measured <= TINY_FACTOR, (estimated, measured, busier)
    _, totals, _ = compare(found * 3)  # the comparison's table covers the folder it read
    assert totals[0]["groups"] == 9 and totals[0]["measured_s"] == pytest.approx(3 * measured, rel=1e-3)
