"""Shape buckets (sim.buckets): padded documents change no result, and one program serves a bucket.

The unpadded reference is the same code with the ladder replaced by the identity (no padding, every
mask empty), so each test isolates what padding does."""
import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

import grdr.sim.evaluate
import grdr.sim.train
import grdr.sim.train_data
from grdr import sim
from grdr.sim.buckets import bucket
from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.docids import make_docids
from grdr.sim.evaluate import evaluate_model
from grdr.sim.models import ModelConfig, make_model, scorer_fields
from grdr.sim.train import TrainConfig, TrainData, compile_count, model_at, train

N = 40  # the small_corpus fixture's documents (tests/sim/conftest.py), padded to 48


@pytest.fixture(scope="module")
def corpus(small_corpus):
    return small_corpus


@pytest.fixture(scope="module")
def data(corpus):
    return TrainData.from_corpus(corpus, make_docids("semantic", N, vocab=4, features_NxF=corpus.doc_features_NxF))


@pytest.fixture
def unpadded(monkeypatch):
    """Within the test, every size is its own bucket."""
    def use():
        for module in (sim.train, sim.train_data, sim.evaluate):
            monkeypatch.setattr(module, "bucket", lambda n: n)
    return use


def test_the_ladder_holds_n_within_one_and_a_half_times_and_is_monotone():
    sizes = [bucket(n) for n in range(1, 5000)]
    assert all(b >= n for n, b in zip(range(1, 5000), sizes))
    assert all(b <= 1.5 * n for n, b in zip(range(1, 5000), sizes) if n > 8)
    assert sizes == sorted(sizes)
    ladder = sorted(set(sizes))
    assert ladder[:8] == [8, 12, 16, 24, 32, 48, 64, 96] and bucket(N) == 48
    assert all(b % 8 == 0 for b in ladder if b >= 16)


COSINE = dict(steps=6, steps_per_call=4, schedule="cosine", heldout=40)
CASES = {
    "dr-tower-global": (ModelConfig(kind="dr", dim=4, hidden=8), TrainConfig(objective="global", **COSINE)),
    "dr-table-global-bias": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True),
                             TrainConfig(objective="global", **COSINE)),
    "dr-table-local-uniform": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table"),
                               TrainConfig(objective="local", num_negatives=6, logq=True, **COSINE)),
    "dr-tower-local-popularity-logq": (ModelConfig(kind="dr", dim=4, hidden=8),
                                       TrainConfig(objective="local", sampler="popularity", logq=True,
                                                   num_negatives=6, **COSINE)),
    "dr-table-local-hard-denoised": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table"),
                                     TrainConfig(objective="local", sampler="hard_denoised", num_negatives=6,
                                                 hard_pool=8, hard_refresh=3, logq=True, **COSINE)),
    "dr-table-local-mixed": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True),
                             TrainConfig(objective="local", sampler="mixed", num_negatives=6, hard_pool=8,
                                         hard_refresh=3, **COSINE)),
    "dr-maxsim-global": (ModelConfig(kind="dr", dim=2, hidden=8, **scorer_fields("maxsim", vectors=2)),
                         TrainConfig(objective="global", **COSINE)),
    "atomic-global": (ModelConfig(kind="atomic_gr", hidden=8), TrainConfig(objective="global", **COSINE)),
    "atomic-local-popularity": (ModelConfig(kind="atomic_gr", hidden=8),
                                TrainConfig(objective="local", sampler="popularity", num_negatives=6, **COSINE)),
    "seq-gr-mle": (ModelConfig(kind="seq_gr", hidden=8), TrainConfig(objective="mle", **COSINE)),
    "sparse-uniform": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True),
                       TrainConfig(objective="local", num_negatives=6, sparse_table=True, **COSINE)),
    "sparse-popularity-logq": (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table"),
                               TrainConfig(objective="local", sampler="popularity", logq=True, num_negatives=6,
                                           sparse_table=True, optimizer="sgd", learning_rate=0.1, **COSINE)),
}


def _params(result, i):
    return dict(nnx.to_flat_state(nnx.state(model_at(result, i), nnx.Param)))


