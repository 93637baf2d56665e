"""The MaxSim-vs-dot top-k benchmark (benchmarks/maxsim_topk.py): its --small path runs end to end,
its brute-force check accepts the project's top-k and rejects a wrong one, and it refuses to time
when the check fails."""
import csv

import jax.numpy as jnp
import numpy as np
import pytest

from grdr.benchmarks import maxsim_topk
from grdr.sim.scorers import MaxSim


def test_small_run_checks_exactness_and_writes_ratios(tmp_path):
    out = tmp_path / "maxsim_topk.csv"
    summary = maxsim_topk.main(["--small", "--vectors", "1", "2", "--repeats", "2", "--out", str(out)])
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["m"]) for r in rows] == [1, 2]
    for r in rows:
        assert r["maxsim_exact"] == "True" and r["dot_exact"] == "True"
        assert float(r["maxsim_id_overlap"]) > 0.9
        assert float(r["ratio"]) > 0 and float(r["dot_s"]) > 0 and float(r["maxsim_s"]) > 0
        assert int(r["flop_ratio"]) == int(r["m"]) * int(r["m_doc"])
        assert float(r["dense_products_gib"]) > 0 and float(r["docs_gib"]) > 0
    assert [s["benchmark"] for s in summary] == ["MaxSim top-k vs dot"] * 2


def _case(seed=0, n=3000, m=3, dim=8, num_q=5, k=20):
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((num_q, m, dim), dtype=np.float32)
    docs = rng.standard_normal((n, m, dim), dtype=np.float32)
    scores, idx = MaxSim(dim=dim, vectors=m, doc_vectors=m).topk(jnp.asarray(queries), jnp.asarray(docs), k)
    return queries, docs, np.asarray(scores), np.asarray(idx)


def test_check_accepts_maxsim_topk_and_rejects_a_wrong_document():
    queries, docs, scores, idx = _case()
    assert maxsim_topk.check_topk(queries, docs, scores, idx)["ok"]
    wrong = idx.copy()
    worst = np.argsort(maxsim_topk.maxsim64(queries[:1], docs[None]), axis=1)[0, 0]  # the lowest-scoring document
    wrong[0, -1] = worst
    check = maxsim_topk.check_topk(queries, docs, scores, wrong)
    assert not check["ok"] and not check["same_topk"]
    assert check["id_overlap"] < 1


def test_brute_force_topk_matches_a_dense_float64_maxsim():
    queries, docs, _, _ = _case(seed=1, n=500)
    dense = maxsim_topk.maxsim64(queries, np.broadcast_to(docs, (len(queries),) + docs.shape))
    best, ids = maxsim_topk.brute_force_topk(queries, docs, 7, chunk=64)
    np.testing.assert_allclose(best, -np.sort(-dense, axis=1)[:, :7], rtol=1e-12)
    np.testing.assert_allclose(np.take_along_axis(dense, ids, axis=1), best, rtol=1e-12)


def test_no_timings_when_the_check_fails(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(maxsim_topk, "check_topk", lambda *a, **kw: {"ok": False, "id_overlap": 0.0})
    with pytest.raises(SystemExit, match="no timings"):
        maxsim_topk.main(["--small", "--vectors", "1", "--out", str(tmp_path / "x.csv")])
    assert "maxsim_s" not in capsys.readouterr().out
    assert not (tmp_path / "x.csv").exists()
