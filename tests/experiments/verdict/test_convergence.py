"""Level claims are decided only where the models they compare had converged: planted records with flat
learning curves (converged) and still-falling ones (not), read by capacity_dim, negatives and similarity
as drift_corpus and model_scale read theirs, and records whose curve is too short for the check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grdr.experiments import capacity_dim, negatives, similarity
from grdr.experiments.verdict.findings import level_verdict, unconverged
from grdr.experiments.verdict.stats import effect_verdict
from grdr.sim.curves import converged_from_curve

STEPS = [0, 5, 10, 15, 20]
FLAT = [5.0, 1.0, 0.62, 0.61, 0.60]      # the last doubling lowered the KL by 0.02 <= 5% of 0.60
FALLING = [5.0, 3.0, 2.0, 1.5, 1.00]     # still 0.5 per doubling
SEEDS = range(12)


def _curve(shape):
    """The record fields of a learning curve, its `converged` read by sim.curves as the pipeline does."""
    steps = STEPS[:len(shape)]
    return {"curve_step": list(map(float, steps)), "curve_kl": list(shape),
            "converged": converged_from_curve(steps, shape)}


def test_the_planted_curves_read_as_intended():
    assert _curve(FLAT)["converged"] == 1.0 and _curve(FALLING)["converged"] == 0.0
    assert np.isnan(_curve(FLAT[:2])["converged"])  # 2 checkpoints: no reading


def _capacity(curve_of, seq_kl: float = 0.5) -> pd.DataFrame:
    """DR (free table) at D = 2 well above D = 4, SeqGR at H = 2 well below DR at D = 2 (or above it, seq_kl =
    1.5): every seed agrees."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in SEEDS:
        for model, dim, kl in (("dr_table_global", 2, 1.0), ("dr_table_global", 4, 0.3), ("seq_gr", 2, seq_kl),
                               ("seq_gr", 4, 0.4)):
            rows.append(dict(model=model, kind="dr" if model.startswith("dr") else "seq_gr", dim=dim, seed=seed,
                             corpus_latent_rank=3, corpus_zipf=0.0, doc_bias=False,
                             kl_true=kl + 0.01 * rng.standard_normal(), rowshift_sq_err=1.0, ey_floor=0.5,
                             **curve_of(model, dim)))
    return pd.DataFrame(rows)


def _by_claim(found):
    return {f.claim.rsplit(" (", 1)[0]: f.verdict for f in found}


def test_capacity_dim_decides_its_level_claims_only_for_converged_models():
    converged = _by_claim(capacity_dim.findings(_capacity(lambda m, d: _curve(FLAT))))
    assert converged["DR table, global: KL at D = 2 above KL at D = 4"].word == "held"
    assert converged["SeqGR at H = 2 below DR (free table) at D = 2 in KL"].word == "held"

    # SeqGR still falling at H = 2 and above DR: more steps could change that, so it is not testable; DR's own
    # claim is still decided
    falling = lambda m, d: _curve(FALLING if m == "seq_gr" else FLAT)   # noqa: E731
    found = _by_claim(capacity_dim.findings(_capacity(falling, seq_kl=1.5)))
    seq = found["SeqGR at H = 2 below DR (free table) at D = 2 in KL"]
    assert seq.word == "not testable here" and "had not converged" in seq.why and "GR sequential at H = 2" in seq.why
    assert seq.n == 12 and not seq.family
    # below DR while still falling: if it keeps falling the gap only widens, so the verdict stands and says so
    below = _by_claim(capacity_dim.findings(_capacity(falling)))["SeqGR at H = 2 below DR (free table) at D = 2 in KL"]
    assert below.word == "held" and "GR sequential at H = 2 was still falling" in below.why
    assert found["DR table, global: KL at D = 2 above KL at D = 4"].word == "held"
    # the theorem is exact, whatever the curves
    assert found["No run fits log p* below the Eckart-Young floor at its rank"].word == "held"


def test_a_curve_too_short_for_the_check_makes_a_level_claim_not_testable():
    """The old smoke presets recorded 2 checkpoints: `converged` is NaN there, and a level claim must say
    so instead of counting such a record as converged."""
    found = _by_claim(capacity_dim.findings(_capacity(lambda m, d: _curve(FLAT[:2]))))
    for claim in ("DR table, global: KL at D = 2 above KL at D = 4",
                  "SeqGR at H = 2 below DR (free table) at D = 2 in KL"):
        v = found[claim]
        assert v.word == "not testable here" and "too short" in v.why and "2 checkpoint(s)" in v.why


