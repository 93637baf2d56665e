"""Paired significance tests over queries: two systems ranked the same queries; is the mean of
their per-query differences non-zero? Plain numpy/scipy/pandas (no JAX), as experiments.stats.

- `paired_t`: Student's paired t test (two-sided), as scipy.stats.ttest_rel.
- `paired_randomisation`: the paired randomisation test (Fisher's sign-flip test; Smucker, Allan
  and Carterette 2007 recommend it for IR): under the null each query's difference is as likely
  with either sign, so the observed |sum of differences| is compared with that of `permutations`
  random sign flips drawn from a fixed seed. Two-sided; p = (1 + #{|flipped| >= |observed|}) /
  (1 + permutations), never 0. Sums equal to the observed one up to rounding count as extreme (a
  metric such as Success@1 has many ties).
- `holm` (Holm-Bonferroni, controls the family-wise error) and `benjamini_hochberg` (controls the
  false discovery rate): adjusted p values for a family of comparisons, in the input order.
- `comparison_table`: one row per pair of systems (mean difference, both p values, Holm over the
  rows of the table); `markdown` prints it.

The experiments (real_scaling) pass per-query values as {system: {query id: value}}; a pair is
tested on the queries both systems have.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["PERMUTATIONS", "SEED", "paired_t", "paired_randomisation", "randomisation_pvalues", "holm",
           "benjamini_hochberg", "comparison_table", "markdown", "format_p"]

PERMUTATIONS = 10_000
SEED = 0
_CHUNK = 1000  # sign flips drawn at a time: a chunk x queries matrix


def _differences(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a {a.shape} and b {b.shape}: expected two equal 1-d arrays (one value per query)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a, b: per-query values must be finite")
    return a - b


def paired_t(a, b) -> tuple[float, float]:
    """(t, two-sided p) of the paired t test of mean(a - b) = 0, on n - 1 degrees of freedom.

    Equals scipy.stats.ttest_rel(a, b) but where that gives NaN: when every difference is 0 this
    returns (0, 1) (no evidence of a difference), and when all differences are equal and non-zero,
    (+-inf, 0). Fewer than 2 queries: (NaN, NaN).
    """
    d = _differences(a, b)
    n = d.size
    if n < 2:
        return float("nan"), float("nan")
    mean, sd = d.mean(), d.std(ddof=1)
    if sd == 0 or not np.isfinite(mean / sd):
        return (0.0, 1.0) if mean == 0 else (float(np.copysign(np.inf, mean)), 0.0)
    t = mean / (sd / np.sqrt(n))
    return float(t), float(2.0 * stats.t.sf(abs(t), n - 1))


def randomisation_pvalues(differences_RxM, permutations: int = PERMUTATIONS, seed: int = SEED) -> np.ndarray:
    """Two-sided sign-flip p value of each row of per-query differences (R pairs, M queries each).

    Every row sees the same `permutations` sign vectors (drawn from `seed`), so the p values of one
    table are computed together and a rerun gives the same numbers.
    """
    d_RxM = np.atleast_2d(np.asarray(differences_RxM, np.float64))
    if permutations < 1:
        raise ValueError(f"permutations={permutations}: expected at least 1")
    if not np.isfinite(d_RxM).all():
        raise ValueError("differences: must be finite")
    R, M = d_RxM.shape
    observed_R = np.abs(d_RxM.sum(axis=1))
    # |flipped| >= |observed| up to the rounding of a sum of M terms of these magnitudes
    tol_R = 1e-9 * np.maximum(np.abs(d_RxM).sum(axis=1), 1e-300)
    rng = np.random.default_rng(seed)
    count_R = np.zeros(R, np.int64)
    for start in range(0, permutations, _CHUNK):
        size = min(_CHUNK, permutations - start)
        signs_CxM = rng.integers(0, 2, size=(size, M), dtype=np.int8).astype(np.float64) * 2.0 - 1.0
        flipped_CxR = np.abs(signs_CxM @ d_RxM.T)
        count_R += np.count_nonzero(flipped_CxR >= observed_R - tol_R, axis=0)
    return (count_R + 1.0) / (permutations + 1.0)


def paired_randomisation(a, b, permutations: int = PERMUTATIONS, seed: int = SEED) -> float:
    """Two-sided p of the paired randomisation (sign-flip) test of mean(a - b) = 0 (module doc)."""
    d = _differences(a, b)
    if d.size == 0:
        return float("nan")
    return float(randomisation_pvalues(d[None, :], permutations, seed)[0])


def _finite_ascending(pvalues: Sequence[float]):
    """(p as float64, an all-NaN output of its shape, the indices of its finite entries in ascending
    order of p, ties by position)."""
    p = np.asarray(pvalues, np.float64)
    ok = np.flatnonzero(np.isfinite(p))
    return p, np.full(p.shape, np.nan), ok[np.argsort(p[ok], kind="stable")]


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p values, in the input order (NaN stays NaN and is not counted).

    Sorted ascending, the i-th of m (from 1) becomes max over j <= i of min(1, (m - j + 1) p_(j)).
    """
    p, out, order = _finite_ascending(pvalues)
    m = order.size
    if m == 0:
        return out
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (q values), in the input order (NaN stays NaN).

    Sorted ascending, the i-th of m becomes min over j >= i of min(1, m p_(j) / j).
    """
    p, out, order = _finite_ascending(pvalues)
    m = order.size
    if m == 0:
        return out
    scaled = np.minimum(1.0, m * p[order] / np.arange(1, m + 1))
    out[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return out


COLUMNS = ["system_a", "system_b", "n_queries", "mean_a", "mean_b", "diff", "t", "p_t", "p_rand", "p_holm", "p_bh",
           "permutations"]


def comparison_table(values: Mapping[str, Mapping[str, float]], pairs: Sequence[tuple[str, str]],
                     permutations: int = PERMUTATIONS, seed: int = SEED) -> pd.DataFrame:
    """One row per pair (a, b) of systems, tested on the queries both have (COLUMNS).

    `values` maps each system to {query id: value}. diff = mean_a - mean_b; p_t is the paired t
    test's, p_rand the randomisation test's; p_holm and p_bh adjust p_rand over the rows of this
    table (one family).
    """
    rows, diffs = [], []
    for a, b in pairs:
        queries = sorted(set(values[a]) & set(values[b]))
        x = np.array([values[a][q] for q in queries], np.float64)
        y = np.array([values[b][q] for q in queries], np.float64)
        t, p_t = paired_t(x, y)
        rows.append({"system_a": a, "system_b": b, "n_queries": len(queries),
                     "mean_a": x.mean() if len(queries) else np.nan, "mean_b": y.mean() if len(queries) else np.nan,
                     "diff": (x - y).mean() if len(queries) else np.nan, "t": t, "p_t": p_t,
                     "permutations": permutations})
        diffs.append(x - y)
    p_rand = np.full(len(rows), np.nan)
    for size in {d.size for d in diffs if d.size}:  # rows on the same queries count together
        index = [i for i, d in enumerate(diffs) if d.size == size]
        p_rand[index] = randomisation_pvalues(np.stack([diffs[i] for i in index]), permutations, seed)
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_rand", "p_holm", "p_bh")])
    table["p_rand"] = p_rand
    table["p_holm"] = holm(p_rand)
    table["p_bh"] = benjamini_hochberg(p_rand)
    return table[COLUMNS]


def format_p(p: float) -> str:
    """A p value for a table: four decimals, '<0.0001' below them, '' for NaN."""
    if not np.isfinite(p):
        return ""
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def markdown(table: pd.DataFrame) -> str:
    """A comparison_table as markdown: systems, means, difference, t-test p, randomisation p, Holm p."""
    lines = ["| A | B | mean A | mean B | A - B | t-test p | randomisation p | Holm p |", "|---" * 8 + "|"]
    for r in table.itertuples():
        lines.append(f"| {r.system_a} | {r.system_b} | {r.mean_a:.3f} | {r.mean_b:.3f} | {r.diff:+.3f} | "
                     f"{format_p(r.p_t)} | {format_p(r.p_rand)} | {format_p(r.p_holm)} |")
    return "\n".join(lines)