@pytest.mark.parametrize("name", list(CASES))
def test_training_and_evaluation_padded_equal_unpadded(name, corpus, data, unpadded):
    """Losses, held-out NLL, hard pools, every parameter and every metric agree up to float rounding."""
    model_cfg, cfg = CASES[name]
    datas = [data, data]  # per-seed data: the vmapped data axis is padded too
    padded = train(model_cfg, cfg, datas, [3, 4])
    docids = data.docids if model_cfg.kind == "seq_gr" else None
    padded_metrics = [evaluate_model(model_at(padded, i), corpus, docids=docids, k=10) for i in range(2)]
    unpadded()
    plain = train(model_cfg, cfg, datas, [3, 4])
    plain_metrics = [evaluate_model(model_at(plain, i), corpus, docids=docids, k=10) for i in range(2)]

    np.testing.assert_allclose(padded.losses_SxT, plain.losses_SxT, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(padded.heldout_SxT, plain.heldout_SxT, rtol=2e-4, atol=1e-5)
    if padded.pool_false_negatives_S is not None:
        np.testing.assert_allclose(padded.pool_false_negatives_S, plain.pool_false_negatives_S)
    for i in range(2):
        a, b = _params(padded, i), _params(plain, i)
        assert a.keys() == b.keys()
        for path in a:
            assert a[path][...].shape == b[path][...].shape, path  # the result has N document rows
            # a per-query constant (the doc tower's output bias under a full softmax) has zero true
            # gradient; Adam turns its float noise into full-size steps, so it is not comparable
            if path[:2] == ("doc_tower", "out") and path[-1] == "bias" and cfg.objective == "global":
                continue
            np.testing.assert_allclose(a[path][...], b[path][...], rtol=2e-3, atol=2e-5, err_msg=str(path))
        for metric, value in plain_metrics[i].items():
            assert padded_metrics[i][metric] == pytest.approx(value, rel=1e-4, abs=1e-5), metric


def test_initialisation_is_the_unpadded_one_bit_for_bit(data):
    """Seeds give the models they gave at N rows: the first N rows of a padded table are the N-row draw."""
    for cfg in (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True),
                ModelConfig(kind="atomic_gr", hidden=8)):
        _, params = sim.train._init_params(cfg, [data, data], [3, 4], N, bucket(N))
        for i, seed in enumerate((3, 4)):
            plain = dict(nnx.to_flat_state(nnx.state(make_model(cfg, n_docs=N, feature_dim=6, seed=seed), nnx.Param)))
            for path, x in nnx.to_flat_state(params):
                x = np.asarray(x[...][i])
                if x.shape != plain[path][...].shape:  # a document axis: N real rows, then zeros
                    assert not x[N:].any()
                    x = x[:N]
                np.testing.assert_array_equal(x, plain[path][...], err_msg=str(path))


def test_one_training_and_one_evaluation_program_serve_a_bucket():
    """N = 33 ... 48 share the bucket 48: different N, seeds and step counts (a cosine schedule, a
    last call of another length) compile one training program and one evaluation program in all."""
    model_cfg = ModelConfig(kind="dr", dim=3, hidden=12, doc_side="table", doc_bias=True)  # no other test's
    before, evals = compile_count(), sim.evaluate._dense_eval._cache_size()
    for n, steps, seeds in ((34, 5, [0, 1]), (41, 7, [2, 3]), (48, 9, [5, 6])):
        c = make_corpus(CorpusSpec(n_docs=n, n_train_queries=200, n_test_queries=24, latent_rank=3, feature_dim=6))
        cfg = TrainConfig(objective="global", steps=steps, steps_per_call=4, schedule="cosine", batch_size=16)
        result = train(model_cfg, cfg, TrainData.from_corpus(c), seeds)
        assert model_at(result, 0).doc_embed.shape == (n, 3)
        evaluate_model(model_at(result, 0), c, k=10)
    assert compile_count() - before == 1
    assert sim.evaluate._dense_eval._cache_size() - evals == 1


def test_the_traced_cosine_schedule_is_optax_s():
    import optax

    cfg = TrainConfig(steps=70, learning_rate=0.01, schedule="cosine", final_lr_fraction=0.1)
    ours = jax.jit(lambda count, total: sim.train.learning_rate(cfg, total)(count))
    reference = optax.cosine_decay_schedule(0.01, 70, alpha=0.1)
    for count in (0, 1, 35, 69, 70, 90):
        assert float(ours(np.int32(count), np.int32(70))) == pytest.approx(float(reference(count)), rel=1e-6)
    # the default total is cfg.steps
    assert float(sim.train.learning_rate(dataclasses.replace(cfg, steps=10))(5)) == pytest.approx(0.0055, rel=1e-6)
