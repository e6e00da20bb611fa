"""Every check rule, table-driven: samples in, verdict and its reason (with numbers) out."""

from __future__ import annotations

import pytest

from rollout_cli.engine.checks import Sample, evaluate, worst
from rollout_cli.plan.fields import parse
from rollout_cli.plan.models import Check


def check(**spec) -> Check:
    return parse(Check, spec)


def series(*values, step: float = 300.0, start: float = 0.0) -> list[Sample]:
    return [Sample(start + i * step, v) for i, v in enumerate(values)]


ABSOLUTE = {"metric": "ok", "pass": ">= 0.95", "fail": "< 0.90"}
WINDOWED = {**ABSOLUTE, "window": "30m", "aggregate": "mean"}

CASES = [
    # id, check spec, samples, now, baseline, verdict, reason
    ("last-pass", ABSOLUTE, series(0.5, 0.97), 300, (), "pass",
     "c: last = 0.97; pass needs >= 0.95, fail at < 0.90 -> pass"),
    ("last-fail", ABSOLUTE, series(0.99, 0.85), 300, (), "fail",
     "c: last = 0.85; pass needs >= 0.95, fail at < 0.90 -> fail"),
    ("between-bands", ABSOLUTE, series(0.92), 0, (), "inconclusive",
     "c: last = 0.92; pass needs >= 0.95, fail at < 0.90 -> inconclusive"),
    ("boundary-pass", ABSOLUTE, series(0.95), 0, (), "pass",
     "c: last = 0.95; pass needs >= 0.95, fail at < 0.90 -> pass"),
    ("boundary-fail-band-excludes", ABSOLUTE, series(0.90), 0, (), "inconclusive",
     "c: last = 0.9; pass needs >= 0.95, fail at < 0.90 -> inconclusive"),
    ("mean-window", WINDOWED, series(0.80, 0.90, 0.92, 0.914, 0.9), 1200, (), "fail",
     "c: mean over 30m (5 samples) = 0.8868; pass needs >= 0.95, fail at < 0.90 -> fail"),
    ("window-drops-old", {**WINDOWED, "window": "10m"}, series(0.1, 0.1, 0.96, 0.97, 0.98),
     1200, (), "pass", "c: mean over 10m (3 samples) = 0.97; pass needs >= 0.95, fail at < "
     "0.90 -> pass"),
    ("min", {**WINDOWED, "aggregate": "min"}, series(0.99, 0.89, 0.99), 600, (), "fail",
     "c: min over 30m (3 samples) = 0.89; pass needs >= 0.95, fail at < 0.90 -> fail"),
    ("max", {"metric": "ms", "window": "30m", "aggregate": "max", "fail": "> 15000"},
     series(9000, 16000, 8000), 600, (), "fail",
     "c: max over 30m (3 samples) = 1.6e+04; fail at > 15000 -> fail"),
    ("p50", {"metric": "ms", "window": "1h", "aggregate": "p50", "pass": "<= 100"},
     series(10, 20, 300, 40, 50), 1200, (), "pass",
     "c: p50 over 1h (5 samples) = 40; pass needs <= 100 -> pass"),
    ("p95", {"metric": "ms", "window": "1h", "aggregate": "p95", "pass": "<= 100"},
     series(10, 20, 300, 40, 50), 1200, (), "fail",
     "c: p95 over 1h (5 samples) = 250; pass needs <= 100 -> fail"),
    ("p99", {"metric": "ms", "window": "1h", "aggregate": "p99", "pass": "<= 300",
             "fail": "> 400"}, series(*range(100)), 99 * 300, (), "pass",
     "c: p99 over 1h (13 samples) = 98.88; pass needs <= 300, fail at > 400 -> pass"),
    ("only-fail-band-passes-outside-it", {"metric": "alerts", "fail": "> 0"}, series(0), 0, (),
     "pass", "c: last = 0; fail at > 0 -> pass"),
    ("only-pass-band-fails-outside-it", {"metric": "x", "pass": "== 0"}, series(2), 0, (),
     "fail", "c: last = 2; pass needs == 0 -> fail"),
    ("baseline-degraded", {"metric": "m", "baseline": "l", "pass": "<= +0%", "fail": "> +20%"},
     series(1400), 0, series(1000), "fail",
     "c: last = 1400 vs baseline l 1000 (+40.0%); pass needs <= +0%, fail at > +20% -> fail"),
    ("baseline-between", {"metric": "m", "baseline": "l", "pass": "<= +0%", "fail": "> +20%"},
     series(1100), 0, series(1000), "inconclusive",
     "c: last = 1100 vs baseline l 1000 (+10.0%); pass needs <= +0%, fail at > +20% -> "
     "inconclusive"),
    ("baseline-improved", {"metric": "m", "baseline": "l", "pass": "<= +0%", "fail": "> +20%"},
     series(800), 0, series(1000), "pass",
     "c: last = 800 vs baseline l 1000 (-20.0%); pass needs <= +0%, fail at > +20% -> pass"),
    ("baseline-lower-is-worse", {"metric": "m", "baseline": "l", "fail": "< -5%"},
     series(0.90), 0, series(0.97), "fail",
     "c: last = 0.9 vs baseline l 0.97 (-7.2%); fail at < -5% -> fail"),
    ("baseline-windowed", {"metric": "m", "baseline": "l", "window": "10m", "fail": "> +20%"},
     series(100, 130, 130), 600, series(100, 100, 100), "pass",
     "c: mean over 10m (3 samples) = 120 vs baseline l 100 (+20.0%); fail at > +20% -> pass"),
    ("baseline-without-data", {"metric": "m", "baseline": "l", "fail": "> +20%"},
     series(100), 0, [Sample(0, None)], "inconclusive",
     "c: baseline l has no data; no_data: inconclusive -> inconclusive"),
    ("baseline-zero", {"metric": "m", "baseline": "l", "fail": "> +20%"},
     series(5), 0, series(0), "inconclusive", "c: baseline l is 0; no relative change -> "
     "inconclusive"),
    ("trend-leak", {"metric": "heap", "trend": "1h", "pass": "<= 10/h", "fail": "> 50/h"},
     series(*[400 + 10 * i for i in range(12)]), 3300, (), "fail",
     "c: slope over 1h (12 samples) = +120/h; pass needs <= 10/h, fail at > 50/h -> fail"),
    ("trend-flat", {"metric": "heap", "trend": "1h", "pass": "<= 10/h", "fail": "> 50/h"},
     series(400, 402, 398, 401, 399, 400), 1500, (), "pass",
     "c: slope over 1h (6 samples) = -2.057/h; pass needs <= 10/h, fail at > 50/h -> pass"),
    ("trend-per-minute-units", {"metric": "heap", "trend": "10m", "fail": "> 1/m"},
     series(0, 2, 4, step=60), 120, (), "fail",
     "c: slope over 10m (3 samples) = +2/m; fail at > 1/m -> fail"),
    ("trend-per-second-units", {"metric": "heap", "trend": "4s", "pass": "<= 4/s", "fail": "> 8/s"},
     series(0, 10, 20, step=1), 2, (), "fail",
     "c: slope over 4s (3 samples) = +10/s; pass needs <= 4/s, fail at > 8/s -> fail"),
    ("no-data-inconclusive", ABSOLUTE, [Sample(0, None)], 0, (), "inconclusive",
     "c: no data (1 answer had no value); no_data: inconclusive -> inconclusive"),
    ("no-data-fail", {**ABSOLUTE, "no_data": "fail"}, [Sample(0, None)], 0, (), "fail",
     "c: no data (1 answer had no value); no_data: fail -> fail"),
    ("no-data-ignore-never-a-pass", {**ABSOLUTE, "no_data": "ignore"}, [], 0, (), "ignored",
     "c: no data (0 answers had no value); no_data: ignore -> ignored"),
    ("stale-sample-is-no-data", {**WINDOWED, "window": "5m"}, series(0.99), 3600, (),
     "inconclusive", "c: no data (0 answers in 5m had no value); no_data: inconclusive -> "
     "inconclusive"),
    ("min-samples", {**WINDOWED, "min_samples": 3}, series(0.99, 0.99), 300, (), "inconclusive",
     "c: 2 samples in 30m, needs 3 -> inconclusive"),
    ("error", ABSOLUTE, [Sample(0, 0.99), Sample(300, None, "connect error: refused")], 300, (),
     "error", "c: metric ok failed: connect error: refused -> error"),
]


@pytest.mark.parametrize(("spec", "samples", "now", "baseline", "phase", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_rule(spec, samples, now, baseline, phase, reason):
    verdict = evaluate("c", check(**spec), samples, now, baseline)

    assert (verdict.phase, verdict.reason) == (phase, reason)


def test_stage_bound_excludes_earlier_stages():
    samples = series(0.5, 0.5, 0.99, 0.99)

    verdict = evaluate("c", check(**WINDOWED), samples, 900, since=600)

    assert (verdict.phase, verdict.value) == ("pass", 0.99)


def test_too_few_samples_is_marked_as_warming_up():
    verdict = evaluate("c", check(**{**WINDOWED, "min_samples": 3}), series(0.99), 0)

    assert verdict.warming_up and verdict.phase == "inconclusive"


@pytest.mark.parametrize(("phases", "expected"), [
    ([], "pass"), (["pass", "inconclusive"], "inconclusive"),
    (["inconclusive", "error"], "error"), (["error", "fail", "pass"], "fail"),
])
def test_worst_phase_wins(phases, expected):
    assert worst(phases) == expected
