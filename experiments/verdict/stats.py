"""Statistics for verdicts, tables and figures: seed summaries and the verdict rule (docs/design.md,
"Ceilings and verdicts"). Plain numpy/scipy/pandas: figures import it without the training stack.

The verdict rule. A claim predicts the sign of an effect: a paired difference, or the slope of a
paired gap against log10 of a swept size. Each seed (its own corpus) gives one effect, and the claim
is about the MEDIAN per-seed effect, tested with the exact sign test (zeros dropped):
- p_held: one-sided p of "median > 0", the binomial(n, 1/2) tail of the count of positive effects;
- p_not ("did not hold"): the smaller of the p of "median < 0" and, where the claim names a
  negligible band delta > 0, the equivalence (TOST) p max(p of "median < +delta", p of
  "median > -delta");
- the claim's p = min(1, 2 min(p_held, p_not)): a false decision either way counts;
- an equivalence claim ("within +-band") is about the median too: two one-sided sign tests
  (equivalence_verdict), never `band - |value|` read seed by seed, which fails any band narrower than
  the estimates' own scatter;
- decisive at p <= 0.05 in the direction of the smaller one-sided p (held on a tie), never with
  fewer than 2 seeds; otherwise inconclusive. The report decides every claim with a p at once:
  Holm's correction over that family, then the same rule on the adjusted p (Verdict.in_family).
  Exact checks (a count of runs below a theorem's floor) and tolerance checks have no p and no part
  in the family; "not testable here" says why a comparison cannot show.

Why the median and the sign test. The per-seed effects of 3-12 corpora can be strongly skewed, and
no test of a MEAN keeps its level for every skewed distribution at such n. Measured (numpy, effects
drawn from a lognormal(0, 1) centred at its mean): the 95% t-interval gives a false "did not hold"
17.7% of the time at 5 seeds and 14.7% at 12; Fisher's sign-flip permutation test still about 15% at
8-12 seeds (it tests symmetry, not the mean). The sign test's level holds for any continuous null
with median 0, skewed or not. Its price is granularity: its p is never below 2^(1 - n), so nothing is
decided below 6 seeds at 5%, or below 11 under Holm over 42 claims (Verdict.seed_floor).

What a verdict shows. The median of the seeds with a distribution-free interval for it from order
statistics (exact binomial coverage >= 95%; below 6 seeds none exists, and [min, max] is shown with
its coverage). An inconclusive verdict states its minimum detectable median effect and, never as a
point estimate, a range of seeds that would resolve it (Verdict.mde, Verdict.seeds_needed). The
tables of levels (seed_summary) keep the mean and its t-interval: they describe levels, not verdicts.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pandas as pd
from scipy import stats

from grdr.experiments.verdict.significance import format_p

__all__ = ["ALPHA", "Verdict", "effect_verdict", "equivalence_verdict", "paired_verdict", "not_testable",
           "sign_p", "median_interval", "share_interval", "seed_floor"]

ALPHA = 0.05  # the level of a decision, family-wise in the report
POWER = 0.80  # the power at which minimum detectable effects and seeds needed are planned
COVERAGE = 0.95  # of the interval shown for the median
_SEEDS_MAX = 1000  # seeds beyond which a share counts as unresolvable by seeds alone
KINDS = ("test", "check")


def _finite(effects) -> np.ndarray:
    d_N = np.asarray(effects, np.float64).ravel()
    return d_N[np.isfinite(d_N)]


@functools.lru_cache(maxsize=4096)
def _upper_tail(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) >= k), in exact integer arithmetic (n is a count of seeds: small)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return sum(math.comb(n, j) for j in range(k, n + 1)) / 2 ** n


def sign_p(effects) -> float:
    """One-sided exact sign-test p of 'median > 0': P(Binomial(n, 1/2) >= k) for k positive effects
    among the n finite non-zero ones (zeros carry no sign and are dropped); 1.0 when none is non-zero."""
    d_N = _finite(effects)
    positive, negative = int((d_N > 0).sum()), int((d_N < 0).sum())
    return _upper_tail(positive, positive + negative)


def median_interval(effects, coverage: float = COVERAGE) -> tuple[float, float, float]:
    """(low, high, exact coverage) of the distribution-free interval [x_(r), x_(n+1-r)] for the median.

    [x_(r), x_(n+1-r)] misses the median only when fewer than r effects fall on one side, so it
    covers it with probability 1 - 2 P(Binomial(n, 1/2) <= r - 1) for any continuous distribution;
    r is the largest with coverage >= `coverage`. Where even [min, max] falls short (n <= 5 at 95%)
    it is returned with its own coverage 1 - 2^(1 - n). NaNs with fewer than 2 effects.
    """
    x_N = np.sort(_finite(effects))
    n = x_N.size
    if n < 2:
        return float("nan"), float("nan"), float("nan")
    r, covered = 1, 1.0 - 2.0 * _upper_tail(n, n)  # [min, max]: P(B <= 0) = P(B >= n)
    for s in range(2, n // 2 + 1):
        c = 1.0 - 2.0 * _upper_tail(n - s + 1, n)  # P(B <= s - 1) = P(B >= n - s + 1)
        if c < coverage:
            break
        r, covered = s, c
    return float(x_N[r - 1]), float(x_N[n - r]), covered


def _word(p: float, p_held: float, p_not: float, n: int) -> str:
    if n < 2 or not np.isfinite(p) or p > ALPHA:
        return "inconclusive"
    return "held" if p_held <= p_not else "did not hold"


@functools.lru_cache(maxsize=32)
def _critical_counts(a: float) -> np.ndarray:
    """k_N[N] for N = 0.._SEEDS_MAX: the fewest effects of one sign, of N, that bring the one-sided
    sign test's p to <= a (N + 1 where no count does)."""
    n_N = np.arange(_SEEDS_MAX + 1)
    j_N = stats.binom.ppf(a, n_N, 0.5)  # smallest j with P(B <= j) >= a
    j_N = np.where(stats.binom.cdf(j_N, n_N, 0.5) <= a * (1 + 1e-9), j_N, j_N - 1)  # largest with <= a
    return (n_N - j_N).astype(np.int64)  # P(B >= N - j) = P(B <= j) by symmetry


