"""model_scale end to end at the smoke preset: record schema, parameter counts that grow with the
tower, DR's floor (a theorem), the fitted-law table, the figure and the report."""
import json

import numpy as np
import pytest

from grdr.experiments import model_scale
from grdr.experiments.sweep import store
from grdr.experiments.sweep.runner import run_experiment
from grdr.figures import model_scale as scale_figure

CFG = model_scale.PRESETS["smoke"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    run_experiment(model_scale, CFG, out, progress=False)
    return out


@pytest.fixture(scope="module")
def df(out):
    return store.load(out, "model_scale")


def test_one_record_per_run_with_the_contract_fields(out, df):
    assert len(df) == len(CFG.widths) * len(CFG.depths) * len(CFG.models) * len(CFG.seeds)
    rec = json.loads(next((out / "model_scale").glob("*.json")).read_text())
    assert {"experiment", "run_id", "config", "metrics", "seconds", "versions"} <= set(rec)
    for field in ("model", "objective", "n_docs", "dim", "hidden", "width", "depth", "params", "seed"):
        assert field in rec["config"], field
    for metric in ("Success@1", "kl_true", "rowshift_sq_err", "reference_kl", "reference_kl_se"):
        assert metric in rec["metrics"], metric


def test_each_corpus_has_its_floor_measured_once_and_every_record_reads_it(df):
    """One record per seed (the carrier's) holds the corpus's floors; with_corpus_measures gives them to
    every record of that seed, and the records that measured nothing say so (floor_restarts 0)."""
    width, depth, model = model_scale.carrier(CFG)
    carries = (df["width"] == width) & (df["depth"] == depth) & (df["model"] == model)
    assert (df.loc[carries, "floor_restarts"] == CFG.floor_restarts).all()
    assert (df.loc[~carries, "floor_restarts"] == 0).all() and (df.loc[~carries, "floor_max_iter"] == 0).all()
    for metric in model_scale.FLOOR_METRICS:
        assert df.loc[carries, metric].notna().all() and df.loc[~carries, metric].isna().all(), metric
    assert sorted(df.loc[carries, "seed"]) == sorted(CFG.seeds)  # one carrier per seed
    full = model_scale.with_corpus_measures(df)
    for metric in model_scale.FLOOR_METRICS:
        assert full[metric].notna().all(), metric
        assert (full.groupby("seed")[metric].nunique() == 1).all(), metric  # each seed its own corpus's value
    assert model_scale.with_corpus_measures(full).equals(full)  # idempotent


def test_verdicts_are_the_same_whether_every_record_or_one_per_seed_holds_the_floor(df):
    """The earlier layout (every record with its corpus's floor) and the carrier's give the same findings,
    report and oracle tables: the report reads every seed's floor wherever it is stored."""
    full = model_scale.with_corpus_measures(df)
    assert repr(model_scale.findings(full)) == repr(model_scale.findings(df))  # repr: NaN fields compare equal
    assert model_scale.report(full) == model_scale.report(df)
    floor = [f for f in model_scale.findings(df) if "free rank" in f.claim]
    assert floor and all(f.verdict.n == len(CFG.seeds) for f in floor)  # every seed's floor was read


def test_dr_keeps_its_dimension_while_parameters_grow(df):
    dr = df[df["model"] == "dr_global"]
    assert (dr["dim"] == CFG.model.dim).all()
    for model, sub in df.groupby("model"):
        by_width = sub.groupby("width")["params"].first().sort_index()
        assert np.all(np.diff(by_width.to_numpy()) > 0), model  # x = parameters grows with the width


def test_dr_error_is_never_below_its_rank_d_floor(df):
    df = model_scale.with_corpus_measures(df)
    dr = df[df["model"] == "dr_global"]
    assert (dr["dr_floor"] > 0).all()  # D < R, so the floor is not vacuous
    assert (dr["rowshift_sq_err"] >= dr["dr_floor"] * (1 - 1e-5)).all()


def test_fits_table_has_one_law_per_model_with_intervals():
    # A planted law (not the experiment's output): the table must recover it per model.
    params = np.repeat([1e3, 3e3, 1e4, 3e4, 1e5], 2).astype(float)
    rows = []
    for model, alpha in (("dr_global", 0.3), ("seq_gr", 0.8)):
        rows += [{"model": model, "params": x, "kl_true": 4.0 * (x / 1e3) ** -alpha + 0.2} for x in params]
    import pandas as pd

    table = model_scale.fits(pd.DataFrame(rows), bootstrap=50).set_index("model")
    assert list(table.index) == ["dr_global", "seq_gr"]
    assert table.loc["dr_global", "alpha"] == pytest.approx(0.3, abs=1e-4)
    assert table.loc["seq_gr", "alpha"] == pytest.approx(0.8, abs=1e-4)
    assert table.loc["seq_gr", "c"] == pytest.approx(0.2, abs=1e-4)
    for col in ("a", "c", "alpha_low", "alpha_high", "c_low", "c_high", "r2"):
        assert col in table.columns


def test_dr_kl_floor_lies_below_every_dr_run_and_above_zero(df):
    # free rank-D factors fitted to the test queries are at least as good as any trained DR at D
    df = model_scale.with_corpus_measures(df)
    dr = df[df["model"] == "dr_global"]
    assert (dr["dr_kl_floor"] > 0).all()
    assert (dr["kl_true"] >= dr["dr_kl_floor"] - 1e-6).all()
    # and the record says how the floor was reached: its starts, the spread of the best two
    assert (dr["dr_kl_floor_restarts"] == 4).all() and (dr["dr_kl_floor_spread"] >= 0).all()
    assert ((dr["dr_kl_floor_converged"] >= 0) & (dr["dr_kl_floor_converged"] <= 4)).all()


def test_rerun_skips_finished_runs(out):
    assert run_experiment(model_scale, CFG, out, progress=False)["ran"] == 0


def test_figure_and_report(df, tmp_path):
    fig = scale_figure.plot(df)
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    path = tmp_path / "model_scale.png"
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 10_000
    text = model_scale.report(df)
    assert "Fitted laws" in text and "Eckart-Young floor" in text and "**" in text and "KL floor at rank" in text
    # the KL floor is an optimised value and says how it was reached; it is never called a lower bound
    assert "starts in all" in text and "upper estimate" in text and "lower bound" not in text


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="model.dim"):
        model_scale.Config(model=model_scale.ModelConfig(dim=32))
    with pytest.raises(ValueError, match="model.hidden=7 is set by --widths"):
        model_scale.Config(model=model_scale.ModelConfig(dim=2, hidden=7))
    with pytest.raises(ValueError, match="models"):
        model_scale.Config(models=("dr_local_uniform",))


