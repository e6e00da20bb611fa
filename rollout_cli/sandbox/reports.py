"""The JSON the simulated API answers with, built from the model under its lock.

Rates are fractions (0.975, not 97.5), latencies milliseconds, heap megabytes, times
simulated seconds since the sandbox started. A variant without requests in a window
reports ``requests: 0`` and ``null`` rates: no data is never a success rate of 1.0.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from rollout_cli.plan.durations import format_duration
from rollout_cli.sandbox.abtest import RUNNING, AbTest
from rollout_cli.sandbox.alerts import Alert
from rollout_cli.sandbox.model import (
    DASHBOARD,
    MEMORY_MANAGEMENT,
    MODERN_FLAG,
    BrainModel,
    HeapSample,
)
from rollout_cli.sandbox.traffic import BUCKET_SECONDS, ERROR_CODES, VARIANTS, Bucket, VariantStats

TREND_SECONDS = 1800.0
_ERROR_TYPES = {500: "internal", 503: "upstream-unavailable", 504: "upstream-timeout"}
_ERROR_MESSAGES = {
    500: "unhandled exception in {variant} brain handler",
    503: "{variant}: model provider unavailable",
    504: "{variant}: model provider timed out after 30000 ms",
}
# Share of requests calling each tool, and its time relative to the whole request.
_TOOLS = {
    "web_search": (0.35, 0.45),
    "knowledge_base": (0.30, 0.25),
    "code_interpreter": (0.20, 0.60),
    "calculator": (0.15, 0.02),
}
_CONCURRENCY_CAPACITY = 400.0


def _rounded(value: float | None, digits: int) -> float | int | None:
    if value is None:
        return None
    value = round(value, digits)
    return int(value) if value == int(value) else value


def variant_json(stats: VariantStats, seconds: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requests": stats.requests,
        "errors": stats.errors,
        "successRate": _rounded(stats.success_rate, 4),
        "errorRate": _rounded(stats.error_rate, 4),
        "meanLatencyMs": _rounded(stats.mean_latency_ms, 1),
        "p95LatencyMs": _rounded(stats.p95_latency_ms, 1),
    }
    if seconds is not None:
        body["requestsPerSecond"] = _rounded(stats.requests / seconds if seconds else 0.0, 3)
    return body


def _overall(stats: dict[str, VariantStats]) -> VariantStats:
    """Both variants' traffic together."""
    overall = VariantStats()
    for name in VARIANTS:
        overall.absorb(stats[name])
    return overall


def _covered_seconds(model: BrainModel, window: float) -> float:
    return len(model.buckets(window)) * BUCKET_SECONDS


def _header(model: BrainModel, window: float) -> dict[str, Any]:
    return {
        "window": format_duration(window),
        "time": _rounded(model.elapsed(), 3),
        "modernTrafficPercentage": _rounded(model.modern_percentage(), 2),
    }


def health(model: BrainModel) -> dict[str, Any]:
    return {
        "status": "ok",
        "mode": "health",
        "implementations": {"legacy": "up", "modern": "up"},
        "modernTrafficPercentage": _rounded(model.modern_percentage(), 2),
        "time": _rounded(model.elapsed(), 3),
    }


def ab_test_json(model: BrainModel) -> dict[str, Any]:
    test = model.ab_test
    if test is None:
        return {
            "testId": None,
            "status": "not-started",
            "enabled": False,
            "rolloutPercentage": 0,
            "modernTrafficPercentage": _rounded(model.modern_percentage(), 2),
        }
    config = test.config
    return {
        "testId": config.test_id,
        "name": config.name,
        "status": test.status,
        "enabled": config.enabled,
        "rolloutPercentage": _rounded(config.rollout_percentage, 2),
        "modernTrafficPercentage": _rounded(model.modern_percentage(), 2),
        "limits": {
            "maxErrorRate": _rounded(config.max_error_rate, 4),
            "minSuccessRate": _rounded(config.min_success_rate, 4),
            "maxResponseTime": _rounded(config.max_response_time_ms, 1),
        },
        "autoRollback": _auto_rollback_json(test),
        "emergencyStopped": test.emergency,
        "startedAt": _rounded(test.started_at, 3),
        "stoppedAt": _rounded(test.stopped_at, 3),
    }