def seed_floor(family_size: int = 1, alpha: float = ALPHA) -> int:
    """The fewest seeds at which the sign test can decide anything among `family_size` claims:
    the smallest n with 2^(1 - n) <= alpha / family_size (all n effects of one sign)."""
    return int(np.flatnonzero(_critical_counts(alpha / (2 * family_size)) <= np.arange(_SEEDS_MAX + 1))[0])


def _seeds_for_power(share: float, a: float) -> int | None:
    """The fewest seeds at which a one-sided sign test at level a reaches POWER when each seed's
    effect has the predicted sign with probability `share`; None up to _SEEDS_MAX."""
    if not share > 0.5:
        return None
    k_N, n_N = _critical_counts(a), np.arange(_SEEDS_MAX + 1)
    power_N = np.where(k_N <= n_N, stats.binom.sf(k_N - 1, n_N, share), 0.0)
    hit = np.flatnonzero(power_N >= POWER)
    return int(hit[0]) if hit.size else None


def share_interval(k: int, n: int, coverage: float = COVERAGE) -> tuple[float, float]:
    """Clopper-Pearson interval for a probability seen k times in n (exact, two-sided)."""
    tail = (1 - coverage) / 2
    low = float(stats.beta.ppf(tail, k, n - k + 1)) if k > 0 else 0.0
    high = float(stats.beta.ppf(1 - tail, k + 1, n - k)) if k < n else 1.0
    return low, high


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One claim's verdict. kind "test": the sign test over per-seed effects (effect_verdict), whose
    word in_family() redecides among a family of claims; kind "check": an exact count or a tolerance
    check, with no p (built directly by an experiment module)."""

    word: str  # "held" | "did not hold" | "inconclusive" | "not testable here"
    estimate: float  # a test's median per-seed effect; a check's value
    low: float  # interval for the median (distribution-free, see `coverage`)
    high: float
    n: int  # seeds with a finite effect (a check: what it counted over)
    why: str = ""  # for "not testable here" and extra context
    kind: str = "check"
    p: float = float("nan")  # two-sided sign-test p, unadjusted: min(1, 2 min(p_held, p_not))
    p_held: float = float("nan")  # one-sided: median > 0
    p_not: float = float("nan")  # one-sided: median < 0, or inside the negligible band
    p_holm: float = float("nan")  # Holm-adjusted over the family (NaN until in_family)
    family_size: int = 1  # claims the word is decided among (1: unadjusted)
    coverage: float = float("nan")  # exact coverage of [low, high] for the median
    signs: tuple[int, int] = (0, 0)  # (positive, negative) effects; zeros have no sign
    sd: float = float("nan")  # of the per-seed effects (for the minimum detectable effect)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {KINDS}")
        if self.family_size < 1:
            raise ValueError(f"family_size={self.family_size}: expected at least 1")

    @property
    def decisive(self) -> bool:
        return self.word in ("held", "did not hold")

    @property
    def family(self) -> bool:
        """Whether the claim is in the report's Holm family: a sign test with a p."""
        return self.kind == "test" and bool(np.isfinite(self.p))

    @property
    def adjusted(self) -> bool:
        return bool(np.isfinite(self.p_holm))

    def in_family(self, p_holm: float, family_size: int) -> Verdict:
        """This verdict decided among `family_size` claims: its word read off the Holm-adjusted p
        (same direction rule), its planning at the threshold ALPHA / family_size. A claim outside the
        family comes back unchanged."""
        if not self.family:
            return self
        if not (p_holm >= self.p - 1e-12):
            raise ValueError(f"p_holm={p_holm} below the raw p {self.p}: Holm never lowers a p")
        return dataclasses.replace(self, word=_word(p_holm, self.p_held, self.p_not, self.n), p_holm=float(p_holm),
                                   family_size=int(family_size))

    @property
    def seed_floor(self) -> int:
        """The fewest seeds at which the sign test can decide anything in this verdict's family."""
        return seed_floor(self.family_size)

    @property
    def mde(self) -> float:
        """The median effect that the sign test detects with 80% power at these n seeds and the
        threshold ALPHA / family_size, under a normal location model with the seeds' SD (effects
        N(theta, sd^2): each is positive with probability Phi(theta / sd)). inf below the seed floor;
        NaN for a check or without an SD."""
        if self.kind != "test" or self.n < 2 or not np.isfinite(self.sd):
            return float("nan")
        k = int(_critical_counts(ALPHA / (2 * self.family_size))[min(self.n, _SEEDS_MAX)])
        if k > self.n:
            return float("inf")
        share = float(stats.beta.ppf(POWER, k, self.n - k + 1))  # P(Binomial(n, share) >= k) = POWER
        return self.sd * float(stats.norm.ppf(share))

    @property
    def share_seen(self) -> tuple[int, int, str]:
        """(effects of the sign seen more often, effects with a sign, that sign); positive on a tie."""
        positive, negative = self.signs
        return max(positive, negative), positive + negative, "positive" if positive >= negative else "negative"

    @property
    def seeds_needed(self) -> tuple[int | None, int | None] | None:
        """(fewest, most) seeds at which the sign test would resolve the sign seen with 80% power at
        the threshold ALPHA / family_size, for the top and the bottom of the 95% Clopper-Pearson
        interval of that sign's per-seed probability. None in a place means no number up to 1,000:
        always so at a bottom <= 1/2, where the sign may be a coin toss. None for a check."""
        if self.kind != "test" or self.n < 2:
            return None
        k, n, _ = self.share_seen
        if n == 0:
            return (None, None)
        low, high = share_interval(k, n)
        a = ALPHA / (2 * self.family_size)
        return _seeds_for_power(high, a), _seeds_for_power(low, a)

    def interval(self) -> str:
        if self.n < 2 or not np.isfinite(self.low):
            if self.kind == "check":
                return f"{self.estimate:+.3f}"
            return f"{self.estimate:+.3f} (no interval: {self.n} seed{'s' if self.n != 1 else ''})"
        text = f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"
        if np.isfinite(self.coverage) and self.coverage < COVERAGE:
            text += f" (min to max, {self.coverage:.1%} coverage)"
        return text

    def _level(self) -> str:
        return "5%, unadjusted" if not self.adjusted else f"Holm's 5% over {self.family_size} claims"

    def resolution(self) -> str:
        """For an inconclusive test: its minimum detectable median effect, the fewest seeds at which
        the sign test decides anything, and the range of seeds that would resolve the sign seen (or
        that none up to _SEEDS_MAX would: it needs a regime with a larger effect). Empty otherwise."""
        if self.word != "inconclusive" or self.kind != "test" or self.n < 2:
            return ""
        floor = self.seed_floor
        if np.isfinite(self.mde):
            text = f"minimum detectable median effect {self.mde:.3f} (normal model, 80% power at {self._level()})"
        else:
            text = f"nothing is detectable at n = {self.n} (at {self._level()})"
        text += f"; the sign test decides nothing below {floor} seeds"
        k, n, sign = self.share_seen
        if n == 0:
            return text + "; every effect is 0: it needs a regime with a larger effect"
        fewest, most = self.seeds_needed
        low, high = share_interval(k, n)
        seen = f"{k} of {n} {sign}, 95% interval of the share {low:.2f}-{high:.2f}"
        if fewest is None:
            return text + (f"; no number of seeds up to {_SEEDS_MAX:,} would resolve the sign seen ({seen}): "
                           "it needs a regime with a larger effect")
        if most is None:
            return text + f"; at least {fewest} seeds would resolve the sign seen ({seen}), possibly no number"
        return text + f"; {fewest}-{most} seeds would resolve the sign seen ({seen})"

    def __str__(self):
        if self.word == "not testable here":
            return f"**{self.word}** ({self.why})"
        if self.kind == "check":
            why = f"; {self.why}" if self.why else ""
            return f"**{self.word}** ({self.interval()}, n = {self.n}{why}; an exact or tolerance check, outside the " \
                   "Holm family)"
        text = f"**{self.word}** (median {self.interval()}, n = {self.n}"
        if np.isfinite(self.p):
            text += f"; sign test p = {format_p(self.p)}"
            text += f", Holm p = {format_p(self.p_holm)} over {self.family_size} claims" if self.adjusted \
                else " (unadjusted)"
        if self.resolution():
            text += f"; {self.resolution()}"
        if self.why:
            text += f"; {self.why}"
        return text + ")"


