"""critical_n: the search is LIMIT's (replayed from stored outcomes, it probes in their order and finds a
planted threshold with a fake oracle, and reports a non-monotone outcome); the smoke preset runs end
to end, resumes without retraining, and its records carry their budget and respect what is a theorem;
MaxSim's searches run end to end, and its report rows set its n(d) beside DR's at the same d and at m d."""
import dataclasses
import math

import pandas as pd
import pytest

from experiments import critical_n, store
from experiments.runner import run_experiment


def _search(oracle, n0, n_max):
    outcomes, order = {}, []
    while (n := critical_n.next_n(outcomes, n0, n_max)) is not None:
        assert n not in outcomes, "the search probed the same n twice"
        assert 2 < n <= n_max
        outcomes[n] = oracle(n)
        order.append(n)
    return critical_n.critical_from(outcomes, n0, n_max), order, outcomes


@pytest.mark.parametrize("n0", [3, 5, 12, 40])
@pytest.mark.parametrize("n_max", [7, 64, 1000])
def test_search_finds_a_planted_threshold(n0, n_max):
    for threshold in [2, 3, 4, 5, 9, 17, 31, 63, 64, 65, 200, 999, 5000]:
        found, order, outcomes = _search(lambda n: n <= threshold, n0, n_max)
        assert found == min(threshold, n_max)
        assert critical_n.non_monotone(outcomes) == []
        # galloping and bisection take O(log) probes; the final sweep adds at most 10
        assert len(order) <= 2 * math.ceil(math.log2(max(n_max, n0))) + 2 + 10
        if found < n_max:  # the sweep covers n* - 4 ... n* + 5 (within 2 < n <= n_max)
            assert {n for n in range(found - 4, found + 6) if 2 < n <= n_max} <= set(outcomes)


def test_search_probes_in_limits_order():
    # LIMIT's free_embedding_experiment.py, phase by phase, with the threshold at 20.
    # From below: gallop 10, 11, 13, 17, 25 (+1, +2, +4, +8); bisect [17, 25]: 21, 18, 19, 20;
    # sweep 16 ... 25: the unprobed 16, 22, 23, 24.
    assert _search(lambda n: n <= 20, 10, 100)[1] == [10, 11, 13, 17, 25, 21, 18, 19, 20, 16, 22, 23, 24]
    # From above: gallop 30, 29, 27, 23, 15 (-1, -2, -4, -8); bisect [15, 23]: 19, 21, 20; sweep.
    assert _search(lambda n: n <= 20, 30, 100)[1] == [30, 29, 27, 23, 15, 19, 21, 20, 16, 17, 18, 22, 24, 25]


def test_a_non_monotone_outcome_is_kept_and_reported():
    # 22 is solved although 21 is not: the binary search says 20, the sweep finds 22.
    found, order, outcomes = _search(lambda n: n <= 20 or n == 22, 10, 100)
    assert found == 20 and outcomes[22] and not outcomes[21]
    assert critical_n.non_monotone(outcomes) == [22]


def test_config_names_the_bad_field():
    with pytest.raises(ValueError, match="models"):
        critical_n.Config(models=("dr_local_uniform",))
    with pytest.raises(ValueError, match="n_max"):
        critical_n.Config(n_max=2)
    with pytest.raises(ValueError, match="success"):
        critical_n.Config(success="argmax")
    with pytest.raises(ValueError, match="gr_bucket"):
        critical_n.Config(gr_bucket=0)
    with pytest.raises(ValueError, match=r"Config\.vectors=0: expected at least 1"):
        critical_n.Config(vectors=0)
    with pytest.raises(ValueError, match=r"Config\.doc_vectors=-1: expected at least 1"):
        critical_n.Config(doc_vectors=-1)
    with pytest.raises(ValueError, match=r"Config\.maxsim_dims=\(2, 0\): every d must be >= 1"):
        critical_n.Config(maxsim_dims=(2, 0))
    with pytest.raises(ValueError, match=r"Config\.maxsim_n_max=2: expected >= 3"):
        critical_n.Config(maxsim_n_max=2)
    with pytest.raises(ValueError, match="maxsim_start_per_dim"):
        critical_n.Config(maxsim_start_per_dim=0.0)
    assert critical_n.Config(models=("dr_maxsim",)).models == ("dr_maxsim",)


