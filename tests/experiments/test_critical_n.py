"""critical_n: the search is LIMIT's (replayed from stored outcomes, it probes in their order and finds a
planted threshold with a fake oracle, and reports a non-monotone outcome); each seed runs its own
search (planted per-seed thresholds give per-seed n and their median), and an interrupted seed's
search resumes at its first unstored probe; DR's n(d) is checked against Weller et al.'s Table 6
within +-3 (a tolerance check, outside the Holm family), and the figure draws the table; comparisons
between models read one effect per seed; the smoke preset runs end to end, resumes without
retraining, and its records carry their budget and respect what is a theorem; MaxSim's searches run
end to end, and its report rows set its n(d) beside DR's at the same d and at m d."""
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from grdr.experiments import critical_n
from grdr.experiments.sweep import store
from grdr.experiments.sweep.runner import groups, run_experiment

# Weller et al. 2025, arXiv 2508.21038 (revised), Appendix G, Table 6: measured critical n at d.
TABLE6 = {4: 10, 6: 19, 8: 28, 12: 47, 16: 79, 20: 120, 32: 296}


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
    with pytest.raises(ValueError, match=r"Config\.max_group_seeds=-1: expected 0"):
        critical_n.Config(max_group_seeds=-1)
    assert critical_n.Config(models=("dr_maxsim",)).models == ("dr_maxsim",)


def test_a_seed_cap_makes_each_search_its_own_task_without_changing_a_record():
    base = dataclasses.replace(critical_n.PRESETS["quick"], dims=(2, 4), gr_dims=(2,), maxsim_dims=(2,))
    whole, split = groups(critical_n, base), groups(critical_n, dataclasses.replace(base, max_group_seeds=1))
    assert [len(g) for g in whole] == [len(base.seeds)] * len(whole)
    assert len(split) == len(whole) * len(base.seeds) and all(len(g) == 1 for g in split)
    assert [pt.record() for g in whole for pt in g] == [pt.record() for g in split for pt in g]


def test_defaults_are_limits_protocol():
    cfg = critical_n.Config()
    assert (cfg.temperature, cfg.learning_rate, cfg.max_steps, cfg.patience, cfg.min_delta,
            cfg.eval_every, cfg.success, cfg.sweep_below, cfg.sweep_above) == (
        0.1, 0.01, 100_000, 1_000, 1e-5, 50, "topk", 4, 5)
    assert 42 in cfg.seeds and len(cfg.seeds) >= 3  # LIMIT's draws are one replicate of several
    quick = critical_n.PRESETS["quick"]
    assert quick.max_steps == 100_000 and quick.patience == 1_000 and len(quick.seeds) >= 3
    assert {4, 6, 8, 12, 16} <= set(quick.dims)  # every d of Table 6 up to 16
    assert set(quick.models) == {"dr_global", "seq_gr", "dr_maxsim"} and quick.gr_dims and quick.maxsim_dims
    # the comparisons have their DR partners: the same width and d, and m d for MaxSim's matched reading
    assert set(quick.gr_dims) | set(quick.maxsim_dims) | {quick.vectors * d for d in quick.maxsim_dims} <= set(quick.dims)
    assert critical_n.WELLER_TABLE6 == TABLE6 and critical_n.TABLE6_TOLERANCE == 3


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
    assert len(cfg.seeds) >= 2
    first = run_experiment(critical_n, cfg, tmp_path, progress=False)
    searches = (len(cfg.dims) + len(cfg.gr_dims) + len(cfg.maxsim_dims)) * len(cfg.seeds)  # one per seed
    assert "dr_maxsim" in cfg.models and cfg.maxsim_dims
    assert first["ran"] == len(list(critical_n.sweep(cfg))) == searches
    assert run_experiment(critical_n, cfg, tmp_path, progress=False)["ran"] == 0  # all stored: nothing retrained

    # Interrupt one seed's search after its first probe: drop its critical record and its later probes.
    folder = tmp_path / "critical_n"
    recs = {p: store.read_record(p) for p in folder.glob("*.json")}
    target = next(r for r in recs.values() if r["config"]["record"] == "critical" and r["metrics"]["probes"] >= 2)
    key = ("model", "dim", "seed")
    same = [p for p, r in recs.items() if r["config"]["record"] == "probe"
            and all(r["config"][k] == target["config"][k] for k in key)]
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
    assert len(crit) == searches and set(crit["seed"]) == set(cfg.seeds)
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
    for _, r in crit.iterrows():  # each critical record agrees with its own seed's probes, and no other's
        g = probes[(probes["model"] == r["model"]) & (probes["dim"] == r["dim"]) & (probes["seed"] == r["seed"])]
        outcomes = {int(k): v for k, v in g.groupby("n_docs")["solved"].max().gt(0).to_dict().items()}
        args = (int(r["n0"]), int(r["n_max"]), 2, int(r["sweep_below"]), int(r["sweep_above"]))
        assert critical_n.next_n(outcomes, *args) is None  # the search ended
        assert r["critical_n"] == critical_n.critical_from(outcomes, *args)
        assert r["probes"] == len(outcomes) and r["steps_total"] == g["steps"].sum()
        assert r["non_monotone"] == len(critical_n.non_monotone(outcomes))
    dr = crit[crit["model"] == "dr_global"]
    # Theorems, for every seed: unit vectors in 1-D are +-1, so n = 3 fails even with LIMIT's ties to
    # the lower index (query {1, 2} needs v1 = v2 != v0, query {0, 2} needs v2 != v1), and on the circle
    # the top-2 of a query are neighbours in angular order (n = 4 has 6 pairs but 4 neighbouring pairs).
    assert (dr.loc[dr["dim"] == 1, "critical_n"] == 2).all() and (dr.loc[dr["dim"] == 2, "critical_n"] <= 3).all()
    dr_probes = probes[probes["kind"] == "dr"]
    assert not ((dr_probes["solved"] > 0) & (dr_probes["dim"] < dr_probes["dim_lower"])).any()

    text = critical_n.report(df)
    assert "critical n per seed" in text and "Weller et al. Table 6" in text and "their cubic fit" in text
    assert "Every probe and the budget it used" in text
    assert text.count(f"of {cfg.max_steps:,} |") == len(probes)  # one row per probe: steps used of the budget

    from grdr.figures import critical_n as fig_module

    fig = fig_module.plot(df)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()


