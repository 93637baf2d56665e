"""LIMIT's search for the critical n, as a pure function of the outcomes seen so far (so that an
interrupted search resumes from stored records), and the published values it is read against: the
measured critical n of their Table 6 (the reference) and their cubic fit (drawn beside it).

Weller, Boratko, Naim, Lee (2025), "On the Theoretical Limitations of Embedding-Based Retrieval":
gallop from n0 by +1, +2, +4, ... (or down), binary search, then a sweep of n - 4 ... n + 5 around
the result. No JAX here: figures import it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["WELLER_TABLE6", "TABLE6_TOLERANCE", "table6_agreement", "WELLER_CUBIC", "weller_cubic", "next_n", "critical_from", "gallop_reach", "non_monotone", "cubic_fit", "MAXSIM",
           "series_of", "series_label"]

MAXSIM = "dr_maxsim"  # free multi-vector DR scored by MaxSim: one curve per (vectors, doc_vectors)

# Weller et al. 2025 (arXiv 2508.21038, revised version, Appendix G, Table 6): their measured
# free-embedding critical n at d (k = 2). The reference the measured n(d) is checked against.
WELLER_TABLE6 = {4: 10, 6: 19, 8: 28, 12: 47, 16: 79, 20: 120, 32: 296}
# The agreement tolerance, fixed in advance from replication scatter: an independent replication of
# their protocol lands within about 3 of Table 6 at d <= 16 (docs/design.md, "The combinatorial limit").
TABLE6_TOLERANCE = 3

# Weller et al. 2025's cubic fit of their free-embedding critical n(d) (k = 2), highest power first:
# "their fit", drawn beside the table; it misfits small d (6.7 at d = 4 against their measured 10).
WELLER_CUBIC = (0.0037, 0.0520, 4.0309, -10.5322)


def weller_cubic(d) -> np.ndarray:
    """The published n(d): -10.5322 + 4.0309 d + 0.0520 d^2 + 0.0037 d^3."""
    return np.polyval(WELLER_CUBIC, np.asarray(d, float))


def table6_agreement(crit_df):
    """One row per d of Table 6 that DR searched: the seeds' critical n (in seed order), their median,
    Table 6's value, the median minus it, and whether |median - table| <= TABLE6_TOLERANCE (a
    tolerance check fixed in advance, not a hypothesis test). crit_df: DR's search records (columns
    dim, seed, critical_n, censored); a d with a censored seed is kept and flagged."""
    import pandas as pd

    rows = []
    for d, g in crit_df.groupby("dim"):
        if int(d) not in WELLER_TABLE6:
            continue
        g = g.sort_values("seed")
        ref, median = WELLER_TABLE6[int(d)], float(np.median(g["critical_n"].to_numpy(float)))
        rows.append({"dim": int(d), "seeds": [int(s) for s in g["seed"]], "n": g["critical_n"].astype(int).tolist(),
                     "median": median, "table6": ref, "diff": median - ref,
                     "agrees": abs(median - ref) <= TABLE6_TOLERANCE, "censored": bool((g["censored"] > 0).any())})
    return pd.DataFrame(rows, columns=["dim", "seeds", "n", "median", "table6", "diff", "agrees", "censored"])


class _Unprobed(Exception):
    def __init__(self, n: int):
        self.n = n


def _limit_search(solved, n0: int, n_max: int, n_min: int, below: int, above: int) -> int:
    """LIMIT's three phases on an oracle `solved(n)`; returns n*, the binary search's result.

    n <= n_min counts as solved without a probe (for k = 2, n = 2 has one query whose two relevant
    documents are all there is); no n above n_max is probed, and a solved n_max ends the gallop.
    """
    def ok(n):
        return n <= n_min or solved(n)

    n0 = min(max(n0, n_min + 1), n_max)
    lo = hi = None
    if ok(n0):  # gallop up: n0 + 1, n0 + 3, n0 + 7, ...
        lo, step = n0, 1
        while lo < n_max:
            n = min(lo + step, n_max)
            if not ok(n):
                hi = n
                break
            lo, step = n, 2 * step
    else:  # gallop down: n0 - 1, n0 - 3, n0 - 7, ...
        hi, step = n0, 1
        while lo is None:
            n = max(hi - step, n_min)
            if ok(n):
                lo = n
            else:
                hi, step = n, 2 * step
    crit = lo
    if hi is not None:  # binary search over [lo, hi], as LIMIT's (outcomes already seen are reused)
        low, high = lo, hi
        while low <= high:
            mid = (low + high) // 2
            if ok(mid):
                crit, low = mid, mid + 1
            else:
                high = mid - 1
    for n in range(crit - below, crit + above + 1):  # the final sweep around n*
        if n_min < n <= n_max:
            ok(n)
    return crit


def _replay(outcomes: dict[int, bool], n0: int, n_max: int, n_min: int, below: int, above: int):
    def solved(n):
        if n not in outcomes:
            raise _Unprobed(n)
        return outcomes[n]

    return _limit_search(solved, n0, n_max, n_min, below, above)


def next_n(outcomes: dict[int, bool], n0: int, n_max: int, n_min: int = 2, below: int = 4,
           above: int = 5) -> int | None:
    """The next n to probe, or None when the search has ended (a pure function of the outcomes)."""
    try:
        _replay(outcomes, n0, n_max, n_min, below, above)
    except _Unprobed as need:
        return need.n
    return None


def gallop_reach(n0: int, n: int, n_max: int, n_min: int = 2, first_steps: int = 3) -> int:
    """The largest n that a search from n0 probes, before it gallops beyond `n`: the galloping point
    n0 + 2^j - 1 at or above n (j >= first_steps; n0 clamped as the search clamps it), capped at
    n_max. Its binary search stays below that point, and galloping down below n0, so every probe of
    a search that ends within first_steps galloping steps up lies within one reach (compiled once).

    >>> [gallop_reach(74, n, 256) for n in (60, 74, 81, 82, 89, 300)]
    [81, 81, 81, 89, 89, 256]
    """
    start = min(max(n0, n_min + 1), n_max)
    j = first_steps
    while start + 2**j - 1 < n:
        j += 1
    return min(start + 2**j - 1, n_max)


def critical_from(outcomes: dict[int, bool], n0: int, n_max: int, n_min: int = 2, below: int = 4,
                  above: int = 5) -> int:
    """n*: the result of LIMIT's search on these outcomes (every n it needs must be in them)."""
    return _replay(outcomes, n0, n_max, n_min, below, above)