def _auto_rollback_json(test: AbTest) -> dict[str, Any]:
    fired = test.rollback_reason is not None
    return {
        "enabled": test.config.enable_auto_rollback,
        "fired": fired,
        "reason": test.rollback_reason,
        "at": _rounded(test.stopped_at, 3) if fired else None,
    }


def ab_results(model: BrainModel, window: float) -> dict[str, Any]:
    stats = model.window_stats(window)
    buckets = model.history.last(window)
    return {
        **ab_test_json(model),
        "window": format_duration(window),
        "time": _rounded(model.elapsed(), 3),
        "variants": {name: {**variant_json(stats[name]),
                            "latencySamplesMs": _latency_samples(buckets, name)}
                     for name in VARIANTS},
    }


def _latency_samples(buckets: list[Bucket], variant: str) -> list[float]:
    """The mean response time of each 10-second bucket of the window that had requests,
    oldest first: the points a compare check tests, as a per-10s latency series."""
    return [round(part.latency_sum_ms / part.requests, 1) for part in
            (bucket.variant(variant) for bucket in buckets) if part.requests]


def dashboard_metrics(model: BrainModel, window: float) -> dict[str, Any]:
    stats = model.window_stats(window)
    seconds = _covered_seconds(model, window)
    overall = _overall(stats)
    return {
        **_header(model, window),
        "dashboard": _service(model, DASHBOARD),
        "overall": variant_json(overall, seconds),
        "variants": {name: variant_json(stats[name], seconds) for name in VARIANTS},
        "heapMb": _heap_totals(model),
        "alerts": alert_counts(model.alerts(window)),
        "baseline": baseline_json(model),
    }


def _service(model: BrainModel, name: str) -> dict[str, Any]:
    since = model.started.get(name)
    return {"running": since is not None, "since": _rounded(since, 3)}


def baseline_json(model: BrainModel) -> dict[str, Any] | None:
    baseline = model.baseline
    if baseline is None:
        return None
    return {
        "takenAt": _rounded(baseline.taken_at, 3),
        "window": format_duration(baseline.window),
        "variants": {name: variant_json(baseline.stats[name]) for name in VARIANTS},
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "severity": alert.severity,
        "kind": alert.kind,
        "variant": alert.variant,
        "message": alert.message,
        "value": _rounded(alert.value, 4),
        "threshold": _rounded(alert.threshold, 4),
        "raisedAt": _rounded(alert.raised_at, 3),
    }


def alert_counts(alerts: list[Alert]) -> dict[str, int]:
    warning = sum(1 for a in alerts if a.severity == "warning")
    critical = sum(1 for a in alerts if a.severity == "critical")
    return {"warning": warning, "critical": critical, "total": warning + critical}


def alerts(model: BrainModel, window: float) -> dict[str, Any]:
    found = model.alerts(window)
    return {
        **_header(model, window),
        "counts": alert_counts(found),
        "alerts": [alert_json(a) for a in found],
    }


def _heap_totals(model: BrainModel) -> dict[str, float | int | None]:
    heap = model.heap_mb()
    totals = {name: heap[name]["heapMb"] for name in VARIANTS}
    totals["total"] = sum(totals.values())
    return {name: _rounded(value, 2) for name, value in totals.items()}


def heap_trends(model: BrainModel) -> dict[str, float | None]:
    """Least-squares slope of each heap over the per-minute samples of the last
    ``TREND_SECONDS``, in MB per simulated hour."""
    recent = list(model.heap_samples)[-round(TREND_SECONDS / 60):]
    series = {
        "legacy": [s.legacy_mb for s in recent],
        "modern": [s.modern_mb for s in recent],
        "total": [s.legacy_mb + s.modern_mb for s in recent],
    }
    if len(recent) < 2:
        return dict.fromkeys(series)
    hours = [s.time / 3600.0 for s in recent]
    return {name: _rounded(statistics.linear_regression(hours, heap).slope, 2)
            for name, heap in series.items()}


