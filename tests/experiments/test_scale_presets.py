"""The scale and paper presets: the sizes they promise, and the dry run's estimates of the paper presets."""
import dataclasses
import math

import pytest

from grdr.experiments import (capacity_dim, critical_n, drift_corpus, drift_mechanism, model_scale, negatives,
                              real_scaling, similarity, theory_curves)
from grdr.experiments.calibration import GPU, Shape
from grdr.experiments.cost import makespan, sweep_seconds
from grdr.experiments.points import point
from grdr.experiments.sweep.runner import groups

HOURS = 3600.0


def test_the_scale_preset_spans_three_decades_of_n_and_widths_to_1024():
    drift, scale, dim = (m.PRESETS["scale"] for m in (drift_corpus, model_scale, capacity_dim))
    ns = set(drift.n_docs) | set(drift.table_n_docs)
    assert min(ns) <= 100 and max(ns) >= 100_000
    for field in ("n_docs", "table_n_docs"):  # a law needs 4 distinct x, 3 to fit and one held out
        assert len(getattr(drift, field)) >= 5
    # both arms' drift gaps (experiments.registry.DRIFT_PAIRS) and the table against AtomicGR
    assert {"dr_global", "dr_local_uniform", "dr_table_global", "dr_table_local_uniform", "atomic_gr"} <= set(drift.models)
    assert drift.sparse_tables
    assert min(scale.widths) <= 8 and max(scale.widths) >= 1024 and len(scale.widths) >= 5
    assert len(dim.dims) >= 4
    for cfg in (drift, scale, dim):
        assert len(cfg.seeds) >= 3  # the seed bootstrap of the fits


def _paper_estimates(module):
    found = groups(module, module.PRESETS["paper"])
    return sweep_seconds(module.NAME, found, cfg=module.PRESETS["paper"])


@pytest.mark.parametrize("module", [drift_corpus, model_scale, capacity_dim, drift_mechanism, negatives,
                                    similarity, critical_n, theory_curves, real_scaling])
def test_the_paper_preset_is_estimated_to_fit_one_gpu_day_and_half_a_day_on_16_workers(module):
    est = _paper_estimates(module)
    assert sum(est["gpu"]) <= 24 * HOURS
    assert makespan(est["task"], 16) <= 12 * HOURS


def test_the_paper_drift_sweep_reaches_a_million_documents():
    cfg = drift_corpus.PRESETS["paper"]
    assert max(cfg.n_docs) >= 1_000_000


def test_a_gpu_step_costs_at_least_its_latency_and_grows_with_n():
    cfg = drift_corpus.PRESETS["smoke"]
    small, large = (Shape.of_point(point("atomic_gr", cfg, n, 0)) for n in (1_000, 1_000_000))
    from grdr.experiments.calibration import _gpu_step

    gpu = GPU()
    assert _gpu_step(small, 1, gpu) >= gpu.latency
    # the full softmax's work is linear in N: a thousand times the documents, nearly a thousand times the time
    grow = (_gpu_step(large, 1, gpu) - gpu.latency) / (_gpu_step(small, 1, gpu) - gpu.latency)
    assert 900 < grow < 1100


def test_the_scale_tables_get_training_queries_in_proportion_to_n_and_the_towers_keep_theirs():
    cfg = drift_corpus.PRESETS["scale"]
    assert cfg.table_queries_per_doc > 0
    for pt in drift_corpus.sweep(cfg):
        queries, n = pt.corpus.n_train_queries, pt.corpus.n_docs
        if pt.variant.has_doc_table:
            assert queries == max(cfg.corpus.n_train_queries, math.ceil(cfg.table_queries_per_doc * n))
            assert queries >= cfg.table_queries_per_doc * n
        else:
            assert queries == cfg.corpus.n_train_queries
    # off by default: every corpus keeps the configured queries, so the other presets' run_ids stand
    quick = drift_corpus.PRESETS["quick"]
    assert {pt.corpus.n_train_queries for pt in drift_corpus.sweep(quick)} == {quick.corpus.n_train_queries}
    with pytest.raises(ValueError, match=r"Config\.table_queries_per_doc=-1"):
        dataclasses.replace(quick, table_queries_per_doc=-1.0)


def test_an_n_both_arms_run_cannot_get_two_corpora():
    """The references and the report read one corpus per N: where towers and tables both run an N, the
    tables' queries per document may not give them a corpus of their own."""
    cfg = drift_corpus.PRESETS["quick"]  # towers at 100-3,000, tables at 80-1,000: both run N = 1,000
    with pytest.raises(ValueError, match=r"at N = \[1000\].*two corpora at one N"):
        dataclasses.replace(cfg, table_queries_per_doc=60.0)  # 60,000 queries at N = 1,000 against 50,000
    dataclasses.replace(cfg, table_queries_per_doc=60.0, models=("dr_table_global", "atomic_gr"))  # one arm: fine
    dataclasses.replace(cfg, table_queries_per_doc=40.0)  # 40 N <= 50,000 at every shared N: one corpus each
