"""Fixtures shared by the padding tests (widths, document buckets)."""
import pytest

from grdr.sim.corpus import CorpusSpec, make_corpus


@pytest.fixture(scope="session")
def small_corpus():
    """40 documents, 300 training queries with 8-document supports: small enough to train in a second."""
    return make_corpus(CorpusSpec(n_docs=40, n_train_queries=300, n_test_queries=24, latent_rank=3,
                                  feature_dim=6, train_top_k=8))
