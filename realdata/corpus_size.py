"""Nested corpora of growing size for corpus-size scaling on real data.

Every corpus holds all documents judged for the evaluation queries, padded with distractors
taken in one fixed seeded order, so a smaller corpus is a subset of every larger one and only
N changes between points. The order ranks each distractor by a keyed hash of its id, so it
does not depend on where the document sits in the file (shuffling the collection leaves every
subset as it was) and a collection of millions is ranked in one streaming pass that holds only
the largest corpus.
"""
from __future__ import annotations

import collections
import hashlib
import heapq
from collections.abc import Iterable, Sequence

from grdr.realdata.collection import Collection


def nested_corpora(collection: Collection, sizes: Sequence[int], seed: int, *,
                   pool: Iterable[str] | None = None) -> tuple[tuple[str, ...], ...]:
    """Document-id subsets, one per size, each a subset of those of larger sizes.

    Args:
      collection: gives the judged documents (its qrels).
      sizes: corpus sizes N, distinct; each at least the number of judged documents and at
        most the number of documents in the pool.
      seed: fixes the distractor order.
      pool: every document id of the collection, e.g. `scan_doc_ids(fmt, path)` when the
        collection was read with a `doc_filter`; None uses `collection.doc_ids`.

    Returns:
      for each size in the order given, that many ids in pool order.

    >>> c = Collection("toy", ("a", "b", "c", "d"), ("",) * 4, ("q",), ("",), {"q": {"c": 1}})
    >>> small, large = nested_corpora(c, [2, 3], seed=0)
    >>> "c" in small and set(small) < set(large)
    True
    """
    sizes = [int(s) for s in sizes]
    if not sizes or len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes: {sizes} must be a non-empty list of distinct sizes")
    judged = collection.judged_doc_ids()
    if min(sizes) < len(judged):
        raise ValueError(f"sizes: {min(sizes)} is below the {len(judged)} documents judged for "
                         f"the evaluation queries of {collection.name}, which every corpus holds")
    key = int(seed).to_bytes(16, "little", signed=True)
    judged_position: dict[str, int] = {}
    n_pool = 0

    def ranked_distractors():
        nonlocal n_pool
        for n_pool, doc_id in enumerate(collection.doc_ids if pool is None else pool, start=1):
            if doc_id in judged:
                if doc_id in judged_position:
                    raise ValueError(f"pool: document id {doc_id!r} appears twice")
                judged_position[doc_id] = n_pool - 1
                continue
            digest = hashlib.blake2b(doc_id.encode("utf-8"), key=key, digest_size=8).digest()
            yield int.from_bytes(digest, "little"), n_pool - 1, doc_id

    stream = ranked_distractors()
    distractors = heapq.nsmallest(max(sizes) - len(judged), stream)
    collections.deque(stream, maxlen=0)  # nsmallest(0, ...) reads nothing; count the pool anyway
    if max(sizes) > n_pool:
        raise ValueError(f"sizes: {max(sizes)} is above the {n_pool} documents of "
                         f"{collection.name}")
    missing = judged.difference(judged_position)
    if missing:
        raise ValueError(f"pool: lacks {len(missing)} judged documents, e.g. "
                         f"{sorted(missing)[0]!r}")
    if len({d for _, _, d in distractors}) != len(distractors):
        raise ValueError("pool: a document id appears twice")
    judged_items = [(pos, d) for d, pos in judged_position.items()]
    corpora = []
    for size in sizes:
        chosen = judged_items + [(pos, d) for _, pos, d in distractors[: size - len(judged)]]
        corpora.append(tuple(d for _, d in sorted(chosen)))
    return tuple(corpora)