def test_defaults_are_limits_protocol():
    cfg = critical_n.Config()
    assert (cfg.seeds, cfg.temperature, cfg.learning_rate, cfg.max_steps, cfg.patience, cfg.min_delta,
            cfg.eval_every, cfg.success, cfg.sweep_below, cfg.sweep_above) == (
        (42,), 0.1, 0.01, 100_000, 1_000, 1e-5, 50, "topk", 4, 5)
    assert critical_n.PRESETS["quick"].max_steps == 100_000 and critical_n.PRESETS["quick"].patience == 1_000
    assert {8, 12, 16} <= set(critical_n.PRESETS["quick"].dims)


def test_buckets_cover_n_and_keep_seq_gr_within_its_docid_length():
    cfg = critical_n.Config(bucket=8, gr_bucket=16, docid_vocab=4)
    for n in range(3, 200):
        dr, gr = critical_n.pad_n(cfg, "dr", n), critical_n.pad_n(cfg, "seq_gr", n)
        assert n <= dr < n + 8 and dr % 8 == 0
        L = math.ceil(math.log(n, 4) - 1e-9)
        assert n <= gr <= 4**L and (gr == 4**L or gr % 16 == 0)
    assert critical_n.weller_cubic(16) == pytest.approx(-10.5322 + 4.0309 * 16 + 0.0520 * 16**2 + 0.0037 * 16**3)


