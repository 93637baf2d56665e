"""sim.host_init: models initialised on the host equal JAX's eager initialisation bit for bit."""
import jax
import numpy as np
import pytest
from flax import nnx

import grdr.sim.host_init
from grdr import sim
from grdr.sim.docids import random_tree_docids
from grdr.sim.host_init import bucketed_draw
from grdr.sim.models import ModelConfig, make_model, scorer_fields

CONFIGS = [
    ModelConfig(kind="dr", dim=16, hidden=32, depth=1),
    ModelConfig(kind="dr", dim=5, hidden=24, depth=2, doc_side="table", doc_bias=True),
    ModelConfig(kind="atomic_gr", hidden=24),
    ModelConfig(kind="seq_gr", hidden=6, decoder_depth=2),
    ModelConfig(kind="dr", dim=6, hidden=10, scorer="bilinear"),
    ModelConfig(kind="dr", dim=6, hidden=10, **scorer_fields("lowrank", rank=3)),
    ModelConfig(kind="dr", dim=3, hidden=10, **scorer_fields("maxsim", vectors=2), doc_side="table"),
    ModelConfig(kind="dr", dim=7, hidden=10, scorer="cosine"),
]


def _flat(model):
    return {path: np.asarray(x[...]) for path, x in nnx.to_flat_state(nnx.state(model, nnx.Param))}


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.kind}-{c.doc_side}-{c.scorer}")
def test_host_initialisation_is_jax_s_bit_for_bit(cfg, monkeypatch):
    docids = random_tree_docids(37, 4)
    for seed in (0, 3):
        host = _flat(make_model(cfg, n_docs=37, feature_dim=9, docids=docids, seed=seed))
        with monkeypatch.context() as m:
            m.setattr(sim.host_init, "host_init", lambda key=None: False)  # every helper's plain JAX expression
            plain = _flat(make_model(cfg, n_docs=37, feature_dim=9, docids=docids, seed=seed))
        assert host.keys() == plain.keys()
        for path in plain:
            assert host[path].dtype == plain[path].dtype, path
            np.testing.assert_array_equal(host[path], plain[path], err_msg=str(path))


def test_a_draw_at_a_bucketed_length_is_the_draw_at_its_shape():
    for shape in ((1,), (7, 3), (32, 64), (3, 5, 6)):
        for draw in (jax.random.normal, lambda k, s: jax.random.truncated_normal(k, -2, 2, s)):
            np.testing.assert_array_equal(bucketed_draw(draw, jax.random.key(5), shape),
                                          np.asarray(draw(jax.random.key(5), shape)))


def test_linear_is_flax_s_default_linear():
    from grdr.sim.host_init import linear

    for d_in, d_out, seed in ((9, 24, 0), (64, 5, 7), (1, 1, 2)):
        ours, flax_s = linear(d_in, d_out, nnx.Rngs(params=seed)), nnx.Linear(d_in, d_out, rngs=nnx.Rngs(params=seed))
        np.testing.assert_array_equal(ours.kernel[...], flax_s.kernel[...])
        np.testing.assert_array_equal(ours.bias[...], flax_s.bias[...])