def test_a_maxsim_search_runs_end_to_end_beside_dr(tmp_path):
    # MaxSim with 2 + 2 vectors at d = 3 against DR at d = 3 (same d) and d = 6 (matched parameters),
    # on a short budget and n_max = 8 (MaxSim starts at 4 d = 12, above it: the search starts at n_max);
    # each search is one compiled bucket of 8. One seed (LIMIT's), to keep it short.
    cfg = dataclasses.replace(critical_n.PRESETS["smoke"], models=("dr_global", "dr_maxsim"), dims=(3, 6),
                              maxsim_dims=(3,), n_max=8, maxsim_n_max=8, max_steps=3_000, patience=300, seeds=(42,))
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
    assert rows[["dim", "seed", "maxsim", "dr_same", "dr_matched"]].values.tolist() == [
        [3, 42, ms["critical_n"], dr3["critical_n"], dr6["critical_n"]]]
    text = critical_n.report(df)
    gap = int(ms["critical_n"] - dr3["critical_n"])
    cens = " (n_max solved)" if ms["censored"] else ""  # here it is: MaxSim solves n_max = 8 at d = 3
    n_ms, n3, n6 = int(ms["critical_n"]), int(dr3["critical_n"]), int(dr6["critical_n"])
    assert f"| 3 | {n_ms}{cens} | {n_ms} | 6 / 6 | {n3} | {n3} | 3 / 3 | {n6} | {n6} | 6 / 6 |" in text
    assert f"critical n minus DR's at the same d, d = 3: {gap:+d} (seeds 42; median {gap:+d})" in text
    assert "DR MaxSim, global (m = 2, m' = 2)" in text
    found = {f.claim: f for f in critical_n.findings(df)}
    same = found["DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at the same d"]
    assert same.verdict.estimate == gap and same.verdict.n == 1 and same.verdict.word == "inconclusive"
    assert "DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at matched parameters (DR at 2 d)" in found

    from grdr.figures import critical_n as fig_module

    labels = fig_module.plot(df).axes[0].get_legend_handles_labels()[1]
    assert "DR MaxSim, global (m = 2, m' = 2): median over seeds" in labels and "DR, global: median over seeds" in labels


def _crit(model, dim, n, vectors=None, doc_vectors=None, seed=0):
    return {"record": "critical", "model": model, "dim": dim, "seed": seed, "critical_n": float(n), "censored": 0.0,
            "vectors": vectors, "doc_vectors": doc_vectors}


