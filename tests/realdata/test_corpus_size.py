"""Nested corpora: nested, holding every judged document, seeded, independent of file order."""
import random
from pathlib import Path

import pytest

from grdr import realdata
from grdr.realdata import nested_corpora, read_collection, scan_doc_ids

FIXTURES = Path(realdata.__file__).parent / "fixtures"
SIZES = [60, 100, 200, 285]


@pytest.fixture(scope="module")
def msmarco():
    return read_collection("msmarco", FIXTURES / "msmarco")


def test_nested_sized_and_holding_judged_docs(msmarco):
    corpora = nested_corpora(msmarco, SIZES, seed=0)
    judged = msmarco.judged_doc_ids()
    assert [len(c) for c in corpora] == SIZES
    for small, large in zip(corpora, corpora[1:]):
        assert set(small) < set(large)
    for corpus in corpora:
        assert judged <= set(corpus)
        assert len(set(corpus)) == len(corpus)
        position = {d: i for i, d in enumerate(msmarco.doc_ids)}
        assert [position[d] for d in corpus] == sorted(position[d] for d in corpus)
    assert set(corpora[-1]) == set(msmarco.doc_ids)


def test_sizes_in_any_order_give_the_same_subsets(msmarco):
    forward = nested_corpora(msmarco, SIZES, seed=3)
    backward = nested_corpora(msmarco, SIZES[::-1], seed=3)
    assert forward == backward[::-1]


def test_seed_fixes_the_distractors(msmarco):
    a = nested_corpora(msmarco, [100], seed=1)[0]
    assert nested_corpora(msmarco, [100], seed=1)[0] == a
    assert nested_corpora(msmarco, [100], seed=2)[0] != a


def test_shuffled_collection_gives_the_same_members(msmarco):
    order = list(range(msmarco.n_docs))
    random.Random(0).shuffle(order)
    shuffled = [msmarco.doc_ids[i] for i in order]
    for a, b in zip(nested_corpora(msmarco, SIZES, seed=5),
                    nested_corpora(msmarco, SIZES, seed=5, pool=shuffled)):
        assert set(a) == set(b)


def test_distractors_are_spread_over_the_collection(msmarco):
    # Each non-judged document is equally likely to enter: over many seeds, the count of seeds
    # that pick a given distractor is Binomial(S, p); the average over documents is S p.
    judged = msmarco.judged_doc_ids()
    n_free = msmarco.n_docs - len(judged)
    size, seeds = 100, 200
    p = (size - len(judged)) / n_free
    hits = dict.fromkeys(set(msmarco.doc_ids) - judged, 0)
    for seed in range(seeds):
        for d in nested_corpora(msmarco, [size], seed=seed)[0]:
            if d not in judged:
                hits[d] += 1
    counts = list(hits.values())
    assert abs(sum(counts) / n_free - seeds * p) < 1e-9  # exact: each corpus has size - J
    # no document is systematically favoured: max count within 5 sd of the binomial mean
    sd = (seeds * p * (1 - p)) ** 0.5
    assert max(counts) < seeds * p + 5 * sd and min(counts) > seeds * p - 5 * sd


def test_streaming_pool_for_a_collection_read_without_texts(msmarco):
    head = read_collection("msmarco", FIXTURES / "msmarco", doc_filter=frozenset())
    pool = scan_doc_ids("msmarco", FIXTURES / "msmarco")
    streamed = nested_corpora(head, SIZES, seed=0, pool=pool)
    assert streamed == nested_corpora(msmarco, SIZES, seed=0)
    part = read_collection("msmarco", FIXTURES / "msmarco", doc_filter=set(streamed[1]))
    assert part.doc_ids == streamed[1]
    assert msmarco.subset(streamed[1]).doc_texts == part.doc_texts


def test_errors(msmarco):
    n_judged = len(msmarco.judged_doc_ids())
    with pytest.raises(ValueError, match=f"sizes: {n_judged - 1} is below the {n_judged} "
                       "documents judged"):
        nested_corpora(msmarco, [n_judged - 1, 100], seed=0)
    with pytest.raises(ValueError, match="sizes: 286 is above the 285 documents"):
        nested_corpora(msmarco, [100, 286], seed=0)
    with pytest.raises(ValueError, match="distinct"):
        nested_corpora(msmarco, [100, 100], seed=0)
    with pytest.raises(ValueError, match="distinct"):
        nested_corpora(msmarco, [], seed=0)
    judged = sorted(msmarco.judged_doc_ids())
    with pytest.raises(ValueError, match="pool: lacks 1 judged documents"):
        nested_corpora(msmarco, [100], seed=0,
                       pool=[d for d in msmarco.doc_ids if d != judged[0]])
    with pytest.raises(ValueError, match="appears twice"):
        nested_corpora(msmarco, [100], seed=0, pool=list(msmarco.doc_ids) + [judged[0]])
    with pytest.raises(ValueError, match="appears twice"):
        nested_corpora(msmarco, [285], seed=0, pool=list(msmarco.doc_ids) * 2)
