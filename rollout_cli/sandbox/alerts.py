"""Alerts raised from the guide's thresholds: error rate > 5%, response time > 15 s, heap.

Severity: an error rate above ``error_rate`` is a warning, above ``critical_error_rate``
critical; a p95 above ``response_time_ms`` is a warning, a mean above it critical; a heap
above 85% of the limit is a warning, above the limit critical. Windows with fewer than
``min_requests`` requests raise nothing: a handful of requests is noise, not a signal.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollout_cli.sandbox.scenarios import MemorySettings, Thresholds
from rollout_cli.sandbox.traffic import VariantStats

WARNING_SHARE_OF_HEAP_LIMIT = 0.85


@dataclass(frozen=True)
class Alert:
    severity: str  # warning | critical
    kind: str  # error-rate | response-time | memory | auto-rollback | emergency
    message: str
    raised_at: float
    variant: str | None = None
    value: float | None = None
    threshold: float | None = None


def traffic_alerts(
    variant: str, stats: VariantStats, limits: Thresholds, now: float
) -> list[Alert]:
    if stats.requests < limits.min_requests:
        return []
    found = (_error_rate(variant, stats, limits, now), _latency(variant, stats, limits, now))
    return [alert for alert in found if alert is not None]


def _error_rate(variant: str, stats: VariantStats, limits: Thresholds, now: float) -> Alert | None:
    rate = stats.error_rate or 0.0
    if rate <= limits.error_rate:
        return None
    critical = rate > limits.critical_error_rate
    threshold = limits.critical_error_rate if critical else limits.error_rate
    message = f"{variant} error rate {rate:.3f} > {threshold:g}"
    severity = "critical" if critical else "warning"
    return Alert(severity, "error-rate", message, now, variant, rate, threshold)


def _latency(variant: str, stats: VariantStats, limits: Thresholds, now: float) -> Alert | None:
    p95, mean = stats.p95_latency_ms or 0.0, stats.mean_latency_ms or 0.0
    limit = limits.response_time_ms
    if p95 <= limit:
        return None
    critical = mean > limit
    statistic, value = ("mean", mean) if critical else ("p95", p95)
    message = f"{variant} {statistic} response time {value:.0f} ms > {limit:g} ms"
    severity = "critical" if critical else "warning"
    return Alert(severity, "response-time", message, now, variant, value, limit)


def memory_alerts(variant: str, heap_mb: float, memory: MemorySettings, now: float) -> list[Alert]:
    limit = memory.limit_mb
    if heap_mb > limit:
        severity, threshold = "critical", limit
    elif heap_mb > WARNING_SHARE_OF_HEAP_LIMIT * limit:
        severity, threshold = "warning", WARNING_SHARE_OF_HEAP_LIMIT * limit
    else:
        return []
    message = f"{variant} heap {heap_mb:.0f} MB > {threshold:.0f} MB"
    return [Alert(severity, "memory", message, now, variant, heap_mb, threshold)]