def test_smoke_runs_resumes_and_respects_theorems(tmp_path):
    cfg = critical_n.PRESETS["smoke"]
    first = run_experiment(critical_n, cfg, tmp_path, progress=False)
    searches = len(cfg.dims) + len(cfg.gr_dims) + len(cfg.maxsim_dims)
    assert "dr_maxsim" in cfg.models and cfg.maxsim_dims
    assert first["ran"] == len(list(critical_n.sweep(cfg))) == searches
    assert run_experiment(critical_n, cfg, tmp_path, progress=False)["ran"] == 0  # all stored: nothing retrained

    # Interrupt a search after its first probe: drop its critical record and its later probes.
    folder = tmp_path / "critical_n"
    recs = {p: store.read_record(p) for p in folder.glob("*.json")}
    target = next(r for r in recs.values() if r["config"]["record"] == "critical" and r["metrics"]["probes"] >= 2)
    same = [p for p, r in recs.items() if r["config"]["record"] == "probe"
            and (r["config"]["model"], r["config"]["dim"]) == (target["config"]["model"], target["config"]["dim"])]
    first_n = target["config"]["n0"]
    kept = {p: p.stat().st_mtime_ns for p in same if recs[p]["config"]["n_docs"] == min(first_n, target["config"]["n_max"])}
    assert kept
    for p in same:
        if p not in kept:
            p.unlink()
    store.record_path(tmp_path, "critical_n", target["run_id"]).unlink()
    assert run_experiment(critical_n, cfg, tmp_path, progress=False)["ran"] == 1
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the stored probe was read, not retrained
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(p.name for p in recs)

    df = store.load(tmp_path, "critical_n")
    probes, crit = df[df["record"] == "probe"], df[df["record"] == "critical"]
    for col in ("model", "dim", "n_docs", "seed", "temperature", "optimizer", "learning_rate", "max_steps", "patience",
                "min_delta", "eval_every", "success", "top2_accuracy", "margin", "solved", "solved_topk",
                "solved_margin", "steps", "stopped_by_patience", "stopped_by_max_steps", "forster", "dim_lower",
                "dim_upper", "params", "n_padded"):
        assert col in probes, col
    # every probe carries the budget it ran under, and used no more of it
    assert (probes["max_steps"] == cfg.max_steps).all() and (probes["patience"] == cfg.patience).all()
    assert (probes["min_delta"] == cfg.min_delta).all() and (probes["eval_every"] == cfg.eval_every).all()
    assert ((probes["steps"] >= 1) & (probes["steps"] <= probes["max_steps"])).all()
    assert (probes["n_padded"] >= probes["n_docs"]).all()
    assert set(crit["model"]) == set(cfg.models)
    assert len(crit) == searches
    ms = probes[probes["model"] == "dr_maxsim"]
    assert (ms["kind"] == "maxsim").all() and (ms["vectors"] == cfg.vectors).all()
    assert (ms["doc_vectors"] == cfg.doc_vectors).all()
    assert (ms["params_per_query"] == cfg.vectors * ms["dim"]).all()
    assert (ms["params_per_doc"] == cfg.doc_vectors * ms["dim"]).all()
    assert (ms["params"] == (ms["n_queries"] * cfg.vectors + ms["n_docs"] * cfg.doc_vectors) * ms["dim"]).all()
    # DR's and SeqGR's records carry no MaxSim field (their run_ids are those of the records before it)
    assert probes.loc[probes["model"] != "dr_maxsim", "vectors"].isna().all()
    assert ((probes["solved"] > 0) == (probes["solved_topk"] > 0)).all()  # the search used LIMIT's criterion
    assert ((probes["solved_topk"] > 0) == (probes["top2_accuracy"] == 1.0)).all()
    assert ((probes["solved_margin"] > 0) == (probes["margin"] > 0)).all()
    assert not ((probes["solved_margin"] > 0) & (probes["solved_topk"] == 0)).any()  # margin > 0 implies top-2
    stopped = probes["solved"] + probes["stopped_by_patience"] + probes["stopped_by_max_steps"]
    assert (stopped >= 1).all()
    for _, r in crit.iterrows():  # each critical record agrees with its own search's probes
        g = probes[(probes["model"] == r["model"]) & (probes["dim"] == r["dim"])]
        outcomes = {int(k): v for k, v in g.groupby("n_docs")["solved"].max().gt(0).to_dict().items()}
        args = (int(r["n0"]), int(r["n_max"]), 2, int(r["sweep_below"]), int(r["sweep_above"]))
        assert critical_n.next_n(outcomes, *args) is None  # the search ended
        assert r["critical_n"] == critical_n.critical_from(outcomes, *args)
        assert r["probes"] == len(outcomes) and r["steps_total"] == g["steps"].sum()
        assert r["non_monotone"] == len(critical_n.non_monotone(outcomes))
    dr = crit[crit["model"] == "dr_global"].set_index("dim")["critical_n"]
    # Theorems: unit vectors in 1-D are +-1, so n = 3 fails even with LIMIT's ties to the lower index
    # (query {1, 2} needs v1 = v2 != v0, query {0, 2} needs v2 != v1), and on the circle the top-2 of
    # a query are neighbours in angular order (n = 4 has 6 pairs but 4 neighbouring pairs).
    assert dr[1] == 2 and dr[2] <= 3
    dr_probes = probes[probes["kind"] == "dr"]
    assert not ((dr_probes["solved"] > 0) & (dr_probes["dim"] < dr_probes["dim_lower"])).any()

    text = critical_n.report(df)
    assert "critical n" in text and "Weller et al. cubic" in text
    assert "Every probe and the budget it used" in text
    assert text.count(f"of {cfg.max_steps:,} |") == len(probes)  # one row per probe: steps used of the budget

    from figures import critical_n as fig_module

    fig = fig_module.plot(df)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()


