"""Seeds split into smaller groups without changing a record, and row-sparse tables where they apply."""
import dataclasses

import pytest

from grdr.experiments import drift_corpus, store
from grdr.experiments.points import point
from grdr.experiments.sweep.runner import groups


def _run_ids(found):
    return sorted(store.run_id(drift_corpus.NAME, pt.record()) for g in found for pt in g)


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_capping_seeds_per_group_changes_no_record(cap):
    cfg = dataclasses.replace(drift_corpus.PRESETS["smoke"], seeds=(0, 1, 2, 3, 4))
    whole = groups(drift_corpus, cfg)
    split = groups(drift_corpus, dataclasses.replace(cfg, max_group_seeds=cap))
    assert _run_ids(split) == _run_ids(whole)
    assert max(len(g) for g in split) == min(cap, 5)
    assert len(split) == len(whole) * -(-5 // cap)
    for g in split:  # a group still trains points that differ only in seed
        assert len({pt.group_key() for pt in g}) == 1
    assert [pt.record() for g in split for pt in g] == [pt.record() for g in whole for pt in g]


def test_row_sparse_updates_only_where_a_step_touches_few_rows():
    cfg = drift_corpus.PRESETS["smoke"]
    sparse = {name: point(name, cfg, 100, 0, sparse_table=True).train.sparse_table
              for name in ("dr_table_local_uniform", "dr_table_global", "atomic_gr", "dr_local_uniform", "seq_gr")}
    assert sparse == {"dr_table_local_uniform": True, "dr_table_global": False, "atomic_gr": False,
                      "dr_local_uniform": False, "seq_gr": False}
    dense = point("dr_table_local_uniform", cfg, 100, 0)
    assert not dense.train.sparse_table
    assert point("dr_table_local_uniform", cfg, 100, 0, sparse_table=True).record()["sparse_table"] is True
    assert dense.record()["sparse_table"] is False
