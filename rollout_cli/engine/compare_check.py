"""A compare check's verdict: its samples over the window, the statistics of its method
(``engine.compare``), and a reason with the estimate and its interval (pure).

    latency-vs-legacy: modern_latency_ms vs legacy_latency_ms: +9.1% [+6.0%, +12.3%] at 98%
    (180 vs 180 samples in 30m, U test p=1e-09); allowed +5% -> fail

An inconclusive compare is *warming up*, never counted against the analysis's
``inconclusive_limit``: too few samples on a side, or an interval that still straddles the
allowed change, both mean "not enough evidence yet", and more baking brings more. The
stage still cannot complete on it: a stage completes on a round that passes, and a bake
range (2h..4h) that ends without one pauses the rollout for a person.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rollout_cli.engine import compare as stats
from rollout_cli.engine.checks import ERROR, FAIL, INCONCLUSIVE, Sides, Verdict
from rollout_cli.plan.durations import format_duration
from rollout_cli.plan.models import Check, Compare

Make = Callable[..., Verdict]


def judge_compare(check: Check, sides: Sides, now: float, since: float | None, verdict: Make,
                  no_data: Callable[[str], Verdict]) -> Verdict:
    compare: Compare = check.compare  # type: ignore[assignment]
    window = check.window or 0.0
    start = max(now - window, since if since is not None else -math.inf)
    named = [check.metric, check.baseline, compare.trials, compare.baseline_trials]
    series = [sides.canary, sides.baseline, sides.canary_trials, sides.baseline_trials]
    values: list[list[float]] = []
    for metric, samples, whole in zip(named, series, sides.whole, strict=False):
        if metric is None:
            continue
        recent = [s for s in samples if s.time >= start]
        if recent and recent[-1].error is not None:
            return verdict(ERROR, f"metric {metric} failed: {recent[-1].error}")
        if whole and recent:
            recent = [s for s in recent if s.time == recent[-1].time]
        found = [s.value for s in recent if s.error is None and s.value is not None]
        if not found:
            return no_data(f"{metric} has no data in {format_duration(window)}")
        values.append(found)
    where = format_duration(window)
    if compare.method == "sequential":
        return _sequential(check, compare, values, where, verdict)
    return _mann_whitney(check, compare, values[0], values[1], where, verdict)


def _mann_whitney(check: Check, compare: Compare, canary: Sequence[float],
                  baseline: Sequence[float], where: str, verdict: Make) -> Verdict:
    counts = f"{len(canary)} vs {len(baseline)} samples in {where}"
    if min(len(canary), len(baseline)) < compare.least:
        return verdict(INCONCLUSIVE, f"{counts}, needs {compare.least} a side", warming=True)
    interval = stats.hodges_lehmann(canary, baseline, compare.confidence)
    if compare.allowed.relative:
        if interval.reference == 0:
            return verdict(INCONCLUSIVE, f"baseline {check.baseline}'s median is 0; no "
                           "relative change")
        interval = interval.relative()
    phase = stats.judge(interval, compare.allowed.value, compare.worse == "higher")
    # The U test's p-value where an operator reads why: on a failure (scipy's import
    # costs half a second, too much for every round of every rollout).
    detail = counts if phase != FAIL else \
        f"{counts}, U test p={stats.u_test_p(canary, baseline):.2g}"
    return _verdict(check, compare, interval, detail, verdict)


def _sequential(check: Check, compare: Compare, values: list[list[float]], where: str,
                verdict: Make) -> Verdict:
    events_c, events_b, trials_c, trials_b = (math.fsum(v) for v in values)
    counts = (f"{_num(events_c)}/{_num(trials_c)} vs {_num(events_b)}/{_num(trials_b)} "
              f"in {where}")
    if min(trials_c, trials_b) < compare.least:
        return verdict(INCONCLUSIVE, f"{counts}, needs {compare.least} trials a side",
                       warming=True)
    if events_c > trials_c or events_b > trials_b or min(events_c, events_b) < 0:
        return verdict(ERROR, f"{counts}: the events are not a part of the trials; "
                       f"`{check.metric}:` and `{check.baseline}:` count events, "
                       "`trials:` and `baseline_trials:` count what they are a part of")
    interval = stats.proportion_sequence(events_c, trials_c, events_b, trials_b,
                                         compare.confidence)
    detail = (f"{events_c / trials_c:.2%} of {_num(trials_c)} vs {events_b / trials_b:.2%} "
              f"of {_num(trials_b)}, anytime-valid")
    return _verdict(check, compare, interval, detail, verdict)


def _verdict(check: Check, compare: Compare, interval: stats.Interval, detail: str,
             verdict: Make) -> Verdict:
    higher = compare.worse == "higher"
    phase = stats.judge(interval, compare.allowed.value, higher)
    show = _percent if compare.allowed.relative else (
        _points if compare.method == "sequential" else _signed)
    sign = "+" if higher else "-"
    allowed = compare.allowed.text.lstrip("+")
    return verdict(phase, f"{check.metric} vs {check.baseline}: {show(interval.estimate)} "
                   f"[{show(interval.low)}, {show(interval.high)}] at "
                   f"{interval.confidence * 100:.4g}% ({detail}); allowed {sign}{allowed}",
                   interval.estimate, warming=phase == INCONCLUSIVE)


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%" if math.isfinite(value) else ("+inf" if value > 0 else "-inf")


def _points(value: float) -> str:
    return f"{value * 100:+.2f} points" if math.isfinite(value) else "inf"


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def _num(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.4g}"