def non_monotone(outcomes: dict[int, bool]) -> list[int]:
    """The solved n above the smallest failed n: where feasibility was not monotone in n."""
    failed = [n for n, ok in outcomes.items() if not ok]
    return sorted(n for n, ok in outcomes.items() if ok and failed and n > min(failed))


def series_of(df) -> list[str]:
    """Each record's curve: its model, and for MaxSim its vectors per query and per document
    ("dr_maxsim_2x2"), so that searches at different m, m' are never pooled."""
    if df.empty:
        return []
    if "vectors" not in df:
        return list(df["model"])
    return [f"{m}_{int(v)}x{int(dv)}" if m == MAXSIM and v == v else m
            for m, v, dv in zip(df["model"], df["vectors"], df["doc_vectors"])]


def series_label(series: str) -> str:
    """A curve's display label: the variant's, with m and m' for MaxSim."""
    from grdr.experiments.variants import label

    if series.startswith(MAXSIM + "_"):
        m, dm = series[len(MAXSIM) + 1:].split("x")
        return f"{label(MAXSIM)} (m = {m}, m' = {dm})"
    return label(series)


def cubic_fit(crit_df, by: str = "model") -> dict[str, np.ndarray]:
    """Per model (or per value of column `by`): numpy.polyfit(d, critical n, 3) coefficients (highest
    power first), least squares over the uncensored searches (each seed's search one point, so the
    fit follows the mean over seeds at each d); absent when fewer than 4 dimensions are uncensored."""
    fits = {}
    if crit_df.empty or "critical_n" not in crit_df:
        return fits
    for model, g in crit_df[crit_df["censored"] == 0].groupby(by):
        if g["dim"].nunique() >= 4:
            fits[model] = np.polyfit(g["dim"].to_numpy(float), g["critical_n"].to_numpy(float), 3)
    return fits
