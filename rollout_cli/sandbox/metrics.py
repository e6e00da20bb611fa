"""Prometheus exposition of the model's cumulative traffic (GET /metrics).

Metric names (all cumulative since the sandbox started, in simulated time):

- ``brain_requests_total{variant,code}``          counter; code 200, 500, 503 or 504
- ``brain_request_duration_seconds{variant}``     histogram of user request latency
- ``brain_heap_bytes{variant}``                   gauge; current heap of each implementation
- ``brain_rollout_percentage``                    gauge; share of traffic modern answers now
- ``brain_auto_rollbacks_total``                  counter; auto-rollbacks the A/B test fired

The collector reads the model's own aggregates on every scrape; it is registered on a
per-app ``CollectorRegistry`` so several sandboxes can live in one process. The app imports
this module (and prometheus-client) on its first scrape only.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from rollout_cli.sandbox.model import BrainModel
from rollout_cli.sandbox.traffic import ERROR_CODES, VARIANTS, VariantStats

LATENCY_BUCKETS_SECONDS = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)


class SandboxCollector(Collector):
    def __init__(self, model: BrainModel):
        self._model = model

    def collect(self) -> Iterator[Metric]:
        model = self._model
        with model.lock:
            totals = model.cumulative()
            heap = model.heap_mb()
            percentage = model.modern_percentage()
            rollbacks = model.auto_rollbacks
        yield _requests(totals)
        yield _durations(totals)
        heap_gauge = GaugeMetricFamily(
            "brain_heap_bytes", "Heap in use by each implementation.", labels=["variant"]
        )
        for name in VARIANTS:
            heap_gauge.add_metric([name], heap[name]["heapMb"] * 1024 * 1024)
        yield heap_gauge
        yield GaugeMetricFamily(
            "brain_rollout_percentage", "Share of user traffic the modern implementation answers.",
            value=percentage,
        )
        yield CounterMetricFamily(
            "brain_auto_rollbacks", "Automatic rollbacks fired by the A/B test.", value=rollbacks
        )


def _requests(totals: dict[str, VariantStats]) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "brain_requests", "User requests answered, by implementation and status code.",
        labels=["variant", "code"],
    )
    for name in VARIANTS:
        stats = totals[name]
        family.add_metric([name, "200"], stats.requests - stats.errors)
        for code, count in zip(ERROR_CODES, stats.codes, strict=True):
            family.add_metric([name, str(code)], count)
    return family


def _durations(totals: dict[str, VariantStats]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "brain_request_duration_seconds", "User request latency.", labels=["variant"]
    )
    for name in VARIANTS:
        stats = totals[name]
        # A bucket's count is each profile's expected share below the bound, rounded;
        # rounding a monotonic function of a growing count keeps every bucket monotonic.
        buckets = [
            (f"{bound:g}", _count_below(stats, bound * 1000.0)) for bound in LATENCY_BUCKETS_SECONDS
        ]
        buckets.append(("+Inf", stats.requests))
        family.add_metric([name], buckets, sum_value=stats.latency_sum_ms / 1000.0)
    return family


def _count_below(stats: VariantStats, ms: float) -> int:
    return sum(round(n * profile.cdf(ms)) for profile, n in stats.profiles.items())


def sandbox_registry(model: BrainModel) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SandboxCollector(model))
    return registry


class Exposition:
    """One sandbox's /metrics: its registry and the text format Prometheus scrapes."""

    def __init__(self, model: BrainModel):
        self.registry = sandbox_registry(model)

    def scrape(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
