"""sim.scorers: every scorer's exact top-k (chunked) against a float64 brute force from its definition,
MaxSim against a direct loop, parameter counts against hand-counted shapes, and both objectives
against float64 references."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import grdr.sim.scorers as scorers
from grdr.sim.models import ModelConfig, count_params, make_model, scorer_fields
from grdr.sim.scorers import SCORERS, make_scorer, maxsim_log_prob_rank
from grdr.sim.train import TrainConfig, _loss_fn

D, T = 4, 0.5
SETTINGS = {"lowrank": {"rank": 2}, "maxsim": {"vectors": 3, "doc_vectors": 2}}  # beyond the defaults
CFGS = {name: ModelConfig(dim=D, temperature=T, **scorer_fields(name, **SETTINGS.get(name, {}))) for name in SCORERS}


def _random_params(scorer, rng):
    """The scorer's parameters, redrawn at random (not at their near-identity initialisation)."""
    return {k: jnp.asarray(rng.normal(size=v.shape), jnp.float32) for k, v in scorer.init(jax.random.key(0)).items()}


def _reference_scores(name, scorer, params, f, g):
    """s(q, d) in float64 from each scorer's definition: f (M x out_q), g (N x out_d)."""
    f, g = np.asarray(f, np.float64), np.asarray(g, np.float64)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    if name == "dot":
        return f @ g.T / T
    if name == "cosine":
        return (f / np.linalg.norm(f, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T / T
    if name == "bilinear":
        return f @ p["score_w"] @ g.T / T
    if name == "lowrank":
        return f @ p["score_u"] @ p["score_v"].T @ g.T / T
    if name != "maxsim":  # any other dot-form scorer: its representations, met in float64 (its own test checks them)
        assert scorer.dot_form, f"scorer {name!r} is not dot-form: write its definition out here"
        q = np.asarray(scorer.queries(params, jnp.asarray(f, jnp.float32)), np.float64)
        return q @ np.asarray(scorer.docs(params, jnp.asarray(g, jnp.float32)), np.float64).T
    fq = f.reshape(len(f), scorer.vectors, D)
    gd = g.reshape(len(g), scorer.doc_vectors, D)
    out = np.zeros((len(f), len(g)))
    for a in range(len(f)):  # the direct loop: sum over query vectors of the max over document vectors
        for b in range(len(g)):
            out[a, b] = sum(max(fq[a, i] @ gd[b, j] for j in range(scorer.doc_vectors))
                            for i in range(scorer.vectors)) / T
    return out


def test_every_scorer_builds_itself_once_per_configuration():
    for name, cfg in CFGS.items():
        scorer = make_scorer(cfg)
        assert type(scorer) is SCORERS[name] and scorer.name == name
        assert make_scorer(cfg) is scorer  # the model, the trainers and the record share one object
        assert (scorer.dim, scorer.temperature) == (D, T)


@pytest.mark.parametrize("name", list(CFGS))
@pytest.mark.parametrize("chunk", [3, 16, 20, 48, 500])  # below k, whole blocks, rounded down, capped at N
def test_topk_matches_a_float64_brute_force_in_chunks(name, chunk):
    rng = np.random.default_rng(1)
    scorer = make_scorer(CFGS[name])
    M, N, k = 7, 101, 5  # N not a multiple of either chunk, both smaller than N
    f = jnp.asarray(rng.normal(size=(M, scorer.query_out)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(N, scorer.doc_out)), jnp.float32)
    bias = jnp.asarray(rng.normal(size=N), jnp.float32)
    params = _random_params(scorer, rng)
    q, d = scorer.queries(params, f), scorer.docs(params, g)
    vals, idx = scorer.topk(q, d, k, bias, chunk_size=chunk)
    ref = _reference_scores(name, scorer, params, f, g) + np.asarray(bias, np.float64)[None, :]
    ref_idx = np.argsort(-ref, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(np.asarray(idx), ref_idx)
    np.testing.assert_allclose(np.asarray(vals), np.take_along_axis(ref, ref_idx, axis=1), rtol=1e-4, atol=1e-4)
    # scores against all documents and against gathered candidates agree with the definition
    np.testing.assert_allclose(np.asarray(scorer.scores(q, d)), ref - np.asarray(bias)[None, :], rtol=1e-4, atol=1e-4)
    cand_MxK = rng.integers(0, N, size=(M, 6))
    got = scorer.gathered(q, d[jnp.asarray(cand_MxK)])
    np.testing.assert_allclose(np.asarray(got), np.take_along_axis(ref - np.asarray(bias)[None, :], cand_MxK, axis=1),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk", [5, 16, 40])
def test_maxsim_topk_breaks_ties_by_the_lower_index_across_chunks_and_the_tail(chunk):
    scorer = make_scorer(CFGS["maxsim"])
    q = jnp.ones((3, scorer.vectors, scorer.dim), jnp.float32)
    d = jnp.ones((53, scorer.doc_vectors, scorer.dim), jnp.float32)  # every document scores the same
    _, idx = scorer.topk(q, d, 5, jnp.zeros(53, jnp.float32).at[51].set(1.0), chunk_size=chunk)
    assert np.asarray(idx).tolist() == [[51, 0, 1, 2, 3]] * 3  # the tail's best first, then lowest indices


def test_maxsim_scores_in_document_chunks_match_the_direct_loop(monkeypatch):
    monkeypatch.setattr(scorers, "_MAXSIM_BUDGET", 1)  # chunks of 16 documents: the lax.map path
    rng = np.random.default_rng(2)
    scorer = make_scorer(CFGS["maxsim"])
    f = rng.normal(size=(5, scorer.query_out)).astype(np.float32)
    g = rng.normal(size=(37, scorer.doc_out)).astype(np.float32)
    assert scorer._chunk(5) == 16
    got = scorer.scores(scorer.queries({}, jnp.asarray(f)), scorer.docs({}, jnp.asarray(g)))
    np.testing.assert_allclose(np.asarray(got), _reference_scores("maxsim", scorer, {}, f, g), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CFGS))
@pytest.mark.parametrize("doc_side", ["tower", "table"])
def test_parameter_counts_match_hand_counted_shapes(name, doc_side):
    F, H, N = 6, 8, 11
    cfg = dataclasses.replace(CFGS[name], hidden=H, depth=1, doc_side=doc_side, doc_bias=True)
    m = cfg.maxsim.vectors if name == "maxsim" else 1
    m2 = cfg.maxsim.doc_vectors if name == "maxsim" else 1

    def mlp(out):  # one hidden layer F -> H, then H -> out, with biases
        return F * H + H + H * out + out

    doc = N * m2 * D if doc_side == "table" else mlp(m2 * D)
    own = {"bilinear": D * D, "lowrank": 2 * D * cfg.lowrank.rank}.get(name, 0)  # hand-counted: W; U and V
    assert make_scorer(cfg).num_params() == own
    assert count_params(make_model(cfg, n_docs=N, feature_dim=F)) == mlp(m * D) + doc + N + own


def test_dot_product_model_is_unchanged_by_the_scorer_interface():
    """The dot product draws no extra parameters, so its initialisation (and every record) is as before."""
    model = make_model(ModelConfig(dim=D, hidden=8, depth=1), n_docs=5, feature_dim=3, seed=0)
    assert not hasattr(model, "score_params")
    x = jnp.ones((2, 3))
    np.testing.assert_allclose(np.asarray(model.encode_queries(x)), np.asarray(model.query_tower(x) / 0.1), rtol=1e-6)


@pytest.mark.parametrize("name", list(CFGS))
def test_global_and_sampled_losses_match_a_float64_reference(name, monkeypatch):
    from grdr.sim.samplers import Sampler

    rng = np.random.default_rng(3)
    F, N, B, K = 5, 13, 6, 4
    cfg = dataclasses.replace(CFGS[name], hidden=8, depth=1, doc_bias=True)
    model = make_model(cfg, n_docs=N, feature_dim=F, seed=4)
    model.bias[...] = jnp.asarray(rng.normal(size=N), jnp.float32)
    graphdef, params = nnx.split(model, nnx.Param)
    qf = jnp.asarray(rng.normal(size=(B, F)), jnp.float32)
    df = jnp.asarray(rng.normal(size=(N, F)), jnp.float32)
    pos = jnp.asarray(rng.integers(0, N, size=B))
    neg = rng.integers(0, N, size=(B, K))
    neg[0, 0] = int(pos[0])  # an accidental hit of the positive: kept by default, masked on request

    scorer = model.scorer
    own = {k: v[...] for k, v in getattr(model, "score_params", {}).items()}
    s = _reference_scores(name, scorer, own, model.query_tower(qf), model.doc_tower(df))
    s = s + np.asarray(model.bias[...], np.float64)[None, :]
    p = np.asarray(pos)
    ref_global = np.mean(np.logaddexp.reduce(s, axis=1) - s[np.arange(B), p])
    batch, consts = {"query_features": qf, "pos": pos}, {"doc_features": df}
    got = _loss_fn(graphdef, params, batch, jax.random.key(0), consts, TrainConfig(objective="global"), "dr")
    np.testing.assert_allclose(float(got), ref_global, rtol=1e-5, atol=1e-5)

    monkeypatch.setattr(Sampler, "draw", lambda self, *a, **kw: jnp.asarray(neg))
    for hits in ("keep", "mask"):
        logits = [np.concatenate([[s[b, p[b]]], [s[b, n] for n in neg[b] if hits == "keep" or n != p[b]]])
                  for b in range(B)]
        ref_local = np.mean([np.logaddexp.reduce(row) - row[0] for row in logits])
        got = _loss_fn(graphdef, params, batch, jax.random.key(0), consts,
                       TrainConfig(objective="local", num_negatives=K, accidental_hits=hits), "dr")
        np.testing.assert_allclose(float(got), ref_local, rtol=1e-5, atol=1e-5)


def test_maxsim_log_prob_rank_is_d_for_one_vector_and_exceeds_it_with_more():
    assert maxsim_log_prob_rank(1, 1, 3, 40, 30) == 3  # the dot product: rank D up to row shifts
    assert maxsim_log_prob_rank(2, 2, 3, 40, 30) > 3 + 1  # MaxSim is not capped by D
    assert maxsim_log_prob_rank(4, 4, 2, 60, 12) == 11  # full row-centred rank N - 1 at small N


def test_config_rejects_bad_scorers():
    with pytest.raises(ValueError, match="scorer"):
        ModelConfig(scorer="nope")
    with pytest.raises(ValueError, match=r"LowRank\.rank=0: expected r >= 1"):
        ModelConfig(**scorer_fields("lowrank", rank=0))
    with pytest.raises(ValueError, match=r"MaxSim\.vectors=0: expected m >= 1"):
        ModelConfig(**scorer_fields("maxsim", vectors=0))
    with pytest.raises(ValueError, match=r"MaxSim\.doc_vectors=-1"):
        ModelConfig(**scorer_fields("maxsim", vectors=2, doc_vectors=-1))
    with pytest.raises(ValueError, match="no settings"):
        scorer_fields("cosine", rank=2)
    # a section that the chosen scorer does not read would be ignored: refused, naming it
    with pytest.raises(ValueError, match=r"ModelConfig\.maxsim\.vectors=3: a setting of the maxsim scorer, but the "
                                         r"scorer is 'lowrank'"):
        ModelConfig(scorer="lowrank", maxsim=scorer_fields("maxsim", vectors=3)["maxsim"])


@pytest.mark.parametrize("name", [n for n in SCORERS if SCORERS[n].settings_class() is not None])
def test_a_scorer_with_settings_builds_from_its_own_section(name):
    """Each field a scorer declares beyond dim and temperature is its section's, with its default and its
    documentation, and reaches the scorer that the configuration builds; the other scorers' sections stay
    at their defaults."""
    cls = SCORERS[name]
    section = cls.settings_class()
    own = [f.name for f in cls.own_fields()]
    assert [f.name for f in dataclasses.fields(section)] == own and own
    assert all(name in section.__doc__ and f"    {f}: " in section.__doc__ for f in own)
    cfg = CFGS[name]
    assert {f: getattr(make_scorer(cfg), f) for f in own} == {f: getattr(getattr(cfg, name), f) for f in own}
    for f in own:  # each setting, moved by one, reaches the scorer and its record
        moved = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **{f: getattr(getattr(
            cfg, name), f) + 1})})
        assert getattr(make_scorer(moved), f) == getattr(getattr(cfg, name), f) + 1
        assert make_scorer(moved).record_fields() != make_scorer(cfg).record_fields()
    others = [n for n in SCORERS if n != name and SCORERS[n].settings_class() is not None]
    assert all(getattr(cfg, n) == SCORERS[n].settings_class()() for n in others)


def test_maxsim_with_no_document_vectors_given_takes_as_many_as_query_vectors():
    scorer = make_scorer(ModelConfig(dim=D, **scorer_fields("maxsim", vectors=3)))
    assert (scorer.vectors, scorer.doc_vectors) == (3, 3)
    assert scorer.record_fields() == {"scorer": "maxsim", "vectors": 3, "doc_vectors": 3}