def test_records_without_a_curve_count_as_converged_as_still_falling_reads_them():
    part = pd.DataFrame({"seed": [0, 1], "converged": [np.nan, np.nan]})
    assert unconverged({"a": part}) == "" and unconverged({"a": part.drop(columns="converged")}) == ""
    v = effect_verdict(np.ones(12))
    assert level_verdict(v, {"a": part}) is v


def test_unconverged_follows_the_majority_of_seeds_like_still_falling():
    one_in_three = pd.DataFrame({"converged": [0.0, 1.0, 1.0], "curve_step": [STEPS] * 3})
    two_in_three = pd.DataFrame({"converged": [0.0, 0.0, 1.0], "curve_step": [STEPS] * 3})
    assert unconverged({"a": one_in_three}) == ""
    assert unconverged({"a": two_in_three}) == "had not converged: a (2 of 3 seeds still falling)"


def _negatives(curve_of) -> pd.DataFrame:
    """Popularity sampling on a Zipf corpus: logQ lowers the KL by 0.2 and the PMI slope by 0.8 on every seed."""
    rng = np.random.default_rng(1)
    rows = []
    for seed in SEEDS:
        for logq in (False, True):
            rows.append(dict(model="dr_local_popularity" + ("_logq" if logq else ""), sampler="popularity",
                             logq=logq, corpus_zipf=1.1, n_docs=60, seed=seed,
                             kl_true=(0.5 if logq else 0.7) + 0.01 * rng.standard_normal(),
                             pmi_slope=(0.05 if logq else 0.95) + 0.01 * rng.standard_normal(),
                             deficit_approx=0.1, deficit_mc=0.1 + 0.001 * rng.standard_normal(), **curve_of(logq)))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("logq_curve, word", [(FLAT, "held"), (FALLING, "not testable here"),
                                               (FLAT[:2], "not testable here")])
def test_negatives_level_claims_and_the_fixed_point_slope_need_converged_runs(logq_curve, word):
    df = _negatives(lambda logq: _curve(logq_curve if logq else FLAT))
    kl_claim, slope_claim = negatives.findings(df)
    assert slope_claim.verdict.word == word
    # the KL claim names logQ's runs as the lower: still falling (but not too short to read), they leave it held
    assert kl_claim.verdict.word == ("held" if logq_curve is FALLING else word)
    if word != "held":
        assert all("popularity + logQ" in f.verdict.why for f in (kl_claim, slope_claim))
    rows = {p.quantity.split(" (")[0] + (" + logQ" if "logQ" in p.quantity else ""): p
            for p in negatives.predictions(df)}
    assert rows["PMI slope of the trained DR"].verdict.word == "held"          # the plain runs had converged
    assert rows["PMI slope of the trained DR + logQ"].verdict.word == word
    # the deficit's closed form against Monte Carlo is read at the model's own scores: no convergence needed
    assert rows["normaliser deficit E log Z_S - log Z at the model's scores + logQ"].verdict.word == "held"


def _similarity(curve_of) -> pd.DataFrame:
    """D = 2 < R = 4: the rank-1 bilinear scorer above rank 2, and AtomicGR below the dot product, on every seed."""
    rng = np.random.default_rng(2)
    rows = []
    for seed in SEEDS:
        for model, kind, scorer, extra, kl in (("dr_global", "dr", "dot", {}, 0.6),
                                               ("dr_global", "dr", "lowrank", {"scorer_rank": 1}, 0.9),
                                               ("dr_global", "dr", "lowrank", {"scorer_rank": 2}, 0.6),
                                               ("atomic_gr", "atomic_gr", np.nan, {}, 0.3)):
            rows.append(dict(model=model, kind=kind, scorer=scorer, dim=2, corpus_latent_rank=4, seed=seed,
                             kl_true=kl + 0.01 * rng.standard_normal(), rowshift_sq_err=1.0, ey_floor=0.5,
                             scorer_rank=extra.get("scorer_rank", np.nan), **curve_of(model, scorer)))
    return pd.DataFrame(rows)


def test_similarity_decides_a_comparison_only_where_both_designs_had_converged():
    converged = [f for f in similarity.findings(_similarity(lambda m, s: _curve(FLAT))) if "KL" in f.claim]
    assert converged and all(f.verdict.word == "held" for f in converged)
    found = similarity.findings(_similarity(lambda m, s: _curve(FALLING if m == "atomic_gr" else FLAT)))
    gr = [f for f in found if "matched parameters" in f.claim]
    assert len(gr) == 1 and gr[0].verdict.word == "not testable here" and "had not converged" in gr[0].verdict.why
    floor = [f for f in found if f.claim.startswith("The floor binds")]
    assert len(floor) == 1 and floor[0].verdict.word == "held"
