"""The dry run's cost on N workers: LPT scheduling of groups, against the brute-force optimum."""
import itertools

import numpy as np
import pytest

from grdr.experiments import drift_corpus
from grdr.experiments.cost import describe, makespan


def _optimum(costs, workers):
    best = np.inf
    for assignment in itertools.product(range(workers), repeat=len(costs)):
        loads = np.zeros(workers)
        np.add.at(loads, list(assignment), costs)
        best = min(best, loads.max())
    return best


@pytest.mark.parametrize("seed", range(20))
def test_makespan_is_within_four_thirds_of_the_optimum(seed):
    rng = np.random.default_rng(seed)
    costs = list(rng.uniform(1, 10, size=rng.integers(2, 8)))
    workers = int(rng.integers(1, 4))
    opt = _optimum(costs, workers)
    got = makespan(costs, workers)
    assert opt - 1e-9 <= got <= 4 / 3 * opt + 1e-9
    assert makespan(costs, 1) == pytest.approx(sum(costs))
    assert makespan(costs, len(costs)) == pytest.approx(max(costs))


def test_makespan_refuses_no_workers():
    with pytest.raises(ValueError, match="workers=0"):
        makespan([1.0], 0)


def test_the_dry_run_prints_the_time_on_several_workers():
    text = describe(drift_corpus, drift_corpus.PRESETS["quick"])
    assert "estimated total" in text and "16 workers ~" in text


def test_groups_padded_into_one_shape_count_one_compile_and_the_padded_work():
    """capacity_dim trains its DR towers' dimensions inside one padded D (sim.widths), as experiments.sweep.group
    runs them: the dry run keys their programs by the shape trained (one compile, not one per D) and costs
    their steps at it; an experiment without padding keeps each group's own shape."""
    import dataclasses

    from grdr.experiments import capacity_dim, negatives
    from grdr.experiments.calibration import Shape, program_key
    from grdr.experiments.cost import trained_shape
    from grdr.experiments.sweep.grouping import groups

    cfg = capacity_dim.PRESETS["quick"]
    towers = [g for g in groups(capacity_dim, cfg) if g[0].model == "dr_global"]
    wide = [capacity_dim.padded_model(cfg, g) for g in towers]
    assert any(w.dim > g[0].model_cfg.dim for w, g in zip(wide, towers))  # some D trains inside a wider one
    shapes = [trained_shape(capacity_dim.NAME, cfg, g) for g in towers]
    for s, w, g in zip(shapes, wide, towers):
        assert s == dataclasses.replace(Shape.of_point(g[0]), width=w.dim, hidden=w.hidden)
    own = {program_key(Shape.of_point(g[0]), len(g)) for g in towers}
    assert len({program_key(s, len(g)) for s, g in zip(shapes, towers)}) < len(own)  # fewer compiles counted
    plain = groups(negatives, negatives.PRESETS["smoke"])
    assert all(trained_shape(negatives.NAME, negatives.PRESETS["smoke"], g) == Shape.of_point(g[0]) for g in plain)