def memory_stats(model: BrainModel) -> dict[str, Any]:
    heap = model.heap_mb()
    return {
        "time": _rounded(model.elapsed(), 3),
        "unit": "MB",
        "management": _service(model, MEMORY_MANAGEMENT),
        "limitMb": _rounded(model.scenario.memory.limit_mb, 2),
        "heapMb": _heap_totals(model),
        "details": {
            name: {k: _rounded(v, 2) for k, v in heap[name].items()} for name in VARIANTS
        },
        "trendWindow": format_duration(TREND_SECONDS),
        "trendMbPerHour": heap_trends(model),
        "samples": [_heap_sample(sample) for sample in model.heap_samples],
    }


def _heap_sample(sample: HeapSample) -> dict[str, Any]:
    return {
        "time": _rounded(sample.time, 3),
        "legacy": _rounded(sample.legacy_mb, 2),
        "modern": _rounded(sample.modern_mb, 2),
        "total": _rounded(sample.legacy_mb + sample.modern_mb, 2),
    }


def memory_leaks(model: BrainModel) -> dict[str, Any]:
    alarm = model.scenario.memory.leak_alarm_mb_per_hour
    trends = heap_trends(model)
    heap = _heap_totals(model)
    leaks = [
        {"variant": name, "growthMbPerHour": trends[name], "heapMb": heap[name]}
        for name in VARIANTS
        if (trends[name] or 0.0) > alarm
    ]
    return {
        "time": _rounded(model.elapsed(), 3),
        "window": format_duration(TREND_SECONDS),
        "thresholdMbPerHour": alarm,
        "suspected": bool(leaks),
        "leaks": leaks,
        "trendMbPerHour": trends,
    }


def cleanup(freed: dict[str, float], model: BrainModel) -> dict[str, Any]:
    return {
        "freedMb": {
            **{name: _rounded(freed[name], 2) for name in VARIANTS},
            "total": _rounded(sum(freed.values()), 2),
        },
        "heapMb": _heap_totals(model),
    }


def _change_percent(modern: float | None, legacy: float | None) -> float | int | None:
    if modern is None or legacy is None or legacy == 0:
        return None
    return _rounded((modern - legacy) / legacy * 100.0, 2)


def performance_comparison(model: BrainModel, window: float) -> dict[str, Any]:
    stats = model.window_stats(window)
    legacy, modern = stats["legacy"], stats["modern"]
    p95_change = _change_percent(modern.p95_latency_ms, legacy.p95_latency_ms)
    success_delta = None
    if modern.success_rate is not None and legacy.success_rate is not None:
        success_delta = modern.success_rate - legacy.success_rate
    return {
        **_header(model, window),
        "legacy": variant_json(legacy),
        "modern": variant_json(modern),
        "comparison": {
            "meanLatencyChangePercent": _change_percent(
                modern.mean_latency_ms, legacy.mean_latency_ms
            ),
            "p95LatencyChangePercent": p95_change,
            "performanceImprovementPercent": None if p95_change is None else -p95_change,
            "successRateDelta": _rounded(success_delta, 4),
            "verdict": _verdict(p95_change, success_delta),
        },
    }


def _verdict(p95_change: float | None, success_delta: float | None) -> str:
    if p95_change is None or success_delta is None:
        return "insufficient-data"
    if p95_change > 20.0 or success_delta < -0.05:
        return "modern-worse"
    if p95_change <= 0.0 and success_delta >= 0.0:
        return "modern-better"
    return "equivalent"


def tools_performance(model: BrainModel, window: float) -> dict[str, Any]:
    stats = model.window_stats(window)
    tools: dict[str, Any] = {}
    for tool, (share, weight) in _TOOLS.items():
        tools[tool] = {}
        for name in VARIANTS:
            variant = stats[name]
            mean = variant.mean_latency_ms
            tools[tool][name] = {
                "calls": round(variant.requests * share),
                "successRate": _rounded(variant.success_rate, 4),
                "meanMs": _rounded(None if mean is None else mean * weight, 1),
            }
    return {**_header(model, window), "tools": tools}


