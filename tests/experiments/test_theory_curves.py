"""theory_curves: the smoke preset end to end with its stored values checked against theory/ called
independently, and the four figures and the report drawn from the records alone (every theory
function made to raise). The two-level profile's exact values and the delta method's boundary rule
are tested beside their code, in tests/theory/test_two_level.py."""
import dataclasses
import itertools

import jax
import numpy as np
import pytest

from grdr.experiments import theory_curves as tc
from grdr.experiments.sweep import store
from grdr.experiments.registry import DEMO_ORDER, EXPERIMENTS
from grdr.experiments.sweep.runner import run_experiment
from grdr.theory import (confuser_coverage, delta_relative_error, normalizer_deficit, pmi_target, sign_rank_bounds,
                    trie_rank_bound, two_level_scores)

CFG = tc.PRESETS["smoke"]
FIGURES = ("theory_deficit", "theory_gradient", "theory_fixed_point", "theory_rank")


# ---------------------------------------------------------------------------------------------
# The smoke preset end to end.


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    summary = run_experiment(tc, CFG, out, progress=False)
    assert summary["ran"] == len(list(tc.sweep(CFG)))
    return out


@pytest.fixture(scope="module")
def df(out):
    return store.load(out, tc.NAME)


def test_is_registered():
    from grdr.figures import FIGURES as ALL
    from grdr import cli

    assert "theory_curves" in EXPERIMENTS and DEMO_ORDER[-1] == "theory_curves"
    for name in FIGURES:
        assert name in ALL
        assert __import__(f"grdr.figures.{name}", fromlist=["EXPERIMENT"]).EXPERIMENT == "theory_curves"


def test_config_names_the_bad_field():
    with pytest.raises(ValueError, match="families"):
        dataclasses.replace(CFG, families=("deficit", "nope"))
    with pytest.raises(ValueError, match="shares"):
        dataclasses.replace(CFG, shares=(1.5,))
    with pytest.raises(ValueError, match="tree_vocabs"):
        dataclasses.replace(CFG, tree_vocabs=(3,))
    with pytest.raises(ValueError, match="mc_n_docs"):
        dataclasses.replace(CFG, mc_n_docs=(123,))


def test_stored_deficits_match_theory(df):
    d = df[df["family"] == "deficit"]
    assert len(d) == 2 * len(CFG.n_docs) * len(CFG.num_negatives)
    with jax.enable_x64(True):
        for _, r in d[d["enumerated_plain"].notna()].iterrows():   # N = 10, K = 4: 9^4 samples
            share = None if r["profile"] == "flat" else r["share"]
            scores_N = two_level_scores(int(r["n_docs"]), share)
            for name, corrected in (("plain", "none"), ("logq", "logq_negatives")):
                e = normalizer_deficit(scores_N, 0, int(r["num_negatives"]), np.ones(int(r["n_docs"])), corrected,
                                       exact=True)
                assert r[f"exact_{name}"] == pytest.approx(e.monte_carlo, abs=1e-12)
    assert d["enumerated_plain"].notna().sum() == 2
    mc = d[d["mc_samples"] > 0]
    assert len(mc) == 2 * len(CFG.mc_n_docs) * len(CFG.num_negatives)
    for name in ("plain", "logq"):
        # theory's own closed form at the Monte Carlo points equals the one stored at every N
        assert np.allclose(mc[f"closed_{name}_theory"], mc["closed_plain" if name == "plain" else "delta_logq"],
                           rtol=1e-9, atol=1e-12)
        seen = mc[mc["mc_expected_hits"] >= 5]   # where the samples see the confuser
        assert (np.abs(seen[f"mc_{name}"] - seen[f"exact_{name}"]) <= 5 * seen[f"mc_{name}_se"] + 1e-9).all()
    flat = d[d["profile"] == "flat"]
    assert np.allclose(flat["closed_plain"], -np.log((flat["n_docs"] - 1) / flat["num_negatives"]), rtol=1e-12)


def test_stored_boundary_gradient_and_coverage_match_theory(df):
    b = df[df["family"] == "deficit_boundary"]
    assert len(b) == len(set(CFG.shares) | {CFG.peaked_share}) * len(CFG.num_negatives)
    for _, r in b.iterrows():
        if np.isfinite(r["boundary_n"]) and r["censored_low"] == 0:
            lo, hi = np.floor(r["boundary_n"] * 0.8), np.ceil(r["boundary_n"] * 1.25)
            assert delta_relative_error(int(lo), int(r["num_negatives"]), r["share"], 1) <= r["threshold"]
            assert delta_relative_error(int(hi), int(r["num_negatives"]), r["share"], 1) > r["threshold"]
    for _, r in df[df["family"] == "coverage"].iterrows():
        c = confuser_coverage(int(r["n_docs"]), int(r["num_negatives"]), int(r["confusers"]))
        assert (r["exact"], r["closed_form"]) == (pytest.approx(c.exact, rel=1e-12), pytest.approx(c.approximation))
        assert abs(r["mc"] - r["exact"]) <= 5 * r["mc_se"]
    g = df[df["family"] == "gradient"]
    assert set(g["corrected"]) == {False, True}
    mc = g[g["mc_samples"] > 0]
    assert len(mc) and (np.abs(mc["mc_norm"] - mc["exact_norm"]) <= 5 * mc["mc_norm_se"]).all()
    assert (g["mc_samples"] > 0).sum() == 2 * sum(n <= CFG.gradient_mc_max_n for n in CFG.gradient_n_docs)


