"""Scenarios: what the simulated brain API does, as data.

A scenario is one frozen ``Scenario``; the named ones (``healthy``, ``degrade-at-50``,
``subtle-degrade``, ``noisy-healthy``, ``error-spike``, ``memory-leak``, ``flaky-admin``,
``slow-metrics``, ``no-traffic``) are presets of it. A YAML file sets the same knobs,
starting from a preset (``base:``, default ``healthy``) and overriding only what it names;
see docs/sandbox.md.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rollout_cli.errors import UsageError
from rollout_cli.plan.durations import parse_duration
from rollout_cli.sandbox.latency import LatencyProfile, check_latency

_DURATION = {"duration": True}


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value:g}")


def _check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value:g}")


@dataclass(frozen=True)
class VariantProfile:
    """How one implementation (legacy or modern) behaves when it is healthy."""

    success_rate: float
    latency_mean_ms: float
    latency_p95_ms: float
    heap_base_mb: float
    leak_mb_per_hour: float = 0.0  # grows only while the variant serves traffic

    def __post_init__(self) -> None:
        _check_fraction("success_rate", self.success_rate)
        check_latency(self.latency_mean_ms, self.latency_p95_ms)
        if self.heap_base_mb < 0 or self.leak_mb_per_hour < 0:
            raise ValueError("heap_base_mb and leak_mb_per_hour cannot be negative")

    @property
    def latency(self) -> LatencyProfile:
        return LatencyProfile(self.latency_mean_ms, self.latency_p95_ms)


@dataclass(frozen=True)
class Degradation:
    """Modern gets slower and less reliable while its share is at least ``at_percentage``."""

    at_percentage: float = 50.0
    latency_factor: float = 1.4
    success_drop: float = 0.06

    def __post_init__(self) -> None:
        if not 0 < self.at_percentage <= 100:
            raise ValueError(f"at_percentage must be in (0, 100], got {self.at_percentage:g}")
        _check_positive("latency_factor", self.latency_factor)
        _check_fraction("success_drop", self.success_drop)


@dataclass(frozen=True)
class ErrorSpike:
    """Modern's error rate jumps ``after`` it first takes traffic, and stays up."""

    after: float = field(default=3600.0, metadata=_DURATION)
    error_rate: float = 0.25

    def __post_init__(self) -> None:
        _check_fraction("error_rate", self.error_rate)


@dataclass(frozen=True)
class MemorySettings:
    """Per-variant heap: base + garbage (collected at a threshold) + leaked (never freed)."""

    garbage_mb_per_hour: float = 20.0
    gc_threshold_mb: float = 16.0
    managed_gc_threshold_mb: float = 6.0  # once POST /api/admin/memory/start has run
    limit_mb: float = 1024.0
    leak_alarm_mb_per_hour: float = 50.0  # /memory/leaks names a variant growing faster

    def __post_init__(self) -> None:
        for name in ("gc_threshold_mb", "managed_gc_threshold_mb", "limit_mb"):
            _check_positive(name, getattr(self, name))


@dataclass(frozen=True)
class Thresholds:
    """The guide's alert thresholds: error rate > 5 %, response time > 15 s."""

    error_rate: float = 0.05
    critical_error_rate: float = 0.10
    response_time_ms: float = 15000.0
    # Below this a window is too small to alert on: at 200 requests a true 2% error rate
    # crosses 10% (critical) about once in ten million windows.
    min_requests: int = 200

    def __post_init__(self) -> None:
        _check_fraction("error_rate", self.error_rate)
        _check_fraction("critical_error_rate", self.critical_error_rate)
        _check_positive("response_time_ms", self.response_time_ms)


@dataclass(frozen=True)
class AdminFaults:
    """Misbehaviour of the admin API itself (never of /api/admin/_sandbox)."""

    flaky_fraction: float = 0.0  # share of admin calls answered 500, 503 or timed out
    timeout: float = field(default=30.0, metadata=_DURATION)  # how long a timed-out call hangs
    slow_metrics_delay: float = field(default=0.0, metadata=_DURATION)  # per metric read

    def __post_init__(self) -> None:
        _check_fraction("flaky_fraction", self.flaky_fraction)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    requests_per_second: float = 20.0
    legacy: VariantProfile = VariantProfile(0.97, 3000.0, 7000.0, heap_base_mb=420.0)
    modern: VariantProfile = VariantProfile(0.98, 2700.0, 6300.0, heap_base_mb=380.0)
    degradation: Degradation | None = None
    error_spike: ErrorSpike | None = None
    memory: MemorySettings = MemorySettings()
    thresholds: Thresholds = Thresholds()
    faults: AdminFaults = AdminFaults()
    # Relative spread of a 10-second bucket's response times (0: every bucket drawn from
    # the variant's own profile): 0.15 makes one bucket's latency 15% off, one time in three.
    latency_jitter: float = 0.0
    auto_rollback_window: float = field(default=300.0, metadata=_DURATION)
    # A 5-point margin (the guide's limits vs healthy modern) is 4.5 standard deviations at
    # 500 requests, so noise practically never rolls a healthy test back.
    auto_rollback_min_requests: int = 500
    # The framework acts on a breach that lasts, not on one noisy window: every
    # one-minute check for this long must see it. An orchestrator judging every few
    # minutes gets to act first, as the guide's own thresholds intend.
    auto_rollback_sustain: float = field(default=900.0, metadata=_DURATION)

    def __post_init__(self) -> None:
        if self.requests_per_second < 0:
            rate = self.requests_per_second
            raise ValueError(f"requests_per_second cannot be negative, got {rate:g}")
        if not 0.0 <= self.latency_jitter <= 1.0:
            raise ValueError(f"latency_jitter must be between 0 and 1, got "
                             f"{self.latency_jitter:g}")
        minutes = self.auto_rollback_window / 60.0
        if not (1 <= minutes <= 60 and minutes == int(minutes)):
            raise ValueError("auto_rollback_window must be whole minutes between 1m and 1h")


