"""critical_n: the search finds a planted threshold with a fake oracle; the smoke preset runs end
to end, resumes without retraining, and its records respect what is a theorem."""
import math

import pytest

from experiments import critical_n, store
from experiments.runner import run_experiment


def _search(threshold, n0, n_max):
    outcomes = {}
    while (n := critical_n.next_n(outcomes, n0, n_max)) is not None:
        assert n not in outcomes, "the search probed the same n twice"
        outcomes[n] = n <= threshold
    return critical_n.critical_from(outcomes), len(outcomes)


@pytest.mark.parametrize("n0", [3, 5, 12, 40])
@pytest.mark.parametrize("n_max", [7, 64, 1000])
def test_search_finds_a_planted_threshold(n0, n_max):
    for threshold in [2, 3, 4, 5, 9, 17, 31, 63, 64, 65, 200, 999, 5000]:
        found, probes = _search(threshold, n0, n_max)
        assert found == min(threshold, n_max)
        assert probes <= 2 * math.ceil(math.log2(max(n_max, n0))) + 2


def test_config_names_the_bad_field():
    with pytest.raises(ValueError, match="models"):
        critical_n.Config(models=("dr_local_uniform",))
    with pytest.raises(ValueError, match="n_max"):
        critical_n.Config(n_max=2)


def test_smoke_runs_resumes_and_respects_theorems(tmp_path):
    cfg = critical_n.PRESETS["smoke"]
    first = run_experiment(critical_n, cfg, tmp_path, progress=False)
    assert first["ran"] == len(list(critical_n.sweep(cfg))) == len(cfg.dims) + len(cfg.gr_dims)
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
    for col in ("model", "dim", "n_docs", "seed", "temperature", "optimizer", "learning_rate", "top2_accuracy",
                "margin", "solved", "steps", "forster", "dim_lower", "dim_upper", "params"):
        assert col in probes, col
    assert set(crit["model"]) == set(cfg.models)
    assert len(crit) == len(cfg.dims) + len(cfg.gr_dims)
    assert ((probes["solved"] > 0) == (probes["margin"] > 0)).all()
    assert ((probes["solved"] > 0) == (probes["top2_accuracy"] == 1.0)).all()
    for _, r in crit.iterrows():  # each critical record agrees with its own search's probes
        g = probes[(probes["model"] == r["model"]) & (probes["dim"] == r["dim"])]
        outcomes = g.groupby("n_docs")["solved"].max().gt(0).to_dict()
        assert r["critical_n"] == critical_n.critical_from({int(k): v for k, v in outcomes.items()})
    dr = crit[crit["model"] == "dr_global"].set_index("dim")["critical_n"]
    # Theorems: unit vectors in 1-D are +-1 (n = 3 always ties), and on the circle the top-2 of a
    # query are neighbours in angular order (n = 4 has 6 pairs but 4 neighbouring pairs).
    assert dr[1] == 2 and dr[2] <= 3
    dr_probes = probes[probes["kind"] == "dr"]
    assert not ((dr_probes["solved"] > 0) & (dr_probes["dim"] < dr_probes["dim_lower"])).any()

    text = critical_n.report(df)
    assert "critical n" in text and "DR global" in text

    from figures import critical_n as fig_module

    fig = fig_module.plot(df)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()
