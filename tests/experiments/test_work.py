"""The dry run's work models (experiments.work): critical_n's replayed searches, theory_curves' computations,
real_scaling's collections and model_scale's floors and oracles get estimates that grow with what the
presets ask for (steps, N, seeds, iterations), and the replayed search is the search itself."""
import dataclasses

import pytest

from grdr.experiments import capacity_dim, critical_n, model_scale, real_scaling, theory_curves
from grdr.experiments.cost import describe, sweep_seconds
from grdr.experiments.limit_search import critical_from, next_n, weller_cubic
from grdr.experiments.sweep.runner import groups
from grdr.experiments.calibration import GPU
from grdr.experiments.work import WORK_CALIBRATION, critical_n_gpu_seconds, probes


def _total(module, cfg) -> float:
    est = sweep_seconds(module.NAME, groups(module, cfg), cfg=cfg)
    assert len(est["groups"]) == len(groups(module, cfg))  # every group is estimated
    return sum(est["local"])


def _increasing(module, base, field_values, strict=True):
    totals = [_total(module, dataclasses.replace(base, **values)) for values in field_values]
    for a, b in zip(totals, totals[1:]):
        assert b > a if strict else b >= a, (field_values, totals)
    return totals


@pytest.mark.parametrize("n0, critical, n_max, below, above", [(10, 20, 256, 4, 5), (30, 12, 256, 0, 0),
                                                                (5, 300, 64, 2, 1), (7, 7, 100, 4, 5)])
def test_the_replayed_search_probes_what_the_search_probes(n0, critical, n_max, below, above):
    """Driving the search's own next_n with outcomes 'solved iff n <= critical' probes the same n, in order."""
    outcomes, order = {}, []
    while (n := next_n(outcomes, n0, n_max, 2, below, above)) is not None:
        order.append(n)
        outcomes[n] = n <= critical
    assert probes(n0, n_max, critical, below, above) == order
    assert critical_from(outcomes, n0, n_max, 2, below, above) == min(critical, n_max)


def test_critical_n_grows_with_steps_dimensions_seeds_and_reach():
    base = dataclasses.replace(critical_n.PRESETS["quick"], dims=(4, 8), gr_dims=(2,), maxsim_dims=(2,))
    typical = max(dict(WORK_CALIBRATION.steps)[kind] for kind in ("dr", "seq_gr", "maxsim"))
    _increasing(critical_n, base, [{"max_steps": int(typical * f)} for f in (0.1, 0.3, 0.9)])
    assert _total(critical_n, dataclasses.replace(base, max_steps=int(typical * 2))) == pytest.approx(
        _total(critical_n, dataclasses.replace(base, max_steps=int(typical * 4))))  # past what a probe takes
    _increasing(critical_n, base, [{"dims": (4,)}, {"dims": (4, 8)}, {"dims": (4, 8, 16)}])
    _increasing(critical_n, base, [{"dims": (4,)}, {"dims": (8,)}, {"dims": (16,)}])  # a larger d probes larger n
    _increasing(critical_n, base, [{"seeds": (0,)}, {"seeds": (0, 1)}, {"seeds": (0, 1, 2)}])
    _increasing(critical_n, base, [{"sweep_below": 0, "sweep_above": 0}, {"sweep_below": 4, "sweep_above": 5}])


def test_a_probe_on_the_gpu_costs_its_steps_latency_at_least_and_compiles_each_program_once():
    cfg = dataclasses.replace(critical_n.PRESETS["quick"], dims=(4, 16), gr_dims=(3,), maxsim_dims=(2,))
    gpu, steps = GPU(), dict(WORK_CALIBRATION.steps)
    for g in groups(critical_n, cfg):
        r = g[0].record()
        expected = max(3.0, float(weller_cubic(r["dim"]))) if r["kind"] == "dr" else float(r["n0"])
        n_probes = len(probes(r["n0"], r["n_max"], expected, r["sweep_below"], r["sweep_above"]))
        compiled: set = set()
        first = critical_n_gpu_seconds(cfg, g, compiled, gpu)
        again = critical_n_gpu_seconds(cfg, g, compiled, gpu)  # the same programs: no compile this time
        assert again >= len(g) * n_probes * steps[r["kind"]] * gpu.latency
        assert first - again >= gpu.compile_seconds - 1e-9 and again < first
    # a larger d probes a larger n, whose steps do more work
    small, large = (sum(critical_n_gpu_seconds(c, g, set(), gpu) for g in groups(critical_n, c))
                    for c in (dataclasses.replace(cfg, dims=(4,), models=("dr_global",)),
                              dataclasses.replace(cfg, dims=(32,), models=("dr_global",))))
    assert large > small


