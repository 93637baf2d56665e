import numpy as np
import pytest

from grdr.sim.docids import atomic_docids, make_docids, random_tree_docids, semantic_docids, trie_from_codes


def walk(d, doc):
    node = 0
    for t in range(d.length):
        assert d.prefix_NxL[doc, t] == node
        node = d.next_PxV[node, d.codes_NxL[doc, t]]
    return node


@pytest.mark.parametrize("make", [
    lambda: atomic_docids(17),
    lambda: random_tree_docids(100, 4, seed=3),
    lambda: semantic_docids(np.random.default_rng(0).standard_normal((250, 6)), 5),
])
def test_trie_walk_reaches_every_document_exactly_once(make):
    d = make()
    leaves = [walk(d, i) for i in range(d.n_docs)]
    assert sorted(leaves) == list(range(d.n_docs))
    assert len({tuple(c) for c in d.codes_NxL}) == d.n_docs
    assert np.all(d.children_per_node() >= 1) and np.all(d.children_per_node() <= d.vocab)


def test_random_tree_is_balanced():
    d = random_tree_docids(64, 4)
    assert d.length == 3 and np.all(d.children_per_node() == 4)


def test_semantic_ids_are_balanced_and_group_similar_documents():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 8)) * 10
    x = np.repeat(centres, 25, axis=0) + rng.standard_normal((100, 8))
    d = semantic_docids(x, 4)
    assert d.length == 4  # 4^3 < 100 <= 4^4
    # the four well separated groups of 25 fall under distinct first-level prefixes
    first = d.codes_NxL[:, 0].reshape(4, 25)
    assert all(len(set(row)) == 1 for row in first) and len(set(first[:, 0])) == 4


def test_duplicate_codes_are_rejected():
    with pytest.raises(ValueError, match="not unique"):
        trie_from_codes("x", np.array([[0, 1], [0, 1]]), 2)


def test_unknown_kind():
    with pytest.raises(ValueError, match="docid kind"):
        make_docids("hashed", 10)
