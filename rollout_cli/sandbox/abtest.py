"""The A/B test the guide's framework runs: its settings, its lifecycle, its own limits."""

from __future__ import annotations

from dataclasses import dataclass

from rollout_cli.plan.durations import format_duration
from rollout_cli.sandbox.traffic import VariantStats

RUNNING, STOPPED, ROLLED_BACK = "running", "stopped", "rolled-back"


class Conflict(Exception):
    """The operation makes no sense in the model's current state (HTTP 409)."""


@dataclass(frozen=True)
class AbTestConfig:
    test_id: str
    name: str
    rollout_percentage: float
    enabled: bool = True
    max_error_rate: float = 0.05
    min_success_rate: float = 0.95
    max_response_time_ms: float = 15000.0
    enable_auto_rollback: bool = False


@dataclass
class AbTest:
    config: AbTestConfig
    started_at: float
    status: str = RUNNING  # running | stopped | rolled-back
    stopped_at: float | None = None
    emergency: bool = False
    rollback_reason: str | None = None

    @property
    def routed_percentage(self) -> float:
        running = self.status == RUNNING and self.config.enabled
        return self.config.rollout_percentage if running else 0.0


def breach_reason(config: AbTestConfig, modern: VariantStats, window: float) -> str | None:
    """Why the test's own limits are breached, with the numbers; None when they hold."""
    error_rate, success = modern.error_rate or 0.0, modern.success_rate or 0.0
    if error_rate > config.max_error_rate:
        limit = config.max_error_rate
        return (f"modern error rate {error_rate:.3f} > maxErrorRate {limit:g} "
                f"{_span(modern, window)}")
    if success < config.min_success_rate:
        limit = config.min_success_rate
        return (f"modern success rate {success:.3f} < minSuccessRate {limit:g} "
                f"{_span(modern, window)}")
    p95 = modern.p95_latency_ms or 0.0
    if p95 > config.max_response_time_ms:
        limit = config.max_response_time_ms
        return (f"modern p95 latency {p95:.0f} ms > maxResponseTime {limit:g} ms "
                f"{_span(modern, window)}")
    return None


def _span(modern: VariantStats, window: float) -> str:
    return f"over {format_duration(window)} ({modern.requests} requests)"
