"""The confusers of a query and their coverage by a sample (docs/design.md, section 1, "Optimization
drift"): `confusers` names the documents that hold the model's probability off d+, the ones whose
coverage by a sample decides top-1, and `confuser_coverage` is the chance that K negatives hold at
least one of k of them, exactly and as the theory's K k / N."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.special

__all__ = ["ConfuserCoverage", "confuser_coverage", "confusers"]


@dataclasses.dataclass(frozen=True)
class ConfuserCoverage:
    """P(a sample of K negatives holds at least one of k confusers): exact, and DESIGN's Kk/N."""
    exact: float
    approximation: float


def confuser_coverage(num_docs: int, num_negatives: int, num_confusers: int, *, replace: bool = True
                      ) -> ConfuserCoverage:
    """Probability that K uniform negatives (from the N-1 non-positive documents) hit any of k confusers.

    Args:
      num_docs: N.
      num_negatives: K.
      num_confusers: k, the confusable documents among the N-1 negatives.
      replace: sample with replacement (as everywhere in this module) or without.

    Returns:
      ConfuserCoverage(exact, approximation): exact is 1 - (1 - k/(N-1))^K with replacement,
      1 - C(N-1-k, K) / C(N-1, K) without; approximation is DESIGN's K k / N (uncapped, so it
      shows where it breaks).

    Reference: docs/design.md, section 1 (the gradient on the confusers fades like K/N).

    >>> c = confuser_coverage(10_001, 16, 1)
    >>> round(c.exact, 6), round(c.approximation, 6)
    (0.001599, 0.0016)
    """
    num_docs, num_negatives, num_confusers = int(num_docs), int(num_negatives), int(num_confusers)
    if num_docs < 2:
        raise ValueError(f"num_docs must be >= 2, got {num_docs}")
    if not 0 <= num_confusers <= num_docs - 1:
        raise ValueError(f"num_confusers must be in [0, {num_docs - 1}], got {num_confusers}")
    if num_negatives < 1 or (not replace and num_negatives > num_docs - 1):
        raise ValueError(f"num_negatives must be in [1, N-1] (any >= 1 with replacement), got {num_negatives}")
    pool = num_docs - 1
    if replace:
        miss = math.exp(num_negatives * math.log1p(-num_confusers / pool)) if num_confusers < pool else 0.0
    elif num_negatives > pool - num_confusers:
        miss = 0.0
    else:
        miss = math.exp(math.lgamma(pool - num_confusers + 1) - math.lgamma(pool - num_confusers - num_negatives + 1)
                        - math.lgamma(pool + 1) + math.lgamma(pool - num_negatives + 1))
    return ConfuserCoverage(exact=1.0 - miss, approximation=num_negatives * num_confusers / num_docs)


def confusers(scores_N, pos, mass: float = 0.5) -> tuple[int, np.ndarray]:
    """The fewest documents other than d+ that hold `mass` of the model's probability off d+.

    With p = softmax(s), the documents j != d+ are ordered by p_j (descending; ties keep index
    order) and k is the least count whose leading p_j sum to at least mass * (1 - p_+): the
    confusable documents that a sample of negatives must cover for the gradient to reach top-1.
    Computed from the softmax over the documents other than d+, so nothing underflows to zero
    when d+ holds nearly all the mass.

    Args:
      scores_N: model scores s(q, d) of one query over N >= 2 documents (-inf allowed off d+).
      pos: index of the positive d+.
      mass: the share of the off-d+ probability to hold, in (0, 1].

    Returns:
      (k, order_N1): k >= 1, and the N-1 documents other than d+ in that order (int array), so
      that order_N1[:k] are the confusers.

    Reference: docs/design.md, section 1 (the chance that a sample holds one of k confusers is ~ Kk/N;
    see `confuser_coverage`).

    >>> import numpy as np
    >>> s = np.log([4.0, 2.0, 1.0, 1.0])   # off d+ = 0: probabilities 1/2, 1/4, 1/4
    >>> k, order = confusers(s, 0)
    >>> k, order.tolist(), confusers(s, 0, mass=0.75)[0]
    (1, [1, 2, 3], 2)
    """
    s_N = np.asarray(scores_N, dtype=np.float64)
    if s_N.ndim != 1 or s_N.shape[0] < 2:
        raise ValueError(f"scores_N must be a vector over N >= 2 documents, got shape {s_N.shape}")
    num_docs, pos = s_N.shape[0], int(pos)
    if not 0 <= pos < num_docs:
        raise ValueError(f"pos must index a document in [0, {num_docs}), got {pos}")
    if not 0.0 < float(mass) <= 1.0:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    others_N1 = np.delete(np.arange(num_docs), pos)
    if np.any(np.isnan(s_N)) or np.any(s_N == np.inf) or np.all(s_N[others_N1] == -np.inf):
        raise ValueError("scores_N must not be nan or +inf, and some document other than pos must have a finite score")
    # Sorting by score is sorting by probability, without ties from rounding exp().
    order_N1 = others_N1[np.argsort(-s_N[others_N1], kind="stable")]
    share_N1 = np.exp(s_N[order_N1] - scipy.special.logsumexp(s_N[order_N1]))
    cum_N1 = np.cumsum(share_N1)
    k = int(np.searchsorted(cum_N1, float(mass) * cum_N1[-1], side="left")) + 1
    return min(k, num_docs - 1), order_N1