def effect_verdict(effects, negligible: float = 0.0) -> Verdict:
    """The verdict on 'median effect > 0' from one effect per seed, unadjusted (module docstring).

    `negligible`: the smallest effect the claim cares about; a median shown inside (-negligible,
    +negligible) did not hold. Non-finite effects are dropped.
    """
    d_N = _finite(effects)
    n = d_N.size
    median = float(np.median(d_N)) if n else float("nan")
    if n < 2:
        return Verdict("inconclusive", median, float("nan"), float("nan"), n, why="fewer than 2 seeds", kind="test")
    p_held, p_not = sign_p(d_N), sign_p(-d_N)
    if negligible > 0:
        p_not = min(p_not, max(sign_p(negligible - d_N), sign_p(d_N + negligible)))
    p = min(1.0, 2.0 * min(p_held, p_not))
    low, high, covered = median_interval(d_N)
    return Verdict(_word(p, p_held, p_not, n), median, low, high, n, kind="test", p=p, p_held=p_held, p_not=p_not,
                   coverage=covered, signs=(int((d_N > 0).sum()), int((d_N < 0).sum())), sd=float(d_N.std(ddof=1)))


def equivalence_verdict(values, band: float) -> Verdict:
    """The verdict on 'the median of `values` lies within +-band' (an equivalence claim), unadjusted.

    The test is on the median, as every verdict here, and not on each seed: two one-sided sign tests
    (TOST), p_held = max(p of "median < +band", p of "median > -band"), against p_not = the smaller p
    of "median > +band" and "median < -band". Reading `band - |value|` per seed instead would make a
    noisy estimate fail any band narrower than its own scatter: at 12 seeds of N(0, 0.1^2) against a
    band of 0.01 (a true median of exactly 0) it says "did not hold" nearly every time, where this
    test stays inconclusive at its level (tests/experiments/verdict/test_stats.py simulates both).
    The verdict's estimate and interval are the median of the values and its distribution-free
    interval; its signs and SD are those of the binding side (band -+ value), for the planning lines.
    """
    if not band > 0:
        raise ValueError(f"band={band}: expected > 0")
    v_N = _finite(values)
    n = v_N.size
    median = float(np.median(v_N)) if n else float("nan")
    if n < 2:
        return Verdict("inconclusive", median, float("nan"), float("nan"), n, why="fewer than 2 seeds", kind="test")
    p_held = max(sign_p(band - v_N), sign_p(v_N + band))
    p_not = min(sign_p(v_N - band), sign_p(-band - v_N))
    p = min(1.0, 2.0 * min(p_held, p_not))
    binding = band - v_N if median >= 0 else band + v_N
    low, high, covered = median_interval(v_N)
    return Verdict(_word(p, p_held, p_not, n), median, low, high, n, kind="test", p=p, p_held=p_held, p_not=p_not,
                   coverage=covered, signs=(int((binding > 0).sum()), int((binding < 0).sum())),
                   sd=float(binding.std(ddof=1)))


def paired_verdict(differences, negligible: float = 0.0) -> Verdict:
    """'median difference > 0' from per-seed paired differences."""
    return effect_verdict(differences, negligible)


def not_testable(why: str, n: int = 0) -> Verdict:
    return Verdict("not testable here", float("nan"), float("nan"), float("nan"), n, why=why, kind="test")
