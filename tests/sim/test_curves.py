"""Learning curves: checkpoints, the curve's last point equal to the final evaluation, and the convergence
rule read off a curve."""
import math

import numpy as np
import pytest

from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.curves import checkpoint_targets, converged_from_curve, curve_data, curve_evaluator
from grdr.sim.docids import make_docids
from grdr.sim.evaluate import evaluate_model
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig, TrainData, model_at, train


@pytest.fixture(scope="module")
def corpora():
    return [make_corpus(CorpusSpec(n_docs=40, n_train_queries=400, n_test_queries=30, latent_rank=3,
                                   feature_dim=6, seed=s)) for s in (1, 2)]


def test_checkpoints_are_log_spaced_and_end_at_the_last_step():
    t = checkpoint_targets(2000, 100)
    assert t[0] == 100 and t[-1] == 2000 and len(t) >= 8
    ratios = t[1:] / t[:-1]
    assert np.allclose(ratios, ratios[0], rtol=0.05)
    assert checkpoint_targets(50, 100).tolist() == [50]


@pytest.mark.parametrize("kind", ["dr", "atomic_gr", "seq_gr"])
def test_the_curves_last_point_is_the_final_evaluation(corpora, kind):
    """Per seed (each its own corpus, vmapped): the curve starts at step 0, ends at the last step, and its
    last KL and Success@1 equal evaluate_model's on the same (all) test queries."""
    docids = [make_docids("random", 40, vocab=4, seed=0)] * 2 if kind == "seq_gr" else [None, None]
    cfg = TrainConfig(objective="mle" if kind == "seq_gr" else "global", steps=60, steps_per_call=10, batch_size=16)
    model_cfg = ModelConfig(kind=kind, dim=4, hidden=8, depth=1)
    data = [TrainData.from_corpus(c, d) for c, d in zip(corpora, docids)]
    result = train(model_cfg, cfg, data, [0, 1], curve=curve_evaluator(kind, curve_data(corpora), docids))
    curve = result.curve
    assert curve["step"][0] == 0 and curve["step"][-1] == 60 and len(curve["step"]) >= 5
    for i, corpus in enumerate(corpora):
        final = evaluate_model(model_at(result, i), corpus, docids=docids[i], k=10)
        assert curve["kl"][i, -1] == pytest.approx(final["kl_true"], rel=1e-4, abs=1e-5)
        assert curve["success1"][i, -1] == pytest.approx(final["Success@1"], abs=1e-6)   # float32 mean
        assert curve["kl"][i, 0] > curve["kl"][i, -1]   # training lowered it


def test_convergence_reads_the_last_doubling_of_the_steps():
    steps = [0, 100, 200, 400, 800]
    assert converged_from_curve(steps, [5.0, 1.0, 0.6, 0.52, 0.50]) == 1.0      # 0.02 <= 0.05 x 0.50
    assert converged_from_curve(steps, [5.0, 1.0, 0.8, 0.7, 0.60]) == 0.0      # still 0.1 per doubling
    assert converged_from_curve(steps, [5.0, 1.0, 0.8, 0.4, 0.41]) == 1.0      # rising: no further fall
    assert math.isnan(converged_from_curve([0, 100], [1.0, 0.5]))
