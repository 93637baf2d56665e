"""A sweep point's record for every registered sampler and scorer: each is named and labelled by its
own class, and every setting it reads enters the record, so two settings never share a run_id."""
import dataclasses

import pytest

from grdr.experiments import negatives
from grdr.experiments.points import point
from grdr.experiments.sweep.store import run_id
from grdr.experiments.variants import VARIANTS, dr_local, label
from grdr.sim.models import scorer_fields
from grdr.sim.samplers import SAMPLERS
from grdr.sim.scorers import SCORERS

CFG = negatives.PRESETS["smoke"]


def _record(name, cfg=CFG, **model):
    return point(name, cfg, 60, 0, **model).record()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_has_its_dr_variants_labelled_by_the_sampler(name):
    for logq in (False, True):
        v = VARIANTS[dr_local(name, logq)]
        assert (v.kind, v.objective, v.sampler, v.logq) == ("dr", "local", name, logq)
        assert SAMPLERS[name].label in label(v.name)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_pool_size_enters_the_record_exactly_when_the_sampler_reads_a_pool(name):
    small = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, hard_pool=8))
    large = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, hard_pool=16))
    a, b = _record(dr_local(name), small), _record(dr_local(name), large)
    if SAMPLERS[name].needs_pool:
        assert (a["hard_pool"], b["hard_pool"]) == (8, 16)
        assert run_id("x", a) != run_id("x", b)
    else:
        assert "hard_pool" not in a and a == b  # records of proposals without a pool keep their run_ids


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_setting_a_sampler_reads_is_in_its_record(name):
    rec = _record(dr_local(name))
    fields = SAMPLERS[name].record_fields(CFG.train)
    assert {k: rec[k] for k in fields} == fields
    for key in fields:  # change each one: the run_id changes with it
        other = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, **{key: getattr(CFG.train, key) + 1
                                                                                 if key != "denoise_mass" else 0.25}))
        assert run_id("x", _record(dr_local(name), other)) != run_id("x", rec)


SCORER_SETTINGS = {"lowrank": {"rank": 2}, "maxsim": {"vectors": 2}}  # beyond the scorers' defaults


@pytest.mark.parametrize("name", list(SCORERS))
def test_every_scorer_names_itself_in_the_record_and_the_dot_product_not_at_all(name):
    rec = _record("dr_global", **scorer_fields(name, **SCORER_SETTINGS.get(name, {})))
    scorer = SCORERS[name].from_config(point("dr_global", CFG, 60, 0,
                                             **scorer_fields(name, **SCORER_SETTINGS.get(name, {}))).model_cfg)
    if name == "dot":
        assert "scorer" not in rec  # dot-product records keep the run_ids they had before scorers existed
    else:
        assert {k: rec[k] for k in scorer.record_fields()} == scorer.record_fields()
        assert rec["scorer"] == name


def test_early_stopping_enters_the_record_only_where_set_so_the_two_never_share_a_run_id():
    plain = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, heldout=50))
    stopped = dataclasses.replace(CFG, train=dataclasses.replace(plain.train, early_stop=True))
    a, b = _record("dr_global", plain), _record("dr_global", stopped)
    assert "early_stop" not in a and b["early_stop"] is True
    assert run_id("negatives", a) != run_id("negatives", b)