def system_load(model: BrainModel, window: float) -> dict[str, Any]:
    stats = model.window_stats(window)
    seconds = _covered_seconds(model, window)
    overall = _overall(stats)
    rate = overall.requests / seconds if seconds else 0.0
    # Little's law: requests in flight = arrival rate x time in the system.
    in_flight = rate * (overall.mean_latency_ms or 0.0) / 1000.0
    return {
        **_header(model, window),
        "requestsPerSecond": _rounded(rate, 3),
        "activeRequests": _rounded(in_flight, 1),
        "cpuPercent": _rounded(min(100.0, 5.0 + 95.0 * in_flight / _CONCURRENCY_CAPACITY), 1),
        "heapMb": _heap_totals(model),
        "heapLimitMb": _rounded(model.scenario.memory.limit_mb, 2),
    }


def error_analysis(model: BrainModel, window: float) -> dict[str, Any]:
    stats = model.window_stats(window)
    overall = _overall(stats)
    return {
        **_header(model, window),
        "total": _error_counts(overall),
        "variants": {
            name: {
                **_error_counts(stats[name]),
                "byStatus": _by_status(stats[name].codes),
            }
            for name in VARIANTS
        },
        "byType": [
            {
                "status": code,
                "type": _ERROR_TYPES[code],
                "count": overall.codes[i],
                **{name: stats[name].codes[i] for name in VARIANTS},
            }
            for i, code in enumerate(ERROR_CODES)
        ],
    }


def _by_status(codes: tuple[int, int, int]) -> dict[str, int]:
    return {str(code): n for code, n in zip(ERROR_CODES, codes, strict=True)}


def _error_counts(stats: VariantStats) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "errorRate": _rounded(stats.error_rate, 4),
    }


def error_logs(model: BrainModel, limit: int) -> dict[str, Any]:
    """Recent failed requests, newest first, reconstructed from the traffic buckets."""
    entries: list[dict[str, Any]] = []
    for bucket in reversed(model.buckets(3600.0)):
        for name in VARIANTS:
            entries += _bucket_log(bucket.end, name, bucket.variant(name).codes)
        if len(entries) >= limit:
            break
    entries.sort(key=lambda e: e["time"], reverse=True)
    return {"limit": limit, "count": len(entries[:limit]), "entries": entries[:limit]}


def _bucket_log(end: float, variant: str, codes: tuple[int, int, int]) -> list[dict[str, Any]]:
    statuses = [code for code, n in zip(ERROR_CODES, codes, strict=True) for _ in range(n)]
    step = BUCKET_SECONDS / max(1, len(statuses))
    start = end - BUCKET_SECONDS
    return [
        {
            "time": _rounded(start + (i + 0.5) * step, 3),
            "variant": variant,
            "status": status,
            "message": _ERROR_MESSAGES[status].format(variant=variant),
        }
        for i, status in enumerate(statuses)
    ]


def flags(model: BrainModel) -> dict[str, Any]:
    forced = model.flags.get(MODERN_FLAG, False)
    test = model.ab_test
    decided_by = "flag" if forced else "ab-test" if test and test.status == RUNNING else "default"
    return {
        "flags": {name: {"enabled": value} for name, value in sorted(model.flags.items())},
        "routing": {
            "modernTrafficPercentage": _rounded(model.modern_percentage(), 2),
            "decidedBy": decided_by,
        },
    }


def state(model: BrainModel) -> dict[str, Any]:
    totals = model.cumulative()
    return {
        "scenario": dataclasses.asdict(model.scenario),
        "seed": model.seed,
        "time": _rounded(model.elapsed(), 3),
        "bucketSeconds": BUCKET_SECONDS,
        "bucketsKept": len(model.history),
        "modernTrafficPercentage": _rounded(model.modern_percentage(), 2),
        "abTest": ab_test_json(model),
        "flags": dict(model.flags),
        "dashboardSince": _rounded(model.started.get(DASHBOARD), 3),
        "memoryManagementSince": _rounded(model.started.get(MEMORY_MANAGEMENT), 3),
        "modernSince": _rounded(model.modern_since, 3),
        "heapMb": _heap_totals(model),
        "autoRollbacks": model.auto_rollbacks,
        "totals": {name: variant_json(totals[name]) for name in VARIANTS},
    }
