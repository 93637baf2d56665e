"""The truncated scorer: the dot product over the first `keep` coordinates, from its own section."""
import jax.numpy as jnp
import numpy as np
import pytest

from grdr.sim.models import ModelConfig, make_model, scorer_fields
from grdr.sim.scorers import make_scorer


def test_it_scores_the_first_keep_coordinates_only():
    cfg = ModelConfig(kind="dr", dim=4, hidden=8, depth=1, temperature=0.5, **scorer_fields("truncated", keep=2))
    model = make_model(cfg, n_docs=6, feature_dim=3, seed=0)
    rng = np.random.default_rng(0)
    qf, df = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    f, g = np.asarray(model.query_tower(qf), np.float64), np.asarray(model.doc_tower(df), np.float64)
    emb, _ = model.doc_table(None, df)
    got = np.asarray(model.scorer.scores(model.encode_queries(qf), emb))
    np.testing.assert_allclose(got, f[:, :2] @ g[:, :2].T / 0.5, rtol=1e-5)
    assert not np.allclose(got, f @ g.T / 0.5, rtol=1e-2)  # the last two coordinates count for nothing


def test_its_setting_is_its_section_and_its_record():
    cfg = ModelConfig(dim=4, **scorer_fields("truncated", keep=3))
    assert cfg.truncated.keep == 3 and make_scorer(cfg).record_fields() == {"scorer": "truncated", "keep": 3}
    with pytest.raises(ValueError, match=r"Truncated\.keep=0: expected at least 1"):
        scorer_fields("truncated", keep=0)
