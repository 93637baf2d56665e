"""experiments.calibration's partition of a sweep's N into shared document buckets, and drift_corpus's use of it."""
import pytest

from grdr.experiments import drift_corpus
from grdr.experiments.calibration import DOCS_FLOOR, shared_buckets
from grdr.experiments.sweep.grouping import groups
from grdr.sim.buckets import bucket

SIZES = (80, 100, 200, 300, 500, 1_000, 3_000, 10_000)


def test_no_budget_keeps_every_bucket_and_free_padding_shares_one_up_to_the_floor():
    assert shared_buckets(lambda n, t: 1.0, SIZES, budget=0.0) == {n: bucket(n) for n in SIZES}
    free = shared_buckets(lambda n, t: 0.0, SIZES, budget=0.0)
    assert {free[n] for n in SIZES if bucket(n) <= DOCS_FLOOR} == {bucket(3_000)}
    assert free[10_000] == bucket(10_000)  # past the floor: its own


def test_each_size_pads_up_to_a_kept_bucket_within_budget():
    cost = lambda n, t: (t - bucket(n)) / 100.0  # noqa: E731
    out = shared_buckets(cost, SIZES, budget=3.0)
    assert set(out.values()) != {bucket(n) for n in SIZES}  # some sizes do share
    for n, t in out.items():
        assert t >= bucket(n)
        assert all(out[m] == t for m in SIZES if bucket(m) == t)  # a target is never itself padded further
        assert t == bucket(n) or cost(n, t) <= 3.0


@pytest.mark.parametrize("preset", ["smoke", "quick", "scale"])
def test_drift_corpus_pads_within_one_model_and_one_reference_size_per_n(preset):
    cfg = drift_corpus.PRESETS[preset]
    refs, pads = {}, {}
    for points in groups(drift_corpus, cfg):
        n, model = points[0].corpus.n_docs, points[0].model
        pad = drift_corpus.padded_docs(cfg, points)
        assert bucket(pad) == pad >= bucket(n)
        pads.setdefault(model, set()).add(pad)
        refs.setdefault(n, set()).add(drift_corpus.reference_docs(cfg, points))
    assert all(len(r) == 1 for r in refs.values())  # a corpus's references are computed once
    # every shared bucket is one that a group of the same model has as its own
    own = {m: {bucket(pt.corpus.n_docs) for pts in groups(drift_corpus, cfg) for pt in pts[:1] if pt.model == m}
           for m in pads}
    assert all(pads[m] <= own[m] for m in pads)