HEALTHY = Scenario(
    name="healthy",
    description="Both implementations well inside the guide's thresholds; modern a bit faster.",
)

PRESETS: dict[str, Scenario] = {
    s.name: s
    for s in (
        HEALTHY,
        replace(
            HEALTHY,
            name="degrade-at-50",
            description="At >= 50% modern latency rises 40% and its success rate drops 6 points.",
            degradation=Degradation(),
        ),
        replace(
            HEALTHY,
            name="subtle-degrade",
            description="From 25% modern is 8% slower than legacy and fails 1 point more "
                        "(4% vs 3%): below every threshold of the guide.",
            degradation=Degradation(at_percentage=25.0, latency_factor=1.2, success_drop=0.02),
        ),
        replace(
            HEALTHY,
            name="noisy-healthy",
            description="Modern exactly as good as legacy, at a quarter of the traffic and "
                        "with jittery response times: noise, no real difference.",
            requests_per_second=5.0,
            modern=replace(HEALTHY.legacy, heap_base_mb=380.0),
            latency_jitter=0.15,
        ),
        replace(
            HEALTHY,
            name="error-spike",
            description="Modern's error rate jumps to 25% one hour after it first takes traffic.",
            error_spike=ErrorSpike(),
        ),
        replace(
            HEALTHY,
            name="memory-leak",
            description="Modern's heap grows 120 MB per hour while it serves traffic.",
            modern=replace(HEALTHY.modern, leak_mb_per_hour=120.0),
        ),
        replace(
            HEALTHY,
            name="flaky-admin",
            description="20% of admin calls answer 500/503 (not applied) or time out (applied).",
            faults=AdminFaults(flaky_fraction=0.2),
        ),
        replace(
            HEALTHY,
            name="slow-metrics",
            description="Metric endpoints take 12 simulated seconds to answer.",
            faults=AdminFaults(slow_metrics_delay=12.0),
        ),
        replace(
            HEALTHY,
            name="no-traffic",
            description="No user traffic at all: every metric window is empty.",
            requests_per_second=0.0,
        ),
    )
}


def preset_names() -> list[str]:
    return list(PRESETS)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A preset by name, else a YAML scenario file; UsageError with the reason otherwise."""
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise UsageError(
            f"unknown scenario {str(name_or_path)!r}: not a preset "
            f"({', '.join(PRESETS)}) and no such file"
        )
    return _load_file(path)


def _load_file(path: Path) -> Scenario:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read scenario file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"scenario file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise UsageError(f"scenario file {path}: expected a mapping of scenario settings")
    return scenario_from_mapping(data, source=str(path), default_name=path.stem)


def scenario_from_mapping(
    data: Mapping[str, Any], *, source: str = "scenario", default_name: str = "custom"
) -> Scenario:
    """Overlay ``data`` on its ``base`` preset; every problem becomes a UsageError."""
    settings = dict(data)
    base_name = settings.pop("base", "healthy")
    if base_name not in PRESETS:
        raise UsageError(f"{source}: base: unknown preset {base_name!r} ({', '.join(PRESETS)})")
    settings.setdefault("name", default_name)
    settings.setdefault("description", f"{source}, based on {base_name}")
    try:
        return _overlay(PRESETS[base_name], settings, path="")
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from exc


def _overlay(base: Any, settings: Mapping[str, Any], path: str) -> Any:
    if not isinstance(settings, Mapping):
        raise ValueError(f"{path.rstrip('.') or 'scenario'}: expected a mapping")
    cls = type(base)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for key, value in settings.items():
        where = f"{path}{key}"
        if key not in fields:
            raise ValueError(f"{where}: unknown setting (known: {', '.join(fields)})")
        changes[key] = _convert(fields[key], hints[key], getattr(base, key), value, where)
    try:
        return replace(base, **changes)
    except ValueError as exc:
        raise ValueError(f"{path.rstrip('.') or 'scenario'}: {exc}") from exc


def _convert(spec: dataclasses.Field[Any], hint: Any, current: Any, value: Any, where: str) -> Any:
    section = _section_type(hint)
    if section is not None:
        if value is None and _is_optional(hint):
            return None
        return _overlay(current if current is not None else section(), value, f"{where}.")
    if spec.metadata.get("duration"):
        try:
            return _duration(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected text, got {value!r}")
        return value
    wants_int = hint is int
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        wants_int and not isinstance(value, int)
    ):
        expected = "an integer" if wants_int else "a number"
        raise ValueError(f"{where}: expected {expected}, got {value!r}")
    return value if wants_int else float(value)


def _duration(value: Any) -> float:
    """A plain number is seconds, as scenario files have always had it; text is read
    the plan's way (``30s``, ``5m``, ``1h30m``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"expected a duration like 30s, 5m or 1h, got {value!r}")
        return float(value)
    return parse_duration(value)


def _section_type(hint: Any) -> type | None:
    candidates = typing.get_args(hint) if _is_optional(hint) else (hint,)
    for candidate in candidates:
        if dataclasses.is_dataclass(candidate) and isinstance(candidate, type):
            return candidate
    return None


def _is_optional(hint: Any) -> bool:
    return isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