def test_maxsim_curves_are_kept_apart_by_m_and_matched_to_dr_at_m_d_of_the_same_seed():
    dr = {0: {2: 3, 3: 4, 4: 9, 6: 15, 8: 29}, 1: {2: 3, 3: 5, 4: 10, 6: 19, 8: 27}}
    ms = {0: {2: 5, 4: 21}, 1: {2: 6, 4: 18}}
    crit = pd.DataFrame([_crit("dr_global", d, n, seed=s) for s in dr for d, n in dr[s].items()] +
                        [_crit("dr_maxsim", d, n, 2, 2, seed=s) for s in ms for d, n in ms[s].items()] +
                        [_crit("dr_maxsim", 2, 7, 4, 4), _crit("dr_maxsim", 3, 12, 2, 3)])
    out = critical_n.maxsim_comparison(crit)
    assert sorted(out) == ["dr_maxsim_2x2", "dr_maxsim_2x3", "dr_maxsim_4x4"]  # never pooled across m
    two = out["dr_maxsim_2x2"].set_index(["dim", "seed"])
    for s in ms:
        for d in ms[s]:  # the same seed's DR at d and at 2 d
            assert two.loc[(d, s), ["maxsim", "dr_same", "dr_matched"]].tolist() == [ms[s][d], dr[s][d], dr[s][2 * d]]
    four = out["dr_maxsim_4x4"].set_index("dim")
    assert four.loc[2, "dr_same"] == dr[0][2] and four.loc[2, "dr_matched"] == dr[0][8]  # DR at 4 x 2 = 8
    assert out["dr_maxsim_2x3"]["dr_matched"].isna().all()  # m != m': no matched DR
    found = {f.claim: f.verdict for f in critical_n.findings(crit)}
    # one effect per seed: that seed's differences averaged over d; the verdict's n counts seeds
    v = found["DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at the same d"]
    same = [np.mean([ms[s][d] - dr[s][d] for d in ms[s]]) for s in ms]
    assert v.n == 2 and v.estimate == pytest.approx(np.median(same))
    v = found["DR MaxSim, global (m = 2, m' = 2): critical n exceeds DR's at matched parameters (DR at 2 d)"]
    matched = [np.mean([ms[s][d] - dr[s][2 * d] for d in ms[s]]) for s in ms]
    assert v.n == 2 and v.estimate == pytest.approx(np.median(matched)) and v.word != "held"


def test_seq_gr_against_dr_reads_one_effect_per_seed_never_per_width():
    dr = {0: {2: 3, 3: 4}, 1: {2: 3, 3: 5}, 2: {2: 4, 3: 4}, 3: {2: 3, 3: 4}}
    gr = {0: {2: 5, 3: 11}, 1: {2: 6, 3: 10}, 2: {2: 5, 3: 12}, 3: {2: 5}}  # seed 3 lacks width 3: left out
    crit = pd.DataFrame([_crit("dr_global", d, n, seed=s) for s in dr for d, n in dr[s].items()] +
                        [_crit("seq_gr", d, n, seed=s) for s in gr for d, n in gr[s].items()])
    v = {f.claim: f.verdict for f in critical_n.findings(crit)}["SeqGR's critical n exceeds DR's at the same width"]
    effects = [np.mean([gr[s][d] - dr[s][d] for d in (2, 3)]) for s in (0, 1, 2)]
    # the verdict rule (experiments.stats): the median per-seed effect, a sign test; 3 seeds cannot decide
    assert v.n == 3 and v.estimate == pytest.approx(np.median(effects))
    assert (v.low, v.high) == pytest.approx((min(effects), max(effects)))
    assert v.word == "inconclusive" and v.p == pytest.approx(0.25)   # 2 x (1/2)^3
    one = crit[crit["seed"] == 0]  # one seed: two widths are not two replicates
    v1 = {f.claim: f.verdict for f in critical_n.findings(one)}["SeqGR's critical n exceeds DR's at the same width"]
    assert v1.n == 1 and v1.word == "inconclusive"


