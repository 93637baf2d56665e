"""Documents padded past their own bucket (sim.train.train's and evaluate_model's pad_docs, feature_reference's):
the results equal those at N's own bucket up to float rounding, and two N of different buckets padded to
one share its programs."""
import numpy as np
import pytest
from flax import nnx

from grdr import sim
from grdr.sim.buckets import bucket
from grdr.sim.ceilings import feature_reference
from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.curves import curve_data, curve_evaluator
from grdr.sim.evaluate import evaluate_model
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig, TrainData, compile_count, model_at, train

N, PAD = 40, 200  # buckets 48 and 256


def _corpus(n, seed=0):
    return make_corpus(CorpusSpec(n_docs=n, n_train_queries=300, n_test_queries=24, latent_rank=3, feature_dim=6,
                                  train_top_k=8, seed=seed))


@pytest.fixture(scope="module")
def corpora():
    return [_corpus(N, 0), _corpus(N, 1)]


COSINE = dict(steps=6, steps_per_call=4, schedule="cosine", heldout=40)
CASES = {  # drift_corpus's variants, and the samplers whose constants are indexed by document
    "dr-tower-global": (ModelConfig(kind="dr", dim=4, hidden=8), TrainConfig(objective="global", **COSINE)),
    "dr-tower-local-uniform": (ModelConfig(kind="dr", dim=4, hidden=8),
                               TrainConfig(objective="local", num_negatives=6, **COSINE)),
    "dr-table-global": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table"),
                        TrainConfig(objective="global", **COSINE)),
    "dr-table-local-popularity-logq": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True),
                                       TrainConfig(objective="local", sampler="popularity", logq=True,
                                                   num_negatives=6, **COSINE)),
    "dr-tower-local-hard-denoised": (ModelConfig(kind="dr", dim=4, hidden=8),
                                     TrainConfig(objective="local", sampler="hard_denoised", num_negatives=6,
                                                 hard_pool=8, hard_refresh=3, **COSINE)),
    "atomic-global": (ModelConfig(kind="atomic_gr", hidden=8), TrainConfig(objective="global", **COSINE)),
}


def _run(model_cfg, cfg, corpora, pad_docs):
    datas = [TrainData.from_corpus(c) for c in corpora]
    curve = curve_evaluator(model_cfg.kind, curve_data(corpora))
    result = train(model_cfg, cfg, datas, [3, 4], curve=curve, pad_docs=pad_docs)
    metrics = [evaluate_model(model_at(result, i), c, k=10, pad_docs=pad_docs) for i, c in enumerate(corpora)]
    return result, metrics


@pytest.mark.parametrize("name", list(CASES))
def test_training_and_evaluation_padded_to_a_larger_bucket_equal_their_own(name, corpora):
    """Losses, held-out NLL, learning curve, every parameter (N rows) and every metric agree with N's own
    bucket up to float rounding."""
    model_cfg, cfg = CASES[name]
    own, own_metrics = _run(model_cfg, cfg, corpora, None)
    wide, wide_metrics = _run(model_cfg, cfg, corpora, PAD)
    np.testing.assert_allclose(wide.losses_SxT, own.losses_SxT, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(wide.heldout_SxT, own.heldout_SxT, rtol=2e-4, atol=1e-5)
    for key in ("kl", "success1"):
        np.testing.assert_allclose(wide.curve[key], own.curve[key], rtol=2e-4, atol=1e-5)
    if own.pool_false_negatives_S is not None:
        np.testing.assert_allclose(wide.pool_false_negatives_S, own.pool_false_negatives_S)
    for i in range(2):
        a = dict(nnx.to_flat_state(nnx.state(model_at(wide, i), nnx.Param)))
        b = dict(nnx.to_flat_state(nnx.state(model_at(own, i), nnx.Param)))
        for path in b:
            assert a[path][...].shape == b[path][...].shape, path
            if path[:2] == ("doc_tower", "out") and path[-1] == "bias" and cfg.objective == "global":
                continue  # zero true gradient: Adam scales float noise (as in test_buckets)
            np.testing.assert_allclose(a[path][...], b[path][...], rtol=2e-3, atol=2e-5, err_msg=str(path))
        for metric, value in own_metrics[i].items():
            assert wide_metrics[i][metric] == pytest.approx(value, rel=1e-4, abs=1e-5), metric


def test_two_buckets_padded_to_one_share_the_training_and_evaluation_programs():
    """N = 40 and N = 100 (buckets 48 and 128) padded to 256: one training, one evaluation program."""
    model_cfg = ModelConfig(kind="dr", dim=3, hidden=10, doc_side="table")  # no other test's shapes
    cfg = TrainConfig(objective="global", steps=5, steps_per_call=4, batch_size=16)
    before, evals = compile_count(), sim.evaluate._dense_eval._cache_size()
    for n in (40, 100):
        corpus = _corpus(n)
        result = train(model_cfg, cfg, TrainData.from_corpus(corpus), [0, 1], pad_docs=PAD)
        assert model_at(result, 0).doc_embed.shape == (n, 3)
        evaluate_model(model_at(result, 0), corpus, k=10, pad_docs=PAD)
    assert compile_count() - before == 1
    assert sim.evaluate._dense_eval._cache_size() - evals == 1


def test_padding_below_the_own_bucket_changes_nothing():
    assert sim.train.padded_docs(N, pad_docs=10) == bucket(N) == sim.train.padded_docs(N)
    assert sim.train.padded_docs(N, pad_docs=PAD) == bucket(PAD)


def test_references_padded_equal_their_own(corpora):
    """feature_reference with its chunks padded to a larger bucket: the same estimates and errors."""
    own = feature_reference(corpora[0], samples=64, groups=8)
    wide = feature_reference(corpora[0], samples=64, groups=8, pad_docs=PAD)
    assert wide.keys() == own.keys()
    for key, value in own.items():
        assert wide[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
