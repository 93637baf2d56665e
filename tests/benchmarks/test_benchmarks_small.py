"""The torch-vs-grdr benchmark compares like with like: on the same initial weights, batches and
negatives, eager PyTorch (written in the test's benchmark module as a researcher would) and grdr's
compiled training step give the same losses for the first steps, updates included."""
import numpy as np
import pytest

pytest.importorskip("torch")

from grdr.benchmarks.train_step import MODELS, atomic_gr_flops, compare_losses  # noqa: E402


@pytest.mark.parametrize("model", MODELS)
def test_grdr_step_matches_eager_torch(model):
    ours, theirs, _ = compare_losses(model, batch=8, negatives=4, dim=8, n_docs=50, steps=3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert len(set(np.round(ours, 4))) == 3  # the parameters moved between steps: the updates agree too


def test_atomic_gr_flops_counts_three_matmuls_of_the_output_layer():
    # 2BNH forward, 2BNH to the queries, 2BNH to the table; tower F->H->H likewise three matmuls each.
    assert atomic_gr_flops(batch=2, n_docs=10, hidden=3, feature_dim=5) == 6 * 2 * (10 * 3 + 5 * 3 + 3 * 3)
