"""build_report on hand-written journals: decisions, bounded series, escaping."""

from __future__ import annotations

from types import SimpleNamespace

from rollout_cli.engine.events import from_json
from rollout_cli.render.report_view import to_html, to_markdown
from rollout_cli.report import MAX_POINTS, build_report

META = SimpleNamespace(id="r-1", plan_name="p", created=None)


def _analysis(time: float, value: float, phase: str = "pass") -> dict:
    return {"type": "analysis", "time": time, "scope": "stage", "stage": 0,
            "run": {"started": 0.0, "next_due": time, "rounds": 1, "phase": phase, "message": "", "verdicts": [
                {"check": "errors", "phase": phase, "value": value,
                 "reason": f"errors: last = {value}; pass needs <= 0.05, fail at > 0.1 -> "
                           f"{phase}"}]}}


def test_operator_decisions_keep_who_forced_and_reason():
    events = [
        {"type": "created", "time": 0},
        {"type": "stage-started", "time": 1, "stage": 0, "name": "c1", "percentage": 5},
        {"type": "paused", "time": 2, "reason": "looks odd", "who": "ann"},
        {"type": "resumed", "time": 3, "who": "ann"},
        {"type": "gate-approved", "time": 4, "stage": 0, "who": "bob", "forced": True,
         "reason": "hotfix"},
        {"type": "promoted-full", "time": 5, "who": "bob", "reason": "all good"},
        {"type": "succeeded", "time": 6},
    ]
    report = build_report(META, map(from_json, events))

    assert [(d.kind, d.who, d.forced) for d in report.decisions] == [
        ("paused", "ann", False), ("resumed", "ann", False), ("gate-approved", "bob", True),
        ("promoted-full", "bob", False), ("succeeded", None, False)]
    assert "hotfix" in report.decisions[2].reason and report.outcome == "succeeded"
    assert report.decisions[2].stage == "c1"


def test_series_stay_bounded_and_evenly_strided():
    events = (_analysis(float(t), t / 10_000) for t in range(10_000))
    series = build_report(META, map(from_json, events)).checks["errors"]

    assert series.seen == 10_000 and len(series.points) <= MAX_POINTS
    assert series.stride > 1
    gaps = {round(b[0] - a[0]) for a, b in zip(series.points, series.points[1:], strict=False)}
    assert gaps == {series.stride}


def test_thresholds_come_from_the_verdict_without_a_plan():
    series = build_report(META, [from_json(_analysis(1.0, 0.2, "fail"))]).checks["errors"]

    assert (series.pass_text, series.fail_text) == ("<= 0.05", "> 0.1")
    assert to_html(build_report(META, [from_json(_analysis(1.0, 0.2, "fail"))])).count(
        'class="threshold"') == 2


def test_journal_text_is_escaped_in_html_and_markdown_cells():
    events = [{"type": "stage-started", "time": 1, "stage": 0, "name": "<b>x</b>",
               "percentage": None},
              {"type": "rollback-started", "time": 2, "reason": "<script>alert(1)</script>",
               "who": "a|b"},
              {"type": "intent", "time": 3, "call_id": "rollback#1:0", "kind": "rollback",
               "line": "POST https://h/x?a=<i>"},
              {"type": "outcome", "time": 4, "call_id": "rollback#1:0", "ok": False,
               "status": 500, "error": "boom", "attempts": 3},
              {"type": "rollback-failed", "time": 5, "reason": "step 0 failed"}]
    report = build_report(META, map(from_json, events))
    html = to_html(report)

    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>x" not in html
    assert "FAILED 500, 3 attempts" in html
    assert report.rollbacks[0].outcome == "rollback-failed"
    assert "a\\|b" in to_markdown(report)


def _round(time: float, check: str, value: float | None, phase: str, reason: str) -> dict:
    return {"type": "analysis", "time": time, "scope": "stage", "stage": 0,
            "run": {"started": 0.0, "next_due": time, "rounds": 1, "phase": phase,
                    "message": "", "verdicts": [{"check": check, "phase": phase,
                                                 "value": value, "reason": reason}]}}


def test_rounds_that_repeat_at_a_gate_collapse_into_one_decision():
    events = [{"type": "stage-started", "time": 0, "stage": 0, "name": "c1", "percentage": 5}]
    events += [_round(10.0 + t, "rate", 0.93, "inconclusive",
                      f"rate: last = 0.9{t % 3}; pass needs >= 0.95, fail at < 0.90 -> "
                      "inconclusive") for t in range(20)]
    events += [{"type": "paused", "time": 40, "reason": "inconclusive"}]
    report = build_report(META, map(from_json, events))

    [repeated, paused] = report.decisions
    assert (repeated.kind, repeated.repeats, repeated.time, repeated.last) == (
        "analysis", 20, 10.0, 29.0)
    assert "0.91" in repeated.reason and paused.kind == "paused"
    assert "| analysis ×20 (until 1970-01-01 00:00:29 UTC) |" in to_markdown(report)  # noqa: RUF001


def test_every_chart_draws_its_thresholds_in_their_unit_with_a_time_axis():
    baseline = "latency: mean over 1s (1 sample) = 8820 vs baseline legacy 7000 (+26.0%); " \
               "pass needs <= +0%, fail at > +20% -> fail"
    trend = "heap: slope over 4s (6 samples) = +10/s; pass needs <= 4/s, fail at > 8/s -> fail"
    events = [_round(100.0, "latency", 0.26, "fail", baseline),
              _round(160.0, "latency", 0.30, "fail", baseline),
              _round(100.0, "heap", 36000.0, "fail", trend),
              _round(160.0, "heap", 36000.0, "fail", trend)]
    html = to_html(build_report(META, map(from_json, events)))
    latency, heap = html.split("<svg")[1:]

    assert latency.count('class="threshold"') == 2 and heap.count('class="threshold"') == 2
    assert ">pass &lt;= +0%<" in latency and ">fail &gt; +20%<" in latency
    assert "fail 30%" in latency                  # the tooltip of a point, in percent
    assert "fail 10/s" in heap                    # the slope per second, as its thresholds
    assert latency.count('class="time-tick"') >= 3 and "00:01:40" in latency


def test_a_gap_in_the_values_is_drawn_as_a_gap():
    reason = "errors: last = 0.01; pass needs <= 0.05, fail at > 0.1 -> pass"
    times = [0, 10, 20, 30, 300, 310, 320]        # a pause from 30 s to 300 s
    events = [_round(float(t), "errors", 0.01, "pass", reason) for t in times]
    events.insert(2, _round(15.0, "errors", None, "error", "errors: metric failed -> error"))
    html = to_html(build_report(META, map(from_json, events)))

    assert html.count('class="values"') == 3      # broken at the error and at the pause
