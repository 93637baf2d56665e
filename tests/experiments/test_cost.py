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
    from grdr.experiments.calibration import Shape, group_seconds, program_key
    from grdr.experiments.cost import sweep_seconds, trained_shape
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
    # the dry run's own sum reads them: a task (a fresh process) costs the group at its trained shape
    task = sweep_seconds(capacity_dim.NAME, towers, cfg=cfg)["task"]
    for t, s, g in zip(task, shapes, towers):
        assert t == pytest.approx(group_seconds(s, len(g), len({pt.corpus_spec() for pt in g}), capacity_dim.NAME))
    plain = groups(negatives, negatives.PRESETS["smoke"])
    assert all(trained_shape(negatives.NAME, negatives.PRESETS["smoke"], g) == Shape.of_point(g[0]) for g in plain)


def test_a_group_padded_to_a_larger_n_builds_its_own_corpora():
    """Padding a group's documents to a larger N's bucket costs its steps at that bucket, but its corpora are
    built at their own N: the corpus feature is that of the unpadded shape."""
    from grdr.experiments.calibration import Shape, features
    from grdr.sim.buckets import bucket

    pt = next(iter(drift_corpus.sweep(drift_corpus.PRESETS["quick"])))
    own = Shape.of_point(pt)
    wide = own.padded(n_docs=8 * own.n_docs)
    assert bucket(wide.n_docs) > bucket(own.n_docs) and wide.corpus_docs == own.n_docs
    assert features(wide, 2, 1, "drift_corpus")["corpus"] == features(own, 2, 1, "drift_corpus")["corpus"]
    flop = f"flop_{own.kind}"
    assert features(wide, 2, 1, "drift_corpus")[flop] > features(own, 2, 1, "drift_corpus")[flop]
    assert own.padded(n_docs=own.n_docs) == own  # within its own bucket: nothing padded
