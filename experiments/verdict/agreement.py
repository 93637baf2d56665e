"""Predicted against measured: each theory prediction the report prints, beside its measurement, with an
agreement verdict (docs/design.md, "Ceilings and verdicts").

A `Prediction` pairs, per seed (each its own corpus), the theory's value with the measured one, both
summarised by their median over seeds and a distribution-free interval (experiments.stats), with the
per-seed ratio measured / predicted. Its tolerance is stated in the experiment module before any run:
relative ("within 20%": |measured / predicted - 1| <= 0.2) or absolute ("within +-0.25").
Agreement is an equivalence claim on the median per-seed deviation (measured / predicted - 1, or
measured - predicted): two one-sided sign tests that it lies within the tolerance (stats.
equivalence_verdict, Holm over the report's whole family), so "agrees" means the median deviation
lies inside the tolerance beyond what chance allows and "does not agree" that it lies outside; a
deviation whose seed-to-seed scatter exceeds the tolerance but whose median sits inside it is
inconclusive, not a disagreement. A prediction with no per-seed pairing (LIMIT's published table against the
median n(d)) is a tolerance check outside the family. Plain numpy/pandas: no JAX.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from grdr.experiments.verdict.stats import Verdict, equivalence_verdict, median_interval

__all__ = ["Prediction", "agreement", "tolerance_check", "WORDS"]

WORDS = {"held": "agrees", "did not hold": "does not agree", "inconclusive": "inconclusive",
         "not testable here": "not testable here"}


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One row of the predicted-versus-measured table."""

    experiment: str
    quantity: str  # what is predicted, and where
    tolerance: str  # stated before the run: "within 20%" or "within +-0.25"
    predicted: tuple[float, float, float]  # median over seeds, interval low, high
    measured: tuple[float, float, float]
    ratio: tuple[float, float, float]  # measured / predicted per seed: median and interval
    verdict: Verdict
    source: str = ""  # the theory: a closed form, and where it is derived

    @property
    def claim(self) -> str:
        return f"{self.quantity}: measured agrees with the prediction {self.tolerance}"

    @property
    def word(self) -> str:
        return WORDS.get(self.verdict.word, self.verdict.word)


def _summary(x_S) -> tuple[float, float, float]:
    x_S = np.asarray(x_S, np.float64)
    x_S = x_S[np.isfinite(x_S)]
    if not x_S.size:
        return (float("nan"),) * 3
    low, high, _ = median_interval(x_S)
    return float(np.median(x_S)), low, high


def agreement(experiment: str, quantity: str, predicted_S, measured_S, *, rel: float | None = None,
              abs_tol: float | None = None, source: str = "") -> Prediction:
    """A prediction read per seed: `predicted_S` and `measured_S` aligned by seed (NaN pairs dropped);
    exactly one of `rel` (tolerance on measured / predicted - 1) and `abs_tol` (on measured - predicted)."""
    if (rel is None) == (abs_tol is None):
        raise ValueError("agreement: give exactly one of rel and abs_tol")
    p_S, m_S = np.asarray(predicted_S, np.float64), np.asarray(measured_S, np.float64)
    keep = np.isfinite(p_S) & np.isfinite(m_S)
    p_S, m_S = p_S[keep], m_S[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_S = m_S / p_S
    if rel is not None:
        deviation_S, text = ratio_S - 1.0, f"within {rel:.0%}"
        tol = rel
    else:
        deviation_S, text = m_S - p_S, f"within +-{abs_tol:g}"
        tol = abs_tol
    return Prediction(experiment, quantity, text, _summary(p_S), _summary(m_S), _summary(ratio_S),
                      equivalence_verdict(deviation_S, tol), source)


def tolerance_check(experiment: str, quantity: str, predicted: float, measured_S, abs_tol: float,
                    source: str = "") -> Prediction:
    """A fixed reference (one number, not per seed) against the median of the seeds' values, within an
    absolute tolerance fixed in advance: a check, outside the Holm family."""
    m = _summary(measured_S)
    ok = abs(m[0] - predicted) <= abs_tol
    verdict = Verdict("held" if ok else "did not hold", m[0] - predicted, m[1] - predicted, m[2] - predicted,
                      int(np.isfinite(np.asarray(measured_S, float)).sum()), why="the median of the seeds")
    ratio = tuple(v / predicted for v in m) if predicted else (float("nan"),) * 3
    return Prediction(experiment, quantity, f"within +-{abs_tol:g} (median)", (float(predicted),) * 3, m, ratio,
                      verdict, source)