def test_a_maxsim_search_runs_end_to_end_beside_dr(tmp_path):
    # MaxSim with 2 + 2 vectors at d = 3 against DR at d = 3 (same d) and d = 6 (matched parameters),
    # on a short budget and n_max = 8 (MaxSim starts at 4 d = 12, above it: the search starts at n_max);
    # each search is one compiled bucket of 8.
    cfg = dataclasses.replace(critical_n.PRESETS["smoke"], models=("dr_global", "dr_maxsim"), dims=(3, 6),
                              maxsim_dims=(3,), n_max=8, maxsim_n_max=8, max_steps=3_000, patience=300)
    summary = run_experiment(critical_n, cfg, tmp_path, progress=False)
    assert summary["ran"] == 3 and summary["failed"] == 0
    df = store.load(tmp_path, "critical_n")
    crit = df[df["record"] == "critical"].set_index(["model", "dim"])
    ms, dr3, dr6 = (crit.loc[key] for key in (("dr_maxsim", 3), ("dr_global", 3), ("dr_global", 6)))
    assert ms["n0"] == 4 * 3 and ms["n_max"] == 8 and ms["vectors"] == 2 and ms["doc_vectors"] == 2
    assert (ms["params_per_query"], ms["params_per_doc"], dr3["params_per_query"]) == (6, 6, 3)
    assert ms["critical_n"] > dr3["critical_n"]  # measured: MaxSim solves 8 at d = 3, DR 4
    probes = df[(df["record"] == "probe") & (df["model"] == "dr_maxsim")]
    assert set(probes["n_padded"]) == {8} and len(probes) == ms["probes"]

    rows = critical_n.maxsim_comparison(df[df["record"] == "critical"])["dr_maxsim_2x2"]
    assert rows[["dim", "maxsim", "dr_same", "dr_matched"]].values.tolist() == [
        [3, ms["critical_n"], dr3["critical_n"], dr6["critical_n"]]]
    text = critical_n.report(df)
    gap = int(ms["critical_n"] - dr3["critical_n"])
    cens = " (n_max solved)" if ms["censored"] else ""  # here it is: MaxSim solves n_max = 8 at d = 3
    assert (f"| 3 | {int(ms['critical_n'])}{cens} | 6 / 6 | {int(dr3['critical_n'])} | 3 / 3 | {gap:+d} | "
            f"{int(dr6['critical_n'])} | 6 / 6 | {int(ms['critical_n'] - dr6['critical_n']):+d} |") in text
    assert "DR MaxSim, global (m = 2, m' = 2)" in text
    found = {f.claim: f for f in critical_n.findings(df)}
    same = found["DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at the same d"]
    assert same.verdict.estimate == gap and same.verdict.n == 1
    assert "DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at matched parameters (DR at 2 d)" in found

    from figures import critical_n as fig_module

    labels = fig_module.plot(df).axes[0].get_legend_handles_labels()[1]
    assert "DR MaxSim, global (m = 2, m' = 2): critical n" in labels and "DR, global: critical n" in labels


def _crit(model, dim, n, vectors=None, doc_vectors=None):
    return {"record": "critical", "model": model, "dim": dim, "critical_n": float(n), "censored": 0.0,
            "vectors": vectors, "doc_vectors": doc_vectors}


def test_maxsim_curves_are_kept_apart_by_m_and_matched_to_dr_at_m_d():
    crit = pd.DataFrame([_crit("dr_global", d, n) for d, n in ((2, 3), (3, 4), (4, 9), (6, 15), (8, 29))] +
                        [_crit("dr_maxsim", 2, 5, 2, 2), _crit("dr_maxsim", 4, 21, 2, 2),
                         _crit("dr_maxsim", 2, 7, 4, 4), _crit("dr_maxsim", 3, 12, 2, 3)])
    out = critical_n.maxsim_comparison(crit)
    assert sorted(out) == ["dr_maxsim_2x2", "dr_maxsim_2x3", "dr_maxsim_4x4"]  # never pooled across m
    two = out["dr_maxsim_2x2"].set_index("dim")
    assert two.loc[2, ["maxsim", "dr_same", "dr_matched"]].tolist() == [5, 3, 9]  # DR at 2 x 2 = 4
    assert two.loc[4, ["maxsim", "dr_same", "dr_matched"]].tolist() == [21, 9, 29]  # DR at 8
    four = out["dr_maxsim_4x4"].set_index("dim")
    assert four.loc[2, "dr_same"] == 3 and four.loc[2, "dr_matched"] == 29  # DR at 4 x 2 = 8
    assert out["dr_maxsim_2x3"]["dr_matched"].isna().all()  # m != m': no matched DR
    found = {f.claim: f.verdict for f in critical_n.findings(crit.assign(weller_cubic=1.0, probes=1))}
    v = found["DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at the same d"]
    assert v.n == 2 and v.estimate == pytest.approx(((5 - 3) + (21 - 9)) / 2)
    v = found["DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at matched parameters (DR at 2 d)"]
    assert v.n == 2 and v.estimate == pytest.approx(((5 - 9) + (21 - 29)) / 2) and v.word != "held"