def test_dr_is_checked_against_table_6_within_3_as_a_tolerance_not_a_test():
    seeds = {4: [9, 10, 13], 5: [12, 12, 12], 8: [24, 25, 31], 12: [43, 43, 50], 16: [79, 83, 90]}
    crit = pd.DataFrame([_crit("dr_global", d, n, seed=s) for d, ns in seeds.items() for s, n in enumerate(ns)] +
                        [_crit("seq_gr", 4, 30, seed=s) for s in range(3)])  # SeqGR is not read against it
    assert not [f for f in critical_n.findings(crit) if "Table 6" in f.claim]   # a prediction, not a claim
    rows = critical_n.predictions(crit)
    dims = [int(r.quantity.split("d = ")[1].split()[0]) for r in rows]
    assert dims == [4, 8, 12, 16]  # d = 5 is not in Table 6
    for d, r in zip(dims, rows):
        diff = float(np.median(seeds[d])) - TABLE6[d]
        assert r.verdict.estimate == diff and r.verdict.n == 3 and r.predicted[0] == TABLE6[d]
        assert r.word == ("agrees" if abs(diff) <= 3 else "does not agree") and r.tolerance == "within +-3 (median)"
        assert not r.verdict.family  # a tolerance check on the median: not a statistical claim
    assert {d: r.word for d, r in zip(dims, rows)} == {4: "agrees", 8: "agrees", 12: "does not agree",
                                                       16: "does not agree"}
    table = critical_n.table6_agreement(crit[crit["model"] == "dr_global"]).set_index("dim")
    assert table.loc[8, "n"] == [24, 25, 31] and table.loc[8, "median"] == 25 and table.loc[8, "table6"] == 28
    text = critical_n.report(crit.assign(max_solved_n=crit["critical_n"], non_monotone=0, probes=5, steps_total=10,
                                         steps_max=5, forster_at_critical=1.0, dim_lower_at_critical=2))
    assert "- d = 12: median 43 (seeds 43, 43, 50) against 47 (-4): does not agree." in text
    assert "| DR, global | 8 | 24, 25, 31 | 25 | 28 |" in text


def test_the_figure_draws_table_6_beside_each_seed_and_the_median():
    seeds = {4: [9, 10, 11], 8: [27, 29, 29], 12: [48, 50, 51]}
    crit = pd.DataFrame([_crit("dr_global", d, n, seed=s) for d, ns in seeds.items() for s, n in enumerate(ns)])
    crit = crit.assign(learning_rate=0.01, temperature=0.1)
    from grdr.figures import critical_n as fig_module

    ax = fig_module.plot(crit).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    table = lines[fig_module.TABLE6_LABEL]  # Table 6's points up to the largest d searched, their own marker
    assert list(table.get_xdata()) == [4, 6, 8, 12] and list(table.get_ydata()) == [10, 19, 28, 47]
    assert table.get_marker() == "*" and table.get_linestyle() == "None"
    assert fig_module.CUBIC_LABEL in lines  # their cubic fit, beside the table
    median = lines["DR, global: median over seeds"]
    assert list(median.get_xdata()) == [4, 8, 12] and list(median.get_ydata()) == [np.median(seeds[d]) for d in (4, 8, 12)]
    each = next(c for c in ax.collections if c.get_label() == "DR, global: each seed's critical n")
    assert sorted(each.get_offsets()[:, 1]) == sorted(n for ns in seeds.values() for n in ns)


def _fake_trainer(thresholds, calls):
    """A planted oracle in place of training: a (model, d, seed)'s probe at n is solved iff n <= its threshold."""
    def train(cfg, q, reach=None):
        n, key = q["n_docs"], (q["model"], q["dim"], q["seed"])
        calls.append((*key, n))
        ok = n <= thresholds[key]
        metrics = {"top2_accuracy": 1.0 if ok else 0.9, "margin": 0.1 if ok else -0.1, "solved": float(ok),
                   "solved_topk": float(ok), "solved_margin": float(ok), "steps": 100 + n,
                   "stopped_by_patience": float(not ok), "stopped_by_max_steps": 0.0, "final_loss": 1.0,
                   **critical_n.config._bounds(n)}
        return metrics, {"params": 0, "n_padded": n, **critical_n.config._side_params(q)}, 0.01

    return train


