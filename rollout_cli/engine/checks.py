"""From a metric's measurements to a verdict with its reason, the numbers included (pure).

Verdicts, best to worst: pass < inconclusive < error < fail; an analysis takes the worst.
Missing data is never a pass: under ``no_data: ignore`` a check without data is *ignored*,
which drops it from its round rather than passing it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rollout_cli.plan.durations import format_duration
from rollout_cli.plan.expressions import slope_text
from rollout_cli.plan.models import Check
from rollout_cli.words import counted

PASS, INCONCLUSIVE, ERROR, FAIL = "pass", "inconclusive", "error", "fail"
IGNORED = "ignored"
ORDER = {IGNORED: -1, PASS: 0, INCONCLUSIVE: 1, ERROR: 2, FAIL: 3}


@dataclass(frozen=True)
class Sample:
    time: float
    value: float | None          # None: the source answered, without data
    error: str | None = None     # the source failed


@dataclass(frozen=True)
class Verdict:
    check: str
    phase: str
    reason: str
    value: float | None = None
    warming_up: bool = False     # too few samples yet: not counted against limits
    dry_run: bool = False


@dataclass(frozen=True)
class Sides:
    """What a compare check reads: the canary's and the baseline's samples, a sequential
    compare's trials, and per series whether each measurement is a whole window of points
    (a range query), so that only the latest one counts."""

    canary: Sequence[Sample]
    baseline: Sequence[Sample]
    canary_trials: Sequence[Sample] = ()
    baseline_trials: Sequence[Sample] = ()
    whole: tuple[bool, bool, bool, bool] = (False, False, False, False)


def worst(phases: Sequence[str]) -> str:
    return max(phases, key=ORDER.__getitem__, default=PASS)


def evaluate(name: str, check: Check, samples: Sequence[Sample], now: float,
             baseline: Sequence[Sample] = (), since: float | None = None,
             sides: Sides | None = None) -> Verdict:
    """Judge ``check`` on ``samples`` (oldest first) as of ``now``.

    ``since`` bounds the window from below, so a stage is judged on its own traffic. A
    compare check takes its samples from ``sides`` (see ``Sides``) instead.
    """
    def verdict(phase: str, reason: str, value: float | None = None, warming: bool = False
                ) -> Verdict:
        return Verdict(name, phase, f"{name}: {reason} -> {phase}", value, warming,
                       check.dry_run)

    if check.compare is not None:
        from rollout_cli.engine.compare_check import judge_compare

        return judge_compare(check, sides or Sides(samples, baseline), now, since, verdict,
                             lambda reason: _no_data(check, verdict, reason))

    span = check.span
    start = max(now - span, since if since is not None else -math.inf) if span else (
        since if since is not None else -math.inf)
    recent = [s for s in samples if s.time >= start] if span else _latest(samples, start)
    if recent and recent[-1].error is not None:
        return verdict(ERROR, f"metric {check.metric} failed: {recent[-1].error}")
    values = [s.value for s in recent if s.error is None and s.value is not None]
    where = f" in {format_duration(span)}" if span else ""
    if not values:
        return _no_data(check, verdict,
                        f"no data ({counted(len(recent), 'answer')}{where} had no value)")
    if len(values) < check.min_samples:
        return verdict(INCONCLUSIVE, f"{counted(len(values), 'sample')}{where}, needs "
                       f"{check.min_samples}", warming=True)
    if check.trend:
        return _judge(check, verdict, *_trend(recent, check))
    observed, label = _aggregate(check, values)
    if check.window:
        label += f" ({counted(len(values), 'sample')})"
    if check.baseline is None:
        return _judge(check, verdict, observed, label)
    base_recent = [s for s in baseline if s.time >= start and s.error is None
                   and s.value is not None] if span else _latest(baseline, start)
    base_values = [s.value for s in base_recent if s.value is not None and s.error is None]
    if not base_values:
        return _no_data(check, verdict, f"baseline {check.baseline} has no data{where}")
    base, _ = _aggregate(check, base_values)
    if base == 0:
        return verdict(INCONCLUSIVE, f"baseline {check.baseline} is 0; no relative change")
    change = (observed - base) / abs(base)
    return _judge(check, verdict, change, f"{label} = {_num(observed)} vs baseline "
                  f"{check.baseline} {_num(base)} ({change * 100:+.1f}%)", shown=False)


def _latest(samples: Sequence[Sample], start: float) -> list[Sample]:
    return [samples[-1]] if samples and samples[-1].time >= start else []


def _no_data(check: Check, verdict, reason: str) -> Verdict:  # type: ignore[no-untyped-def]
    if check.no_data == "fail":
        return verdict(FAIL, f"{reason}; no_data: fail")
    if check.no_data == "ignore":
        return verdict(IGNORED, f"{reason}; no_data: ignore")
    return verdict(INCONCLUSIVE, f"{reason}; no_data: inconclusive")


def _aggregate(check: Check, values: Sequence[float]) -> tuple[float, str]:
    kind = check.effective_aggregate
    if kind == "last" or not check.window:
        return values[-1], "last"
    label = f"{kind} over {format_duration(check.window)}"
    if kind == "mean":
        return math.fsum(values) / len(values), label
    if kind == "min":
        return min(values), label
    if kind == "max":
        return max(values), label
    return _percentile(values, int(kind[1:])), label


def _percentile(values: Sequence[float], p: int) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _trend(samples: Sequence[Sample], check: Check) -> tuple[float, str]:
    """Least-squares slope of value over time, per hour (shown in the thresholds' unit)."""
    points = [(s.time, s.value) for s in samples if s.value is not None and s.error is None]
    n = len(points)
    mean_t = math.fsum(t for t, _ in points) / n
    mean_v = math.fsum(v for _, v in points) / n
    spread = math.fsum((t - mean_t) ** 2 for t, _ in points)
    slope = 0.0 if spread == 0 else math.fsum(
        (t - mean_t) * (v - mean_v) for t, v in points) / spread
    per_hour = slope * 3600
    return per_hour, f"slope over {format_duration(check.trend or 0)} ({counted(n, 'sample')}) = " \
                      f"{slope_text(per_hour, check.pass_, check.fail)}"


def _judge(check: Check, verdict, observed: float, label: str, shown: bool = True  # type: ignore[no-untyped-def]
           ) -> Verdict:
    text = f"{label} = {_num(observed)}" if shown and check.trend is None else label
    bands = []
    if check.pass_:
        bands.append(f"pass needs {check.pass_}")
    if check.fail:
        bands.append(f"fail at {check.fail}")
    text += "; " + ", ".join(bands)
    if check.fail is not None and check.fail.holds(observed):
        return verdict(FAIL, text, observed)
    if check.pass_ is not None:
        phase = PASS if check.pass_.holds(observed) else (
            INCONCLUSIVE if check.fail is not None else FAIL)
        return verdict(phase, text, observed)
    return verdict(PASS, text, observed)


def _num(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"
