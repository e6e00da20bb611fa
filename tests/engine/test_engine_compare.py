"""The statistics of compare checks: properties (hypothesis) and seeded simulations.

The simulations are the claims a user relies on: judged every interval, a healthy canary
is rolled back at most as often as the confidence allows, and a real shift is caught.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout_cli.engine.compare import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Interval,
    hodges_lehmann,
    judge,
    proportion_sequence,
    u_test_p,
)

VALUES = st.lists(st.floats(min_value=1, max_value=10_000, allow_nan=False), min_size=12,
                  max_size=40)


@settings(max_examples=60, deadline=None)
@given(VALUES, VALUES, st.floats(min_value=-500, max_value=500, allow_nan=False))
def test_hodges_lehmann_moves_with_a_shift_of_the_canary(canary, baseline, shift):
    before = hodges_lehmann(canary, baseline, 0.98)
    after = hodges_lehmann([v + shift for v in canary], baseline, 0.98)
    assert abs(after.estimate - (before.estimate + shift)) < 1e-6
    assert abs(after.low - (before.low + shift)) < 1e-6
    assert abs(after.high - (before.high + shift)) < 1e-6
    assert after.low <= after.estimate <= after.high


@settings(max_examples=60, deadline=None)
@given(VALUES, VALUES)
def test_a_higher_confidence_never_narrows_the_interval(canary, baseline):
    narrow = hodges_lehmann(canary, baseline, 0.90)
    wide = hodges_lehmann(canary, baseline, 0.99)
    assert wide.low <= narrow.low and wide.high >= narrow.high


COUNTS = st.integers(min_value=100, max_value=100_000)


@settings(max_examples=200, deadline=None)
@given(COUNTS, COUNTS, st.floats(0, 1), st.floats(0, 1), st.floats(0.5, 0.999))
def test_the_sequence_holds_its_estimate_and_widens_with_confidence(n_c, n_b, p_c, p_b, level):
    events_c, events_b = round(n_c * p_c), round(n_b * p_b)
    interval = proportion_sequence(events_c, n_c, events_b, n_b, level)
    wider = proportion_sequence(events_c, n_c, events_b, n_b, min(0.9999, level + 0.0005))
    assert interval.low < interval.estimate < interval.high
    assert wider.low <= interval.low and wider.high >= interval.high


@given(st.floats(-1, 1), st.floats(0, 1), st.floats(0, 0.5), st.floats(0, 0.5),
       st.booleans())
def test_a_verdict_is_pass_fail_or_inconclusive_by_where_the_interval_lies(
        estimate, allowed, below, above, higher_is_worse):
    interval = Interval(estimate, estimate - below, estimate + above, 0.95, 1.0)
    worse_low, worse_high = ((interval.low, interval.high) if higher_is_worse
                             else (-interval.high, -interval.low))
    verdict = judge(interval, allowed, higher_is_worse)
    expected = FAIL if worse_low > allowed else PASS if worse_high <= allowed else INCONCLUSIVE
    assert verdict == expected


def _peeked_sequence(rng: random.Random, p_canary: float, p_baseline: float, peeks: int,
                     level: float, allowed: float = 0.0) -> str:
    """Counts arriving in batches, the sequence judged after every one, as a bake does:
    the first pass or fail, or inconclusive to the end."""
    events_c = trials_c = events_b = trials_b = 0
    for _ in range(peeks):
        trials_c, trials_b = trials_c + 300, trials_b + 900
        events_c += sum(rng.random() < p_canary for _ in range(300))
        events_b += sum(rng.random() < p_baseline for _ in range(900))
        verdict = judge(proportion_sequence(events_c, trials_c, events_b, trials_b, level),
                        allowed, True)
        if verdict == FAIL:
            return FAIL
    return INCONCLUSIVE


def test_peeking_every_interval_keeps_false_alarms_at_the_level_asked():
    """A canary exactly as good as its baseline, judged after each of 60 batches: how
    often is it ever failed? At 95% confidence, at most 5% of 300 seeded bakes (a fixed
    sample; a test that peeked at a plain z-interval 60 times fails about a third)."""
    rng = random.Random(18)
    runs = 300
    alarms = sum(_peeked_sequence(rng, 0.03, 0.03, 60, 0.95) == FAIL for _ in range(runs))
    assert alarms / runs <= 0.05


def test_a_plain_interval_peeked_as_often_would_have_alarmed_far_more():
    """The yardstick for the test above: the same bakes with a fixed-sample 95% interval."""
    rng = random.Random(18)
    runs, alarms = 300, 0
    for _ in range(runs):
        events_c = trials_c = events_b = trials_b = 0
        for _ in range(60):
            trials_c, trials_b = trials_c + 300, trials_b + 900
            events_c += sum(rng.random() < 0.03 for _ in range(300))
            events_b += sum(rng.random() < 0.03 for _ in range(900))
            p_c, p_b = events_c / trials_c, events_b / trials_b
            se = (p_c * (1 - p_c) / trials_c + p_b * (1 - p_b) / trials_b) ** 0.5
            if p_c - p_b - 1.96 * se > 0:
                alarms += 1
                break
    assert alarms / runs > 0.05


def test_one_point_more_errors_is_caught():
    """3% vs 4% errors, 300 canary requests a batch: failed in at least 95% of 100 bakes."""
    rng = random.Random(7)
    caught = sum(_peeked_sequence(rng, 0.04, 0.03, 60, 0.95, allowed=0.002) == FAIL
                 for _ in range(100))
    assert caught >= 95


def test_an_eight_percent_slower_canary_is_told_apart_from_noise():
    """Per-10-second mean latencies (log-normal, 20% spread): +8% over 360 points a side
    (an hour) is failed; the same canary without the shift passes against +8%."""
    rng = random.Random(3)
    slow_failed = same_passed = 0
    for _ in range(40):
        baseline = [rng.lognormvariate(0, 0.2) for _ in range(360)]
        canary = [rng.lognormvariate(0, 0.2) for _ in range(360)]
        shifted = [v * 1.08 for v in canary]
        slow = hodges_lehmann(shifted, baseline, 0.98).relative()
        same = hodges_lehmann(canary, baseline, 0.98).relative()
        slow_failed += judge(slow, 0.0, True) == FAIL
        same_passed += judge(same, 0.08, True) == PASS
    assert slow_failed >= 36
    assert same_passed >= 38


def test_the_u_test_agrees_with_the_interval():
    canary, baseline = [10.0 + i for i in range(20)], [1.0 + i for i in range(20)]
    interval = hodges_lehmann(canary, baseline, 0.98)
    assert interval.estimate == 9.0
    assert interval.low <= 9.0 <= interval.high
    assert interval.low > 0 and u_test_p(canary, baseline) < 0.02   # excludes 0: p < 2%


# --- compare checks: samples in, verdict and reason out ------------------------------------

from rollout_cli.engine.checks import Sample, Sides, evaluate  # noqa: E402
from rollout_cli.plan.fields import parse  # noqa: E402
from rollout_cli.plan.models import Check  # noqa: E402


def compare_check(**compare) -> Check:
    return parse(Check, {"metric": "modern", "baseline": "legacy", "window": "1h",
                         "compare": compare})


def points(values, time: float = 3000.0) -> list[Sample]:
    return [Sample(time, v) for v in values]


def test_a_slower_canary_fails_with_its_estimate_and_interval_in_the_reason():
    rng = random.Random(5)
    legacy = points([rng.gauss(100, 5) for _ in range(60)])
    modern = points([rng.gauss(112, 5) for _ in range(60)])
    check = compare_check(method="mann-whitney", allowed="+5%", confidence=0.98)
    verdict = evaluate("p95-vs-legacy", check, modern, 3600, legacy)
    assert verdict.phase == "fail"
    assert verdict.reason.startswith("p95-vs-legacy: modern vs legacy: +1")
    assert "at 98% (60 vs 60 samples in 1h, U test p=" in verdict.reason
    assert verdict.reason.endswith("; allowed +5% -> fail")
    assert 0.09 < verdict.value < 0.15


def test_the_same_canary_passes_a_wider_allowance_and_is_inconclusive_at_its_edge():
    rng = random.Random(5)
    legacy = points([rng.gauss(100, 5) for _ in range(60)])
    modern = points([rng.gauss(112, 5) for _ in range(60)])
    wide = evaluate("c", compare_check(method="mann-whitney", allowed="+20%"), modern, 3600,
                    legacy)
    edge = evaluate("c", compare_check(method="mann-whitney", allowed="+12%"), modern, 3600,
                    legacy)
    assert (wide.phase, edge.phase) == ("pass", "inconclusive")
    assert "U test" not in wide.reason                 # shown on a failure only


def test_lower_is_worse_flips_the_side():
    rng = random.Random(5)
    legacy = points([rng.gauss(100, 5) for _ in range(60)])
    modern = points([rng.gauss(112, 5) for _ in range(60)])
    verdict = evaluate("c", compare_check(method="mann-whitney", worse="lower"), modern, 3600,
                       legacy)
    assert verdict.phase == "pass"
    assert verdict.reason.endswith("; allowed -0% -> pass")


def test_too_few_samples_is_a_warming_up_inconclusive():
    check = compare_check(method="mann-whitney")
    verdict = evaluate("c", check, points(range(30)), 3600, points(range(60)))
    assert (verdict.phase, verdict.warming_up) == ("inconclusive", True)
    assert "30 vs 60 samples in 1h, needs 50 a side" in verdict.reason


def test_samples_outside_the_window_or_before_the_stage_do_not_count():
    check = compare_check(method="mann-whitney", min_samples=3)
    old = [Sample(100.0, 1000.0)] * 5
    verdict = evaluate("c", check, old + points([1, 2, 3]), 3600, points([1, 2, 3, 4]),
                       since=2000)
    assert "3 vs 4 samples" in verdict.reason


def test_a_range_query_counts_only_its_latest_answer():
    check = compare_check(method="mann-whitney", min_samples=3)
    first, latest = points([9.0] * 5, time=3000), points([1.0, 2.0, 3.0], time=3300)
    sides = Sides(first + latest, points([1.0, 2.0, 3.0, 4.0]), whole=(True, False, False,
                                                                       False))
    verdict = evaluate("c", check, [], 3600, [], None, sides)
    assert "3 vs 4 samples" in verdict.reason


def test_a_failed_source_is_an_error_and_no_data_follows_no_data():
    check = compare_check(method="mann-whitney")
    failed = evaluate("c", check, [Sample(3000, None, "HTTP 503")], 3600, points([1.0]))
    empty = evaluate("c", check, [], 3600, points([1.0]))
    assert failed.phase == "error" and "metric modern failed: HTTP 503" in failed.reason
    assert empty.phase == "inconclusive" and "modern has no data in 1h" in empty.reason


def sequential(**extra) -> Check:
    return compare_check(method="sequential", trials="modern_requests",
                         baseline_trials="legacy_requests", confidence=0.95, **extra)


def test_a_sequential_compare_adds_up_the_counts_of_the_stage():
    errors_m = [Sample(t, 400.0) for t in (600, 1200, 1800)]
    errors_l = [Sample(t, 900.0) for t in (600, 1200, 1800)]
    requests_m = [Sample(t, 10000.0) for t in (600, 1200, 1800)]
    requests_l = [Sample(t, 30000.0) for t in (600, 1200, 1800)]
    verdict = evaluate("errors", sequential(allowed="+0.002"), [], 1800, [], 0,
                       Sides(errors_m, errors_l, requests_m, requests_l))
    assert verdict.phase == "fail"
    assert ("errors: modern vs legacy: +1.00 points [+0." in verdict.reason)
    assert "at 95% (4.00% of 30000 vs 3.00% of 90000, anytime-valid); allowed +0.002 -> fail" \
        in verdict.reason


def test_a_sequential_compare_refuses_more_errors_than_requests():
    verdict = evaluate("errors", sequential(), [], 1800, [], 0, Sides(
        points([500.0]), points([1.0]), points([300.0]), points([300.0])))
    assert verdict.phase == "error"
    assert "the events are not a part of the trials" in verdict.reason


def test_an_interval_astride_the_allowance_keeps_baking_rather_than_counting():
    """Inconclusive from an interval that straddles the allowed change is "not enough
    evidence yet": warming up, so `inconclusive_limit` never pauses a bake for it."""
    rng = random.Random(5)
    legacy = points([rng.gauss(100, 5) for _ in range(60)])
    modern = points([rng.gauss(112, 5) for _ in range(60)])
    verdict = evaluate("c", compare_check(method="mann-whitney", allowed="+12%"), modern, 3600,
                       legacy)
    assert (verdict.phase, verdict.warming_up) == ("inconclusive", True)


def test_a_long_range_query_is_thinned_not_squared():
    """3600 points a side (an hour at a 1 s step) are thinned to 1000, evenly: the same
    shift, found without 13 million differences."""
    canary = [100.0 + (i % 50) + 10 for i in range(3600)]
    baseline = [100.0 + (i % 50) for i in range(3600)]
    interval = hodges_lehmann(canary, baseline, 0.98)
    assert interval.estimate == 10.0
    assert interval.low <= 10.0 <= interval.high