def test_each_seed_runs_its_own_search_and_n_d_is_their_median(tmp_path, monkeypatch):
    cfg = dataclasses.replace(critical_n.Config(), models=("dr_global",), dims=(8,), seeds=(0, 1, 2), n_max=64)
    thresholds = {("dr_global", 8, 0): 26, ("dr_global", 8, 1): 31, ("dr_global", 8, 2): 29}
    calls = []
    monkeypatch.setattr(critical_n.search, "_train_probe", _fake_trainer(thresholds, calls))
    assert run_experiment(critical_n, cfg, tmp_path / "all", progress=False)["ran"] == 3
    crit = store.load(tmp_path / "all", "critical_n").query("record == 'critical'").set_index("seed")
    n0 = critical_n.start_n(cfg, "dr_global", 8)
    for seed in cfg.seeds:  # its own n, from its own probes in LIMIT's order
        t = thresholds[("dr_global", 8, seed)]
        assert crit.loc[seed, "critical_n"] == t
        assert [c[3] for c in calls if c[2] == seed] == _search(lambda n, t=t: n <= t, n0, 64)[1]
    (row,) = critical_n.predictions(crit.reset_index())
    assert row.measured[0] == np.median([26, 31, 29]) and row.predicted[0] == TABLE6[8] and row.verdict.n == 3
    assert row.verdict.estimate == np.median([26, 31, 29]) - TABLE6[8] and row.word == "agrees"   # |29 - 28| <= 3
    assert not row.verdict.family   # a tolerance check on the median: outside the Holm family
    # a seed's search does not depend on the others: alone, seed 1 probes the same n
    alone = []
    monkeypatch.setattr(critical_n.search, "_train_probe", _fake_trainer(thresholds, alone))
    run_experiment(critical_n, dataclasses.replace(cfg, seeds=(1,)), tmp_path / "one", progress=False)
    assert alone == [c for c in calls if c[2] == 1]


def test_an_interrupted_seed_resumes_at_its_first_unstored_probe(tmp_path, monkeypatch):
    cfg = dataclasses.replace(critical_n.Config(), models=("dr_global",), dims=(8,), seeds=(0, 1, 2), n_max=64)
    thresholds = {("dr_global", 8, 0): 26, ("dr_global", 8, 1): 31, ("dr_global", 8, 2): 29}
    calls = []
    monkeypatch.setattr(critical_n.search, "_train_probe", _fake_trainer(thresholds, calls))
    run_experiment(critical_n, cfg, tmp_path, progress=False)
    folder = tmp_path / "critical_n"
    before = {p.name: store.read_record(p) for p in folder.glob("*.json")}
    order = [c for c in calls if c[2] == 1]
    # seed 1 stopped after its third probe, seed 2 after its last one (its critical record unwritten)
    for name, r in before.items():
        c = r["config"]
        if c["seed"] == 1 and (c["record"] == "critical" or (c["model"], c["dim"], 1, c["n_docs"]) in order[3:]):
            (folder / name).unlink()
        if c["seed"] == 2 and c["record"] == "critical":
            (folder / name).unlink()
    calls.clear()
    assert run_experiment(critical_n, cfg, tmp_path, progress=False)["ran"] == 2
    assert calls == order[3:]  # only seed 1's unstored probes were trained, in its order
    after = {p.name: store.read_record(p) for p in folder.glob("*.json")}
    assert after.keys() == before.keys()
    for name in before:
        assert after[name]["metrics"] == before[name]["metrics"], name


def test_the_probes_of_a_search_share_its_reach():
    """Every n a search probes while it stays within three galloping steps of n0 pads to one size
    (one compiled program per d), a later gallop to the next, and SeqGR's stays within its docid length."""
    from grdr.experiments.limit_search import gallop_reach, next_n

    cfg = critical_n.Config(docid_vocab=4)
    for n0, truth in ((74, 79), (74, 70), (47, 52), (6, 8)):  # up, down, and ending exactly at n0 + 7
        outcomes, pads = {}, set()
        while (n := next_n(outcomes, n0, 256, 2, 0, 0)) is not None:
            pads.add(critical_n.pad_n(cfg, "dr", n, gallop_reach(n0, n, 256)))
            outcomes[n] = n <= truth
        assert pads == {n0 + 7}, (n0, truth, pads)
    outcomes, pads = {}, set()  # a search that gallops past n0 + 7 compiles once more, for n0 + 15
    while (n := next_n(outcomes, 74, 256, 2, 0, 0)) is not None:
        pads.add(critical_n.pad_n(cfg, "dr", n, gallop_reach(74, n, 256)))
        outcomes[n] = n <= 85
    assert pads == {81, 89}
    assert gallop_reach(12, 8, 8) == 8  # n0 above n_max starts there: the reach is n_max
    for n in range(5, 17):  # SeqGR: L = 2 up to 16 documents, whatever the reach
        assert critical_n.pad_n(cfg, "seq_gr", n, 30) == 16
