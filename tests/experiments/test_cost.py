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