def test_crossing_widths_read_oracle_and_trained_curves():
    """Planted curves: the oracle falls to the floor between widths 4 and 8 (log-interpolated), trained SeqGR
    meets trained DR exactly at width 16, and a seed that never crosses gets the last width, marked '>'."""
    import math

    import pandas as pd

    from grdr.experiments.model_scale import crossing_widths

    rows = []
    for seed, drop in ((0, 1.0), (1, 0.0)):
        for width in (8, 16, 32):
            for model, kl in (("dr_global", 0.5), ("seq_gr", 0.5 * (16 / width) if drop else 0.9)):
                rows.append({"seed": seed, "width": width, "model": model, "kl_true": kl, "dr_kl_floor": 0.2,
                             "gr_oracle_kl_w4": 0.4, "gr_oracle_kl_w8": 0.1})
    got = crossing_widths(pd.DataFrame(rows))
    assert got.loc[0, "trained"] == pytest.approx(16.0) and got.loc[0, "trained_mark"] == ""
    assert (got.loc[1, "trained"], got.loc[1, "trained_mark"]) == (32.0, ">")  # never crosses: beyond the last width
    # oracle: 0.4 at 4, 0.1 at 8 -> 0.2 at 4 x 2^(2/3)
    assert got.loc[0, "oracle"] == pytest.approx(4 * 2 ** (2 / 3)) and got.loc[0, "oracle_mark"] == ""


def test_a_curve_below_from_the_first_width_is_censored_not_a_crossing_there():
    """SeqGR below DR at every width run: the crossing lies at or before the first width ("<= 8"), and the
    summary keeps such seeds in their place among the order statistics instead of reading them as 8."""
    import pandas as pd

    from grdr.experiments.model_scale import crossing_widths
    from grdr.experiments.verdict.seeds import crossing_summary

    rows = []
    for seed in range(6):
        for width in (8, 16, 32):
            below = seed < 4  # seeds 0-3 below from the first width; 4 crosses at 16; 5 never does
            seq = 0.1 if below else (0.5 * 16 / width if seed == 4 else 0.9)
            rows += [{"seed": seed, "width": width, "model": "dr_global", "kl_true": 0.5},
                     {"seed": seed, "width": width, "model": "seq_gr", "kl_true": seq}]
    got = crossing_widths(pd.DataFrame(rows))
    assert list(got["trained_mark"]) == ["<="] * 4 + ["", ">"]
    text = crossing_summary(got["trained"], got["trained_mark"])
    assert text.startswith("median <= 8 over the 6 seeds that ran it (1 cross between two widths, 4 are below")
    assert "1 stay above through the last" in text
    assert crossing_summary([float("nan")] * 3, [""] * 3) == "not run"
    # the oracles run on some seeds only: NaN there is "not run", not "no crossing"
    assert crossing_summary([5.0, 6.0, float("nan")], ["", "", ""]).startswith("median 5.48 over the 2 seeds")


