"""The statistics of a compare check: an interval for the canary's change against the
baseline, and a verdict from where that interval lies against the allowed change (pure).

Two methods:

* ``hodges_lehmann``: the Hodges-Lehmann shift (the median of every canary-minus-baseline
  difference) with the distribution-free confidence interval found by inverting the
  Mann-Whitney U test (normal approximation with continuity, as R's ``wilcox.test(...,
  conf.int = TRUE, exact = FALSE)``); ``u_test_p`` is scipy's U test, whose p-value a
  failing verdict shows beside it. Kayenta judges canaries this way. scipy.stats has the
  U test but not the interval.
* ``proportion_sequence``: an anytime-valid confidence sequence for the difference of two
  proportions from counts (errors over requests), so that looking at it every interval,
  however long the bake, keeps the chance of ever excluding the true difference at most
  1 - confidence. It is the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha,
  Kennedy and Ramdas ("Time-uniform central limit theory and asymptotic confidence
  sequences", 2021), whose boundary is the normal mixture of Howard, Ramdas, McAuliffe and
  Sekhon ("Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
  Statistics 2021); Lindon et al. (KDD 2022) use such sequences for Netflix's canaries. No
  well-kept Python library ships one, so it is written here, in a few lines.

scipy and numpy are imported inside the functions that need them: only a check that
judges loads numpy, only a failing Mann-Whitney verdict scipy; never `rollout --help`,
`status` or `validate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

PASS, INCONCLUSIVE, FAIL = "pass", "inconclusive", "fail"

# Each side is thinned evenly to this many values before the m * n differences are
# formed (a 1-hour range query at a 1 s step would be 13 million of them).
MAX_SIDE = 1000

# The confidence sequence is tightest around this many trials (both sides together); the
# width elsewhere grows only by a log factor, so one value serves most services.
TUNED_FOR_TRIALS = 10_000


@dataclass(frozen=True)
class Interval:
    """An estimate of canary minus baseline, with its interval at ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float
    reference: float          # the baseline's level: its median, or its proportion

    def relative(self) -> Interval:
        """The same interval as a fraction of the baseline's level (0.05 for +5%)."""
        scale = abs(self.reference)
        return Interval(self.estimate / scale, self.low / scale, self.high / scale,
                        self.confidence, self.reference)


def hodges_lehmann(canary: Sequence[float], baseline: Sequence[float],
                   confidence: float) -> Interval:
    """The Hodges-Lehmann shift of ``canary`` over ``baseline`` and its confidence
    interval from the Mann-Whitney U test (see the module). Each side needs 2 values."""
    import numpy as np

    x = _thinned(np.asarray(canary, dtype=float))
    y = _thinned(np.asarray(baseline, dtype=float))
    m, n = len(x), len(y)
    differences = np.subtract.outer(x, y).ravel()
    total = m * n
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    # The k-th smallest and largest differences bound the interval: k from U's mean and
    # standard deviation, less the continuity correction. Partitioning finds them (and
    # the median) without sorting all m * n differences.
    k = math.floor(total / 2 - z * math.sqrt(total * (m + n + 1) / 12) - 0.5)
    middle = [(total - 1) // 2, total // 2]
    wanted = sorted({*middle, *((k, total - 1 - k) if k >= 0 else ())})
    ranked = np.partition(differences, wanted)
    estimate = float((ranked[middle[0]] + ranked[middle[1]]) / 2)
    if k < 0:
        low, high = -math.inf, math.inf
    else:
        low, high = float(ranked[k]), float(ranked[total - 1 - k])
    return Interval(estimate, low, high, confidence, float(np.median(y)))


def u_test_p(canary: Sequence[float], baseline: Sequence[float]) -> float:
    """The two-sided p-value of the Mann-Whitney U test (scipy's), on the values the
    interval was found from. Importing scipy.stats takes about half a second, so it is
    asked for only when a verdict shows it."""
    import numpy as np
    from scipy.stats import mannwhitneyu

    x = _thinned(np.asarray(canary, dtype=float))
    y = _thinned(np.asarray(baseline, dtype=float))
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


def _thinned(values):  # type: ignore[no-untyped-def]
    """Every k-th value, so that at most MAX_SIDE remain, spread over the whole window."""
    step = -(-len(values) // MAX_SIDE)
    return values[::step] if step > 1 else values


def proportion_sequence(canary_events: float, canary_trials: float, baseline_events: float,
                        baseline_trials: float, confidence: float,
                        tuned_for: float = TUNED_FOR_TRIALS) -> Interval:
    """The difference of two proportions (canary minus baseline) with its anytime-valid
    confidence sequence at ``confidence`` (see the module). Counts are the totals so far.

    The boundary, in the paper's terms: estimate +- se * sqrt((1 + 1/W) * (log(1 + W) +
    2 log(1/alpha))), W = c * t / tuned_for, c = 2 log(1/alpha) + log(1 + 2 log(1/alpha)),
    t the trials so far; the standard error uses Agresti and Caffo's (x + 1) / (n + 2), so
    that no errors on either side is not a zero-width interval.
    """
    alpha = 1 - confidence
    p_canary = canary_events / canary_trials
    p_baseline = baseline_events / baseline_trials
    estimate = p_canary - p_baseline
    smooth_c = (canary_events + 1) / (canary_trials + 2)
    smooth_b = (baseline_events + 1) / (baseline_trials + 2)
    se = math.sqrt(smooth_c * (1 - smooth_c) / (canary_trials + 2)
                   + smooth_b * (1 - smooth_b) / (baseline_trials + 2))
    log_alpha = 2 * math.log(1 / alpha)
    weight = (log_alpha + math.log(1 + log_alpha)) * (canary_trials + baseline_trials) / tuned_for
    half = se * math.sqrt((1 + 1 / weight) * (math.log(1 + weight) + log_alpha))
    return Interval(estimate, estimate - half, estimate + half, confidence, p_baseline)


def judge(interval: Interval, allowed: float, higher_is_worse: bool) -> str:
    """Fail when the interval lies wholly beyond the allowed change on the worse side,
    pass when it lies wholly on the acceptable side of it, inconclusive otherwise."""
    if higher_is_worse:
        low, high = interval.low, interval.high
    else:
        low, high = -interval.high, -interval.low
    if low > allowed:
        return FAIL
    if high <= allowed:
        return PASS
    return INCONCLUSIVE


__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "TUNED_FOR_TRIALS", "Interval", "hodges_lehmann",
           "judge", "proportion_sequence", "u_test_p"]