def test_theory_curves_grows_with_samples_sizes_iterations_and_seeds():
    base = theory_curves.PRESETS["smoke"]
    _increasing(theory_curves, base, [{"mc_samples": 256}, {"mc_samples": 4_096}, {"mc_samples": 65_536}])
    _increasing(theory_curves, base, [{"fp_max_iter": 50}, {"fp_max_iter": 500}])
    _increasing(theory_curves, base, [{"fp_n_docs": (20,)}, {"fp_n_docs": (200,)}, {"fp_n_docs": (2_000,)}])
    _increasing(theory_curves, base, [{"rank_queries": 32}, {"rank_queries": 256}])
    _increasing(theory_curves, base, [{"seeds": (0,)}, {"seeds": (0, 1)}])


def test_real_scaling_grows_with_steps_sizes_and_seeds():
    base = real_scaling.PRESETS["smoke"]
    _increasing(real_scaling, base, [{"train": dataclasses.replace(base.train, steps=t)} for t in (20, 200, 2_000)])
    _increasing(real_scaling, base, [{"sizes": (100,)}, {"sizes": (100, 200)}, {"sizes": (100, 200, 285)}])
    _increasing(real_scaling, base, [{"seeds": (0,)}, {"seeds": (0, 1)}, {"seeds": (0, 1, 2)}])
    _increasing(real_scaling, base, [{"dims": (8,)}, {"dims": (8, 32)}])


def test_model_scale_counts_its_floors_and_oracles():
    base = model_scale.PRESETS["quick"]
    _increasing(model_scale, base, [{"floor_restarts": 1}, {"floor_restarts": 2}, {"floor_restarts": 4}])
    _increasing(model_scale, base, [{"floor_max_iter": 1_000}, {"floor_max_iter": 2_000}])
    _increasing(model_scale, base, [{"oracle_seeds": 0}, {"oracle_seeds": 1}, {"oracle_seeds": 3}])
    _increasing(model_scale, base, [{"oracle_widths": ()}, {"oracle_widths": (2, 4)}, {"oracle_widths": (2, 4, 16)}])
    corpus = base.corpus
    _increasing(model_scale, base, [{"corpus": dataclasses.replace(corpus, n_test_queries=m)} for m in (100, 200, 400)])


def test_the_dry_run_gives_every_experiment_a_total():
    for module in (critical_n, theory_curves, real_scaling, model_scale, capacity_dim):
        text = describe(module, module.PRESETS["smoke"])
        assert "estimated total: ~" in text and "the longest task" in text, module.NAME


def test_a_floor_costs_its_iterations_times_a_fixed_and_two_size_terms_on_its_carrier_only():
    """Closed form: restarts x cap iterations, each floor_iter / 1e3 + floor_cells M N / 1e9 + floor_work M N D
    / 1e9 seconds, on a record with floor_restarts > 0; nothing on the others."""
    from grdr.experiments.work import measure_features

    cal = WORK_CALIBRATION
    rec = {"corpus_n_test_queries": 500, "n_docs": 3_000, "floor_restarts": 4, "floor_max_iter": 20_000,
           "oracle_widths": []}
    got = sum(v * cal[k] for k, v in measure_features([rec], 8, cal).items())
    per_iter = (cal["model_scale.floor_iter"] / 1e3 + cal["model_scale.floor_cells"] * 500 * 3_000 / 1e9
                + cal["model_scale.floor_work"] * 500 * 3_000 * 8 / 1e9)
    assert got == pytest.approx(80_000 * per_iter)
    assert measure_features([{**rec, "floor_restarts": 0, "floor_max_iter": 0}], 8, cal) == {}
    two = measure_features([rec, rec], 8, cal)  # two carriers (two corpora): twice the work
    assert two == pytest.approx({k: 2 * v for k, v in measure_features([rec], 8, cal).items()})


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_the_measures_are_counted_once_per_corpus_however_the_seeds_are_grouped(preset):
    """Each seed's floor (and oracles) once: the measures' seconds summed over the groups do not depend on
    max_group_seeds, and equal one floor per seed plus one set of oracles per oracle seed."""
    from grdr.experiments.work import measure_features, point_measures

    base = model_scale.PRESETS[preset]
    totals = []
    for cap in (0, 1, 3):
        cfg = dataclasses.replace(base, max_group_seeds=cap)
        totals.append(sum(point_measures("model_scale", g) for g in groups(model_scale, cfg)))
    assert totals == pytest.approx([totals[0]] * 3)
    one = next(pt for g in groups(model_scale, base) for pt in g if pt.record()["oracle_widths"]).record()
    cost = {k: sum(v * WORK_CALIBRATION[k] for k, v in measure_features([r], base.model.dim).items())
            for k, r in (("floor", {**one, "oracle_widths": []}), ("oracles", {**one, "floor_restarts": 0}))}
    assert totals[0] == pytest.approx(len(base.seeds) * cost["floor"] + base.oracle_seeds * cost["oracles"])