def test_stored_fixed_points_and_ranks_match_theory(df):
    from grdr.sim.docids import trie_from_codes
    from grdr.sim.logprobs import random_seq_gr_log_probs

    fp = df[df["family"] == "fixed_point"]
    assert set(fp["model"]) == set(CFG.models)
    r = fp[fp["model"] == "dr_local_popularity"].iloc[0]
    point = {k: r[k] for k in ("n_docs", "target_zipf", "popularity_zipf", "seed", "hard_pool", "num_negatives")}
    point = {k: int(v) if k in ("n_docs", "seed", "hard_pool", "num_negatives") else v for k, v in point.items()}
    p_N = np.arange(1, point["n_docs"] + 1) ** -r["target_zipf"]
    p_N /= p_N.sum()
    with jax.enable_x64(True):
        target_N = np.asarray(pmi_target(p_N, tc.proposal("dr_local_popularity", point)), np.float64)
    assert r["pmi_kl"] == pytest.approx(float(p_N @ (np.log(p_N) - target_N)), rel=1e-9)
    # hits kept: plain sampling's fixed point is the PMI target, every logQ rule's own is log p* (KL 0)
    kept = fp[(fp["sampling"] == "keep") & (fp["closed_form"] > 0)]
    assert len(kept) and (kept.loc[kept["correction"] == "logq", "kl"].abs() < 1e-12).all()
    plain = kept[kept["correction"] == "none"]
    np.testing.assert_allclose(plain["kl"], plain["pmi_kl"], rtol=1e-9, atol=1e-12)
    assert fp.loc[fp["model"] == "dr_local_uniform", "pmi_kl"].abs().max() < 1e-12   # uniform q: PMI = p*
    trie = df[df["family"] == "rank_trie"]
    for _, r in trie.iterrows():
        vocab, depth, hidden = int(r["tree_vocab"]), int(r["tree_depth"]), int(r["hidden"])
        docids = trie_from_codes("random", np.array(list(itertools.product(range(vocab), repeat=depth))), vocab)
        b_P = docids.children_per_node()
        assert r["bound_nodes"] == trie_rank_bound(b_P, hidden, True)
        assert r["bound_sharp"] == trie_rank_bound(b_P, hidden, True,
                                                   leaf_children_per_node=np.where(docids.depth_P == depth - 1, b_P, 0))
    with jax.enable_x64(True):   # the measured matrices are SeqGR's log-probabilities: each row sums to 1
        log_p_MxN, _, _ = random_seq_gr_log_probs(4, 2, 1, 2 * 16, 0)
    assert log_p_MxN.shape == (32, 16) and np.allclose(np.logaddexp.reduce(log_p_MxN, axis=1), 0.0, atol=1e-12)
    measured = trie[trie["measured_rank"].notna()]
    assert len(measured) == len(CFG.tree_vocabs) * len(CFG.measured_hiddens)
    assert (measured["measured_rank"] <= measured["bound_sharp"]).all()   # a bound, never exceeded
    atomic = measured[measured["tree"] == "atomic"]   # DR's rank H + 1, + 1 for the output bias
    assert len(atomic) and (atomic["measured_rank"] == atomic["hidden"] + 2).all()
    floor = df[df["family"] == "rank_floor"]
    for rank, g in floor.groupby("latent_rank"):
        g = g.set_index("dim")["floor_rel"]
        assert g[rank] < 1e-9 < 1e-4 < g[rank - 1]   # the knee at D = R


def test_figures_and_report_read_records_only(out, df, monkeypatch, tmp_path):
    from grdr import theory
    from grdr.experiments.report import write_report
    from grdr.experiments.theory_curves import measure
    from grdr.figures import render_all
    from grdr.theory import two_level

    def refuse(*args, **kwargs):
        raise AssertionError("a figure or the report recomputed a theory quantity")

    for name in ("normalizer_deficit", "gradient_bias", "confuser_coverage", "population_fixed_point",
                 "pmi_target", "eckart_young_floor", "trie_rank_bound", "numerical_rank"):
        monkeypatch.setattr(theory, name, refuse)
    for name in ("exact_deficit", "exact_gradient_bias", "closed_forms", "delta_relative_error", "delta_boundary"):
        monkeypatch.setattr(theory, name, refuse)
        monkeypatch.setattr(two_level, name, refuse)
    for name in ("measure_point", "run_group"):
        monkeypatch.setattr(tc, name, refuse)
        monkeypatch.setattr(measure, name, refuse)
    paths = render_all(out, only=FIGURES)
    assert sorted(p.stem for p in paths) == sorted(FIGURES)
    assert all(p.stat().st_size > 10_000 for p in paths)
    text = tc.report(df)
    for needle in ("docs/design.md, section 1", "-log((N-1)/K)", "delta method", "figures/theory_deficit.png",
                   "figures/critical_n.png", "| share m of the mass on the confuser |"):
        assert needle in text
    report = write_report(out).read_text()
    assert "## theory_curves" in report and "![theory_rank](figures/theory_rank.png)" in report


def test_a_rerun_recomputes_nothing(out):
    summary = run_experiment(tc, CFG, out, progress=False)
    assert summary["ran"] == 0 and summary["skipped"] == len(list(tc.sweep(CFG)))


def test_sign_rank_bounds_are_left_to_critical_n():
    # Item 5 of the theory figures is critical_n's figure; its bounds come from theory.sign_rank_bounds.
    import inspect

    from grdr.figures import critical_n

    assert "dim_upper" in inspect.getsource(critical_n.plot) and "weller_cubic" in inspect.getsource(critical_n.plot)
    assert sign_rank_bounds(np.eye(3, dtype=int)).sign_rank_upper == 3