def _records(out, name):
    return {r["run_id"]: r for r in (json.loads(p.read_text()) for p in (out / name).glob("*.json"))}


def _assert_same_records(padded, plain):
    assert padded.keys() == plain.keys()  # the same points, the same run_ids
    for rid, rec in plain.items():
        ours = padded[rid]
        assert ours["config"] == rec["config"]  # `params` included: the model's own count
        for metric, value in rec["metrics"].items():
            assert ours["metrics"][metric] == pytest.approx(value, rel=1e-4, abs=1e-5, nan_ok=True), (rid, metric)
        assert ours["train"]["final_loss"] == pytest.approx(rec["train"]["final_loss"], rel=1e-4, abs=1e-5)


def test_widths_trained_inside_a_shared_padded_width_give_the_unpadded_records(tmp_path, monkeypatch):
    """The runner trains DR's and AtomicGR's widths 4 and 8 inside width 8 (sim.widths): every record,
    metric and parameter count equals the one trained at its own width (float tolerance)."""
    import dataclasses

    from grdr.experiments.sweep.runner import groups

    cfg = dataclasses.replace(CFG, widths=(4, 8), models=("dr_global", "atomic_gr"), oracle_widths=(),
                              floor_restarts=1, floor_max_iter=1_000)
    padded = {model_scale.padded_model(cfg, g).hidden for g in groups(model_scale, cfg)}
    assert padded == {8}
    run_experiment(model_scale, cfg, tmp_path / "padded", progress=False)
    monkeypatch.delattr(model_scale, "padded_model")  # the runner then trains every width as it is
    run_experiment(model_scale, cfg, tmp_path / "plain", progress=False)
    _assert_same_records(_records(tmp_path / "padded", "model_scale"), _records(tmp_path / "plain", "model_scale"))


def test_the_oracle_seeds_train_with_the_others_and_keep_their_run_ids():
    """The oracles' seeds are a field of their records, not of their group: one group (one vmap) per
    width and model, and each point's record is the one it had when the oracles split the groups."""
    from grdr.experiments.points import Point
    from grdr.experiments.sweep.runner import groups

    cfg = model_scale.PRESETS["quick"]
    found = groups(model_scale, cfg)
    assert len(found) == len(cfg.widths) * len(cfg.depths) * len(cfg.models)
    assert all([pt.seed for pt in g] == list(cfg.seeds) for g in found)
    with_oracles = 0
    for pt in (pt for g in found for pt in g):
        old = Point(pt.model, pt.corpus, pt.model_cfg, pt.train, pt.docids, pt.seed,
                    (pt.extra[0], *pt.seed_extra, *pt.extra[1:]))  # the earlier layout: everything in `extra`
        assert store.run_id("model_scale", pt.record()) == store.run_id("model_scale", old.record())
        with_oracles += bool(pt.record()["oracle_widths"])
    assert with_oracles == cfg.oracle_seeds  # on the carrier's points only (one per corpus)


@pytest.mark.parametrize("preset", sorted(model_scale.PRESETS))
@pytest.mark.parametrize("max_group_seeds", [0, 1, 2])
def test_each_corpus_is_measured_by_one_point_in_one_group_however_seeds_are_grouped(preset, max_group_seeds):
    """Whatever the grouping (one seed per task in the paper preset), each seed's corpus has exactly one
    point with its floor, the oracles only on such points of the first oracle_seeds seeds, and no group
    measures a corpus twice: computed once per corpus by any executor."""
    import dataclasses

    from grdr.experiments.sweep.runner import groups

    cfg = dataclasses.replace(model_scale.PRESETS[preset], max_group_seeds=max_group_seeds)
    found = groups(model_scale, cfg)
    floors: dict = {}
    for g in found:
        specs = [pt.corpus_spec() for pt in g if pt.record()["floor_restarts"]]
        assert len(specs) == len(set(specs))
        for pt in g:
            r = pt.record()
            if r["floor_restarts"]:
                floors[pt.corpus_spec()] = floors.get(pt.corpus_spec(), 0) + 1
                assert (r["floor_restarts"], r["floor_max_iter"]) == (cfg.floor_restarts, cfg.floor_max_iter)
            assert bool(r["oracle_widths"]) == (r["floor_restarts"] > 0 and pt.seed in cfg.seeds[:cfg.oracle_seeds]
                                                and bool(cfg.oracle_widths))
    assert sorted(floors.values()) == [1] * len(cfg.seeds)
    assert len(floors) == len({pt.corpus_spec() for g in found for pt in g})
